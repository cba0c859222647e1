"""``closedloop sessions PATH``: every session under a folder, newest activity first, read from the stores only
(safe while other processes run them).

A folder holds a session when :func:`agent.store.folder.holds_session` says so; folders inside a session folder (its
``runs/``) are not searched. A session whose store cannot be read is listed with its state ``unreadable`` and why.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from agent.store.folder import holds_session
from agent.views.status import folder_spec, session_store, summarize_store
from closedloop.errors import ClosedLoopError, SpecError

#: The columns of the listing, in order.
COLUMNS = ("name", "session_id", "state", "experiments", "best_value", "planner", "last_activity", "folder")


def session_folders(root: Path) -> Iterator[Path]:
    """Every folder under ``root`` (``root`` included) that holds a session, not looking inside session folders.

    Raises:
        SpecError: ``root`` is not a folder (one line naming it).
    """
    if not root.is_dir():
        raise SpecError(f"PATH: {root} is not a folder")
    for here, folders, _ in os.walk(root):
        path = Path(here)
        if holds_session(path):
            folders[:] = []
            yield path
        else:
            folders[:] = sorted(name for name in folders if not name.startswith("."))


def describe(folder: Path) -> dict[str, Any]:
    """One session's row (see :data:`COLUMNS`); ``last_activity`` is the time of its last audit-log line (or its
    creation), as seconds since the epoch."""
    row: dict[str, Any] = dict.fromkeys(COLUMNS)
    row["folder"] = str(folder)
    try:
        store = session_store(folder)
    except ClosedLoopError as exc:
        return {**row, "state": "unreadable", "error": str(exc)}
    try:
        spec = folder_spec(folder, store)
        status = summarize_store(folder, spec, store)
        last = store.last_event_time()
        row.update(
            name=status["name"],
            session_id=status["session_id"],
            state=status["state"],
            experiments=status["experiments"],
            best_value=status["best_value"],
            planner=spec.planner.name,
            last_activity=last if last is not None else store.meta("created"),
        )
    except ClosedLoopError as exc:
        return {**row, "state": "unreadable", "error": str(exc)}
    finally:
        store.close()
    return row


def list_sessions(root: Path) -> list[dict[str, Any]]:
    """Every session under ``root`` (:func:`describe`), the one with the newest activity first.

    Raises:
        SpecError: ``root`` is not a folder.
    """
    rows = [describe(folder) for folder in session_folders(root)]
    return sorted(rows, key=lambda row: -(row["last_activity"] or 0.0))
