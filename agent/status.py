"""A session's status, read from its folder without opening its instrument (safe while another process runs it)."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Any

from agent.store import SessionStore
from closedloop.errors import SessionError
from closedloop.records import ObservationStatus
from closedloop.spec import Direction, load_spec

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


def summarize(folder: Path) -> dict[str, Any]:
    """The status of a session folder, without opening its instrument (safe while another process runs it)."""
    if not (folder / STORE_FILE).exists():
        raise SessionError(f"{folder} holds no session", "start one with: closedloop run SESSION.yaml")
    spec = load_spec(folder / SESSION_FILE)
    store = SessionStore(folder / STORE_FILE)
    try:
        observations = store.observations()
        ok = [o for o in observations if o.ok]
        objective = next(iter(spec.objectives))
        sign = 1.0 if spec.objectives[objective].direction == Direction.MAXIMIZE else -1.0
        best = max(ok, key=lambda o: sign * o.values[objective], default=None)
        return {
            "folder": str(folder),
            "session_id": store.meta("session_id"),
            "name": spec.name,
            "state": store.meta("state"),
            "experiments": len(ok),
            "failed": sum(1 for o in observations if o.status == ObservationStatus.FAILED),
            "budget": spec.budget.experiments,
            "objective": objective,
            "best_value": best.values[objective] if best else None,
            "best_point": (best.readbacks or best.setpoints) if best else None,
            "best_proposal": best.proposal_id if best else None,
            "decisions": len(store.decisions()),
            "error": store.meta("error"),
        }
    finally:
        store.close()
