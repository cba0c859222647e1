"""The in-process executor: a real RunEngine drives the simulated beamline's ophyd-async devices."""

from __future__ import annotations

import asyncio
import operator
import threading
import time
from typing import Any

import pytest
from bluesky.run_engine import call_in_bluesky_event_loop
from ophyd.status import Status

from closedloop import InstrumentError, ObservationStatus, Proposal, SafetyError, SpecError, spec_from_dict
from instruments import InProcessExecutor, build_run_engine, gate, observation_from_documents
from simulators import BEAMLINE_OPTIMUM
from tests.conftest import args_for, beamline_session

QUIET = spec_from_dict(beamline_session(instrument={"simulator": "beamline", "options": {"noise": 0.0}}))
"""The beamline session without noise: its variables, objectives and plan are those of every executor here."""


@pytest.fixture
def executor(run_engine: Any) -> InProcessExecutor:
    return InProcessExecutor(args_for(QUIET, "s-test"), run_engine=run_engine)


def test_one_proposal_is_one_run_with_ids_in_the_start_document(executor: InProcessExecutor) -> None:
    proposal = Proposal(iteration=7, setpoints=dict(BEAMLINE_OPTIMUM.point))
    record = executor.run(proposal)
    names = [name for name, _ in record.documents]
    assert names == ["start", "descriptor", "event", "stop"]
    start = record.documents[0][1]
    assert (start["proposal_id"], start["session_id"], start["iteration"]) == (proposal.id, "s-test", 7)
    observation = observation_from_documents(QUIET, proposal, record.documents, record.error)
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
    observation = observation_from_documents(QUIET, proposal, record.documents, record.error)
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
        gate(QUIET, {"pitch1": 2.5, "pitch2": 0.0}, executor)
    assert call_in_bluesky_event_loop(position()) == before
    assert executor.detectors[0].triggers == 0


def test_a_variable_without_a_device_is_refused(run_engine: Any) -> None:
    data = beamline_session()
    data["variables"]["pitch1"]["device"] = "m9"
    with pytest.raises(SpecError, match="variables.pitch1.device: no device 'm9'"):
        InProcessExecutor(args_for(spec_from_dict(data), "s-test"), run_engine=run_engine)


def test_a_move_longer_than_max_step_is_walked_in_steps_from_the_read_back(run_engine: Any) -> None:
    data = beamline_session(instrument={"simulator": "beamline", "options": {"noise": 0.0}})
    data["variables"]["pitch1"]["max_step"] = 0.5
    spec = spec_from_dict(data)
    executor = InProcessExecutor(args_for(spec, "s-test"), run_engine=run_engine)
    assert executor.positions() == {"pitch1": 0.0, "pitch2": 0.0}
    first = {"pitch1": 0.5, "pitch2": 0.0}
    assert executor.run(Proposal(iteration=0, setpoints=gate(spec, first, executor))).error is None
    assert executor.positions()["pitch1"] == 0.5
    # a move of 1.7 from the read-back 0.5: the gate lets it through, the executor makes it in 4 steps of <= 0.5
    moves: list[float] = []
    mover = executor.movers["pitch1"]
    run_engine.msg_hook = lambda msg: moves.append(msg.args[0]) if msg.command == "set" and msg.obj is mover else None
    record = executor.run(Proposal(iteration=1, setpoints=gate(spec, {"pitch1": -1.2, "pitch2": 0.0}, executor)))
    assert record.error is None
    assert moves[-1] == -1.2 and len(moves) == 4
    legs = [b - a for a, b in zip([0.5, *moves], moves, strict=False)]
    assert all(abs(leg) <= 0.5 * (1 + 1e-9) for leg in legs), legs
    start = next(doc for name, doc in record.documents if name == "start")
    assert len(start["closedloop"]["route"]) == 3
    assert executor.positions()["pitch1"] == pytest.approx(-1.2)


def beamline_executor(run_engine: Any, options: dict[str, Any] | None = None, **top: Any) -> InProcessExecutor:
    instrument = top.pop("instrument", {})
    options = {"noise": 0.0, "width_noise": 0.0, "heat_noise": 0.0, **(options or {})}
    data = beamline_session(instrument={"simulator": "beamline", "options": options, **instrument}, **top)
    return InProcessExecutor(args_for(spec_from_dict(data), "s-test"), run_engine=run_engine)


def stop_of(record: Any) -> dict[str, Any]:
    return next(doc for name, doc in record.documents if name == "stop")


OPTIMUM = Proposal(iteration=0, setpoints=dict(BEAMLINE_OPTIMUM.point))


def test_a_hanging_trigger_is_aborted_at_the_run_timeout_and_the_engine_runs_on(run_engine: Any) -> None:
    executor = beamline_executor(run_engine, {"faults": {"hang_trigger": 1}}, instrument={"run_timeout": 0.4})
    started = time.monotonic()
    record = executor.run(OPTIMUM)
    assert record.error == "timed out after 0.4 s"
    assert 0.4 <= time.monotonic() - started < 3.0
    assert stop_of(record)["exit_status"] == "abort" and not record.aborted_by_operator
    assert run_engine.state == "idle"
    # the engine is not panicked: the next run measures the physics
    again = executor.run(OPTIMUM)
    observation = observation_from_documents(QUIET, OPTIMUM, again.documents, again.error)
    assert observation.values["flux"] == pytest.approx(BEAMLINE_OPTIMUM.value)


def test_abort_from_another_thread_during_an_exposure(run_engine: Any) -> None:
    executor = beamline_executor(run_engine, {"exposure": 3.0})
    threading.Timer(0.3, executor.abort, args=("operator pressed abort",)).start()
    started = time.monotonic()
    record = executor.run(OPTIMUM)
    assert time.monotonic() - started < 2.0  # the RunEngine stayed responsive during the exposure
    assert record.aborted_by_operator and record.error == "aborted by operator: operator pressed abort"
    assert stop_of(record)["exit_status"] == "abort"
    assert [name for name, _ in record.documents] == ["start", "stop"]
    executor.abort("nothing runs: a no-op")
    assert (
        executor.run(Proposal(iteration=1, setpoints={"pitch1": 0.0, "pitch2": 0.0})).documents[-1][1]["exit_status"]
        == "success"
    )


def test_transient_faults_are_retried_with_backoff_and_others_are_not(run_engine: Any) -> None:
    events: list[tuple[str, dict[str, Any]]] = []
    data = beamline_session(
        instrument={
            "simulator": "beamline",
            "options": {"noise": 0.0, "faults": {"transient": 2}},
            "retries": {"attempts": 3, "backoff": 0.05},
        }
    )
    spec = spec_from_dict(data)
    executor = InProcessExecutor(
        args_for(spec, "s-test"), run_engine=run_engine, on_event=lambda k, d: events.append((k, d))
    )
    documents: list[tuple[str, dict[str, Any]]] = []
    record = executor.run(OPTIMUM, on_document=lambda name, doc: documents.append((name, doc)))
    assert record.error is None and record.attempts == 3
    assert [k for k, _ in events] == ["retry", "retry"]
    assert "detector busy" in events[0][1]["error"]
    # every attempt is its own run in the stream; the record holds the last one
    starts = [doc for name, doc in documents if name == "start"]
    assert [s["attempt"] for s in starts] == [1, 2, 3]
    assert [name for name, _ in record.documents] == ["start", "descriptor", "event", "stop"]
    # a fault not marked transient is never retried
    executor.devices["det"]._faults._left["transient"] = 0
    detector = executor.devices["det"]

    async def inject() -> None:
        await detector.fail_next.set(1)

    call_in_bluesky_event_loop(inject())
    record = executor.run(OPTIMUM)
    assert record.attempts == 1 and "injected detector fault" in (record.error or "")


def test_retries_give_up_after_the_last_attempt(run_engine: Any) -> None:
    executor = beamline_executor(
        run_engine, {"faults": {"transient": 5}}, instrument={"retries": {"attempts": 2, "backoff": 0.0}}
    )
    record = executor.run(OPTIMUM)
    assert record.attempts == 2 and "SimTransientError" in (record.error or "")


def test_faulty_motors_and_readings_are_what_the_documents_say(run_engine: Any) -> None:
    executor = beamline_executor(run_engine, {"faults": {"stall": 1, "nan_reading": 1}})
    target = Proposal(iteration=0, setpoints={"pitch1": 0.8, "pitch2": 0.0})
    record = executor.run(target)
    observation = observation_from_documents(QUIET, target, record.documents, record.error)
    # m1 stalled half-way (m2 did not need to move); the reading was NaN: a failed observation, read-backs true
    assert observation.readbacks == pytest.approx({"pitch1": 0.4, "pitch2": 0.0})
    assert observation.status == ObservationStatus.FAILED and "det-flux" in (observation.error or "")
    limit = beamline_executor(run_engine, {"faults": {"limit_switch": 1}})
    record = limit.run(target)
    assert "limit switch hit at 0.4" in (record.error or "")
    assert limit.positions() == {"pitch1": 0.4, "pitch2": 0.0}


def test_metadata_and_scan_id_go_into_every_start_document(run_engine: Any) -> None:
    data = beamline_session(metadata={"beamline": "BL-7", "proposal": {"pi": "Ada"}})
    executor = InProcessExecutor(args_for(spec_from_dict(data), "s-test"), run_engine=run_engine, scan_id=41)
    record = executor.run(OPTIMUM, md={"proposal_id": "forged", "operator": "Bo"})
    start = record.documents[0][1]
    assert (start["beamline"], start["proposal"], start["operator"]) == ("BL-7", {"pi": "Ada"}, "Bo")
    assert start["proposal_id"] == OPTIMUM.id and start["session_id"] == "s-test"
    assert start["scan_id"] == 42 and executor.scan_id == 42
    assert executor.run(OPTIMUM).documents[0][1]["scan_id"] == 43
    with pytest.raises(SpecError, match=r"metadata: key 'iteration' is reserved"):
        spec_from_dict(beamline_session(metadata={"iteration": 3}))


def test_the_run_engine_never_gets_a_ctrl_c_handler() -> None:
    assert build_run_engine().context_managers == []


def test_a_status_completing_after_an_abort_prints_nothing_and_other_loop_errors_still_show(
    run_engine: Any, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    # bluesky's own race, driven through its own callback: the future a run waited on was cancelled by an abort,
    # then the device's status completes and bluesky sets a result on that cancelled future
    loop = run_engine.loop
    status = Status()
    status.set_finished()
    status.wait(5)

    def completes_late() -> None:
        waited = loop.create_future()
        waited.cancel()
        loop.call_soon(run_engine._status_object_completed, status, waited, asyncio.Event())

    def fails() -> None:
        loop.call_soon(operator.truediv, 1, 0)

    for schedule in (completes_late, fails):
        loop.call_soon_threadsafe(schedule)
        time.sleep(0.2)
    shown = capsys.readouterr().err + caplog.text
    assert "InvalidStateError" not in shown and "_status_object_completed" not in shown
    assert "ZeroDivisionError" in shown  # anything else the loop meets is still printed


@pytest.mark.parametrize("suspend", [True, False])
def test_no_observation_is_taken_without_beam(run_engine: Any, suspend: bool) -> None:
    events: list[tuple[float, str]] = []
    suspenders = [{"signal": "ring.current", "below": 100.0, "resume_above": 350.0}] if suspend else []
    data = beamline_session(
        instrument={"simulator": "beamline", "options": {"noise": 0.0, "exposure": 0.6}}, suspenders=suspenders
    )
    executor = InProcessExecutor(
        args_for(spec_from_dict(data), "s-test"),
        run_engine=run_engine,
        on_event=lambda k, d: events.append((time.monotonic(), k)),
    )
    ring = executor.devices["ring"]
    started = time.monotonic()
    threading.Timer(0.2, ring.dump, args=(0.8,)).start()
    record = executor.run(OPTIMUM)
    observation = observation_from_documents(QUIET, OPTIMUM, record.documents, record.error)
    event = next(doc for name, doc in record.documents if name == "event")
    if suspend:
        # held while the beam was down, measured again once it was back: the physics at full beam
        assert [k for _, k in events] == ["suspended", "resumed"]
        assert events[1][0] - events[0][0] == pytest.approx(0.8, abs=0.15)
        assert observation.values["flux"] == pytest.approx(BEAMLINE_OPTIMUM.value)
        assert event["data"]["ring-current"] == 400.0 and not executor.suspended
        assert time.monotonic() - started > 0.2 + 0.8 + 0.6
    else:
        # without a suspender the exposure integrates the dump: the flux falls with the beam
        assert observation.values["flux"] < 0.8 * BEAMLINE_OPTIMUM.value
        assert events == []


def test_a_run_asked_for_while_the_beam_is_down_waits_for_it(run_engine: Any) -> None:
    data = beamline_session(suspenders=[{"signal": "ring.current", "below": 100.0}])
    executor = InProcessExecutor(args_for(spec_from_dict(data), "s-test"), run_engine=run_engine)
    executor.devices["ring"].dump(0.5)
    time.sleep(0.05)
    assert executor.suspended
    started = time.monotonic()
    record = executor.run(OPTIMUM)
    assert time.monotonic() - started >= 0.4
    assert next(doc for name, doc in record.documents if name == "event")["data"]["ring-current"] == 400.0


def test_a_suspension_does_not_count_against_the_run_timeout(run_engine: Any) -> None:
    data = beamline_session(
        instrument={"simulator": "beamline", "options": {"noise": 0.0, "exposure": 0.3}, "run_timeout": 0.8},
        suspenders=[{"signal": "ring.current", "below": 100.0}],
    )
    executor = InProcessExecutor(args_for(spec_from_dict(data), "s-test"), run_engine=run_engine)
    threading.Timer(0.1, executor.devices["ring"].dump, args=(1.0,)).start()
    record = executor.run(OPTIMUM)
    assert record.error is None and record.seconds > 1.0


def test_a_suspender_on_a_missing_signal_is_named(run_engine: Any) -> None:
    data = beamline_session(suspenders=[{"signal": "ring.voltage", "below": 1.0}])
    with pytest.raises(InstrumentError, match=r"suspenders.0.signal: device 'ring' has no 'voltage'"):
        InProcessExecutor(args_for(spec_from_dict(data), "s-test"), run_engine=run_engine)


PITCHES = (("pitch1", "m1"), ("pitch2", "m2"))


@pytest.mark.parametrize(
    ("options", "changes", "seconds"),
    [
        ({}, {}, 60.0),  # instant motors, no exposure: the floor
        ({"exposure": 20.0}, {"plan": {"options": {"num": 2}}}, 4 * 2 * 20.0),  # readings at the detector's exposure
        (  # motors at 1 unit/s over a 40-unit hard-limit span, plus SimMotor's acceleration time (0.5 s)
            {"instant": False},
            {"variables": {v: {"bounds": [-1, 1], "hard_limits": [-20, 20], "device": d} for v, d in PITCHES}},
            4 * (40.0 + 0.5),
        ),
        ({"exposure": 20.0}, {"instrument_run_timeout": 5.0}, 5.0),  # a run_timeout given is kept
    ],
)
def test_without_a_run_timeout_one_is_derived_from_the_plan_and_the_devices(
    run_engine: Any, options: dict[str, Any], changes: dict[str, Any], seconds: float
) -> None:
    timeout = changes.pop("instrument_run_timeout", None)
    instrument = {"run_timeout": timeout} if timeout else {}
    executor = beamline_executor(run_engine, options, instrument=instrument, **changes)
    assert executor.run_timeout == pytest.approx(seconds)
    executor.close()
