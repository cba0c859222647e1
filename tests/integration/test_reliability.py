"""Nothing lost, nothing run twice, no way past a hard limit: the loop against kills, faults and damaged stores.

Real sessions on the simulated beamline (a real RunEngine and ophyd-async devices, real SQLite files); the kill
tests run the CLI in its own process and SIGKILL it.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from bluesky.run_engine import call_in_bluesky_event_loop

from agent.session import CHECKPOINT_FILE, Session
from closedloop import Decision, ObservationStatus, SessionError, Verdict
from tests.conftest import beamline_session
from tests.integration.test_cli import CLI, closedloop, run_then_kill


def make(write_session, folder: Path, **overrides: Any) -> Session:
    return Session.create(write_session(beamline_session(**overrides)), folder)


def inject_failures(session: Session, count: int) -> None:
    detector = session.executor.devices["det"]

    async def inject() -> None:
        await detector.fail_next.set(count)

    call_in_bluesky_event_loop(inject())


def start_documents(folder: Path) -> list[str]:
    """The proposal id of every start document in every runs/*.jsonl file."""
    ids = []
    for path in sorted((folder / "runs").glob("*.jsonl")):
        for line in path.read_text().splitlines():
            name, doc = json.loads(line)
            if name == "start":
                ids.append(doc["proposal_id"])
    return ids


def in_flight(folder: Path) -> bool:
    """A run has started (its intent is stored) and is not stored as done."""
    if not (folder / "store.sqlite").exists():
        return False  # never let the poll itself make the file
    try:
        with sqlite3.connect(folder / "store.sqlite") as conn:
            row = conn.execute(
                "SELECT COUNT(*) FROM dispatches d LEFT JOIN runs r ON d.proposal_id = r.proposal_id "
                "WHERE r.proposal_id IS NULL"
            ).fetchone()
    except sqlite3.OperationalError:
        return False
    return bool(row and row[0])


# at most once on the hardware --------------------------------------------------------------------------------
def test_a_run_cut_short_by_a_kill_is_recorded_interrupted_and_never_run_again(tmp_path: Path, write_session) -> None:
    folder = tmp_path / "run"
    # motors that move at a real velocity: each run takes about a second, so the kill lands inside one
    instrument = {"simulator": "beamline", "options": {"noise": 1.0, "instant": False}}
    path = write_session(beamline_session(instrument=instrument, budget={"experiments": 3}))
    run_then_kill([*CLI, "run", str(path), "--dir", str(folder)], lambda: in_flight(folder), tmp_path / "first.log")
    with sqlite3.connect(folder / "store.sqlite") as conn:
        (cut,) = conn.execute(
            "SELECT d.proposal_id FROM dispatches d LEFT JOIN runs r ON d.proposal_id = r.proposal_id "
            "WHERE r.proposal_id IS NULL"
        ).fetchone()
    assert (folder / "runs" / f"{cut}.jsonl").exists()  # the file exists before anything moves

    result = closedloop("resume", str(folder), "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["experiments"] == 3
    with Session.open(folder) as session:
        observation = session.store.observation(cut)
        assert observation is not None and observation.status == ObservationStatus.INTERRUPTED
        assert "not run again" in (observation.error or "")
        events = [message for _, kind, message in session.store.events() if kind == "interrupted"]
        assert len(events) == 1
    starts = start_documents(folder)
    assert starts.count(cut) <= 1  # it started at most once, before the kill
    assert len(starts) == len(set(starts))  # no proposal physically ran twice
    with sqlite3.connect(folder / "store.sqlite") as conn:
        decisions = [row[0] for row in conn.execute("SELECT key FROM decisions")]
    assert len(decisions) == len(set(decisions))


# stores that cannot fool a resume ------------------------------------------------------------------------------
def waiting_session(tmp_path: Path, write_session, name: str = "run") -> Path:
    """A session that ran two experiments and waits at its third checkpoint, closed."""
    folder = tmp_path / name
    session = make(write_session, folder, review={"policy": "always"}, budget={"experiments": 4})
    try:
        checkpoint = session.advance()
        for _ in range(2):
            assert checkpoint is not None
            checkpoint = session.answer(Decision(verdict=Verdict.APPROVE))
        assert checkpoint is not None and checkpoint.iteration == 2
    finally:
        session.close()
    return folder


def test_a_zeroed_or_emptied_store_is_refused_naming_the_file(tmp_path: Path, write_session) -> None:
    folder = waiting_session(tmp_path, write_session)
    store = folder / "store.sqlite"
    store.write_bytes(bytes(store.stat().st_size))
    with pytest.raises(SessionError, match="store.sqlite: not a readable SQLite database"):
        Session.open(folder)
    store.write_bytes(b"")
    result = closedloop("resume", str(folder))
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "store.sqlite: missing or empty" in result.stderr
    status = closedloop("status", str(folder))
    assert status.returncode == 2 and "store.sqlite" in status.stderr


def test_random_bytes_in_the_store_are_found_at_open(tmp_path: Path, write_session) -> None:
    folder = waiting_session(tmp_path, write_session)
    store = folder / "store.sqlite"
    size = store.stat().st_size
    assert size > 12_000
    with store.open("r+b") as f:
        f.seek(size // 2 - 4096)
        f.write(os.urandom(8192))
    with pytest.raises(SessionError, match="store.sqlite: (damaged|not a readable SQLite database)"):
        Session.open(folder)


def test_a_store_copied_without_its_wal_is_detected(tmp_path: Path, write_session) -> None:
    folder = tmp_path / "run"
    session = make(write_session, folder, budget={"experiments": 3})
    try:
        assert session.advance() is None
        # copy the folder as it is on disk while the store is still open: its last commits are in store.sqlite-wal
        copy = tmp_path / "copy"
        copy.mkdir()
        for name in ("session.yaml", "store.sqlite", "checkpoints.sqlite", "seal.json"):
            shutil.copyfile(folder / name, copy / name)
    finally:
        session.close()
    with pytest.raises(SessionError, match="store.sqlite: .*copied without its -wal"):
        Session.open(copy)
    Session.open(folder).close()  # the original, with its -wal, is fine


def test_a_lost_checkpoint_database_is_rebuilt_from_the_store(tmp_path: Path, write_session) -> None:
    folder = waiting_session(tmp_path, write_session)
    with sqlite3.connect(folder / "store.sqlite") as conn:
        (held,) = conn.execute("SELECT id FROM proposals WHERE status = 'proposed'").fetchone()
    (folder / CHECKPOINT_FILE).unlink()
    for suffix in ("-wal", "-shm"):
        (folder / f"{CHECKPOINT_FILE}{suffix}").unlink(missing_ok=True)
    session = Session.open(folder)
    try:
        checkpoint = session.advance()
        assert checkpoint is not None and checkpoint.iteration == 2  # not restarted at 0
        assert [p["id"] for p in checkpoint.proposals] == [held]  # the same question
        while checkpoint is not None:
            checkpoint = session.answer(Decision(verdict=Verdict.APPROVE))
        iterations = [p.iteration for p in session.store.proposals()]
        assert iterations == [0, 1, 2, 3]
        assert any(kind == "rebuild" for _, kind, _ in session.store.events())
    finally:
        session.close()


def test_a_foreign_checkpoint_database_is_refused(tmp_path: Path, write_session) -> None:
    folder = waiting_session(tmp_path, write_session, "one")
    other = waiting_session(tmp_path, write_session, "two")
    shutil.copyfile(other / CHECKPOINT_FILE, folder / CHECKPOINT_FILE)
    with pytest.raises(SessionError, match="checkpoints.sqlite: belongs to session s-"):
        Session.open(folder)


# planner output never bricks a session -------------------------------------------------------------------------
def test_bad_planner_points_are_refused_told_to_the_planner_and_the_session_resumes(
    tmp_path: Path, write_session
) -> None:
    planner = {"name": "tests.integration.planners_for_tests:BadOnce"}
    folder = tmp_path / "run"
    session = make(write_session, folder, planner=planner, budget={"experiments": 3})
    try:
        # three bad points in a row: the session holds for an operator instead of dying
        checkpoint = session.advance()
        assert checkpoint is not None and checkpoint.kind == "failures"
        assert "the planner gave no usable point in 3 attempts" in checkpoint.reason
        assert session.store.count_proposals() == 0  # nothing bad was stored
        assert session.answer(Decision(verdict=Verdict.APPROVE)) is None
        refused = [message for _, kind, message in session.store.events() if kind == "refused"]
        assert len(refused) == 3 and "not a finite number" in refused[0] and "no value for" in refused[1]
        told = [r for r in session.planner.ingested if r.get("_id") in (0, 1, 2)]
        assert [r["_id"] for r in told] == [0, 1, 2] and all(math.isnan(r["flux"]) for r in told)
        assert session.store.count_observations(ObservationStatus.OK) == 3
    finally:
        session.close()
    Session.open(folder).close()  # every stored record loads again


# failures: the session never dies of an instrument fault -----------------------------------------------------
def test_failed_runs_in_a_row_pause_the_session_and_it_goes_on_when_told(tmp_path: Path, write_session) -> None:
    session = make(write_session, tmp_path / "run", budget={"experiments": 2})
    try:
        inject_failures(session, 4)
        checkpoint = session.advance()
        assert checkpoint is not None and checkpoint.kind == "failures"
        assert "3 failed runs in a row" in checkpoint.reason
        assert session.outcome == "waiting"
        # one more failure after going on does not pause again at once: the count starts over
        checkpoint = session.answer(Decision(verdict=Verdict.APPROVE))
        assert checkpoint is None and session.outcome == "finished"
        statuses = [o.status.value for o in session.store.observations()]
        assert statuses == ["failed"] * 4 + ["ok", "ok"]
    finally:
        session.close()


def test_failures_then_stop_ends_the_session_stopped(tmp_path: Path, write_session) -> None:
    session = make(write_session, tmp_path / "run", failures={"max_consecutive": 2, "then": "stop"})
    try:
        inject_failures(session, 10)
        assert session.advance() is None
        assert session.outcome == "stopped"
        assert session.store.count_observations() == 2
    finally:
        session.close()


# review: verdicts per point, edits, policies ------------------------------------------------------------------
def test_a_verdict_per_point_and_an_edit_within_the_limits(tmp_path: Path, write_session) -> None:
    planner = {"name": "sobol", "batch_size": 2}
    session = make(write_session, tmp_path / "run", planner=planner, review={"policy": "always"})
    try:
        checkpoint = session.advance()
        assert checkpoint is not None
        first, second = (p["id"] for p in checkpoint.proposals)
        checkpoint = session.answer(
            [
                Decision(verdict=Verdict.EDIT, proposal_ids=[first], setpoints={"pitch1": 0.35, "pitch2": -0.6}),
                Decision(verdict=Verdict.REJECT, proposal_ids=[second], reason="too close to the edge"),
            ]
        )
        statuses = {p.id: p.status.value for p in session.store.proposals()}
        assert statuses[first] == "rejected" and statuses[second] == "rejected"
        edited = session.store.observation(f"{first}-edit")
        assert edited is not None and edited.readbacks == pytest.approx({"pitch1": 0.35, "pitch2": -0.6})
        assert [d.reason for _, d in session.store.decisions_for(second)] == ["too close to the edge"]
        assert checkpoint is not None and first not in [p["id"] for p in checkpoint.proposals]
    finally:
        session.close()


@pytest.mark.parametrize(
    ("review", "asked"),
    [
        ({"first": 2}, [0, 1]),
        ({"every": 2}, [0, 2]),
        ({"risky": {"margin": 0.6}}, None),  # sobol points near the edges of [-1.5, 1.5] within 2.0 limits
    ],
)
def test_review_rules_ask_only_when_they_say(tmp_path: Path, write_session, review: dict, asked: Any) -> None:
    session = make(write_session, tmp_path / "run", review=review, budget={"experiments": 4})
    try:
        held = []
        checkpoint = session.advance()
        while checkpoint is not None:
            held.append(checkpoint.iteration)
            assert checkpoint.reason
            checkpoint = session.answer(Decision(verdict=Verdict.APPROVE))
        if asked is not None:
            assert held == asked
        else:
            edges = [
                o.proposal_id
                for o in session.store.observations()
                if any(abs(v) > 1.4 for v in o.setpoints.values() if isinstance(v, float))
            ]
            asked_ids = [p.id for p in session.store.proposals() if p.iteration in held]
            assert set(edges) <= set(asked_ids)
            assert len(held) < 4 or len(edges) == 4
        decisions = session.store.decisions()
        assert len(decisions) == 4
        by = [d.by for _, d in decisions]
        assert by.count("policy") == 4 - len(held)
    finally:
        session.close()


def test_an_edit_outside_the_hard_limits_is_refused_and_nothing_moves(tmp_path: Path, write_session) -> None:
    from agent.operator.operations import Operations

    session = make(write_session, tmp_path / "run", review={"policy": "always"})
    try:
        checkpoint = session.advance()
        assert checkpoint is not None
        ops = Operations(session)
        ops.holding(checkpoint)
        edit = Decision(verdict=Verdict.EDIT, proposal_ids=[checkpoint.proposals[0]["id"]], setpoints={"pitch1": 3})
        with pytest.raises(Exception, match="edit refused: setpoints.pitch1: 3.0 is outside the hard limits"):
            ops.answer(checkpoint.id, [edit])
        assert session.store.count_observations() == 0
        # a second answer to one checkpoint is told it came too late
        ops.answer(checkpoint.id, [Decision(verdict=Verdict.APPROVE, by="ann")])
        with pytest.raises(SessionError, match="too late: .* answered already by ann"):
            ops.answer(checkpoint.id, [Decision(verdict=Verdict.REJECT, by="bob")])
    finally:
        session.close()


def test_a_rejected_point_is_told_to_a_rebuilt_planner_as_to_the_live_one(tmp_path: Path, write_session) -> None:
    planner = {"name": "tests.integration.planners_for_tests:BadOnce", "options": {"bad": 0}}
    folder = tmp_path / "run"
    session = make(write_session, folder, planner=planner, review={"policy": "always"})
    try:
        checkpoint = session.advance()
        assert checkpoint is not None
        rejected = checkpoint.proposals[0]
        session.answer(Decision(verdict=Verdict.REJECT))
        live = [r for r in session.planner.ingested if r.get("pitch1") == rejected["setpoints"]["pitch1"]]
        assert len(live) == 1 and math.isnan(live[0]["flux"])
    finally:
        session.close()
    session = Session.open(folder)
    try:
        rebuilt = [r for r in session.planner.ingested if r.get("pitch1") == rejected["setpoints"]["pitch1"]]
        assert len(rebuilt) == 1 and math.isnan(rebuilt[0]["flux"])
    finally:
        session.close()


# edits between stop and resume --------------------------------------------------------------------------------
def test_edits_between_stop_and_resume_only_budget_review_and_failures(tmp_path: Path, write_session) -> None:
    import yaml

    from closedloop import SpecError

    folder = waiting_session(tmp_path, write_session)
    path = folder / "session.yaml"
    original = yaml.safe_load(path.read_text())
    changed = {**original, "objectives": {"flux": {"direction": "maximize", "field": "det-heat"}}}
    path.write_text(yaml.safe_dump(changed))
    with pytest.raises(SpecError, match="objectives.flux.field: det-flux -> det-heat"):
        Session.open(folder)
    path.write_text(yaml.safe_dump({**original, "budget": {"experiments": 3}, "review": {"policy": "never"}}))
    with Session.open(folder) as session:
        edits = [message for _, kind, message in session.store.events() if kind == "edit"]
        assert "session file edited: budget.experiments: 4 -> 3" in edits
        assert session.context.budget() == 3
        checkpoint = session.pending_checkpoint()
        assert checkpoint is not None
        assert session.answer(Decision(verdict=Verdict.APPROVE)) is None
        assert session.tally.experiments == 3
