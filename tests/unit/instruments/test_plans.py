"""The ``plan:`` section and the plans it picks: bad input is one line naming the field; the bundled plans stage,
prepare, move together and read, in the order a beamline expects (messages seen by a real RunEngine)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from bluesky.utils import Msg
from ophyd.sim import SynAxis, SynGauss
from ophyd_async.core import StaticPathProvider, TriggerInfo, UUIDFilenameProvider, init_devices
from ophyd_async.sim import SimBlobDetector, SimMotor

from closedloop import InstrumentError, SessionSpec, SpecError, spec_from_dict
from closedloop.resolve import resolve
from instruments import plan_for
from tests.conftest import beamline_session

HERE = "tests.unit.instruments.test_plans"


def my_plan(setpoints, movers, detectors, md, exposure: float = 1.0):  # pragma: no cover - only its path is used
    yield from ()


@pytest.mark.parametrize(
    ("plan", "message"),
    [
        ({"name": "scan", "factory": f"{HERE}:my_plan"}, "plan: give one of 'name' (a bundled plan) or 'factory'"),
        ({"name": "sweep"}, "plan.name: Input should be 'measure' or 'scan'"),
        ({"colour": "blue"}, "plan.colour: unknown key"),
        ({"options": {"nm": 2}}, "plan.options: nm: unknown option (options of 'measure': num)"),
        ({"options": {"num": 0}}, "plan.options: num: Input should be greater than or equal to 1"),
        ({"name": "scan", "options": {"width": 0.4}}, "plan.options: variable: Field required"),
        ({"name": "scan"}, "plan.options: variable: Field required"),
        ({"name": "scan", "options": {"variable": "pitch1", "width": -1}}, "plan.options: width: Input should be"),
        (
            {"name": "scan", "options": {"variable": "pitch9", "width": 0.4}},
            "plan: options.variable: 'pitch9' is not a variable (pitch1, pitch2)",
        ),
        ({"count_time": 0}, "plan.count_time: Input should be greater than 0"),
        ({"factory": "no_such_pkg.plans:align"}, "plan.factory: 'no_such_pkg.plans:align' does not import"),
        (
            {"factory": f"{HERE}:my_plan", "count_time": 1.0},
            "plan: count_time applies to the bundled plans; give your factory its own option",
        ),
        ({"factory": f"{HERE}:my_plan", "options": {"md": {}}}, "plan.options: 'md' is given by closedloop"),
        (
            {"factory": f"{HERE}:my_plan", "options": {"gain": 2}},
            f"plan: factory '{HERE}:my_plan' cannot be called with setpoints, movers, detectors, md and its options",
        ),
    ],
)
def test_bad_plan_input_is_one_line_naming_the_field(plan: dict, message: str) -> None:
    with pytest.raises(SpecError) as info:
        resolve(spec_from_dict(beamline_session(plan=plan)))  # validation, then what the agent resolves
    text = str(info.value)
    assert "\n" not in text
    assert f"session: {message}" in text


def test_a_scan_needs_a_continuous_variable_and_a_width_the_step_limit_allows() -> None:
    variables = {
        "pitch1": {"bounds": [-1.5, 1.5], "device": "m1", "max_step": 0.1},
        "crystal": {"values": ["Si111", "Si311"]},
    }
    with pytest.raises(SpecError, match=r"plan: options\.variable: 'crystal' has listed values"):
        spec_from_dict(
            beamline_session(variables=variables, plan={"name": "scan", "options": {"variable": "crystal", "width": 1}})
        )
    with pytest.raises(SpecError, match=r"plan: options\.width: half the width \(0\.2\) exceeds variables\.pitch1"):
        spec_from_dict(
            beamline_session(
                variables=variables, plan={"name": "scan", "options": {"variable": "pitch1", "width": 0.4}}
            )
        )
    spec = spec_from_dict(
        beamline_session(variables=variables, plan={"name": "scan", "options": {"variable": "pitch1", "width": 0.2}})
    )
    assert spec.plan.scan_options().num == 11


def test_the_default_plan_is_measure_and_the_plan_round_trips() -> None:
    spec = spec_from_dict(beamline_session())
    assert (spec.plan.label, spec.plan.bundled, spec.plan.expected_events) == ("measure", "measure", 1)
    with_plan = spec_from_dict(beamline_session(plan={"factory": f"{HERE}:my_plan", "options": {"exposure": 2.0}}))
    assert (with_plan.plan.label, with_plan.plan.bundled, with_plan.plan.expected_events) == (
        f"{HERE}:my_plan",
        None,
        None,
    )
    assert SessionSpec.model_validate_json(with_plan.model_dump_json()) == with_plan


def messages_of(run_engine: Any, plan: Any) -> list[Msg]:
    seen: list[Msg] = []
    run_engine.msg_hook = seen.append
    run_engine(plan)
    return seen


def classic_spec(**plan: Any) -> SessionSpec:
    variables = {
        "pitch1": {"bounds": [-1, 1], "hard_limits": [-1, 1], "device": "m1", "max_step": 0.5},
        "pitch2": {"bounds": [-1, 1], "device": "m2"},
    }
    return spec_from_dict(beamline_session(variables=variables, objectives={"flux": {"field": "det"}}, plan=plan))


@pytest.fixture
def classic() -> dict[str, Any]:
    m1, m2 = SynAxis(name="m1"), SynAxis(name="m2")
    return {"m1": m1, "m2": m2, "det": SynGauss("det", m1, "m1", center=0.0, Imax=1.0, sigma=1.0)}


def test_measure_stages_moves_together_reads_and_unstages(run_engine: Any, classic: dict) -> None:
    spec = classic_spec(options={"num": 2})
    movers = {"pitch1": classic["m1"], "pitch2": classic["m2"]}
    plan = plan_for(spec, {"pitch1": 0.2, "pitch2": 0.4}, movers, [classic["det"]], {"proposal_id": "p-1"})
    seen = messages_of(run_engine, plan)
    commands = [(m.command, getattr(m.obj, "name", None)) for m in seen]
    opened, closed = commands.index(("open_run", None)), commands.index(("close_run", None))
    staged = {name for command, name in commands[:opened] if command == "stage"}
    unstaged = {name for command, name in commands[closed:] if command == "unstage"}
    assert staged == unstaged == {"m1", "m2", "det"}
    # both moves are issued before the first wait: they move together
    sets = [i for i, (command, _) in enumerate(commands) if command == "set"]
    first_wait = commands.index(("wait", None), opened)
    assert [commands[i][1] for i in sets] == ["m1", "m2"] and max(sets) < first_wait
    assert [name for command, name in commands if command == "trigger"] == ["det", "m1", "m2"] * 2
    assert sum(command == "save" for command, _ in commands) == 2
    start = seen[opened].kwargs
    assert start["proposal_id"] == "p-1" and start["plan_name"] == "measure" and start["num_points"] == 2
    assert start["closedloop"]["movers"] == {"pitch1": "m1", "pitch2": "m2"}


def test_the_scan_moves_within_max_step_from_the_setpoint(run_engine: Any, classic: dict) -> None:
    spec = classic_spec(name="scan", options={"variable": "pitch1", "width": 1.0, "num": 5})
    movers = {"pitch1": classic["m1"], "pitch2": classic["m2"]}
    plan = plan_for(spec, {"pitch1": 0.1, "pitch2": -0.3}, movers, [classic["det"]], {"proposal_id": "p-1"})
    seen = messages_of(run_engine, plan)
    moves = [m.args[0] for m in seen if m.command == "set" and m.obj is classic["m1"]]
    assert moves == pytest.approx([0.1, -0.4, -0.15, 0.1, 0.35, 0.6])  # the setpoint first, then the scan
    assert all(abs(b - a) <= 0.5 for a, b in zip(moves, moves[1:], strict=False))
    start = next(m for m in seen if m.command == "open_run").kwargs
    assert start["closedloop"]["scan"] == {"variable": "pitch1", "motor": "m1", "start": -0.4, "stop": 0.6}
    assert start["hints"]["dimensions"] == [(["m1"], "primary")]


def test_a_count_time_no_detector_takes_fails_before_anything_moves(run_engine: Any, classic: dict) -> None:
    spec = classic_spec(count_time=0.5)
    movers = {"pitch1": classic["m1"], "pitch2": classic["m2"]}
    plan = plan_for(spec, {"pitch1": 0.5, "pitch2": 0.5}, movers, [classic["det"]], {"proposal_id": "p-1"})
    with pytest.raises(InstrumentError, match=r"plan\.count_time: no detector takes it \(det: none is a Standard"):
        run_engine(plan)
    assert classic["m1"].position == 0.0


def test_a_standard_detector_is_prepared_with_the_count_time(run_engine: Any, tmp_path: Path) -> None:
    with init_devices():
        motor = SimMotor()
        blob = SimBlobDetector(StaticPathProvider(UUIDFilenameProvider(), tmp_path))
    spec = spec_from_dict(
        beamline_session(
            variables={"x": {"bounds": [-1, 1], "device": "motor"}},
            objectives={"total": {"field": "blob-sum", "reducer": "instruments.reducers:mean"}},
            plan={"count_time": 0.02},
        )
    )
    seen = messages_of(run_engine, plan_for(spec, {"x": 0.5}, {"x": motor}, [blob], {"proposal_id": "p-1"}))
    commands = [m.command for m in seen]
    prepares = [m for m in seen if m.command == "prepare"]
    assert [m.obj for m in prepares] == [blob]
    assert prepares[0].args[0] == TriggerInfo(number_of_events=1, livetime=0.02)
    assert commands.index("stage") < commands.index("prepare") < commands.index("open_run")
