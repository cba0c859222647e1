"""A session file that does not fit its devices is refused once they connect, before anything moves: fields from
``describe()``, device kinds, categories only where a device takes names. Real RunEngine, real ophyd-async and
ophyd classic devices; the factories below are the session files' ``instrument.factory``.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import bluesky.plans as bp
import pytest
import yaml
from bluesky.run_engine import call_in_bluesky_event_loop
from ophyd import Signal
from ophyd.sim import SynAxis, SynGauss
from ophyd_async.core import StaticPathProvider, StrictEnum, UUIDFilenameProvider, soft_signal_rw
from ophyd_async.sim import PatternGenerator, SimBlobDetector, SimPointDetector, SimStage

import simulators
from closedloop import SpecError, spec_from_dict
from instruments import InProcessExecutor
from tests.conftest import args_for, beamline_session

HERE = "tests.integration.test_device_checks"
MADE: dict[str, Any] = {}


class Crystal(StrictEnum):
    SI111 = "Si111"
    SI311 = "Si311"


def watched_beamline(**options: Any) -> dict[str, Any]:
    """The bundled beamline, kept here so that a test can look at its motors and detector afterwards."""
    MADE.clear()
    MADE.update(simulators.beamline(**options))
    return dict(MADE)


def classic(**_: Any) -> dict[str, Any]:
    """ophyd classic: a SynAxis, a SynGauss following it, and a Signal holding a crystal's name."""
    mx = SynAxis(name="mx")
    return {
        "mx": mx,
        "gauss": SynGauss("gauss", mx, "mx", center=0.0, Imax=1.0, sigma=1.0),
        "xtal": Signal(name="xtal", value="Si111"),
    }


def async_sims(tmp: str, **_: Any) -> dict[str, Any]:
    """ophyd-async's sims: a stage, a point detector, a blob detector (its data goes to HDF5 files), and an enum
    setting."""
    generator = PatternGenerator()
    return {
        "stage": SimStage(generator, name="stage"),
        "pdet": SimPointDetector(generator, num_channels=1, name="pdet"),
        "blob": SimBlobDetector(StaticPathProvider(UUIDFilenameProvider(), Path(tmp)), generator, name="blob"),
        "mono": soft_signal_rw(Crystal, Crystal.SI111, name="mono"),
    }


def own_plan(setpoints: dict[str, Any], movers: dict[str, Any], detectors: list[Any], md: dict[str, Any]) -> Any:
    """A plan factory: it could read devices of its own, so its outputs' fields are not looked up at connect."""
    return bp.count(detectors, md=md)


def refusal(run_engine: Any, data: dict[str, Any]) -> str:
    with pytest.raises(SpecError) as info:
        InProcessExecutor(args_for(spec_from_dict(data), "s-check"), run_engine=run_engine)
    assert "\n" not in str(info.value)
    return str(info.value)


def watched(**changes: Any) -> dict[str, Any]:
    return beamline_session(instrument={"factory": f"{HERE}:watched_beamline"}, **changes)


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        (
            {"objectives": {"flux": {"field": "det-flx"}}},
            "objectives.flux.field: no field 'det-flx' is read from the devices (their fields: det-flux, det-heat",
        ),
        (
            {"constraints": {"heat": {"field": "det-temperature", "less_than": 2.0}}},
            "constraints.heat.field: no field 'det-temperature'",
        ),
        (
            {
                "variables": {
                    "pitch1": {"bounds": [-1, 1], "device": "det"},
                    "pitch2": {"bounds": [-1, 1], "device": "m2"},
                }
            },
            "variables.pitch1.device: 'det' cannot be moved (no set(): a detector?); devices that can: m1, m2",
        ),
        (
            {
                "variables": {
                    "pitch1": {"values": ["Si111", "Si311"], "device": "m1"},
                    "pitch2": {"bounds": [-1, 1], "device": "m2"},
                }
            },
            "variables.pitch1: names (Si111, Si311) on a device that reads number values",
        ),
        (
            {
                "variables": {
                    "pitch1": {"bounds": [-1, 1], "device": "m1", "readback": "m1-rbv"},
                    "pitch2": {"bounds": [-1, 1], "device": "m2"},
                }
            },
            "variables.pitch1.readback: no field 'm1-rbv'",
        ),
        ({"plan": {"monitor": "i0"}}, "plan.monitor: no field 'i0'"),
    ],
)
def test_a_session_that_does_not_fit_the_devices_is_refused_before_anything_moves(
    run_engine: Any, changes: dict[str, Any], expected: str
) -> None:
    assert expected in refusal(run_engine, watched(**changes))
    motors = [MADE["m1"], MADE["m2"]]
    positions = [call_in_bluesky_event_loop(m.user_readback.get_value()) for m in motors]
    assert positions == [0.0, 0.0] and MADE["det"].triggers == 0


def test_a_plan_factory_may_make_fields_the_devices_do_not_describe(run_engine: Any) -> None:
    data = watched(objectives={"flux": {"field": "computed-flux"}}, plan={"factory": f"{HERE}:own_plan"})
    InProcessExecutor(args_for(spec_from_dict(data), "s-ok"), run_engine=run_engine).close()
    to_det = {"pitch1": {"bounds": [-1, 1], "device": "det"}, "pitch2": {"bounds": [-1, 1], "device": "m2"}}
    assert "variables.pitch1.device: 'det' cannot be moved" in refusal(run_engine, {**data, "variables": to_det})


def test_ophyd_classic_devices_are_checked_by_their_describe(run_engine: Any) -> None:
    def data(**changes: Any) -> dict[str, Any]:
        return {
            "variables": {"x": {"bounds": [-1, 1], "device": "mx"}},
            "objectives": {"peak": {"field": "gauss"}},
            "budget": {"experiments": 1},
            "planner": {"name": "sobol"},
            "instrument": {"factory": f"{HERE}:classic"},
            **changes,
        }

    InProcessExecutor(args_for(spec_from_dict(data()), "s-ok"), run_engine=run_engine).close()
    assert "objectives.peak.field: no field 'gaus'" in refusal(run_engine, data(objectives={"peak": {"field": "gaus"}}))
    to_gauss = {"x": {"bounds": [-1, 1], "device": "gauss"}}
    assert "variables.x.device: 'gauss' cannot be moved" in refusal(run_engine, data(variables=to_gauss))
    crystals = {"x": {"bounds": [-1, 1], "device": "mx"}, "c": {"values": ["Si111", "Si311"], "device": "xtal"}}
    InProcessExecutor(args_for(spec_from_dict(data(variables=crystals)), "s-ok"), run_engine=run_engine).close()
    numbers_on_names = {"x": {"bounds": [-1, 1], "device": "mx"}, "c": {"bounds": [0, 1], "device": "xtal"}}
    assert "variables.c: numbers on a device that reads string values" in refusal(
        run_engine, data(variables=numbers_on_names)
    )


def test_ophyd_async_sims_fields_come_from_describe_and_a_blob_needs_a_reducer(run_engine: Any, tmp_path: Path) -> None:
    def data(objectives: dict[str, Any], **variables: Any) -> dict[str, Any]:
        return {
            "variables": {"x": {"bounds": [-1, 1], "device": "stage.x"}, **variables},
            "objectives": objectives,
            "budget": {"experiments": 1},
            "planner": {"name": "sobol"},
            "instrument": {"factory": f"{HERE}:async_sims", "options": {"tmp": str(tmp_path)}},
        }

    point = {"c": {"field": "pdet-channel-1-value"}}
    InProcessExecutor(args_for(spec_from_dict(data(point)), "s-ok"), run_engine=run_engine).close()
    assert "objectives.s.field: 'blob-sum' is written to a file by its detector" in refusal(
        run_engine, data({"s": {"field": "blob-sum"}})
    )
    summed = {"s": {"field": "blob-sum", "reducer": "instruments.reducers:mean"}}
    InProcessExecutor(args_for(spec_from_dict(data(summed)), "s-ok"), run_engine=run_engine).close()
    made_by_a_reducer = {"s": {"field": "blob", "reducer": "instruments.reducers:frame_sum"}}
    InProcessExecutor(args_for(spec_from_dict(data(made_by_a_reducer)), "s-ok"), run_engine=run_engine).close()
    # an enum setting takes its names only
    InProcessExecutor(
        args_for(spec_from_dict(data(point, xtal={"values": ["Si111", "Si311"], "device": "mono"})), "s-ok"),
        run_engine=run_engine,
    ).close()
    assert "variables.xtal: 'Ge220' is not among the device's choices (Si111, Si311)" in refusal(
        run_engine, data(point, xtal={"values": ["Si111", "Ge220"], "device": "mono"})
    )
    number_on_names = {**data(point), "constants": {"mode": {"value": 1.0, "device": "mono"}}}
    assert "constants.mode: numbers on a device that reads one of Si111, Si311" in refusal(run_engine, number_on_names)


def test_the_command_line_refuses_it_in_one_line_exit_2_leaving_nothing(tmp_path: Path) -> None:
    path = tmp_path / "session.yaml"
    path.write_text(yaml.safe_dump(beamline_session(objectives={"flux": {"field": "det-flx"}})))
    folder = tmp_path / "run"
    result = subprocess.run(
        [sys.executable, "-m", "agent.cli", "run", str(path), "--dir", str(folder)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1 and "objectives.flux.field: no field 'det-flx'" in result.stderr
    assert not folder.exists()
