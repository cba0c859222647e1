"""A session's status, read from its folder without opening its instrument (safe while another process runs it)."""

from __future__ import annotations

import datetime
import time
from enum import Enum
from pathlib import Path
from typing import Any

from agent.store import (
    SessionFolder,
    SqlStore,
    open_remote,
    open_store,
    process_alive,
    recorded_spec,
)
from closedloop.errors import SessionError
from closedloop.problem import Direction
from closedloop.records import Observation, ObservationStatus
from closedloop.spec import SessionSpec, load_spec


class SessionState(str, Enum):
    """Where a session is, as ``closedloop status`` reports it."""

    NEW = "new"
    RUNNING = "running"
    WAITING = "waiting"
    FINISHED = "finished"
    STOPPED = "stopped"
    FAILED = "failed"
    PAUSED = "paused"
    SUSPENDED = "suspended"  # running, but a suspender holds the run (no beam)
    INTERRUPTED = "interrupted"  # the process died while running: `closedloop resume` carries on


def _live_state(state: str | None, pid: int | None, suspended: bool = False, host: str | None = None) -> str | None:
    """``running`` only while the process that runs the session is alive (``suspended`` while a suspender holds
    its run); otherwise ``interrupted``. A process on another ``host`` (a store shared in PostgreSQL) cannot be
    checked from here: its recorded state stands."""
    if state == SessionState.NEW.value and pid is not None and not process_alive(pid, host):
        return SessionState.FAILED.value  # the process ended before the session started (a factory's os._exit)
    if state != SessionState.RUNNING.value or pid is None:
        return state
    if not process_alive(pid, host):
        return SessionState.INTERRUPTED.value
    return SessionState.SUSPENDED.value if suspended else state


NEVER_STARTED = "the session process ended before the session started (it never ran an experiment)"
"""The error status gives a session whose process died while it was being set up."""


LIVE_STATES = (SessionState.RUNNING.value, SessionState.SUSPENDED.value, SessionState.WAITING.value, "paused")


def pareto_front(spec: SessionSpec, observations: list[Observation]) -> list[Observation]:
    """The observations no other observation dominates on every objective (ok, feasible ones expected)."""
    signs = {name: 1.0 if o.direction == Direction.MAXIMIZE else -1.0 for name, o in spec.objectives.items()}

    def scores(o: Observation) -> list[float]:
        return [signs[name] * o.values[name] for name in signs]

    def dominates(a: list[float], b: list[float]) -> bool:
        return all(x >= y for x, y in zip(a, b, strict=True)) and any(x > y for x, y in zip(a, b, strict=True))

    scored = [(o, scores(o)) for o in observations]
    return [o for o, s in scored if not any(dominates(t, s) for _, t in scored)]


class Tally:
    """Running counts of a session (experiments, failures, best so far, last values), updated per observation.

    Built once from the store when a session opens, then kept up to date without reading the store again, so
    the progress display costs the same at the 3,000th experiment as at the first.
    """

    def __init__(self, spec: SessionSpec) -> None:
        self.spec = spec
        self.objective = next(iter(spec.objectives))
        self._sign = 1.0 if spec.objectives[self.objective].direction == Direction.MAXIMIZE else -1.0
        self.experiments = 0
        self.infeasible = 0
        self.missing = 0  # ok, with a constraint output missing: its feasibility is not known
        self.failed = 0
        self.interrupted = 0
        self.best_observation: Observation | None = None
        self.last_observation: Observation | None = None

    @classmethod
    def from_observations(cls, spec: SessionSpec, observations: list[Observation]) -> Tally:
        """A tally of the observations so far."""
        tally = cls(spec)
        for observation in observations:
            tally.add(observation)
        return tally

    def add(self, observation: Observation) -> bool:
        """Count one new observation; True when it is the new best."""
        self.last_observation = observation
        if observation.status == ObservationStatus.FAILED:
            self.failed += 1
        elif observation.status in (ObservationStatus.INTERRUPTED, ObservationStatus.ABORTED):
            self.interrupted += 1
        if not observation.ok:
            return False
        self.experiments += 1
        if not self.spec.feasible(observation.values):
            if observation.missing:
                self.missing += 1
            else:
                self.infeasible += 1
            return False
        best = self.best_observation
        if best is None or self._sign * observation.values[self.objective] > self._sign * best.values[self.objective]:
            self.best_observation = observation
            return True
        return False

    @property
    def best_value(self) -> float | None:
        """The best feasible value of the first objective so far."""
        return self.best_observation.values[self.objective] if self.best_observation else None

    @property
    def best(self) -> dict[str, Any] | None:
        """The best observation so far, for people: proposal, values and point."""
        o = self.best_observation
        if o is None:
            return None
        return {"proposal": o.proposal_id, "values": o.values, "point": o.readbacks or o.setpoints}

    @property
    def last(self) -> dict[str, Any] | None:
        """The last observation, for people: proposal, status, values, the outputs missing and why, error."""
        o = self.last_observation
        if o is None:
            return None
        missing = {name: gap.describe() for name, gap in o.missing.items()}
        return {
            "proposal": o.proposal_id,
            "status": o.status.value,
            "values": o.values,
            "missing": missing,
            "error": o.error,
        }


def summarize(folder: Path) -> dict[str, Any]:
    """The status of a session folder, without opening its instrument (safe while another process runs it)."""
    store = session_store(folder)
    try:
        return summarize_store(folder, folder_spec(folder, store), store)
    finally:
        store.close()


def session_store(folder: Path) -> SqlStore:
    """The store of the session in ``folder``, opened to read (close it after).

    Raises:
        SessionError: the folder holds no session, or its store is damaged.
    """
    if not SessionFolder(folder).has_store:
        raise SessionError(f"{folder} holds no session", "start one with: closedloop run SESSION.yaml")
    return open_store(folder, new=False)


def folder_spec(folder: Path, store: SqlStore) -> SessionSpec:
    """The spec of the session in ``folder`` (its store open), read without importing its planner or instrument."""
    where = SessionFolder(folder)
    if not where.session_file.exists() and where.in_postgres:
        return recorded_spec(store)  # a folder attached to a session kept in PostgreSQL
    return load_spec(where.session_file)  # validation imports nothing: no planner or instrument package needed


def summarize_store(folder: Path, spec: SessionSpec, store: SqlStore) -> dict[str, Any]:
    """The status of a session whose spec and store are already open (what :func:`summarize` reports)."""
    observations = store.observations()
    tally = Tally.from_observations(spec, observations)
    return summary(folder, spec, store, tally, observations)


def summary(
    folder: Path, spec: SessionSpec, store: SqlStore, tally: Tally, observations: list[Observation] | None = None
) -> dict[str, Any]:
    """The status of a session from its running tally; the Pareto front only when the observations are given."""
    objective = tally.objective
    best = tally.best_observation
    front: list[Observation] = []
    if observations is not None and len(spec.objectives) > 1:
        front = pareto_front(spec, [o for o in observations if o.ok and spec.feasible(o.values)])
    held = suspensions(spec, store)
    every_lane_held = len(held) == len(spec.lanes())
    state = _live_state(store.meta("state"), store.meta("pid"), every_lane_held, store.meta("host"))
    held_at = (SessionState.WAITING.value, SessionState.PAUSED.value)
    waiting = store.meta("waiting") if state in held_at else None
    return {
        "folder": str(folder),
        "session_id": store.meta("session_id"),
        "name": spec.name,
        "state": state,
        "store": store.location,
        "experiments": tally.experiments,
        "infeasible": tally.infeasible,
        "missing": tally.missing,
        "failed": tally.failed,
        "interrupted": tally.interrupted,
        "budget": int(store.meta("budget", spec.budget.experiments)),
        "objective": objective,
        "best_value": best.values[objective] if best else None,
        "best_point": (best.readbacks or best.setpoints) if best else None,
        "best_proposal": best.proposal_id if best else None,
        "pareto_front": [
            {"proposal": o.proposal_id, "point": o.readbacks or o.setpoints, "values": o.values} for o in front
        ],
        "decisions": store.count_decisions(),
        "queued": store.count_queued(),
        "prior_observations": int((store.meta("prior") or {}).get("kept", 0)),  # a warm start's (agent.provenance)
        "instruments": instrument_states(spec, store, live=state in LIVE_STATES, held=held),
        "reach": store.meta("reach") or {},
        "planner_recoveries": store.meta("planner_recoveries") or {},
        "waiting": waiting_info(waiting),
        "error": store.meta("error") or (NEVER_STARTED if state == "failed" and store.meta("state") == "new" else None),
    }


def waiting_info(waiting: dict[str, Any] | None) -> dict[str, Any] | None:
    """What a waiting or paused session holds at (the store's meta ``waiting``, as the session process last recorded
    it; kept after the process ends, so a session left waiting still says since when):
    ``{"checkpoint", "kind", "proposals", "since"}`` (``since`` ISO time with its offset), or None."""
    if not waiting:
        return None
    keys = ("checkpoint", "kind", "proposals", "since")
    return {key: waiting.get(key) for key in keys}


def waiting_text(waiting: dict[str, Any] | None, now: float | None = None) -> str:
    """``waiting for the review of p-1, p-2 since 14:02:11 (4 min)`` (empty for None)."""
    if not waiting:
        return ""
    what = {
        "review": "the review of " + ", ".join(waiting.get("proposals") or []),
        "points": "points to measure (the planner has none left)",
        "paused": "a resume (paused)",
        "failures": "an answer after failed runs",
    }.get(str(waiting.get("kind")), f"an answer at checkpoint {waiting.get('checkpoint')}")
    try:
        since = datetime.datetime.fromisoformat(str(waiting.get("since")))
    except ValueError:
        return f"waiting for {what}"
    minutes = int(((now if now is not None else time.time()) - since.timestamp()) // 60)
    return f"waiting for {what} since {since.strftime('%H:%M:%S')} ({minutes} min)"


def recoveries_text(recoveries: dict[str, dict[str, int]] | None) -> str:
    """``recovered 2 numerical failures (restarts 1, space-filling 1; kinds: nan_gradient 2)``, what the planner did
    about numerical failures, from a status's ``planner_recoveries`` (empty when there were none)."""
    by_kind = (recoveries or {}).get("recoveries") or {}
    by_step = (recoveries or {}).get("recovered_by") or {}
    total = sum(by_kind.values())
    if not total:
        return ""
    kinds = ", ".join(f"{k} {v}" for k, v in sorted(by_kind.items()) if v)
    steps = ", ".join(f"{k} {v}" for k, v in sorted(by_step.items()) if v)
    return f"recovered {total} numerical failure{'s' if total > 1 else ''} ({steps}; kinds: {kinds})"


PLANNER_WAITS = "the planner makes one point at a time: it waits for a run to end"
"""Why an instrument is idle while another runs, with a planner that makes one point at a time."""


def suspended_key(instrument: str) -> str:
    """The store's meta key that holds why a suspender holds ``instrument``'s runs (None while it does not)."""
    return f"suspended:{instrument}"


def suspensions(spec: SessionSpec, store: SqlStore) -> dict[str, str]:
    """The instruments whose runs a suspender holds now, with why (``ring.current 12 < 100``)."""
    held = {name: store.meta(suspended_key(name)) for name, _ in spec.lanes()}
    return {name: str(why) for name, why in held.items() if why}


def instrument_states(
    spec: SessionSpec, store: SqlStore, live: bool = True, held: dict[str, str] | None = None
) -> dict[str, dict[str, Any]]:
    """Each instrument's state (``idle``, ``running`` with its proposal, ``suspended`` with why and the proposal
    it holds, ``failed`` with why), as the running session last recorded it; ``idle`` for one not used yet, and
    none ``running`` or ``suspended`` unless the session is ``live``. ``waiting`` says why an idle one waits, when
    the loop holds it (:data:`PLANNER_WAITS`); ``suspended`` why a suspender holds its runs."""
    recorded = store.meta("instruments") or {}
    held = suspensions(spec, store) if held is None else held
    planner_waits = live and bool(store.meta("planner_waits", False))
    states = {}
    for name, _ in spec.lanes():
        entry = recorded.get(name) or {}
        state = entry.get("state", "idle")
        state = "idle" if state == "running" and not live else state
        suspended = held.get(name) if live and state != "failed" else None
        states[name] = {
            "state": "suspended" if suspended else state,
            "proposal": entry.get("proposal"),
            "error": entry.get("error"),
            "waiting": PLANNER_WAITS if planner_waits and state == "idle" else None,
            "suspended": suspended,
        }
    return states


def summarize_remote(url: str, name_or_id: str) -> dict[str, Any]:
    """The status of a session read from its PostgreSQL store alone (no folder): what ``closedloop status`` shows.

    Raises:
        SessionError: the store cannot be reached, or holds no such session.
    """
    store = open_remote(url, name_or_id)
    try:
        return summarize_store(Path(str(store.meta("folder", "-"))), recorded_spec(store), store)
    finally:
        store.close()
