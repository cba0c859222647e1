"""A session on disk: its folder, its store, its checkpointer, and the loop that advances it.

Everything a session needs to resume lives in its folder: ``session.yaml`` (the session file as given),
``store.sqlite`` (proposals, runs, observations, decisions, audit log), ``checkpoints.sqlite`` (LangGraph's
state), ``runs/`` (one JSON-lines file of documents per run) and ``seal.json`` (how much the store held when it
last changed, so that a store copied without its ``-wal`` file is recognised).

The store is the truth. Both databases carry the session's id; a store that is empty, damaged, foreign or older
than the session's own record of it is refused, and a lost checkpoint database is rebuilt from the store. A session
started with a ``store:`` URL keeps both in PostgreSQL instead (the folder's ``store.json`` names it; see
:mod:`agent.store.backends`). The session's instruments run as :class:`~agent.loop.Lanes`, one run at a time each.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from langgraph.types import Command

from agent.loop import (
    Lane,
    Lanes,
    LoopContext,
    build_graph,
    check_high_water,
    checkpoint_gap,
    collect_dispatched,
    replay_into_planner,
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
    clear_unfinished,
    holds_session,
    open_checkpoints,
    open_store,
    saver_for,
    write_seal,
)
from agent.views.status import SessionState, Tally, suspended_key
from closedloop.changes import spec_changes, spec_fingerprint
from closedloop.errors import InstrumentError, RefusedError, SessionError, SpecError
from closedloop.reach import Limits, reach_summary, reachable_vocs
from closedloop.records import Decision, Observation, ProposalStatus, new_id
from closedloop.resolve import resolve
from closedloop.spec import SessionSpec, folder_path, load_spec
from instruments.executor import InProcessExecutor, build_run_engine
from instruments.protocols import Executes
from instruments.writer import document_writer
from planners.registry import accepts_option, load_planner
from planners.warmup import WarmStart


def thread_config(session_id: str, budget: int) -> dict[str, Any]:
    """LangGraph's run configuration for one session (its thread id), hidden behind one helper."""
    return {"configurable": {"thread_id": session_id}, "recursion_limit": 10_000 + 12 * budget}


@dataclass
class Checkpoint:
    """The loop is holding for a human: what it shows them (see :func:`agent.loop.checkpoint_info`).

    Attributes:
        info: the question, JSON-ready: its ``checkpoint`` id, ``kind`` (``review``, ``points``, ``paused``,
            ``failures``), ``iteration``, ``reason``, ``proposals`` with predictions, the variables' limits, the
            last and best values.
    """

    info: dict[str, Any]

    @property
    def kind(self) -> str:
        """``review``, ``points``, ``paused`` or ``failures``."""
        return str(self.info["kind"])

    @property
    def id(self) -> str:
        """The checkpoint's id (a late answer to an earlier one is recognised by it)."""
        return str(self.info["checkpoint"])

    @property
    def iteration(self) -> int:
        """The loop iteration it holds in."""
        return int(self.info["iteration"])

    @property
    def proposals(self) -> list[dict[str, Any]]:
        """The proposals to review (empty unless ``kind`` is ``review``)."""
        return list(self.info["proposals"])

    @property
    def reason(self) -> str:
        """Why the loop holds."""
        return str(self.info.get("reason", ""))


def build_planner(spec: SessionSpec, device_limits: Mapping[str, Limits] | None = None) -> Any:
    """The session's planner, built from its spec, searching what the devices can reach.

    The session seed is passed when the planner takes one, and variables' ``max_step`` become the planner's
    ``max_travel`` when it takes that and the options do not set it.

    Args:
        spec: the session spec.
        device_limits: variable -> its devices' own limits (:meth:`Lanes.device_limits`): the planner's VOCS
            has each variable's domain cut to them (:func:`closedloop.reach.reachable_vocs`).

    Raises:
        PlannerError: the planner refuses the problem or its options.
        InstrumentError: a variable's search range lies outside its device's limits.
    """
    vocs = reachable_vocs(spec, device_limits or {})
    options = dict(spec.planner.options)
    steps = {name: v.max_step for name, v in spec.variables.items() if v.max_step is not None}
    if steps and "max_travel" not in options and accepts_option(spec.planner.name, "max_travel"):
        # keep proposals within reach of the safety gate's max_step; in a batch, run one after another, two
        # points each within max_step/2 of the start are within max_step of each other
        share = 1.0 if spec.planner.batch_size == 1 else 2.0
        options["max_travel"] = {name: step / share for name, step in steps.items()}
    planner = load_planner(spec.planner.name, vocs, default_seed=spec.seed, **options)
    if spec.planner.initial_design:
        planner = WarmStart(vocs, planner=planner, initial=spec.planner.initial_design, seed=spec.seed)
    return planner


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

    lane_spec = spec.for_instrument(index)
    assert lane_spec.instrument is not None
    writer = document_writer(
        arrays=spec.arrays, arrays_dir=runs, publish=spec.publish, tiled=spec.tiled, on_tiled_error=tiled_failed
    )
    try:
        if lane_spec.instrument.queueserver is not None:
            from instruments.queueserver import QueueServerExecutor

            return QueueServerExecutor(lane_spec, session_id, writer=writer)
        run_engine = build_run_engine(loop) if loop is not None else None
        scan_id = int(store.meta("scan_id", 0))
        return InProcessExecutor(lane_spec, session_id, run_engine, scan_id=scan_id, on_event=on_event, writer=writer)
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


def check_edits(folder: Path, spec: SessionSpec, store: SqlStore) -> None:
    """Compare the session file with the spec the session began with: the budget, review and failure policy may
    change (each change goes into the audit log), nothing else.

    Raises:
        SpecError: the file changed in a way that would mix two experiments under one session; names the fields.
    """
    stored = store.meta("spec")
    if stored is None:  # a session made before specs were recorded: record this one
        store.set_meta(spec=spec.model_dump(mode="json"), spec_fingerprint=spec_fingerprint(spec))
        return
    if store.meta("spec_fingerprint") == spec_fingerprint(spec):
        return
    changes = spec_changes(SessionSpec.model_validate(stored), spec)
    if changes.refused:
        more = f" (and {len(changes.refused) - 3} more)" if len(changes.refused) > 3 else ""
        raise SpecError(
            f"{folder / SESSION_FILE}: changed since the session began: {'; '.join(changes.refused[:3])}{more}",
            "only budget, review and failures may change; restore the file, or start a new session",
        )
    for change in changes.allowed:
        store.log("edit", f"session file edited: {change}")
    values: dict[str, Any] = {"spec": spec.model_dump(mode="json"), "spec_fingerprint": spec_fingerprint(spec)}
    if spec.budget.experiments != SessionSpec.model_validate(stored).budget.experiments:
        values["budget"] = spec.budget.experiments
    store.set_meta(**values)


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
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(spec_path, folder / SESSION_FILE)
        session_id = new_id("s")
        store = open_store(folder, new=True, url=spec.store, session_id=session_id)
        store.set_meta(
            session_id=session_id,
            name=spec.name,
            state=SessionState.NEW.value,
            pid=os.getpid(),  # a process that dies before the session starts leaves it `new`: status says failed
            created=time.time(),
            budget=spec.budget.experiments,
            spec=spec.model_dump(mode="json"),
            spec_fingerprint=spec_fingerprint(spec),
        )
        if earlier is not None:
            store.set_meta(prior=earlier)
            store.log(
                "prior",
                f"warm start from {earlier['source']}: {earlier['kept']} prior observation(s) kept, "
                f"{earlier['dropped']} outside this session's bounds dropped",
            )
        write_seal(folder, session_id, 0)
        try:
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
    def _start_iteration(self) -> int:
        """Where a loop with no checkpoint starts: the store's last iteration, or the next one when it is done."""
        if self.store.count_proposals() == 0:
            return 0
        last = self.store.max_iteration()
        open_ = [
            p
            for p in self.store.proposals(iteration=last)
            if p.status in (ProposalStatus.PROPOSED, ProposalStatus.APPROVED)
        ]
        return last if open_ else last + 1

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
                "iteration": self._start_iteration(),
                **{"proposal_ids": [], "in_flight": [], "held": [], "outcome": "", "verdict": ""},
            }
        elif resume is not None:
            graph_input = Command(resume=resume)
        elif snapshot.next:
            graph_input = None  # continue from the last checkpoint (after a crash or a kill)
        elif snapshot.values.get("outcome") == "stopped":
            # an operator stopped it; resuming carries on at the iteration it stopped in, whose proposals that have
            # not run are shown again
            graph_input = {"iteration": self._start_iteration(), "proposal_ids": [], "outcome": "", "verdict": ""}
            self.store.log("resume", "resumed after a stop")
        elif snapshot.values.get("outcome") and self.store.count_observations() and self._budget_left() <= 0:
            return None  # over: finished
        elif snapshot.values.get("outcome") == "failed":
            return None
        else:
            # a new session, one whose checkpoint names no next step, or one whose budget was raised: start at the
            # store's last iteration (the store is the truth)
            graph_input = {"iteration": self._start_iteration(), "proposal_ids": [], "outcome": "", "verdict": ""}
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
