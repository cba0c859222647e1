"""The reach of the hardware through the real loop: a device's own limits cut the gate's limits and the planner's
search space, and a move longer than ``max_step`` is walked in steps instead of refused, whatever the planner.

The factories below are the session files' ``instrument.factory`` (``tests.integration.test_reach:...``).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from ophyd.sim import SynAxis, SynGauss
from ophyd.utils import LimitError
from ophyd_async.core import set_mock_value
from ophyd_async.epics.motor import Motor
from rich.console import Console

from agent.operator.operations import Operations
from agent.session import Session
from agent.store.documents import RunFile, read_run_file
from agent.views.display import checkpoint_table
from agent.views.status import summarize
from closedloop import Decision, Proposal, SafetyError, Verdict, spec_from_dict
from closedloop.control import CheckpointInfo
from instruments import gate
from instruments.devices import read_limits
from instruments.plans import end_positions
from tests.conftest import beamline_session

HERE = "tests.integration.test_reach"


class LimitedAxis(SynAxis):
    """ophyd.sim's SynAxis with controller limits, as an EpicsMotor has soft limits: ``limits`` says them (the
    ophyd classic positioner's attribute) and a move outside raises ophyd's ``LimitError`` (SynAxis has neither:
    the one addition to a real ophyd device, in place of an IOC)."""

    def __init__(self, *, limits: tuple[float, float], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._limits = limits

    @property
    def limits(self) -> tuple[float, float]:
        return self._limits

    def set(self, value: float, **kwargs: Any) -> Any:
        low, high = self._limits
        if not low <= value <= high:
            raise LimitError(f"{self.name}: {value} is outside the limits {self._limits}")
        return super().set(value, **kwargs)


def limited_classic(low: float = -1.0, high: float = 1.0) -> dict[str, Any]:
    """A classic motor with controller limits and a Gaussian peaked at 1.5, past its high limit."""
    mx = LimitedAxis(name="mx", limits=(low, high))
    return {"mx": mx, "gauss": SynGauss("gauss", mx, "mx", center=1.5, Imax=100.0, sigma=0.8)}


def limited_session(planner: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": "limited",
        "seed": 5,
        "variables": {"x": {"bounds": [-2.0, 2.0], "hard_limits": [-2.0, 2.0], "device": "mx"}},
        "objectives": {"peak": {"direction": "maximize", "field": "gauss"}},
        "budget": {"experiments": 10},
        "planner": planner,
        "instrument": {"factory": f"{HERE}:limited_classic"},
        "review": {"policy": "never"},
        "pipeline": False,
    }
    data.update(overrides)
    return data


def run_session(tmp_path: Path, write_session: Any, data: dict[str, Any]) -> tuple[dict[str, Any], list[Any], Any]:
    """Run a session to its end: its status, observations and audit events."""
    session = Session.create(write_session(data), tmp_path / "run")
    try:
        assert session.advance() is None
        observations, events = session.store.observations(), session.store.events()
    finally:
        session.close()
    return summarize(tmp_path / "run"), observations, events


@pytest.mark.parametrize("planner", [{"name": "sobol"}, {"name": "random"}])
def test_a_classic_motor_s_limits_bound_the_proposals_and_no_run_fails(
    tmp_path: Path, write_session: Any, planner: dict[str, Any]
) -> None:
    status, observations, _ = run_session(tmp_path, write_session, limited_session(planner))
    assert len(observations) == 10
    assert [o.error for o in observations if o.status != "ok"] == []
    assert all(-1.0 <= o.setpoints["x"] <= 1.0 for o in observations)
    # space-filling over the reachable range, not piled on its edge
    assert len({round(o.setpoints["x"], 6) for o in observations}) == 10
    assert status["reach"]["x"] == {"hard_limits": [-2.0, 2.0], "device_limits": [-1.0, 1.0], "limits": [-1.0, 1.0]}


def test_the_gate_refuses_a_point_past_the_device_s_limits(tmp_path: Path, write_session: Any) -> None:
    session = Session.create(write_session(limited_session({"name": "sobol"})), tmp_path / "run")
    try:
        with pytest.raises(SafetyError, match=r"setpoints.x: 1.5 is outside the limits in force \[-1.0, 1.0\]"):
            gate(session.spec, {"x": 1.5}, session.executor)
        assert session.executor.devices["mx"].position == 0.0
    finally:
        session.close()


def test_a_search_range_outside_the_device_s_limits_is_refused_at_connect(tmp_path: Path, write_session: Any) -> None:
    data = limited_session({"name": "sobol"})
    data["instrument"]["options"] = {"low": 2.5, "high": 3.0}
    with pytest.raises(Exception, match=r"variables.x.hard_limits: \[-2.0, 2.0\] and the limits of device 'mx'"):
        Session.create(write_session(data), tmp_path / "run")


def test_an_ophyd_async_motor_s_limit_signals_are_read() -> None:
    """ophyd-async's EPICS motor, connected to its mock backend (no IOC here): the travel limits are the LLM and
    HLM signals, none when the dial limits are both 0 (the motor record's "no limits")."""

    async def limits(dial: tuple[float, float]) -> Any:
        motor = Motor("CLTEST:M1", name="am")
        await motor.connect(mock=True)
        set_mock_value(motor.low_limit_travel, -1.0)
        set_mock_value(motor.high_limit_travel, 1.0)
        set_mock_value(motor.dial_low_limit_travel, dial[0])
        set_mock_value(motor.dial_high_limit_travel, dial[1])
        return await read_limits(motor)

    assert asyncio.run(limits((-1.0, 1.0))) == (-1.0, 1.0)
    assert asyncio.run(limits((0.0, 0.0))) is None


def test_a_classic_positioner_s_zero_limits_mean_none() -> None:
    assert asyncio.run(read_limits(limited_classic(0.0, 0.0)["mx"])) is None
    assert asyncio.run(read_limits(SynAxis(name="free"))) is None


FOREIGN = {"name": "tests.integration.planners_for_tests:BadOnce", "options": {"bad": 0}}


@pytest.mark.parametrize(
    "planner", [{"name": "sobol"}, {"name": "random"}, {"name": "grid", "options": {"points_per_dim": 3}}, FOREIGN]
)
def test_every_planner_runs_a_max_step_session_without_a_refusal(
    tmp_path: Path, write_session: Any, planner: dict[str, Any]
) -> None:
    data = beamline_session(planner=planner, budget={"experiments": 6}, seed=4)
    for variable in data["variables"].values():
        variable["max_step"] = 0.3
    _, observations, events = run_session(tmp_path, write_session, data)
    assert [message for _, kind, message in events if kind == "safety"] == []
    assert len(observations) == 6 and all(o.status == "ok" for o in observations)
    # every point was measured where the planner asked, however far it was
    assert all(o.readbacks == pytest.approx(o.setpoints) for o in observations)


def test_the_next_move_is_planned_from_the_end_of_a_scan() -> None:
    spec = spec_from_dict(
        beamline_session(plan={"name": "scan", "options": {"variable": "pitch1", "width": 0.4, "num": 5}})
    )
    assert end_positions(spec.problem(), spec.plan, {"pitch1": 0.1, "pitch2": -0.3}) == pytest.approx(
        {"pitch1": 0.3, "pitch2": -0.3}
    )
    # cut to the device's limits as the scan is
    assert (
        end_positions(spec.problem(), spec.plan, {"pitch1": 0.1, "pitch2": 0.0}, {"pitch1": (-1.0, 0.2)})["pitch1"]
        == 0.2
    )


def test_a_review_shows_the_device_s_limits_beside_the_hard_limits(tmp_path: Path, write_session: Any) -> None:
    data = limited_session({"name": "sobol"}, review={"policy": "always"})
    session = Session.create(write_session(data), tmp_path / "run")
    try:
        checkpoint = session.advance()
        assert checkpoint is not None and checkpoint.kind == "review"
        info = CheckpointInfo.model_validate(checkpoint.info)
        shown = info.variables["x"]
        assert shown.hard_limits == (-2.0, 2.0) and shown.device_limits == (-1.0, 1.0)
        console = Console(record=True, width=200)
        console.print(checkpoint_table(info))
        assert "-2 to 2, device -1 to 1" in console.export_text()
    finally:
        session.close()


def test_while_a_scan_runs_the_next_move_is_planned_from_its_end(tmp_path: Path, write_session: Any) -> None:
    data = beamline_session(
        plan={"name": "scan", "options": {"variable": "pitch1", "width": 0.4, "num": 5}},
        instrument={"simulator": "beamline", "options": {"noise": 0.0, "exposure": 0.1}},
    )
    data["variables"]["pitch1"]["max_step"] = 0.3
    session = Session.create(write_session(data), tmp_path / "run")
    try:
        lane = session.lanes.lanes[0]
        proposal = Proposal(iteration=0, setpoints={"pitch1": 0.1, "pitch2": -0.3})
        session.lanes.start(lane, proposal, {}, RunFile(tmp_path / "run.jsonl").open())
        # the scan runs (five readings of 0.1 s): the next proposal starts where it ends, not at its centre
        assert session.context.positions()["pitch1"] == pytest.approx(0.3)
        session.lanes.wait_idle()
        assert session.executor.positions()["pitch1"] == pytest.approx(0.3)
    finally:
        session.close()


def test_two_instruments_search_what_both_reach_and_each_gate_holds_its_own(tmp_path: Path, write_session: Any) -> None:
    data = limited_session({"name": "sobol"}, pipeline=True, budget={"experiments": 8})
    hutch = data.pop("instrument")
    data["instruments"] = [
        dict(hutch, name="left", options={"low": -1.0, "high": 1.0}),
        dict(hutch, name="right", options={"low": -0.5, "high": 1.5}),
    ]
    status, observations, _ = run_session(tmp_path, write_session, data)
    assert len(observations) == 8 and all(o.status == "ok" for o in observations)
    assert all(-0.5 <= o.setpoints["x"] <= 1.0 for o in observations)
    assert status["reach"]["x"]["limits"] == [-0.5, 1.0]
    session = Session.open(tmp_path / "run")
    try:
        left, right = (lane.executor for lane in session.lanes.lanes)
        assert gate(session.spec, {"x": 1.2}, right) == {"x": 1.2}
        with pytest.raises(SafetyError, match=r"outside the limits in force \[-1.0, 1.0\]"):
            gate(session.spec, {"x": 1.2}, left)
    finally:
        session.close()


def test_an_operator_s_edit_is_held_to_the_device_s_limits_and_a_far_one_is_walked(
    tmp_path: Path, write_session: Any
) -> None:
    data = limited_session({"name": "sobol"}, review={"policy": "always"}, budget={"experiments": 1})
    data["variables"]["x"]["max_step"] = 0.25
    session = Session.create(write_session(data), tmp_path / "run")
    try:
        checkpoint = session.advance()
        assert checkpoint is not None
        ops = Operations(session)
        ops.holding(checkpoint)
        pid = checkpoint.proposals[0]["id"]
        past = Decision(verdict=Verdict.EDIT, proposal_ids=[pid], setpoints={"x": 1.5})
        with pytest.raises(SafetyError, match=r"edit refused: setpoints.x: 1.5 is outside the limits in force"):
            ops.answer(checkpoint.id, [past])
        far = Decision(verdict=Verdict.EDIT, proposal_ids=[pid], setpoints={"x": -0.9})
        ops.answer(checkpoint.id, [far])
        assert session.answer(far) is None
        (observation,) = session.store.observations()
        assert observation.status == "ok" and observation.readbacks["x"] == pytest.approx(-0.9)
        start = dict(read_run_file(tmp_path / "run" / "runs" / f"{observation.proposal_id}.jsonl"))["start"]
        assert len(start["closedloop"]["route"]) == 3  # 0.9 in steps of at most 0.25
    finally:
        session.close()


def test_a_point_queued_past_the_device_s_limits_is_refused_before_it_is_queued(
    tmp_path: Path, write_session: Any
) -> None:
    session = Session.create(write_session(limited_session({"name": "sobol"})), tmp_path / "run")
    try:
        ops = Operations(session)
        with pytest.raises(SafetyError, match=r"point 2: setpoints.x: 1.5 is outside the limits in force"):
            ops.add([{"x": 0.5}, {"x": 1.5}], by="ann", via="test")
        assert session.store.count_queued() == 0
        ops.add([{"x": 0.5}], by="ann", via="test")
        assert session.store.count_queued() == 1
    finally:
        session.close()
