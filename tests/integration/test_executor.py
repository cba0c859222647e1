"""The in-process executor: a real RunEngine drives the simulated beamline's ophyd-async devices."""

from __future__ import annotations

from typing import Any

import pytest
from bluesky.run_engine import call_in_bluesky_event_loop

from closedloop import InstrumentError, ObservationStatus, Proposal, SafetyError, spec_from_dict
from instruments import InProcessExecutor, gate, observation_from_documents
from simulators import BEAMLINE_OPTIMUM
from tests.conftest import beamline_session


@pytest.fixture
def executor(run_engine: Any) -> InProcessExecutor:
    spec = spec_from_dict(beamline_session(instrument={"simulator": "beamline", "options": {"noise": 0.0}}))
    return InProcessExecutor(spec, "s-test", run_engine=run_engine)


def test_one_proposal_is_one_run_with_ids_in_the_start_document(executor: InProcessExecutor) -> None:
    proposal = Proposal(iteration=7, setpoints=dict(BEAMLINE_OPTIMUM.point))
    record = executor.run(proposal)
    names = [name for name, _ in record.documents]
    assert names == ["start", "descriptor", "event", "stop"]
    start = record.documents[0][1]
    assert (start["proposal_id"], start["session_id"], start["iteration"]) == (proposal.id, "s-test", 7)
    observation = observation_from_documents(executor.spec, proposal, record.documents, record.error)
    assert observation.status == ObservationStatus.OK
    assert observation.values["flux"] == pytest.approx(BEAMLINE_OPTIMUM.value)
    assert observation.readbacks == pytest.approx(BEAMLINE_OPTIMUM.point)


def test_a_device_fault_becomes_a_failed_observation(executor: InProcessExecutor) -> None:
    detector = executor.devices["det"]

    async def inject() -> None:
        await detector.fail_next.set(1)

    call_in_bluesky_event_loop(inject())
    proposal = Proposal(iteration=0, setpoints={"pitch1": 0.0, "pitch2": 0.0})
    record = executor.run(proposal)
    assert record.error is not None and "injected detector fault" in record.error
    observation = observation_from_documents(executor.spec, proposal, record.documents, record.error)
    assert observation.status == ObservationStatus.FAILED
    assert observation.run_uid is not None
    # the next run works again
    assert executor.run(proposal).error is None


def test_the_safety_gate_refuses_before_anything_moves(executor: InProcessExecutor) -> None:
    motor = executor.devices["m1"]

    async def position() -> float:
        return await motor.user_readback.get_value()

    before = call_in_bluesky_event_loop(position())
    with pytest.raises(SafetyError, match="setpoints.pitch1"):
        gate(executor.spec, {"pitch1": 2.5, "pitch2": 0.0}, executor)
    assert call_in_bluesky_event_loop(position()) == before
    assert executor.detectors[0].triggers == 0


def test_a_variable_without_a_device_is_refused(run_engine: Any) -> None:
    data = beamline_session()
    data["variables"]["pitch1"]["device"] = "m9"
    with pytest.raises(InstrumentError, match="variables.pitch1.device: no device 'm9'"):
        InProcessExecutor(spec_from_dict(data), "s-test", run_engine=run_engine)


def test_max_step_is_enforced_against_the_motor_read_back(run_engine: Any) -> None:
    data = beamline_session(instrument={"simulator": "beamline", "options": {"noise": 0.0}})
    data["variables"]["pitch1"]["max_step"] = 0.5
    executor = InProcessExecutor(spec_from_dict(data), "s-test", run_engine=run_engine)
    spec = executor.spec
    assert executor.positions() == {"pitch1": 0.0, "pitch2": 0.0}
    first = {"pitch1": 0.5, "pitch2": 0.0}
    assert executor.run(Proposal(iteration=0, setpoints=gate(spec, first, executor))).error is None
    assert executor.positions()["pitch1"] == 0.5
    with pytest.raises(SafetyError, match="a move of 1 from 0.5 exceeds max_step 0.5"):
        gate(spec, {"pitch1": -0.5, "pitch2": 0.0}, executor)
    assert executor.positions()["pitch1"] == 0.5
