"""A session's audit trail: who decided what, when, from where and why, and what the session logged.

Read from the session's store alone, so it needs no running process.
"""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Any

from agent.display import fmt
from agent.store import SessionStore
from agent.store_sql import SqlStore
from agent.stores import STORE_RECORD, open_postgres
from closedloop.errors import SpecError

STORE_FILE = "store.sqlite"


def _when(timestamp: float) -> str:
    return datetime.datetime.fromtimestamp(timestamp).astimezone().isoformat(timespec="seconds")


def audit_trail(folder: Path) -> list[dict[str, Any]]:
    """Every decision and audit-log line of a session, oldest first, read from its store (no process needed).

    Each entry has ``time`` (ISO), ``timestamp``, ``source`` (``decision`` or ``log``), ``who``, ``via``, ``what``,
    ``detail`` and ``why``; a decision's other fields are kept under ``decision``.

    Raises:
        SpecError: the folder holds no session.
    """
    if (Path(folder) / STORE_RECORD).exists():  # kept in PostgreSQL
        store: SqlStore = open_postgres(Path(folder), new=False)
    elif not (Path(folder) / STORE_FILE).exists():
        raise SpecError(f"{folder}: holds no session (no {STORE_FILE})")
    else:
        store = SessionStore(Path(folder) / STORE_FILE)
    try:
        decisions, lines = store.decisions(), store.events()
    finally:
        store.close()
    trail: list[dict[str, Any]] = []
    for iteration, decision in decisions:
        fields = decision.model_dump(mode="json")
        ids = fields.get("proposal_ids") or []
        rest = {k: v for k, v in fields.items() if k not in ("verdict", "proposal_ids", "by", "reason", "at", "via")}
        detail = f"iteration {iteration}" + (f", {', '.join(ids)}" if ids else "")
        detail += "".join(f", {key}={fmt(value)}" for key, value in rest.items() if value not in (None, "", [], {}))
        trail.append(
            {
                "timestamp": decision.at,
                "source": "decision",
                "who": fields.get("by"),
                "via": fields.get("via"),
                "what": str(fields.get("verdict")),
                "detail": detail,
                "why": fields.get("reason") or "",
                "decision": {"iteration": iteration, **fields},
            }
        )
    for timestamp, kind, message in lines:
        entry: dict[str, Any] = {"timestamp": timestamp, "source": "log", "who": None, "via": None}
        trail.append({**entry, "what": kind, "detail": message, "why": ""})
    trail.sort(key=lambda entry: entry["timestamp"])
    for entry in trail:
        entry["time"] = _when(entry["timestamp"])
    return trail
