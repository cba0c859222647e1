"""A session's status, read from its folder without opening its instrument (safe while another process runs it)."""

from __future__ import annotations

import os
from enum import Enum
from pathlib import Path
from typing import Any

from agent.store import SessionStore
from closedloop.errors import SessionError
from closedloop.problem import Direction
from closedloop.records import Observation, ObservationStatus
from closedloop.spec import SessionSpec, load_spec

SESSION_FILE = "session.yaml"
STORE_FILE = "store.sqlite"


class SessionState(str, Enum):
    """Where a session is, as ``closedloop status`` reports it."""

    NEW = "new"
    RUNNING = "running"
    WAITING = "waiting"
    FINISHED = "finished"
    STOPPED = "stopped"
    FAILED = "failed"
    INTERRUPTED = "interrupted"  # the process died while running: `closedloop resume` carries on


def _live_state(state: str | None, pid: int | None) -> str | None:
    """``running`` only while the process that runs the session is alive; otherwise ``interrupted``."""
    if state != SessionState.RUNNING.value or pid is None:
        return state
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return SessionState.INTERRUPTED.value
    except PermissionError:
        return state
    return state


def pareto_front(spec: SessionSpec, observations: list[Observation]) -> list[Observation]:
    """The observations no other observation dominates on every objective (ok, feasible ones expected)."""
    signs = {name: 1.0 if o.direction == Direction.MAXIMIZE else -1.0 for name, o in spec.objectives.items()}

    def scores(o: Observation) -> list[float]:
        return [signs[name] * o.values[name] for name in signs]

    def dominates(a: list[float], b: list[float]) -> bool:
        return all(x >= y for x, y in zip(a, b, strict=True)) and any(x > y for x, y in zip(a, b, strict=True))

    scored = [(o, scores(o)) for o in observations]
    return [o for o, s in scored if not any(dominates(t, s) for _, t in scored)]


def summarize(folder: Path) -> dict[str, Any]:
    """The status of a session folder, without opening its instrument (safe while another process runs it)."""
    if not (folder / STORE_FILE).exists():
        raise SessionError(f"{folder} holds no session", "start one with: closedloop run SESSION.yaml")
    spec = load_spec(folder / SESSION_FILE)
    store = SessionStore(folder / STORE_FILE)
    try:
        return summarize_store(folder, spec, store)
    finally:
        store.close()


def summarize_store(folder: Path, spec: SessionSpec, store: SessionStore) -> dict[str, Any]:
    """The status of a session whose spec and store are already open (what :func:`summarize` reports)."""
    observations = store.observations()
    ok = [o for o in observations if o.ok]
    feasible = [o for o in ok if spec.feasible(o.values)]
    objective = next(iter(spec.objectives))
    sign = 1.0 if spec.objectives[objective].direction == Direction.MAXIMIZE else -1.0
    best = max(feasible, key=lambda o: sign * o.values[objective], default=None)
    front = pareto_front(spec, feasible) if len(spec.objectives) > 1 else []
    return {
        "folder": str(folder),
        "session_id": store.meta("session_id"),
        "name": spec.name,
        "state": _live_state(store.meta("state"), store.meta("pid")),
        "experiments": len(ok),
        "infeasible": len(ok) - len(feasible),
        "failed": sum(1 for o in observations if o.status == ObservationStatus.FAILED),
        "budget": spec.budget.experiments,
        "objective": objective,
        "best_value": best.values[objective] if best else None,
        "best_point": (best.readbacks or best.setpoints) if best else None,
        "best_proposal": best.proposal_id if best else None,
        "pareto_front": [
            {"proposal": o.proposal_id, "point": o.readbacks or o.setpoints, "values": o.values} for o in front
        ],
        "decisions": len(store.decisions()),
        "queued": len(store.queued_points()),
        "error": store.meta("error"),
    }
