"""Whole sessions through the real graph, RunEngine, devices and SQLite files."""

from __future__ import annotations

import json
from pathlib import Path

from agent.session import Session
from agent.views.status import summarize
from closedloop import Decision, ObservationStatus, Verdict
from tests.conftest import beamline_session


def test_an_unattended_session_runs_to_its_budget(tmp_path: Path, write_session) -> None:
    path = write_session(beamline_session(budget={"experiments": 5}))
    session = Session.create(path, tmp_path / "run")
    try:
        assert session.advance() is None
        observations = session.store.observations()
        assert len(observations) == 5
        assert all(o.status == ObservationStatus.OK for o in observations)
        assert len({o.proposal_id for o in observations}) == 5
        # each run's documents are in the folder, with the proposal id in the start document
        for observation in observations:
            lines = (tmp_path / "run" / "runs" / f"{observation.proposal_id}.jsonl").read_text().splitlines()
            name, start = json.loads(lines[0])  # [name, doc], as suitcase-jsonl writes
            assert name == "start"
            assert start["proposal_id"] == observation.proposal_id
            assert start["uid"] == observation.run_uid
            assert [json.loads(line)[0] for line in lines] == ["start", "descriptor", "event", "stop"]
    finally:
        session.close()
    status = summarize(tmp_path / "run")
    assert status["state"] == "finished"
    assert status["experiments"] == 5
    assert status["best_value"] == max(o.values["flux"] for o in observations)


def test_checkpoints_hold_the_loop_and_take_answers(tmp_path: Path, write_session) -> None:
    path = write_session(beamline_session(review={"policy": "always"}, budget={"experiments": 2}))
    session = Session.create(path, tmp_path / "run")
    try:
        first = session.advance()
        assert first is not None and len(first.proposals) == 1
        assert session.store.count_observations() == 0  # nothing ran before the answer
        second = session.answer(Decision(verdict=Verdict.REJECT))
        assert second is not None and second.iteration == 1
        assert session.store.count_observations() == 0
        third = session.answer(Decision(verdict=Verdict.APPROVE))
        assert third is not None
        assert session.store.count_observations() == 1
        assert session.answer(Decision(verdict=Verdict.STOP)) is None
        assert session.outcome == "stopped"
        verdicts = [d.verdict for _, d in session.store.decisions()]
        assert verdicts == [Verdict.REJECT, Verdict.APPROVE, Verdict.STOP]
        statuses = [p.status.value for p in session.store.proposals()]
        assert statuses == ["rejected", "observed", "proposed"]
    finally:
        session.close()


def test_failed_runs_are_stored_and_the_loop_goes_on(tmp_path: Path, write_session) -> None:
    from bluesky.run_engine import call_in_bluesky_event_loop

    path = write_session(beamline_session(budget={"experiments": 3}))
    session = Session.create(path, tmp_path / "run")
    try:
        detector = session.executor.devices["det"]

        async def inject() -> None:
            await detector.fail_next.set(2)

        call_in_bluesky_event_loop(inject())
        assert session.advance() is None
        observations = session.store.observations()
        assert [o.status for o in observations] == ["failed", "failed", "ok", "ok", "ok"]
        assert all("injected detector fault" in (o.error or "") for o in observations[:2])
        assert (session.planner.n_observed, session.planner.n_failed) == (3, 2)
        kinds = [kind for _, kind, _ in session.store.events()]
        assert kinds.count("failure") == 2
    finally:
        session.close()


def test_botorch_drives_the_real_loop_towards_the_optimum(tmp_path: Path, write_session) -> None:
    """A short botorch session through the real graph and devices ends near the beamline's optimum."""
    from simulators import BEAMLINE_OPTIMUM
    from simulators.physics import beamline_flux

    data = beamline_session(
        budget={"experiments": 12},
        planner={"name": "botorch", "options": {"n_initial": 5}},
        seed=11,
    )
    session = Session.create(write_session(data), tmp_path / "run")
    try:
        assert session.advance() is None
        observations = session.store.observations()
    finally:
        session.close()
    assert len(observations) == 12
    best = max(observations, key=lambda o: o.values["flux"])
    assert beamline_flux(**best.readbacks) > 0.9 * BEAMLINE_OPTIMUM.value


def test_scan_ids_and_metadata_carry_on_across_resume(tmp_path: Path, write_session) -> None:
    data = beamline_session(review={"policy": "always"}, metadata={"beamline": "BL-7", "sample": "Si"})
    folder = tmp_path / "run"
    session = Session.create(write_session(data), folder)
    try:
        checkpoint = session.advance()
        for _ in range(2):
            checkpoint = session.answer(Decision(verdict=Verdict.APPROVE))
    finally:
        session.close()
    with Session.open(folder) as session:
        while checkpoint is not None:
            checkpoint = session.answer(Decision(verdict=Verdict.APPROVE))
        starts = [session.store.run(o.proposal_id)[0][0][1] for o in session.store.observations()]
    assert [start["scan_id"] for start in starts] == [1, 2, 3, 4]
    assert all(start["beamline"] == "BL-7" and start["sample"] == "Si" for start in starts)


def test_a_beam_dump_holds_the_run_and_status_says_suspended(tmp_path: Path, write_session) -> None:
    import threading
    import time

    suspenders = [{"signal": "ring.current", "below": 100, "resume_above": 150}]
    data = beamline_session(budget={"experiments": 2}, suspenders=suspenders)
    session = Session.create(write_session(data), tmp_path / "run")
    try:
        ring = session.executor.devices["ring"]
        ring.dump(1.5)  # no beam for 1.5 s: the first run waits for it
        seen: list[object] = []
        worker = threading.Thread(target=session.advance)
        worker.start()
        deadline = time.monotonic() + 30
        while worker.is_alive() and time.monotonic() < deadline:
            seen.append(summarize(tmp_path / "run")["state"])
            time.sleep(0.1)
        worker.join(timeout=30)
        assert "suspended" in seen
        observations = session.store.observations()
        assert [o.status for o in observations] == ["ok", "ok"]
        # measured with the beam back: the full flux at the read-back point (noise 5 counts), not a dumped one
        from simulators import beamline_flux

        for o in observations:
            assert abs(o.values["flux"] - beamline_flux(o.readbacks["pitch1"], o.readbacks["pitch2"])) < 30
        kinds = [kind for _, kind, _ in session.store.events()]
        assert "suspended" in kinds and "resumed" in kinds
    finally:
        session.close()
