"""Pipelining and several instruments, on real RunEngines driving the simulated beamline's ophyd-async devices.

With pipelining (the default) the next proposal is made, stored and approved while the current run goes on; with
``pipeline: false`` the loop proposes, runs and ingests strictly in turn. Each instrument runs one plan at a
time; several instruments run at once, a suspended one not holding up the others.
"""

from __future__ import annotations

import json
import math
import sqlite3
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from ophyd.sim import SynAxis, SynGauss

from agent.session import Session
from agent.views.status import summarize
from closedloop.errors import InstrumentError
from closedloop.records import Decision, Verdict
from closedloop.spec import spec_from_dict
from instruments.executor import InProcessExecutor, build_run_engine
from tests.conftest import args_for, beamline_session
from tests.integration.test_cli import meta, run_then_kill

CLI = [sys.executable, "-m", "agent.cli"]


def runs_in_order(session: Session) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(proposal id, start document, stop document) of every stored run, in start order."""
    runs = []
    for observation in session.store.observations():
        stored = session.store.run(observation.proposal_id)
        assert stored is not None
        docs = dict((name, doc) for name, doc in stored[0] if name in ("start", "stop"))
        runs.append((observation.proposal_id, docs["start"], docs["stop"]))
    return sorted(runs, key=lambda run: run[1]["time"])


def timed_session(**overrides: Any) -> dict[str, Any]:
    """The test beamline with an exposure that makes each run last a while (0.3 s)."""
    instrument = {"simulator": "beamline", "options": {"noise": 5.0, "exposure": 0.3}}
    return beamline_session(**{"instrument": instrument, "budget": {"experiments": 5}, **overrides})


def test_pipelined_the_next_proposal_is_ready_before_the_current_run_ends(tmp_path: Path, write_session) -> None:
    with Session.create(write_session(timed_session(pipeline=True)), tmp_path / "run") as session:
        assert session.advance() is None
        runs = runs_in_order(session)
        proposals = {p.id: p for p in session.store.proposals()}
    assert len(runs) == 5
    for (_, _, stop), (next_id, next_start, _) in zip(runs, runs[1:], strict=False):
        # proposed while the run before it was still going, and started only after it ended (one plan at a time)
        assert proposals[next_id].created < stop["time"] <= next_start["time"]


def test_without_pipelining_the_loop_proposes_only_after_the_run_ends(tmp_path: Path, write_session) -> None:
    with Session.create(write_session(timed_session(pipeline=False)), tmp_path / "run") as session:
        assert session.advance() is None
        runs = runs_in_order(session)
        proposals = {p.id: p for p in session.store.proposals()}
    for (_, _, stop), (next_id, next_start, _) in zip(runs, runs[1:], strict=False):
        assert stop["time"] < proposals[next_id].created < next_start["time"]


def test_a_kill_while_one_runs_and_the_next_waits_loses_nothing_and_runs_nothing_twice(
    tmp_path: Path, write_session
) -> None:
    instrument = {"simulator": "beamline", "options": {"noise": 5.0, "exposure": 1.0}}
    path = write_session(beamline_session(instrument=instrument, pipeline=True, budget={"experiments": 4}))
    folder = tmp_path / "run"
    store = folder / "store.sqlite"

    def one_running_and_the_next_waiting() -> bool:
        if not store.exists():
            return False
        try:
            with sqlite3.connect(store) as conn:
                running = conn.execute(
                    "SELECT COUNT(*) FROM dispatches WHERE proposal_id NOT IN (SELECT proposal_id FROM runs)"
                ).fetchone()[0]
                waiting = conn.execute(
                    "SELECT COUNT(*) FROM proposals WHERE status = 'approved' "
                    "AND id NOT IN (SELECT proposal_id FROM dispatches)"
                ).fetchone()[0]
                done = conn.execute("SELECT COUNT(*) FROM observations").fetchone()[0]
        except sqlite3.OperationalError:
            return False
        return running == 1 and waiting == 1 and done >= 1

    run_then_kill(
        [*CLI, "run", str(path), "--dir", str(folder), "--yes"], one_running_and_the_next_waiting, tmp_path / "run.log"
    )
    with sqlite3.connect(store) as conn:
        (cut_short,) = conn.execute(
            "SELECT proposal_id FROM dispatches WHERE proposal_id NOT IN (SELECT proposal_id FROM runs)"
        ).fetchone()
        (waiting,) = conn.execute(
            "SELECT id FROM proposals WHERE status = 'approved' AND id NOT IN (SELECT proposal_id FROM dispatches)"
        ).fetchone()
    with Session.open(folder) as session:
        assert session.advance() is None
        observations = {o.proposal_id: o for o in session.store.observations()}
        starts = []
        for proposal_id in observations:
            stored = session.store.run(proposal_id)
            assert stored is not None
            starts += [doc["proposal_id"] for name, doc in stored[0] if name == "start"]
        run_file = (folder / "runs" / f"{waiting}.jsonl").read_text().splitlines()
    assert observations[cut_short].status == "interrupted"  # found by its id, recorded, not run again
    assert observations[waiting].status == "ok"  # the one that waited ran once, after the resume
    assert sum(1 for line in run_file if json.loads(line)[0] == "start") == 1
    assert len(starts) == len(set(starts))  # no proposal ran twice
    assert sum(o.ok for o in observations.values()) == 4


def two_instruments(exposure: float, **overrides: Any) -> dict[str, Any]:
    options = {"noise": 5.0, "exposure": exposure}
    instruments = [
        {"name": "hutch-a", "simulator": "beamline", "options": options},
        {"name": "hutch-b", "simulator": "beamline", "options": options},
    ]
    data = beamline_session(pipeline=True, budget={"experiments": 6}, **overrides)
    del data["instrument"]
    data["instruments"] = instruments
    return data


def test_two_instruments_run_at_once_each_one_plan_at_a_time(tmp_path: Path, write_session) -> None:
    with Session.create(write_session(two_instruments(0.3)), tmp_path / "run") as session:
        assert session.advance() is None
        runs = runs_in_order(session)
        points = [tuple(o.setpoints.values()) for o in session.store.observations()]
    status = summarize(tmp_path / "run")
    assert status["experiments"] == 6
    assert status["instruments"] == {
        "hutch-a": {"state": "idle", "proposal": None, "error": None, "waiting": None, "suspended": None},
        "hutch-b": {"state": "idle", "proposal": None, "error": None, "waiting": None, "suspended": None},
    }
    by_instrument: dict[str, list[tuple[float, float]]] = {}
    for _, start, stop in runs:
        by_instrument.setdefault(start["instrument"], []).append((start["time"], stop["time"]))
    assert set(by_instrument) == {"hutch-a", "hutch-b"}
    for spans in by_instrument.values():  # one RunEngine never runs two plans at once
        assert all(end <= next_begin for (_, end), (next_begin, _) in zip(spans, spans[1:], strict=False))
    a, b = by_instrument["hutch-a"], by_instrument["hutch-b"]
    assert any(a_begin < b_end and b_begin < a_end for a_begin, a_end in a for b_begin, b_end in b)  # at once
    assert len(set(points)) == len(points)  # each proposal conditioned on the others in flight: all distinct


def test_a_suspended_instrument_does_not_hold_up_the_other(tmp_path: Path, write_session) -> None:
    suspenders = [{"signal": "ring.current", "below": 100, "resume_above": 150}]
    data = two_instruments(0.1, suspenders=suspenders)
    with Session.create(write_session(data), tmp_path / "run") as session:
        ring = session.lanes.lanes[0].executor.devices["ring"]  # type: ignore[attr-defined]
        ring.dump(4.0)  # hutch-a has no beam for 4 s
        worker = threading.Thread(target=session.advance)
        began = time.time()
        worker.start()
        seen: list[tuple[str, str, str]] = []  # the session's state and each instrument's, as status shows them
        while worker.is_alive() and time.time() - began < 60:
            status = summarize(tmp_path / "run")
            lanes = status["instruments"]
            a_shown = f"{lanes['hutch-a']['state']} {lanes['hutch-a']['suspended']}"
            seen.append((status["state"], a_shown, lanes["hutch-b"]["state"]))
            time.sleep(0.2)
        worker.join(timeout=60)
        assert not worker.is_alive()
        runs = runs_in_order(session)
    # while hutch-a had no beam, status said so for hutch-a alone, with why; the session itself ran on
    held_a = [s for s in seen if s[1].startswith("suspended")]
    assert held_a and all(s[0] == "running" for s in held_a)
    assert held_a[0][1].startswith("suspended ring.current ") and held_a[0][1].endswith(" < 100.0")
    assert any(s[2] == "running" for s in held_a)
    assert not any(s[2] == "suspended" for s in seen)
    on_a = [(start, stop) for _, start, stop in runs if start["instrument"] == "hutch-a"]
    on_b = [(start, stop) for _, start, stop in runs if start["instrument"] == "hutch-b"]
    held = on_a[0]
    assert held[1]["time"] - began > 3.5  # hutch-a's first run waited for its beam
    # hutch-b went on meanwhile: most of the session ran there while hutch-a's run was held
    assert sum(1 for start, stop in on_b if stop["time"] < held[1]["time"]) >= 4
    assert meta(tmp_path / "run", "state") == "finished"


class ControlHostGone(InProcessExecutor):
    """A real in-process executor whose instrument stops answering after ``runs`` runs, as a queueserver executor
    does when its manager's host goes away (fault injection: an RE Manager per lane would take a minute to start)."""

    def __init__(self, *args: Any, runs: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.left = runs

    def run(self, proposal: Any, md: Any = None, on_document: Any = None) -> Any:
        if self.left == 0:
            raise InstrumentError("instrument.queueserver: the RE Manager at hutch-a does not answer")
        self.left -= 1
        return super().run(proposal, md, on_document)


def test_an_instrument_that_stops_answering_is_set_aside_and_the_other_goes_on(tmp_path: Path, write_session) -> None:
    data = two_instruments(0.05)
    spec = spec_from_dict(data)
    folder = tmp_path / "run"
    gone = ControlHostGone(args_for(spec, "s-test", 0), runs=1)
    other = InProcessExecutor(args_for(spec, "s-test", 1), build_run_engine(gone.run_engine.loop))
    executors: list[Any] = [gone, other]
    with Session.create(write_session(data), folder, executor=executors) as session:
        assert session.advance() is None
        observations = session.store.observations()
        lanes = summarize(folder)["instruments"]
    assert lanes["hutch-a"]["state"] == "failed" and "does not answer" in lanes["hutch-a"]["error"]
    assert lanes["hutch-b"]["state"] == "idle"
    assert sum(o.ok for o in observations) == 6  # the budget, met by hutch-b once hutch-a was gone
    cut = [o for o in observations if o.status == "interrupted"]
    assert len(cut) == 1  # the proposal hutch-a was given when it stopped answering: recorded, not run again


def test_the_next_review_is_asked_while_the_approved_run_goes_on(tmp_path: Path, write_session) -> None:
    instrument = {"simulator": "beamline", "options": {"noise": 5.0, "exposure": 1.0}}
    data = beamline_session(instrument=instrument, pipeline=True, review={"policy": "always"})
    with Session.create(write_session(data), tmp_path / "run") as session:
        first = session.advance()
        assert first is not None
        second = session.answer(Decision(verdict=Verdict.APPROVE))
        assert second is not None and second.kind == "review"
        # asked while the first run is still going (it takes a second): the operator reviews during the run
        assert session.lanes.running() == [first.proposals[0]["id"]]
        assert session.store.count_observations() == 0
        third = session.answer(Decision(verdict=Verdict.APPROVE))
        assert third is not None and session.store.count_observations() >= 1


def classic_hutch() -> dict[str, Any]:
    """An instrument of ophyd classic sims only: a SynAxis that takes 0.2 s to move and a SynGauss that follows it."""
    mx = SynAxis(name="mx", delay=0.2)
    return {"mx": mx, "gauss": SynGauss("gauss", mx, "mx", center=0.3, Imax=100.0, sigma=0.5)}


def test_two_instruments_of_ophyd_classic_sims_run_at_once(tmp_path: Path, write_session) -> None:
    """Pipelining and several instruments with devices closedloop did not write (ophyd.sim, threads, no asyncio)."""
    hutch = {"factory": "tests.integration.test_pipeline:classic_hutch"}
    data = {
        "name": "classic-hutches",
        "seed": 5,
        "variables": {"x": {"bounds": [-1.0, 1.0], "hard_limits": [-2.0, 2.0], "device": "mx"}},
        "objectives": {"intensity": {"field": "gauss"}},
        "budget": {"experiments": 6},
        "planner": {"name": "sobol"},
        "review": {"policy": "never"},
        "instruments": [dict(hutch, name="left"), dict(hutch, name="right")],
    }
    with Session.create(write_session(data), tmp_path / "run") as session:
        assert session.advance() is None
        runs = runs_in_order(session)
        observations = session.store.observations()
    assert len(observations) == 6 and all(o.ok for o in observations)
    for o in observations:  # what the instrument read back, and what its detector saw there
        assert o.readbacks["x"] == pytest.approx(o.setpoints["x"], abs=1e-9)
        expected = 100.0 * math.exp(-((o.readbacks["x"] - 0.3) ** 2) / (2 * 0.5**2))
        assert o.values["intensity"] == pytest.approx(expected)
    spans: dict[str, list[tuple[float, float]]] = {}
    for _, start, stop in runs:
        spans.setdefault(start["instrument"], []).append((start["time"], stop["time"]))
    assert set(spans) == {"left", "right"}
    left, right = spans["left"], spans["right"]
    assert any(a < d and c < b for a, b in left for c, d in right)  # the two ran at once


def test_an_instrument_that_cannot_connect_is_named_among_several(tmp_path: Path, write_session) -> None:
    data = two_instruments(exposure=0.0)
    data["instruments"][1].update(connect_timeout=0.3, options={"faults": {"no_connect": "m1"}})
    with pytest.raises(InstrumentError) as info:
        Session.create(write_session(data), tmp_path / "run")
    assert str(info.value) == "instruments.hutch-b: device 'm1' did not connect within 0.3 s"


def test_a_run_that_ends_during_a_review_is_counted_before_the_answer(tmp_path: Path, write_session) -> None:
    """Pipelined, the run before a review goes on while the operator reads it; once it ends, the session ingests
    it while it still waits (status, the web page and the planner have the result), and the answer is applied as
    given: here the review was asked because the last run had failed, and the run that ended meanwhile (ok) does
    not turn the operator's rejection into the policy's approval."""
    instrument = {"simulator": "beamline", "options": {"noise": 5.0, "exposure": 0.8, "faults": {"nan_reading": 1}}}
    data = beamline_session(instrument=instrument, pipeline=True, review={"after_failure": True})
    folder = tmp_path / "run"
    with Session.create(write_session(data), folder) as session:
        checkpoint = session.advance()
        assert checkpoint is not None and checkpoint.reason.startswith("the last run failed")
        (asked,) = [p["id"] for p in checkpoint.proposals]
        running = session.lanes.running()
        assert len(running) == 1 and session.store.count_observations() == 1  # the failed one; one runs on
        session.lanes.wait(lambda: not session.lanes.running(), timeout=10)
        assert session.store.count_observations() == 1  # ended, not yet ingested
        session.collect_ended(checkpoint)
        assert session.store.observation(running[0]) is not None
        status = summarize(folder)
        assert (status["experiments"], status["failed"], status["state"]) == (1, 1, "waiting")
        after = session.answer(Decision(verdict=Verdict.REJECT, reason="not there"))
        while after is not None:  # (no more failures: the policy approves the rest)
            after = session.answer(Decision(verdict=Verdict.APPROVE))
        rejected = session.store.proposals(ids=[asked])[0]
        assert rejected.status.value == "rejected" and session.store.observation(asked) is None
        assert [d.verdict for _, d in session.store.decisions_for(asked)] == [Verdict.REJECT]
