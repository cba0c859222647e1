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

from closedloop.errors import SessionError
from closedloop.records import Decision, Observation, ObservationStatus, Proposal, ProposalStatus

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS proposals (
    id TEXT PRIMARY KEY, seq INTEGER NOT NULL, iteration INTEGER NOT NULL, status TEXT NOT NULL,
    body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    proposal_id TEXT PRIMARY KEY, error TEXT, seconds REAL NOT NULL, documents TEXT NOT NULL, status TEXT);
CREATE TABLE IF NOT EXISTS observations (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, proposal_id TEXT UNIQUE NOT NULL, status TEXT NOT NULL,
    body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS decisions (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, iteration INTEGER NOT NULL, body TEXT NOT NULL, key TEXT UNIQUE,
    proposal_id TEXT);
CREATE TABLE IF NOT EXISTS dispatches (
    proposal_id TEXT PRIMARY KEY, time REAL NOT NULL, setpoints TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS queued_points (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, time REAL NOT NULL, by TEXT NOT NULL, setpoints TEXT NOT NULL,
    proposal_id TEXT);
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, time REAL NOT NULL, kind TEXT NOT NULL, message TEXT NOT NULL,
    key TEXT UNIQUE);
CREATE INDEX IF NOT EXISTS proposals_by_iteration ON proposals (iteration, seq);
CREATE INDEX IF NOT EXISTS queued_waiting ON queued_points (seq) WHERE proposal_id IS NULL;
CREATE INDEX IF NOT EXISTS observations_by_status ON observations (status);
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
        check: run SQLite's integrity check first (a damaged file is refused).

    Raises:
        SessionError: the file is not a SQLite database, or fails the integrity check; the message names the file.
    """

    def __init__(self, path: str | Path, check: bool = False) -> None:
        self.path = Path(path)
        self._lock = threading.RLock()
        self._conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        try:
            if check:
                problems = [row[0] for row in self._conn.execute("PRAGMA quick_check").fetchall()]
                if problems != ["ok"]:
                    raise SessionError(f"{self.path}: damaged ({problems[0]})", "restore the folder from a copy")
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.executescript(_SCHEMA)
            _add_missing_columns(self._conn)
        except sqlite3.DatabaseError as exc:
            self._conn.close()
            raise SessionError(f"{self.path}: not a readable SQLite database ({exc})", "restore a copy") from None
        except SessionError:
            self._conn.close()
            raise

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
                "INSERT OR IGNORE INTO proposals (id, seq, iteration, status, body) VALUES (?, ?, ?, ?, ?)",
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

    def queued_points(self, limit: int = -1) -> list[tuple[int, dict[str, float | str]]]:
        """The queued points no proposal has taken yet, oldest first (at most ``limit``), as ``(seq, setpoints)``."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT seq, setpoints FROM queued_points WHERE proposal_id IS NULL ORDER BY seq LIMIT ?", (limit,)
            ).fetchall()
        return [(row[0], json.loads(row[1])) for row in rows]

    def count_queued(self) -> int:
        """How many queued points wait to be proposed."""
        with self._lock:
            return int(self._conn.execute("SELECT COUNT(*) FROM queued_points WHERE proposal_id IS NULL").fetchone()[0])

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

    def count_proposals(self) -> int:
        """How many proposals were made."""
        with self._lock:
            return int(self._conn.execute("SELECT COUNT(*) FROM proposals").fetchone()[0])

    def max_iteration(self) -> int:
        """The highest iteration any proposal was made in (0 when there is none)."""
        with self._lock:
            return int(self._conn.execute("SELECT COALESCE(MAX(iteration), 0) FROM proposals").fetchone()[0])

    # runs ----------------------------------------------------------------------------------------------------
    def mark_dispatched(self, proposal_id: str, setpoints: Mapping[str, Any]) -> None:
        """Record, durably and before anything moves, that a proposal's run is about to start."""
        with self._tx() as conn:
            conn.execute(
                "INSERT OR IGNORE INTO dispatches (proposal_id, time, setpoints) VALUES (?, ?, ?)",
                (proposal_id, time.time(), dumps(dict(setpoints))),
            )

    def was_dispatched(self, proposal_id: str) -> bool:
        """Whether a run was started (or about to start) for this proposal."""
        with self._lock:
            row = self._conn.execute("SELECT 1 FROM dispatches WHERE proposal_id = ?", (proposal_id,)).fetchone()
        return row is not None

    def add_run(
        self,
        proposal_id: str,
        documents: list[tuple[str, dict[str, Any]]],
        error: str | None,
        seconds: float,
        status: str = "done",
    ) -> None:
        """Store the documents one proposal's run emitted (once per proposal).

        ``status`` is ``done``, ``interrupted`` (the process died during it), ``aborted`` (by an operator) or
        ``refused`` (by the safety gate: nothing moved).
        """
        with self._tx() as conn:
            conn.execute(
                "INSERT OR IGNORE INTO runs (proposal_id, error, seconds, documents, status) VALUES (?, ?, ?, ?, ?)",
                (proposal_id, error, seconds, dumps(documents), status),
            )

    def run_with_status(self, proposal_id: str) -> tuple[list[tuple[str, dict[str, Any]]], str | None, str] | None:
        """A proposal's run documents, error and status (see :meth:`add_run`), or ``None`` if it has not run."""
        with self._lock:
            row = self._conn.execute(
                "SELECT documents, error, status FROM runs WHERE proposal_id = ?", (proposal_id,)
            ).fetchone()
        if row is None:
            return None
        return [(name, doc) for name, doc in json.loads(row[0])], row[1], row[2] or "done"

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

    def recent_statuses(self, count: int) -> list[str]:
        """The statuses of the last ``count`` observations, newest first."""
        with self._lock:
            rows = self._conn.execute("SELECT status FROM observations ORDER BY seq DESC LIMIT ?", (count,)).fetchall()
        return [row[0] for row in rows]

    def count_observations(self, status: ObservationStatus | None = None) -> int:
        """How many observations (of one status, if given)."""
        with self._lock:
            if status is None:
                return self._conn.execute("SELECT COUNT(*) FROM observations").fetchone()[0]
            return self._conn.execute("SELECT COUNT(*) FROM observations WHERE status = ?", (status.value,)).fetchone()[
                0
            ]

    # decisions and the audit log -----------------------------------------------------------------------------
    def add_decision(self, iteration: int, decision: Decision, key: str | None = None) -> bool:
        """Record an answer at a checkpoint, once per ``key`` (a re-run step writes nothing twice); True if added."""
        proposal_id = decision.proposal_ids[0] if len(decision.proposal_ids) == 1 else None
        with self._tx() as conn:
            cursor = conn.execute(
                "INSERT OR IGNORE INTO decisions (iteration, body, key, proposal_id) VALUES (?, ?, ?, ?)",
                (iteration, decision.model_dump_json(), key, proposal_id),
            )
        return cursor.rowcount == 1

    def decisions_for(self, proposal_id: str) -> list[tuple[int, Decision]]:
        """The decisions that answered one proposal, in order."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT iteration, body FROM decisions WHERE proposal_id = ? ORDER BY seq", (proposal_id,)
            ).fetchall()
        return [(row[0], Decision.model_validate_json(row[1])) for row in rows]

    def count_decisions(self) -> int:
        """How many decisions are recorded."""
        with self._lock:
            return int(self._conn.execute("SELECT COUNT(*) FROM decisions").fetchone()[0])

    def decisions(self) -> list[tuple[int, Decision]]:
        """Every decision, in order, with its iteration."""
        with self._lock:
            rows = self._conn.execute("SELECT iteration, body FROM decisions ORDER BY seq").fetchall()
        return [(row[0], Decision.model_validate_json(row[1])) for row in rows]

    def log(self, kind: str, message: str, key: str | None = None) -> None:
        """Append a line to the audit log (once per ``key``, when one is given: a re-run step logs nothing twice)."""
        with self._tx() as conn:
            conn.execute(
                "INSERT OR IGNORE INTO events (time, kind, message, key) VALUES (?, ?, ?, ?)",
                (time.time(), kind, message, key),
            )

    def events(self) -> list[tuple[float, str, str]]:
        """The audit log, oldest first."""
        with self._lock:
            return [tuple(row) for row in self._conn.execute("SELECT time, kind, message FROM events ORDER BY seq")]


def _add_missing_columns(conn: sqlite3.Connection) -> None:
    """Bring a store made by an older closedloop up to this schema (columns added since, all nullable)."""
    for table, column, unique in (
        ("decisions", "key", True),
        ("decisions", "proposal_id", False),
        ("events", "key", True),
        ("runs", "status", False),
    ):
        columns = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
        if column not in columns:
            conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} TEXT")
            if unique:
                conn.execute(f"CREATE UNIQUE INDEX IF NOT EXISTS {table}_{column} ON {table} ({column})")
    conn.execute("CREATE INDEX IF NOT EXISTS decisions_by_proposal ON decisions (proposal_id)")
