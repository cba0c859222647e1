"""A session's audit trail: who decided what, when, from where and why, and what the session logged.

Read from the session's store alone, so it needs no running process. An operator's action (pause, resume, stop,
budget, points queued, a refused request) is logged with :func:`action` as a small JSON object naming who, via
and why; lines logged before that, or by the loop, are read as they are (``... by NAME via VIA`` names who).
"""

from __future__ import annotations

import datetime
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from agent.store import STORE_FILE, SessionFolder, SqlStore, open_store
from agent.views.display import fmt
from agent.views.numbers import folder_units, number, point
from closedloop.errors import SpecError

SESSION = "session"
"""Who the trail names for what the session did by itself."""
_BY = re.compile(r"\bby (?P<who>[^\s,:;()]+) via (?P<via>[^\s,:;()]+)|, by (?P<by>[^\s,:;()]+)$")
_DECISION_ECHO = re.compile(r"^\w+ p-\S+ by \S+ via \S+$")  # the loop's log line of a decision also on record


def action(text: str, by: str, via: str, why: str = "") -> str:
    """The audit-log message of an operator's action: what was done, by whom, from where and why (JSON)."""
    return json.dumps({"text": text, "by": by, "via": via, "why": why})


def _when(timestamp: float) -> str:
    return datetime.datetime.fromtimestamp(timestamp).astimezone().isoformat(timespec="seconds")


def _open(folder: Path) -> SqlStore:
    if not SessionFolder(folder).has_store:
        raise SpecError(f"{folder}: holds no session (no {STORE_FILE})")
    return open_store(folder, new=False)  # checked, as every store is opened


def audit_trail(folder: Path) -> list[dict[str, Any]]:
    """Every decision and audit-log line of a session, oldest first, read from its store (no process needed).

    Each entry has ``time`` (ISO, local with its offset), ``timestamp``, ``source`` (``decision`` or ``log``),
    ``who``, ``via``, ``what``, ``detail`` (words and numbers with units, for people) and ``why``; a decision's
    fields are kept under ``decision``, a logged JSON object under ``data``. ``who`` is ``session`` for what the
    session did by itself.

    Raises:
        SpecError: the folder holds no session.
        SessionError: its store is damaged, or older than the folder (see :func:`agent.store.open_store`).
    """
    store = _open(folder)
    try:
        decisions, lines = store.decisions(), store.events()
    finally:
        store.close()
    units = folder_units(Path(folder))
    trail = [_decision(iteration, decision, units) for iteration, decision in decisions]
    resumed_by = None
    for timestamp, kind, message in lines:
        if kind == "decision" and _DECISION_ECHO.match(message):
            continue  # the decision itself is on record, with its who, via and why
        entry = {"timestamp": timestamp, "source": "log", "what": kind, **_logged(kind, message, units)}
        if kind == "resume":
            if resumed_by is not None and message == f"approve after a pause, by {resumed_by}":
                resumed_by = None
                continue  # the loop's echo of a resume recorded as an operator's action just before
            resumed_by = entry["who"] if entry["via"] else None
        trail.append(entry)
    trail.sort(key=lambda entry: entry["timestamp"])
    for entry in trail:
        entry["time"] = _when(entry["timestamp"])
    return trail


def _decision(iteration: int, decision: Any, units: Mapping[str, str | None]) -> dict[str, Any]:
    fields = decision.model_dump(mode="json")
    ids = fields.get("proposal_ids") or []
    detail = ", ".join(ids) if ids else ("the session" if fields["verdict"] == "stop" else "all shown")
    if fields.get("setpoints"):
        detail += f" to {point(fields['setpoints'], units, ', ')}"
    return {
        "timestamp": decision.at,
        "source": "decision",
        "who": fields.get("by"),
        "via": fields.get("via"),
        "what": str(fields.get("verdict")),
        "detail": f"{detail} (iteration {iteration})",
        "why": fields.get("reason") or "",
        "decision": {"iteration": iteration, **fields},
    }


def _logged(kind: str, message: str, units: Mapping[str, str | None]) -> dict[str, Any]:
    """who, via, detail and why of one audit-log line (and ``data`` when it holds a JSON object)."""
    data: Any = None
    if message.startswith("{"):
        try:
            data = json.loads(message)
        except ValueError:
            data = None
    if isinstance(data, dict) and "text" in data and "by" in data:  # an operator's action
        return {"who": data["by"], "via": data.get("via"), "detail": str(data["text"]), "why": data.get("why") or ""}
    if isinstance(data, dict):
        detail = _question(data, units) if kind == "question" else _words(data)
        return {"who": SESSION, "via": None, "detail": detail, "why": "", "data": data}
    named = _BY.search(message)
    if named is not None:
        return {"who": named["who"] or named["by"], "via": named["via"], "detail": message, "why": ""}
    return {"who": SESSION, "via": None, "detail": message, "why": ""}


def _question(asked: Mapping[str, Any], units: Mapping[str, str | None]) -> str:
    """What a checkpoint asked: each proposal's setpoints with units, why, and the model's prediction."""
    parts = []
    for proposal in asked.get("proposals") or []:
        text = f"{proposal.get('id')}: {point(proposal.get('setpoints') or {}, units, ', ')}"
        text += f" ({proposal.get('why')})" if proposal.get("why") else ""
        prediction = proposal.get("prediction")
        if prediction:
            guesses = [f"{name} {number(p['mean'], 4)} ± {number(p['std'], 2)}" for name, p in prediction.items()]
            text += "; predicted " + ", ".join(guesses)
        else:
            text += "; no prediction"
        parts.append(text)
    reason = f" ({asked['reason']})" if asked.get("reason") else ""
    return f"{asked.get('checkpoint', '')}{reason}: " + "; ".join(parts)


def _words(data: Mapping[str, Any]) -> str:
    return ", ".join(f"{key}={fmt(value)}" for key, value in data.items() if value not in (None, "", [], {}))
