"""A session on disk: its folder, its store, its checkpointer, and the loop that advances it.

Everything a session needs to resume lives in its folder: ``session.yaml`` (the session file as given),
``store.sqlite`` (proposals, runs, observations, decisions, audit log), ``checkpoints.sqlite`` (LangGraph's
state), ``runs/`` (one JSON-lines file of documents per run) and ``seal.json`` (how much the store held when it
last changed, so that a store copied without its ``-wal`` file is recognised).

The store is the truth. Both databases carry the session's id; a store that is empty, damaged, foreign or older
than the session's own record of it is refused, and a lost checkpoint database is rebuilt from the store. With a
``store:`` URL both live in PostgreSQL (:mod:`agent.store.backends`). Instruments run as :class:`~agent.loop.Lanes`.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from langgraph.types import Command

from agent.loop import (
    Checkpoint,
    Lane,
    Lanes,
    LoopContext,
    build_graph,
    build_planner,
    check_high_water,
    checkpoint_gap,
    collect_dispatched,
    replay_into_planner,
    start_iteration,
    thread_config,
)
from agent.loop import (
    collect_ended as collect_ended_runs,
)
from agent.provenance.lineage import record_build
from agent.provenance.warmstart import ingest_prior, load_prior
from agent.store import (
    CHECKPOINT_FILE,
    SESSION_FILE,
    STORE_FILE,
    SessionFolder,
    SqlStore,
    check_edits,
    clear_unfinished,
    create_store,
    holds_session,
    open_checkpoints,
    open_store,
    saver_for,
    write_seal,
)
from agent.views.status import SessionState, Tally, suspended_key
from closedloop.errors import InstrumentError, RefusedError, SessionError
from closedloop.execution import executor_args
from closedloop.reach import reach_summary
from closedloop.records import Decision, Observation
from closedloop.resolve import resolve
from closedloop.spec import SessionSpec, folder_path, load_spec
from instruments.executor import InProcessExecutor, build_run_engine
from instruments.protocols import Executes
from instruments.writer import document_writer


def suspension(details: dict[str, Any]) -> str:
    """Why a suspender holds an instrument's runs, for people: ``ring.current 12 < 100``."""
    value, level = details.get("value"), details.get("level")
    shown = f"{value:.4g}" if isinstance(value, int | float) else str(value)
    return f"{details.get('signal')} {shown} < {level}"


def build_executor(
    spec: SessionSpec, session_id: str, store: SqlStore, index: int = 0, loop: Any = None, runs: Path | None = None
) -> Executes:
    """The executor for one of the session's instruments (the first by default), its scan ids carrying on from the
    store's last; in-process ones after the first share ``loop``, the first one's event loop.

    Its documents go through one :class:`~instruments.writer.DocumentWriter`, built here from the session's
    sections: large arrays to HDF5 files in ``runs`` (the session folder's ``runs/``) as ``arrays`` says, every
    document to the 0MQ proxy of ``publish`` and the Tiled server of ``tiled``; the loop gives each run its file.
    """

    lane_name = spec.lanes()[index][0]

    def on_event(kind: str, details: dict[str, Any]) -> None:
        # called from the RunEngine's (or the Tiled writer's) thread: record it, never block
        if kind in ("suspended", "resumed"):
            store.set_meta(**{suspended_key(lane_name): suspension(details) if kind == "suspended" else None})
        store.log(kind, json.dumps({"instrument": lane_name, **details}, default=str))

    def tiled_failed(details: dict[str, Any]) -> None:
        on_event("tiled_failed", details)  # from the Tiled writer's thread, which logs what this raises

    args = executor_args(spec, session_id, index)
    writer = document_writer(
        arrays=spec.arrays, arrays_dir=runs, publish=spec.publish, tiled=spec.tiled, on_tiled_error=tiled_failed
    )
    try:
        if args.instrument.queueserver is not None:
            from instruments.queueserver import QueueServerExecutor

            return QueueServerExecutor(args, writer=writer)
        run_engine = build_run_engine(loop) if loop is not None else None
        scan_id = int(store.meta("scan_id", 0))
        return InProcessExecutor(args, run_engine, scan_id=scan_id, on_event=on_event, writer=writer)
    except BaseException:
        writer.close()  # the executor closes it once it is built
        raise


def build_lanes(
    spec: SessionSpec,
    session_id: str,
    store: SqlStore,
    executors: Executes | list[Executes] | None = None,
    runs: Path | None = None,
) -> Lanes:
    """Every instrument of the session as a lane, each given its executor (``executors``, when given: one, or one
    per instrument) or one built from its section (large arrays to HDF5 files in ``runs``).

    Raises:
        InstrumentError: an instrument cannot be built or connected (those built already are closed).
    """
    names = [name for name, _ in spec.lanes()]
    if executors is not None:
        given = executors if isinstance(executors, list) else [executors]
        return Lanes([Lane(name, executor) for name, executor in zip(names, given, strict=False)], store)
    lanes: list[Lane] = []
    try:
        for index, name in enumerate(names):
            engine = getattr(lanes[0].executor, "run_engine", None) if lanes else None
            loop = engine.loop if engine is not None else None
            try:
                lanes.append(Lane(name, build_executor(spec, session_id, store, index, loop, runs)))
            except InstrumentError as exc:
                if len(names) == 1:
                    raise
                # name which of the instruments it was: "instruments.hutch-b: device 'm1' did not connect ..."
                message = exc.args[0].removeprefix("instrument: ")
                raise InstrumentError(f"instruments.{name}: {message}", exc.hint) from exc
    except BaseException:
        for lane in lanes:
            lane.executor.close()
        raise
    return Lanes(lanes, store)


class Session:
    """One session folder, opened for running.

    Use :meth:`create` for a new session and :meth:`open` to resume one. :meth:`advance` runs the loop until it
    ends or reaches a checkpoint; :meth:`answer` gives the checkpoint its decision and runs on.

    Args:
        folder: the session folder.
        spec: the session spec.
        store: its open store.
        planner: the planner (default: built from the spec, then told every stored observation).
        executor: the executor, or one per instrument (default: one built per instrument of the spec, each a lane
            of :class:`Lanes`).
        on_observation: called after each stored observation.
    """

    def __init__(
        self,
        folder: Path,
        spec: SessionSpec,
        store: SqlStore,
        planner: Any = None,
        executor: Executes | list[Executes] | None = None,
        on_observation: Callable[[Observation], None] | None = None,
    ) -> None:
        self.folder = folder
        self.spec = spec
        self.store = store
        self.session_id: str = store.meta("session_id")
        runs = SessionFolder(folder).runs
        runs.mkdir(parents=True, exist_ok=True)
        self.on_observation = on_observation or (lambda observation: None)
        self._checkpoint_conn, _ = open_checkpoints(folder, self.session_id, store)
        try:
            self.lanes = build_lanes(spec, self.session_id, store, executor, runs)
            try:
                # the devices' own limits are known once they are connected: the planner searches what they reach
                devices = self.lanes.device_limits()
                store.set_meta(reach=reach_summary(spec, devices))
                self.planner = planner if planner is not None else build_planner(spec, devices)
                ingest_prior(store, self.planner)  # a warm start's earlier data, before the session's own
                issued = replay_into_planner(spec, store, self.planner)
            except BaseException:
                self.lanes.close()
                raise
            store.set_meta(planner_waits=False)  # as a killed process may have left it (see the loop's ingest)
        except BaseException:
            self._checkpoint_conn.close()
            raise
        observations = store.observations()
        self.tally = Tally.from_observations(spec, observations)
        self.context = LoopContext(spec, store, self.planner, self.lanes, runs, self.tally)
        self.context.reach = dict(store.meta("reach") or {})
        self.context.on_observation = self._observed
        self.context.issued.update(issued)
        self.context.build = record_build(store, spec, self.planner)
        self.lanes.emit = lambda kind, data: self.context.emit(kind, data)
        self.graph = build_graph(saver_for(self._checkpoint_conn))
        self.config = thread_config(self.session_id, spec.budget.experiments)
        try:
            self._recover()
        except BaseException:
            self.lanes.close()
            self._checkpoint_conn.close()
            raise

    # opening -------------------------------------------------------------------------------------------------
    @classmethod
    def create(
        cls, spec_path: Path, folder: Path, spec: SessionSpec | None = None, prior: Path | None = None, **kwargs: Any
    ) -> Session:
        """Start a new session in ``folder`` from the session file at ``spec_path``; warm-started from ``prior`` (a
        bundle or session folder; default the file's ``prior``), see :mod:`agent.provenance.warmstart`.

        Raises:
            SessionError: the folder already holds a session, or ``prior`` holds none.
            SpecError: ``prior`` is another problem (the field named).
        """
        spec = spec or load_spec(spec_path)
        resolve(spec, str(spec_path))  # what it names by import path: bad input before anything is created
        if holds_session(folder):
            raise SessionError(f"{folder} already holds a session", f"use: closedloop resume {folder}")
        source = prior or (folder_path(spec_path, spec.prior) if spec.prior else None)
        earlier = load_prior(spec, source) if source is not None else None
        clear_unfinished(folder)
        if "planner" not in kwargs:
            build_planner(spec)  # refuse a planner that cannot take the problem before anything is created
        # state `new` until the loop starts: a process that dies before that leaves it so, and status says failed
        store = create_store(folder, spec_path, spec, state=SessionState.NEW.value)
        try:
            if earlier is not None:
                store.set_meta(prior=earlier)
                store.log(
                    "prior",
                    f"warm start from {earlier['source']}: {earlier['kept']} prior observation(s) kept, "
                    f"{earlier['dropped']} outside this session's bounds dropped",
                )
            return cls(folder, spec, store, **kwargs)
        except BaseException:
            store.close()
            raise

    @classmethod
    def open(cls, folder: Path, **kwargs: Any) -> Session:
        """Open an existing session folder to resume it.

        Raises:
            SessionError: the folder holds no session, or its store or checkpoints are damaged or foreign.
        """
        if not (folder / SESSION_FILE).exists() and not (folder / STORE_FILE).exists():
            raise SessionError(f"{folder} holds no session", "start one with: closedloop run SESSION.yaml")
        if not (folder / SESSION_FILE).exists():
            raise SessionError(f"{folder / SESSION_FILE}: missing", "restore the session file the session began with")
        spec = load_spec(folder / SESSION_FILE)
        resolve(spec, str(folder / SESSION_FILE))  # what it names by import path: bad input before anything moves
        store = open_store(folder, new=False)
        try:
            check_edits(folder, spec, store)
            return cls(folder, spec, store, **kwargs)
        except BaseException:
            store.close()
            raise

    def _recover(self) -> None:
        """Take what the store says over what the checkpoints say: refuse a store older than them, note whether
        they are behind it (:func:`~agent.loop.checkpoint_gap`; the loop then restarts from the store), and
        ingest every started run that has no observation (recorded interrupted, or from its file if it ended).

        Raises:
            SessionError: the checkpoints recorded more observations than the store holds.
        """
        values = dict(self.graph.get_state(self.config).values)
        where = CHECKPOINT_FILE if isinstance(self._checkpoint_conn, sqlite3.Connection) else "its checkpoints"
        check_high_water(values, self.store, where)
        self._gap = checkpoint_gap(values, self.store)
        collect_dispatched(self.context)

    def _observed(self, observation: Observation) -> None:
        write_seal(self.folder, self.session_id, self.tally.experiments + self.tally.failed + self.tally.interrupted)
        self.on_observation(observation)

    # running -------------------------------------------------------------------------------------------------
    def advance(self, resume: Any = None) -> Checkpoint | None:
        """Run the loop until it ends (returns None) or holds at a checkpoint (returns what it shows)."""
        snapshot = self.graph.get_state(self.config)
        if self._gap is not None and resume is None:
            # the checkpoints are behind the store: the loop goes on from the store, at its last iteration
            self.store.log("rebuild", f"{CHECKPOINT_FILE}: {self._gap}; the loop goes on from the store")
            self._gap = None
            if self._budget_left() <= 0:
                self.store.set_meta(state=SessionState.FINISHED.value, ended=time.time())
                self.store.log("end", SessionState.FINISHED.value)
                return None
            graph_input: Any = {
                "iteration": start_iteration(self.store),
                **{"proposal_ids": [], "in_flight": [], "held": [], "outcome": "", "verdict": ""},
            }
        elif resume is not None:
            graph_input = Command(resume=resume)
        elif snapshot.next:
            graph_input = None  # continue from the last checkpoint (after a crash or a kill)
        elif snapshot.values.get("outcome") == "stopped":
            # an operator stopped it; resuming carries on at the iteration it stopped in, whose proposals that have
            # not run are shown again
            graph_input = {"iteration": start_iteration(self.store), "proposal_ids": [], "outcome": "", "verdict": ""}
            self.store.log("resume", "resumed after a stop")
        elif snapshot.values.get("outcome") and self.store.count_observations() and self._budget_left() <= 0:
            return None  # over: finished
        elif snapshot.values.get("outcome") == "failed":
            return None
        else:
            # a new session, one whose checkpoint names no next step, or one whose budget was raised: start at the
            # store's last iteration (the store is the truth)
            graph_input = {"iteration": start_iteration(self.store), "proposal_ids": [], "outcome": "", "verdict": ""}
        self.store.set_meta(state=SessionState.RUNNING.value, pid=os.getpid())
        try:
            # durability="sync": each step's checkpoint is on disk before the next step starts, so a kill at any
            # moment resumes from the step it was in (with "async", a kill could leave a checkpoint with no next step)
            self.graph.invoke(graph_input, self.config, context=self.context, durability="sync")
        except Exception as exc:
            self.store.set_meta(state=SessionState.FAILED.value, error=f"{type(exc).__name__}: {exc}")
            self.store.log("error", f"{type(exc).__name__}: {exc}")
            raise
        return self._settle()

    def _budget_left(self) -> int:
        return self.context.budget() - self.tally.experiments

    def pending_checkpoint(self) -> Checkpoint | None:
        """The checkpoint the session is holding at, if any (none while the checkpoints are behind the store)."""
        if self._gap is not None:
            return None
        snapshot = self.graph.get_state(self.config)
        for item in snapshot.interrupts:
            return Checkpoint(dict(item.value))
        return None

    def collect_ended(self, checkpoint: Checkpoint) -> None:
        """While the session waits at ``checkpoint`` (the one it holds at): if it is a review, ingest the runs that
        have ended since (pipelined, the runs in flight go on during a review), so that their results are counted
        and shown before the answer. Other checkpoints read them after their answer."""
        if checkpoint.kind == "review":
            collect_ended_runs(self.context)

    def answer(self, decision: Decision | list[Decision]) -> Checkpoint | None:
        """Answer the checkpoint the session holds at (one decision for all, or one per proposal), and run on."""
        if self.pending_checkpoint() is None:
            raise RefusedError("the session is not waiting at a checkpoint")
        decisions = decision if isinstance(decision, list) else [decision]
        return self.advance(resume={"decisions": [d.model_dump(mode="json") for d in decisions]})

    def _settle(self) -> Checkpoint | None:
        checkpoint = self.pending_checkpoint()
        if checkpoint is not None:
            state = SessionState.PAUSED if checkpoint.kind == "paused" else SessionState.WAITING
            self.store.set_meta(state=state.value)
            return checkpoint
        outcome = self.graph.get_state(self.config).values.get("outcome", "finished")
        self.store.set_meta(state=outcome, ended=time.time())
        self.store.log("end", outcome)
        self.context.emit(outcome if outcome in ("stopped", "finished") else "failure", {"outcome": outcome})
        return None

    @property
    def executor(self) -> Executes:
        """The first instrument's executor (the only one, in a session with one instrument)."""
        return self.lanes.first

    @property
    def outcome(self) -> str:
        """The session's state as stored (see :class:`SessionState`)."""
        return str(self.store.meta("state", SessionState.NEW.value))

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Release the RunEngine, the planner and the databases."""
        finalize = getattr(self.planner, "finalize", None)
        if callable(finalize):
            finalize()
        self.lanes.close()
        self._checkpoint_conn.close()
        self.store.close()
