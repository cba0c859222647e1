"""The session store: proposals, runs, observations, decisions and the audit log, in one SQLite file.

Rows are appended and never rewritten, except a proposal's status and the session's small ``meta`` table. The
LangGraph state holds ids only; everything that grows lives here.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from closedloop.records import Decision, Observation, ObservationStatus, Proposal, ProposalStatus

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS proposals (
    id TEXT PRIMARY KEY, seq INTEGER NOT NULL, iteration INTEGER NOT NULL, status TEXT NOT NULL,
    body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    proposal_id TEXT PRIMARY KEY, error TEXT, seconds REAL NOT NULL, documents TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS observations (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, proposal_id TEXT UNIQUE NOT NULL, status TEXT NOT NULL,
    body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS decisions (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, iteration INTEGER NOT NULL, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS queued_points (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, time REAL NOT NULL, by TEXT NOT NULL, setpoints TEXT NOT NULL,
    proposal_id TEXT);
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, time REAL NOT NULL, kind TEXT NOT NULL, message TEXT NOT NULL);
"""


def _json_default(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    if hasattr(value, "item"):
        return value.item()
    return str(value)


def dumps(value: Any) -> str:
    """JSON text for a document or record (numpy values become plain numbers)."""
    return json.dumps(value, default=_json_default)


class SessionStore:
    """The append-only SQLite store of one session.

    Args:
        path: the SQLite file (created if missing).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._lock = threading.RLock()
        self._conn.executescript(_SCHEMA)

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def close(self) -> None:
        """Close the database."""
        self._conn.close()

    # meta ----------------------------------------------------------------------------------------------------
    def set_meta(self, **values: Any) -> None:
        """Set session-level values (state, session id, ...), stored as JSON."""
        with self._tx() as conn:
            conn.executemany(
                "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
                [(key, dumps(value)) for key, value in values.items()],
            )

    def meta(self, key: str, default: Any = None) -> Any:
        """One session-level value, or ``default``."""
        with self._lock:
            row = self._conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else default

    # proposals -----------------------------------------------------------------------------------------------
    def add_proposals(self, proposals: Sequence[Proposal], taken: Mapping[int, str] | None = None) -> None:
        """Store new proposals (in order), and mark the queued points they take (``{seq: proposal id}``), at once."""
        with self._tx() as conn:
            start = conn.execute("SELECT COALESCE(MAX(seq), -1) + 1 FROM proposals").fetchone()[0]
            conn.executemany(
                "INSERT INTO proposals (id, seq, iteration, status, body) VALUES (?, ?, ?, ?, ?)",
                [(p.id, start + i, p.iteration, p.status.value, p.model_dump_json()) for i, p in enumerate(proposals)],
            )
            conn.executemany(
                "UPDATE queued_points SET proposal_id = ? WHERE seq = ? AND proposal_id IS NULL",
                [(proposal_id, seq) for seq, proposal_id in (taken or {}).items()],
            )

    # points an operator queued -------------------------------------------------------------------------------
    def queue_points(self, points: Sequence[Mapping[str, float | str]], by: str = "operator") -> list[int]:
        """Queue checked setpoints to be proposed before the planner's own, oldest first; their sequence numbers."""
        seqs: list[int] = []
        with self._tx() as conn:
            for point in points:
                cursor = conn.execute(
                    "INSERT INTO queued_points (time, by, setpoints) VALUES (?, ?, ?)", (time.time(), by, dumps(point))
                )
                seqs.append(int(cursor.lastrowid or 0))
        return seqs

    def queued_points(self) -> list[tuple[int, dict[str, float | str]]]:
        """The queued points no proposal has taken yet, oldest first, as ``(seq, setpoints)``."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT seq, setpoints FROM queued_points WHERE proposal_id IS NULL ORDER BY seq"
            ).fetchall()
        return [(row[0], json.loads(row[1])) for row in rows]

    def set_status(self, proposal_ids: Sequence[str], status: ProposalStatus) -> None:
        """Move proposals to a new status."""
        with self._tx() as conn:
            for proposal_id in proposal_ids:
                row = conn.execute("SELECT body FROM proposals WHERE id = ?", (proposal_id,)).fetchone()
                if row is None:
                    continue
                body = Proposal.model_validate_json(row[0]).model_copy(update={"status": status})
                conn.execute(
                    "UPDATE proposals SET status = ?, body = ? WHERE id = ?",
                    (status.value, body.model_dump_json(), proposal_id),
                )

    def proposals(self, ids: Sequence[str] | None = None, iteration: int | None = None) -> list[Proposal]:
        """Proposals by id (in the order given), or of one iteration, or all (in order of birth)."""
        with self._lock:
            if ids is not None:
                rows = [self._conn.execute("SELECT body FROM proposals WHERE id = ?", (i,)).fetchone() for i in ids]
            elif iteration is not None:
                rows = self._conn.execute(
                    "SELECT body FROM proposals WHERE iteration = ? ORDER BY seq", (iteration,)
                ).fetchall()
            else:
                rows = self._conn.execute("SELECT body FROM proposals ORDER BY seq").fetchall()
        return [Proposal.model_validate_json(row[0]) for row in rows if row is not None]

    # runs ----------------------------------------------------------------------------------------------------
    def add_run(
        self, proposal_id: str, documents: list[tuple[str, dict[str, Any]]], error: str | None, seconds: float
    ) -> None:
        """Store the documents one proposal's run emitted (once per proposal)."""
        with self._tx() as conn:
            conn.execute(
                "INSERT OR IGNORE INTO runs (proposal_id, error, seconds, documents) VALUES (?, ?, ?, ?)",
                (proposal_id, error, seconds, dumps(documents)),
            )

    def has_run(self, proposal_id: str) -> bool:
        """Whether the proposal's run is stored (without loading its documents)."""
        with self._lock:
            return self._conn.execute("SELECT 1 FROM runs WHERE proposal_id = ?", (proposal_id,)).fetchone() is not None

    def run(self, proposal_id: str) -> tuple[list[tuple[str, dict[str, Any]]], str | None] | None:
        """A proposal's run documents and error, or ``None`` if it has not run."""
        with self._lock:
            row = self._conn.execute(
                "SELECT documents, error FROM runs WHERE proposal_id = ?", (proposal_id,)
            ).fetchone()
        if row is None:
            return None
        return [(name, doc) for name, doc in json.loads(row[0])], row[1]

    def run_seconds(self, proposal_id: str) -> float:
        """Seconds the proposal's run spent inside the RunEngine (0 if it has not run)."""
        with self._lock:
            row = self._conn.execute("SELECT seconds FROM runs WHERE proposal_id = ?", (proposal_id,)).fetchone()
        return float(row[0]) if row else 0.0

    # observations --------------------------------------------------------------------------------------------
    def add_observation(self, observation: Observation) -> bool:
        """Store an observation; returns False if the proposal already has one (nothing is duplicated)."""
        with self._tx() as conn:
            cursor = conn.execute(
                "INSERT OR IGNORE INTO observations (proposal_id, status, body) VALUES (?, ?, ?)",
                (observation.proposal_id, observation.status.value, observation.model_dump_json()),
            )
            added = cursor.rowcount == 1
            if added:
                row = conn.execute("SELECT body FROM proposals WHERE id = ?", (observation.proposal_id,)).fetchone()
                if row is not None:
                    body = Proposal.model_validate_json(row[0]).model_copy(update={"status": ProposalStatus.OBSERVED})
                    conn.execute(
                        "UPDATE proposals SET status = ?, body = ? WHERE id = ?",
                        (ProposalStatus.OBSERVED.value, body.model_dump_json(), observation.proposal_id),
                    )
        return added

    def observation(self, proposal_id: str) -> Observation | None:
        """The observation of one proposal, if any."""
        with self._lock:
            row = self._conn.execute("SELECT body FROM observations WHERE proposal_id = ?", (proposal_id,)).fetchone()
        return Observation.model_validate_json(row[0]) if row else None

    def observations(self) -> list[Observation]:
        """Every observation, in the order they were made."""
        with self._lock:
            rows = self._conn.execute("SELECT body FROM observations ORDER BY seq").fetchall()
        return [Observation.model_validate_json(row[0]) for row in rows]

    def count_observations(self, status: ObservationStatus | None = None) -> int:
        """How many observations (of one status, if given)."""
        with self._lock:
            if status is None:
                return self._conn.execute("SELECT COUNT(*) FROM observations").fetchone()[0]
            return self._conn.execute("SELECT COUNT(*) FROM observations WHERE status = ?", (status.value,)).fetchone()[
                0
            ]

    # decisions and the audit log -----------------------------------------------------------------------------
    def add_decision(self, iteration: int, decision: Decision) -> None:
        """Record an answer at a checkpoint."""
        with self._tx() as conn:
            conn.execute(
                "INSERT INTO decisions (iteration, body) VALUES (?, ?)",
                (iteration, decision.model_dump_json()),
            )

    def decisions(self) -> list[tuple[int, Decision]]:
        """Every decision, in order, with its iteration."""
        with self._lock:
            rows = self._conn.execute("SELECT iteration, body FROM decisions ORDER BY seq").fetchall()
        return [(row[0], Decision.model_validate_json(row[1])) for row in rows]

    def log(self, kind: str, message: str) -> None:
        """Append a line to the audit log."""
        with self._tx() as conn:
            conn.execute("INSERT INTO events (time, kind, message) VALUES (?, ?, ?)", (time.time(), kind, message))

    def events(self) -> list[tuple[float, str, str]]:
        """The audit log, oldest first."""
        with self._lock:
            return [tuple(row) for row in self._conn.execute("SELECT time, kind, message FROM events ORDER BY seq")]
