"""The session store in one SQLite file (the default): its schema, its connection and its transactions.

The queries are :class:`agent.store.SqlStore`'s, shared with the PostgreSQL store; this module owns what is
SQLite's alone: the file, WAL, the integrity check, and bringing a file made by an older closedloop up to date.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from agent.store.sql import SQLITE, SqlStore, dumps
from closedloop.errors import SessionError

__all__ = ["SessionStore", "SqlStore", "dumps"]

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
CREATE TABLE IF NOT EXISTS lineage (
    session TEXT NOT NULL DEFAULT '', proposal_id TEXT NOT NULL, kind TEXT NOT NULL, body TEXT NOT NULL,
    PRIMARY KEY (proposal_id, kind));
CREATE INDEX IF NOT EXISTS proposals_by_iteration ON proposals (iteration, seq);
CREATE INDEX IF NOT EXISTS queued_waiting ON queued_points (seq) WHERE proposal_id IS NULL;
CREATE INDEX IF NOT EXISTS observations_by_status ON observations (status);
"""
_TABLES = ("meta", "proposals", "runs", "observations", "decisions", "dispatches", "queued_points", "events", "lineage")


class SessionStore(SqlStore):
    """The append-only SQLite store of one session (see :class:`~agent.store.SqlStore` for its methods).

    Args:
        path: the SQLite file (created if missing).
        check: run SQLite's integrity check first (a damaged file is refused).

    Raises:
        SessionError: the file is not a SQLite database, or fails the integrity check; the message names the file.
    """

    dialect = SQLITE
    scope = ""  # a file holds one session

    def __init__(self, path: str | Path, check: bool = False) -> None:
        super().__init__()
        self.path = Path(path)
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

    @property
    def location(self) -> str:
        """The SQLite file."""
        return str(self.path)

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


def _add_missing_columns(conn: sqlite3.Connection) -> None:
    """Bring a store made by an older closedloop up to this schema (columns added since: nullable, or the
    ``session`` key every row carries, empty in a file)."""
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
    for table in _TABLES:
        columns = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
        if "session" not in columns:
            conn.execute(f"ALTER TABLE {table} ADD COLUMN session TEXT NOT NULL DEFAULT ''")
    conn.execute("CREATE INDEX IF NOT EXISTS decisions_by_proposal ON decisions (proposal_id)")
