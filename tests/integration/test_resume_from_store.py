"""The store is the truth on resume: lost checkpoints, rebuilt planners, repeated points, rolled-back stores.

Real sessions on the simulated beamline (a real RunEngine and ophyd-async devices, real SQLite files); the kills
run the CLI in its own process and SIGKILL it inside a run (motors that move at a real velocity, so that each run
takes about a second).
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from agent.loop.rebuild import SeenPoints
from agent.session import CHECKPOINT_FILE, Session
from closedloop import Decision, ObservationStatus, Verdict
from planners.sobol import sobol_points
from tests.conftest import beamline_session
from tests.integration.test_cli import CLI, closedloop, run_then_kill

SLOW = {"simulator": "beamline", "options": {"noise": 1.0, "instant": False}}


def query(folder: Path, sql: str) -> list[tuple[Any, ...]]:
    """Rows of the session's store (none while it cannot be read: the poll never makes the file)."""
    if not (folder / "store.sqlite").exists():
        return []
    try:
        with sqlite3.connect(folder / "store.sqlite") as conn:
            return [tuple(row) for row in conn.execute(sql)]
    except sqlite3.OperationalError:
        return []


def cut_runs(folder: Path) -> list[str]:
    """The proposals whose run started (intent stored) and is not stored as done."""
    sql = "SELECT d.proposal_id FROM dispatches d LEFT JOIN runs r ON d.proposal_id = r.proposal_id "
    return [row[0] for row in query(folder, sql + "WHERE r.proposal_id IS NULL")]


def next_one_waits(folder: Path) -> bool:
    """Pipelined, a run is moving and the next proposal, made meanwhile, waits for the instrument."""
    waiting = query(
        folder,
        "SELECT id FROM proposals WHERE status IN ('proposed', 'approved') "
        "AND id NOT IN (SELECT proposal_id FROM dispatches)",
    )
    return bool(cut_runs(folder)) and bool(waiting)


def killed_inside_a_run(tmp_path: Path, write_session, ready, **overrides: Any) -> tuple[Path, str]:
    """A pipelined session of 6 killed (SIGKILL) inside a run once ``ready(folder)``; the folder and the cut run."""
    folder = tmp_path / "run"
    data = beamline_session(instrument=SLOW, budget={"experiments": 6}, pipeline=True, **overrides)
    path = write_session(data)
    run_then_kill([*CLI, "run", str(path), "--dir", str(folder)], lambda: ready(folder), tmp_path / "first.log")
    (cut,) = cut_runs(folder)
    return folder, cut


def distinct_setpoints(session: Session) -> None:
    seen = SeenPoints(session.spec, session.store)
    keys = [seen.key(p.setpoints) for p in session.store.proposals()]
    assert len(keys) == len(set(keys)), "a point was proposed twice"


# a lost checkpoint database ----------------------------------------------------------------------------------
@pytest.mark.parametrize("lost", ["database", "wal"])
def test_checkpoints_lost_after_a_kill_inside_a_run_the_dispatched_run_is_recorded_and_told(
    tmp_path: Path, write_session, lost: str
) -> None:
    def ready(folder: Path) -> bool:
        return len(query(folder, "SELECT 1 FROM observations")) >= 2 and bool(cut_runs(folder))

    folder, cut = killed_inside_a_run(tmp_path, write_session, ready)
    for suffix in ("", "-wal", "-shm") if lost == "database" else ("-wal", "-shm"):
        (folder / f"{CHECKPOINT_FILE}{suffix}").unlink(missing_ok=True)
    session = Session.open(folder)
    try:
        observation = session.store.observation(cut)
        assert observation is not None and observation.status == ObservationStatus.INTERRUPTED
        # told to the rebuilt planner as a failed point, before it proposes anything
        setpoints = session.store.proposals(ids=[cut])[0].setpoints
        told = [r for r in session.planner.results if r["pitch1"] == pytest.approx(setpoints["pitch1"])]
        assert len(told) == 1 and told[0]["flux"] is None
        assert session.advance() is None
        assert session.tally.experiments == 6 and session.tally.interrupted == 1 and session.tally.failed == 0
        assert session.store.count_observations(ObservationStatus.OK) == 6
        rebuilt = [message for _, kind, message in session.store.events() if kind == "rebuild"]
        assert len(rebuilt) == 1 and CHECKPOINT_FILE in rebuilt[0]
        distinct_setpoints(session)
    finally:
        session.close()


# a rebuilt planner continues its sequence ----------------------------------------------------------------------
@pytest.mark.parametrize("planner", ["sobol", "random"])
def test_a_rebuilt_planner_continues_its_sequence_after_a_kill_inside_a_run(
    tmp_path: Path, write_session, planner: str
) -> None:
    folder, cut = killed_inside_a_run(tmp_path, write_session, next_one_waits, planner={"name": planner})
    result = closedloop("resume", str(folder), "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["experiments"] == 6 and summary["interrupted"] == 1
    with Session.open(folder) as session:
        distinct_setpoints(session)
        # not by the loop's refusal: the planner itself gave no point twice
        assert not [message for _, kind, message in session.store.events() if kind == "refused"]
        made = np.array([[p.setpoints["pitch1"], p.setpoints["pitch2"]] for p in session.store.proposals()])
    if planner == "sobol":
        # exactly the first points of its sequence, in order, as one process would have made them
        expected = -1.5 + 3.0 * sobol_points(2, len(made), seed=3)
        np.testing.assert_allclose(made, expected, rtol=0, atol=1e-12)


# the loop refuses a repeated point ----------------------------------------------------------------------------
def test_a_foreign_generator_that_repeats_a_point_is_refused_told_and_asked_again(
    tmp_path: Path, write_session
) -> None:
    planner = {"name": "tests.integration.planners_for_tests:Repeats"}
    session = Session.create(write_session(beamline_session(planner=planner)), tmp_path / "run")
    try:
        assert session.advance() is None
        distinct_setpoints(session)
        assert session.store.count_observations(ObservationStatus.OK) == 4
        first = session.store.proposals()[0].id
        refused = [message for _, kind, message in session.store.events() if kind == "refused"]
        assert len(refused) == 1 and f"repeats {first}" in refused[0]
        # told under its own _id, so that it never waits for it: the point was measured, so with that measurement
        told = [r for r in session.planner.ingested if r.get("_id") == 2]
        measured = session.store.observation(first)
        assert measured is not None and len(told) == 1 and told[0]["flux"] == measured.values["flux"]
    finally:
        session.close()


def test_an_operator_may_measure_a_point_again(tmp_path: Path, write_session) -> None:
    session = Session.create(write_session(beamline_session(budget={"experiments": 2})), tmp_path / "run")
    try:
        checkpoint = session.advance()
        assert checkpoint is None
        again = dict(session.store.proposals()[0].setpoints)
        session.store.queue_points([again], by="ann")
        session.store.set_meta(budget=3)
        assert session.advance() is None
        measured = [o.setpoints for o in session.store.observations()]
        assert measured.count(again) == 2
    finally:
        session.close()


# a store restored from an older copy ---------------------------------------------------------------------------
@pytest.mark.parametrize("also_gone", ["seal", "seal and run files"])
def test_a_rolled_back_store_without_its_seal_is_refused(tmp_path: Path, write_session, also_gone: str) -> None:
    folder = tmp_path / "run"
    session = Session.create(write_session(beamline_session(review={"policy": "always"})), folder)
    try:
        checkpoint = session.advance()
        for _ in range(2):
            assert checkpoint is not None
            checkpoint = session.answer(Decision(verdict=Verdict.APPROVE))
    finally:
        session.close()
    older = tmp_path / "older.sqlite"
    shutil.copyfile(folder / "store.sqlite", older)  # closed: the whole store is in the file
    known = {row[0] for row in query(folder, "SELECT proposal_id FROM dispatches")}
    session = Session.open(folder)
    try:
        checkpoint = session.pending_checkpoint()
        while checkpoint is not None:
            checkpoint = session.answer(Decision(verdict=Verdict.APPROVE))
        assert session.store.count_observations(ObservationStatus.OK) == 4
    finally:
        session.close()
    shutil.copyfile(older, folder / "store.sqlite")
    (folder / "seal.json").unlink()
    if also_gone == "seal and run files":  # the checkpoints alone still tell
        for path in (folder / "runs").glob("*.jsonl"):
            if path.stem not in known:
                path.unlink()
    result = closedloop("resume", str(folder))
    assert result.returncode == 2, result.stdout
    assert result.stderr.count("\n") == 1 and "store.sqlite" in result.stderr
    assert "older copy" in result.stderr
