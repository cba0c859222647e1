"""A session on disk: its folder, its store, its checkpointer, and the loop that advances it.

Everything a session needs to resume lives in its folder: ``session.yaml`` (the session file as given),
``store.sqlite`` (proposals, runs, observations, decisions, audit log), ``checkpoints.sqlite`` (LangGraph's
state) and ``runs/`` (one JSON-lines file of documents per run).
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.types import Command

from agent.graph import LoopContext, build_graph
from agent.status import SESSION_FILE, STORE_FILE, SessionState
from agent.store import SessionStore, dumps
from closedloop.errors import SessionError
from closedloop.records import Decision, Observation, new_id
from closedloop.spec import SessionSpec, load_spec
from instruments.executor import InProcessExecutor
from planners.registry import accepts_option, load_planner
from planners.warmup import WarmStart

CHECKPOINT_FILE = "checkpoints.sqlite"


def thread_config(session_id: str, budget: int) -> dict[str, Any]:
    """LangGraph's run configuration for one session (its thread id), hidden behind one helper."""
    return {"configurable": {"thread_id": session_id}, "recursion_limit": 50 + 12 * budget}


@dataclass
class Checkpoint:
    """The loop is holding for a human: what it shows them.

    Attributes:
        iteration: the loop iteration.
        proposals: the proposals to review (JSON), empty when ``kind`` is ``points``.
        kind: ``review`` (approve, reject or stop the proposals) or ``points`` (the planner has no points left:
            queue some with ``closedloop add`` and go on, or stop).
        reason: why the loop holds, for ``points``.
    """

    iteration: int
    proposals: list[dict[str, Any]]
    kind: str = "review"
    reason: str = ""


def build_planner(spec: SessionSpec) -> Any:
    """The session's planner, built from its spec.

    The session seed is passed when the planner takes one, and variables' ``max_step`` become the planner's
    ``max_travel`` when it takes that and the options do not set it.

    Raises:
        PlannerError: the planner refuses the problem or its options.
    """
    vocs = spec.vocs()
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


class Session:
    """One session folder, opened for running.

    Use :meth:`create` for a new session and :meth:`open` to resume one. :meth:`advance` runs the loop until it
    ends or reaches a checkpoint; :meth:`answer` gives the checkpoint its decision and runs on.
    """

    def __init__(self, folder: Path, spec: SessionSpec, on_observation: Callable[[Observation], None] | None = None):
        self.folder = folder
        self.spec = spec
        (folder / "runs").mkdir(parents=True, exist_ok=True)
        self.store = SessionStore(folder / STORE_FILE)
        self.session_id: str = self.store.meta("session_id") or new_id("s")
        if self.store.meta("session_id") is None:
            self.store.set_meta(
                session_id=self.session_id,
                name=spec.name,
                state=SessionState.NEW.value,
                created=time.time(),
                budget=spec.budget.experiments,
            )
        self._on_observation = on_observation or (lambda observation: None)
        self.planner = build_planner(spec)
        self._replay_into_planner()
        self.executor = InProcessExecutor(spec, self.session_id)
        self._checkpoint_conn = sqlite3.connect(folder / CHECKPOINT_FILE, check_same_thread=False)
        # WAL with synchronous=NORMAL: a committed checkpoint survives the process being killed; only a power cut
        # can lose the last few (as for the store)
        self._checkpoint_conn.execute("PRAGMA journal_mode=WAL")
        self._checkpoint_conn.execute("PRAGMA synchronous=NORMAL")
        self.context = LoopContext(spec, self.store, self.planner, self.executor, self._observed)
        self.graph = build_graph(self.context, SqliteSaver(self._checkpoint_conn))
        self.config = thread_config(self.session_id, spec.budget.experiments)

    # opening -------------------------------------------------------------------------------------------------
    @classmethod
    def create(cls, spec_path: Path, folder: Path, spec: SessionSpec | None = None, **kwargs: Any) -> Session:
        """Start a new session in ``folder`` from the session file at ``spec_path``.

        Raises:
            SessionError: the folder already holds a session.
        """
        spec = spec or load_spec(spec_path)
        if (folder / STORE_FILE).exists():
            raise SessionError(f"{folder} already holds a session", f"use: closedloop resume {folder}")
        build_planner(spec)  # refuse a planner that cannot take the problem before anything is created
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(spec_path, folder / SESSION_FILE)
        return cls(folder, spec, **kwargs)

    @classmethod
    def open(cls, folder: Path, **kwargs: Any) -> Session:
        """Open an existing session folder to resume it.

        Raises:
            SessionError: the folder holds no session.
        """
        if not (folder / STORE_FILE).exists() or not (folder / SESSION_FILE).exists():
            raise SessionError(f"{folder} holds no session", "start one with: closedloop run SESSION.yaml")
        return cls(folder, load_spec(folder / SESSION_FILE), **kwargs)

    def _replay_into_planner(self) -> None:
        """Rebuild the planner's knowledge from the store: every observation, as points it did not make."""
        results = [observation.as_result() for observation in self.store.observations()]
        if results:
            self.planner.ingest(results)

    def _observed(self, observation: Observation) -> None:
        path = self.folder / "runs" / f"{observation.proposal_id}.jsonl"
        stored = self.store.run(observation.proposal_id)
        if stored is not None and not path.exists():
            path.write_text("".join(dumps({"name": n, "doc": d}) + "\n" for n, d in stored[0]))
        self._on_observation(observation)

    # running -------------------------------------------------------------------------------------------------
    def advance(self, resume: Any = None) -> Checkpoint | None:
        """Run the loop until it ends (returns None) or holds at a checkpoint (returns what it shows)."""
        snapshot = self.graph.get_state(self.config)
        if resume is not None:
            graph_input: Any = Command(resume=resume)
        elif snapshot.next:
            graph_input = None  # continue from the last checkpoint (after a crash or a kill)
        elif snapshot.values.get("outcome") == "stopped":
            # an operator stopped it; resuming carries on at the iteration it stopped in, whose proposals that have
            # not run are shown again
            iteration = snapshot.values.get("iteration", 0)
            graph_input = {"iteration": iteration, "proposal_ids": [], "outcome": "", "verdict": ""}
            self.store.log("resume", "resumed after a stop")
        elif snapshot.values.get("outcome"):
            return None  # over: finished, or failed
        else:
            # a new session, or one whose last checkpoint names no next step: start the loop at the iteration the
            # checkpoint holds; propose reuses that iteration's proposals that have not run yet
            graph_input = {"iteration": snapshot.values.get("iteration", 0), "proposal_ids": []}
        self.store.set_meta(state=SessionState.RUNNING.value, pid=os.getpid())
        try:
            # durability="sync": each step's checkpoint is on disk before the next step starts, so a kill at any
            # moment resumes from the step it was in (with "async", a kill could leave a checkpoint with no next step)
            self.graph.invoke(graph_input, self.config, durability="sync")
        except Exception as exc:
            self.store.set_meta(state=SessionState.FAILED.value, error=f"{type(exc).__name__}: {exc}")
            self.store.log("error", f"{type(exc).__name__}: {exc}")
            raise
        return self._settle()

    def pending_checkpoint(self) -> Checkpoint | None:
        """The checkpoint the session is holding at, if any."""
        snapshot = self.graph.get_state(self.config)
        for item in snapshot.interrupts:
            value = item.value
            return Checkpoint(
                iteration=value["iteration"],
                proposals=value["proposals"],
                kind=value.get("kind", "review"),
                reason=value.get("reason", ""),
            )
        return None

    def answer(self, decision: Decision) -> Checkpoint | None:
        """Answer the checkpoint the session holds at, and run on."""
        if self.pending_checkpoint() is None:
            raise SessionError("the session is not waiting at a checkpoint")
        return self.advance(resume=decision.model_dump(mode="json"))

    def _settle(self) -> Checkpoint | None:
        checkpoint = self.pending_checkpoint()
        if checkpoint is not None:
            self.store.set_meta(state=SessionState.WAITING.value)
            return checkpoint
        outcome = self.graph.get_state(self.config).values.get("outcome", "finished")
        self.store.set_meta(state=outcome, ended=time.time())
        self.store.log("end", outcome)
        return None

    @property
    def outcome(self) -> str:
        """The session's state as stored (see :class:`SessionState`)."""
        return str(self.store.meta("state", SessionState.NEW.value))

    def close(self) -> None:
        """Release the RunEngine, the planner and the databases."""
        finalize = getattr(self.planner, "finalize", None)
        if callable(finalize):
            finalize()
        self.executor.close()
        self._checkpoint_conn.close()
        self.store.close()
