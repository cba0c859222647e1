"""Devices as beamlines have them: ophyd classic and ophyd-async, mixed, connected with a timeout, positions read
from any kind of mover and ``max_step`` enforced on each kind, through a real RunEngine.

The factories below are the session files' ``instrument.factory`` (``tests.integration.test_devices:...``).
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import pytest
from ophyd import EpicsMotor, Signal
from ophyd.sim import SynAxis, SynGauss
from ophyd_async.core import SignalW, SoftSignalBackend, StaticFilenameProvider, StaticPathProvider
from ophyd_async.epics.motor import Motor
from ophyd_async.sim import PatternGenerator, SimBlobDetector, SimMotor, SimPointDetector, SimStage

from closedloop import InstrumentError, ObservationStatus, Proposal, SafetyError, SpecError, spec_from_dict
from closedloop.spec import SessionSpec
from instruments import InProcessExecutor, gate, observation_from_documents
from instruments.safety import check_setpoints
from simulators import SimFieldDetector
from tests.conftest import args_for

CENTRE, PEAK, SIGMA = 0.3, 100.0, 0.5
HERE = "tests.integration.test_devices"
SEEN: dict[str, Any] = {}


def gaussian(x: float) -> float:
    """What ophyd.sim's SynGauss reads with the motor at ``x``."""
    return PEAK * math.exp(-((x - CENTRE) ** 2) / (2 * SIGMA**2))


def parabola(y: float) -> float:
    return 5.0 - (y + 0.2) ** 2


def classic_instrument() -> dict[str, Any]:
    """ophyd classic only: a SynAxis and a SynGauss that follows it."""
    mx = SynAxis(name="mx")
    return {"mx": mx, "gauss": SynGauss("gauss", mx, "mx", center=CENTRE, Imax=PEAK, sigma=SIGMA)}


def mixed_instrument(run_engine: Any) -> dict[str, Any]:
    """ophyd classic and ophyd-async in one instrument; takes the RunEngine as a beamline's factory may."""
    SEEN["run_engine"] = run_engine
    devices = classic_instrument()
    my = SimMotor(name="my")
    devices["my"] = my
    devices["adet"] = SimFieldDetector(parabola, {"y": my.user_readback}, name="adet")
    return devices


def stage_instrument(tmp: str = "/tmp") -> dict[str, Any]:
    """ophyd-async's own sims: a SimStage moved by its child motors, a point and a blob detector."""
    generator = PatternGenerator()
    path = StaticPathProvider(StaticFilenameProvider("blob"), Path(tmp))
    return {
        "stage": SimStage(generator, name="stage"),
        "pdet": SimPointDetector(generator, name="pdet"),
        "blob": SimBlobDetector(path, name="blob"),
    }


def classic_signal_instrument() -> dict[str, Any]:
    """A bare ophyd classic Signal as a mover: its position is the value in its read()."""
    return {"gap": Signal(name="gap", value=1.0), "gauss": classic_instrument()["gauss"]}


def write_only_instrument() -> dict[str, Any]:
    """An ophyd-async write-only setpoint (no read-back) as a mover."""
    sp = SignalW(SoftSignalBackend(float), name="sp")
    return {"sp": sp, "det": SimFieldDetector(lambda: 1.0, {}, name="det")}


def not_a_device() -> dict[str, Any]:
    return {"mx": SynAxis(name="mx"), "det": 42}


def epics_instrument(kind: str) -> dict[str, Any]:
    """EPICS motors whose IOC is not there (nothing answers on loopback)."""
    motor = EpicsMotor("CLTEST:NOPE:M1", name="cm") if kind == "classic" else Motor("CLTEST:NOPE:M2", name="am")
    return {"m": motor, "gauss": SynGauss("gauss", SynAxis(name="ax"), "ax", center=0, Imax=1)}


def session(factory: str, variables: dict[str, Any], objectives: dict[str, Any], **instrument: Any) -> Any:
    return spec_from_dict(
        {
            "variables": variables,
            "objectives": objectives,
            "budget": {"experiments": 3},
            "planner": {"name": "sobol"},
            "instrument": {"factory": f"{HERE}:{factory}", **instrument},
        }
    )


def run_gated(spec: SessionSpec, executor: InProcessExecutor, setpoints: dict[str, Any], iteration: int = 0) -> Any:
    proposal = Proposal(iteration=iteration, setpoints=gate(spec, setpoints, executor))
    record = executor.run(proposal)
    return observation_from_documents(spec, proposal, record.documents, record.error)


def test_ophyd_classic_devices_run_and_read_the_physics(run_engine: Any) -> None:
    spec = session(
        "classic_instrument",
        {"x": {"bounds": [-1, 1], "device": "mx", "max_step": 0.4}},
        {"peak": {"field": "gauss"}},
    )
    executor = InProcessExecutor(args_for(spec, "s-classic"), run_engine=run_engine)
    assert executor.positions() == {"x": 0.0}
    observation = run_gated(spec, executor, {"x": 0.25})
    assert observation.status == ObservationStatus.OK
    assert observation.readbacks == {"x": 0.25}
    assert observation.values["peak"] == pytest.approx(gaussian(0.25))
    observation = run_gated(spec, executor, {"x": 0.6}, iteration=1)
    assert observation.values["peak"] == pytest.approx(gaussian(0.6))
    assert executor.positions() == {"x": 0.6}
    # the classic motor's read-back is what max_step is measured from
    with pytest.raises(SafetyError, match=r"setpoints.x: a move of 0.6 from 0.6 exceeds max_step 0.4"):
        check_setpoints(spec, {"x": 0.0}, executor.positions())
    assert executor.devices["mx"].position == 0.6


def test_classic_and_async_devices_mixed_in_one_instrument(run_engine: Any) -> None:
    spec = session(
        "mixed_instrument",
        {
            "x": {"bounds": [-1, 1], "device": "mx", "max_step": 1.0},
            "y": {"bounds": [-1, 1], "device": "my", "max_step": 0.5},
        },
        {"peak": {"field": "gauss"}, "top": {"field": "adet-value"}},
    )
    executor = InProcessExecutor(args_for(spec, "s-mixed"), run_engine=run_engine)
    assert SEEN["run_engine"] is run_engine
    assert {type(d).__name__ for d in executor.detectors} == {"SynGauss", "SimFieldDetector"}
    observation = run_gated(spec, executor, {"x": -0.5, "y": 0.4})
    assert observation.status == ObservationStatus.OK, observation.error
    assert observation.readbacks == pytest.approx({"x": -0.5, "y": 0.4})
    assert observation.values["peak"] == pytest.approx(gaussian(-0.5))
    assert observation.values["top"] == pytest.approx(parabola(0.4))
    assert executor.positions() == pytest.approx({"x": -0.5, "y": 0.4})
    with pytest.raises(SafetyError, match="setpoints.y: a move of 0.9"):
        check_setpoints(spec, {"x": -0.5, "y": -0.5}, executor.positions())


def test_ophyd_async_sim_stage_child_motor_and_detectors(run_engine: Any, tmp_path: Path) -> None:
    spec = session(
        "stage_instrument",
        {"x": {"bounds": [-1, 1], "device": "stage.x", "readback": "stage-x", "max_step": 0.3}},
        {"c": {"field": "pdet-channel-1-value"}},
        options={"tmp": str(tmp_path)},
    )
    executor = InProcessExecutor(args_for(spec, "s-stage"), run_engine=run_engine)
    assert executor.movers["x"] is executor.devices["stage"].x
    # the stage (a mover's parent) and both detectors are triggered and read; the blob detector is connected
    assert [d.name for d in executor.detectors] == ["stage", "pdet", "blob"]
    assert executor.positions() == {"x": 0.0}
    with pytest.raises(SafetyError, match="setpoints.x: a move of 0.5 from 0 exceeds max_step 0.3"):
        check_setpoints(spec, {"x": 0.5}, executor.positions())
    executor.detectors = executor.detectors[:2]  # reading the blob detector needs staging: the plan's job
    # SimStage's motors move at 1 mm/s: one short move
    record = executor.run(Proposal(iteration=0, setpoints=gate(spec, {"x": 0.25}, executor)))
    assert record.error is None
    event = next(doc for name, doc in record.documents if name == "event")
    assert event["data"]["stage-x"] == pytest.approx(0.25)
    assert executor.positions() == pytest.approx({"x": 0.25})


def test_a_classic_signal_reports_its_position_through_read(run_engine: Any) -> None:
    spec = session(
        "classic_signal_instrument",
        {"g": {"bounds": [0, 2], "device": "gap", "max_step": 0.5}},
        {"p": {"field": "gauss"}},
    )
    executor = InProcessExecutor(args_for(spec, "s-signal"), run_engine=run_engine)
    assert executor.positions() == {"g": 1.0}
    assert run_gated(spec, executor, {"g": 1.4}).readbacks == {"g": 1.4}
    with pytest.raises(SafetyError, match="exceeds max_step 0.5"):
        check_setpoints(spec, {"g": 0.5}, executor.positions())


def test_max_step_on_a_device_without_a_position_is_refused_at_build(run_engine: Any) -> None:
    variables = {"s": {"bounds": [0, 2], "device": "sp", "max_step": 0.5}}
    spec = session("write_only_instrument", variables, {"v": {"field": "det-value"}})
    with pytest.raises(InstrumentError, match=r"variables.s.max_step: device 'sp' cannot report its position"):
        InProcessExecutor(args_for(spec, "s-wo"), run_engine=run_engine)
    # without max_step the write-only setpoint is a fine mover
    variables["s"].pop("max_step")
    executor = InProcessExecutor(
        args_for(session("write_only_instrument", variables, {"v": {"field": "det-value"}}), "s")
    )
    assert executor.positions() == {}
    executor.close()


def test_a_factory_value_that_is_not_a_device_is_named(run_engine: Any) -> None:
    spec = session("not_a_device", {"x": {"bounds": [0, 1], "device": "mx"}}, {"v": {"field": "det"}})
    with pytest.raises(InstrumentError, match=r"instrument: 'det' from .*:not_a_device is not a device") as info:
        InProcessExecutor(args_for(spec, "s"), run_engine=run_engine)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(("fault", "device"), [(True, "det"), ("m1", "m1")])
def test_a_device_that_never_connects_is_named_within_the_timeout(run_engine: Any, fault: Any, device: str) -> None:
    spec = spec_from_dict(
        {
            "variables": {"p": {"bounds": [-1, 1], "device": "m1"}},
            "objectives": {"flux": {"field": "det-flux"}},
            "budget": {"experiments": 1},
            "instrument": {
                "simulator": "beamline",
                "connect_timeout": 0.3,
                "options": {"faults": {"no_connect": fault}},
            },
        }
    )
    started = time.monotonic()
    with pytest.raises(InstrumentError) as info:
        InProcessExecutor(args_for(spec, "s"), run_engine=run_engine)
    assert str(info.value) == f"instrument: device '{device}' did not connect within 0.3 s"
    assert time.monotonic() - started < 3.0


@pytest.mark.parametrize(("kind", "pv"), [("classic", "CLTEST:NOPE:M1"), ("async", "CLTEST:NOPE:M2")])
def test_an_epics_motor_without_its_ioc_is_named(
    run_engine: Any, monkeypatch: pytest.MonkeyPatch, kind: str, pv: str
) -> None:
    """Real EPICS clients (pyepics for ophyd classic, aioca for ophyd-async), searching loopback only."""
    monkeypatch.setenv("EPICS_CA_AUTO_ADDR_LIST", "NO")
    monkeypatch.setenv("EPICS_CA_ADDR_LIST", "127.0.0.1")
    spec = session(
        "epics_instrument",
        {"x": {"bounds": [0, 1], "device": "m"}},
        {"v": {"field": "gauss"}},
        options={"kind": kind},
        connect_timeout=0.5,
    )
    with pytest.raises(InstrumentError) as info:
        InProcessExecutor(args_for(spec, "s"), run_engine=run_engine)
    message = str(info.value)
    assert message.startswith("instrument: device 'm' did not connect within 0.5 s (")
    assert pv in message and "\n" not in message


@pytest.mark.parametrize(
    ("top", "words"),
    [
        ({"suspenders": [{"signal": "ring.current", "below": 100, "resume_above": 50}]}, "suspenders.0: resume_above"),
        ({"suspenders": [{"signal": "ring current", "below": 100}]}, "suspenders.0.signal"),
        ({"publish": {"address": "localhost"}}, "publish: address 'localhost' is not host:port"),
        ({"metadata": {"session_id": "x"}}, "metadata: key 'session_id' is reserved"),
        ({"metadata": {"when": float("inf")}}, "metadata.when: not a finite number"),
        ({"instrument": {"simulator": "beamline", "connect_timeout": 0}}, "instrument.connect_timeout"),
        ({"instrument": {"simulator": "beamline", "run_timeout": float("nan")}}, "instrument.run_timeout"),
        ({"instrument": {"simulator": "beamline", "retries": {"attempts": 0}}}, "instrument.retries.attempts"),
    ],
)
def test_bad_instrument_settings_are_refused_in_one_line(top: dict[str, Any], words: str) -> None:
    data = {
        "variables": {"p": {"bounds": [-1, 1], "device": "m1"}},
        "objectives": {"flux": {"field": "det-flux"}},
        "budget": {"experiments": 1},
        "instrument": {"simulator": "beamline"},
        **top,
    }
    with pytest.raises(SpecError) as info:
        spec_from_dict(data)
    assert words in str(info.value) and "\n" not in str(info.value)
