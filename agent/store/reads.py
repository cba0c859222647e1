"""Reading a session's store: every query the rest of the agent reads it with, written once for every database it
lives in (SQLite, PostgreSQL; see :mod:`agent.store.dialect`).

:class:`StoreReader` holds the connection's plumbing and the reads; :class:`~agent.store.SqlStore` adds the appends
to it. A view, which reads a session and never writes it, needs no more than a :class:`StoreReader`.

Every row carries the key of the session it belongs to (column ``session``), so that one PostgreSQL database holds
many sessions without mixing them; a SQLite file holds one session, whose rows all have the empty key.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any

from agent.store.dialect import NO_LIMIT, SQLITE, Dialect
from closedloop.records import Decision, Observation, ObservationStatus, Proposal, ProposalStatus


class StoreReader:
    """The reads of one session's store, over a DB-API connection; thread-safe (one lock around the connection, so
    the loop, the RunEngine's thread and the control channel's handlers may all call it).

    Subclasses set :attr:`dialect`, :attr:`scope` and ``_conn`` and implement :meth:`_tx` and :meth:`close`.

    Attributes:
        dialect: the database's :class:`~agent.store.dialect.Dialect`.
        scope: the session key of every row this store reads and writes.
    """

    dialect: Dialect = SQLITE
    scope: str = ""
    _conn: Any

    def __init__(self) -> None:
        self._lock = threading.RLock()

    # plumbing ------------------------------------------------------------------------------------------------
    def _tx(self) -> AbstractContextManager[Any]:
        """A transaction, under the store's lock: yields a connection whose ``execute`` runs inside it."""
        raise NotImplementedError

    def close(self) -> None:
        """Close the database connection."""
        raise NotImplementedError

    @property
    def location(self) -> str:
        """Where the store is, for people (a file, or a URL without its password)."""
        raise NotImplementedError

    def _run(self, conn: Any, sql: str, **params: Any) -> Any:
        return conn.execute(self.dialect.sql(sql), {"session": self.scope, **params})

    def _run_many(self, conn: Any, sql: str, rows: Sequence[Mapping[str, Any]]) -> int:
        if not rows:
            return 0
        cursor = conn.cursor()
        try:
            cursor.executemany(self.dialect.sql(sql), [{"session": self.scope, **row} for row in rows])
            return int(cursor.rowcount)
        finally:
            cursor.close()

    def _one(self, sql: str, **params: Any) -> Any:
        with self._lock:
            return self._run(self._conn, sql, **params).fetchone()

    def _all(self, sql: str, **params: Any) -> list[Any]:
        with self._lock:
            return list(self._run(self._conn, sql, **params).fetchall())

    def _count(self, sql: str, **params: Any) -> int:
        return int(self._one(sql, **params)[0])

    # meta ----------------------------------------------------------------------------------------------------
    def meta(self, key: str, default: Any = None) -> Any:
        """One session-level value, or ``default``."""
        row = self._one("SELECT value FROM meta WHERE session = :session AND key = :key", key=key)
        return json.loads(row[0]) if row else default

    # points an operator queued -------------------------------------------------------------------------------
    def queued_points(self, limit: int = -1) -> list[tuple[int, dict[str, float | str]]]:
        """The queued points no proposal has taken yet, oldest first (at most ``limit``), as ``(seq, setpoints)``."""
        rows = self._all(
            "SELECT seq, setpoints FROM queued_points WHERE session = :session AND proposal_id IS NULL "
            "ORDER BY seq LIMIT :limit",
            limit=NO_LIMIT if limit < 0 else limit,
        )
        return [(int(row[0]), json.loads(row[1])) for row in rows]

    def count_queued(self) -> int:
        """How many queued points wait to be proposed."""
        return self._count("SELECT COUNT(*) FROM queued_points WHERE session = :session AND proposal_id IS NULL")

    # proposals -----------------------------------------------------------------------------------------------
    def proposals(self, ids: Sequence[str] | None = None, iteration: int | None = None) -> list[Proposal]:
        """Proposals by id (in the order given), or of one iteration, or all (in order of birth)."""
        if ids is not None:
            by_id = "SELECT body FROM proposals WHERE session = :session AND id = :id"
            rows = [self._one(by_id, id=proposal_id) for proposal_id in ids]
        elif iteration is not None:
            rows = self._all(
                "SELECT body FROM proposals WHERE session = :session AND iteration = :iteration ORDER BY seq",
                iteration=iteration,
            )
        else:
            rows = self._all("SELECT body FROM proposals WHERE session = :session ORDER BY seq")
        return [Proposal.model_validate_json(row[0]) for row in rows if row is not None]

    def proposals_from(self, seq: int) -> list[Proposal]:
        """The proposals made from the ``seq``-th on (0 is the first), in order of birth."""
        sql = "SELECT body FROM proposals WHERE session = :session AND seq >= :seq ORDER BY seq"
        return [Proposal.model_validate_json(row[0]) for row in self._all(sql, seq=seq)]

    def count_proposals(self) -> int:
        """How many proposals were made."""
        return self._count("SELECT COUNT(*) FROM proposals WHERE session = :session")

    def max_iteration(self) -> int:
        """The highest iteration any proposal was made in (0 when there is none)."""
        return self._count("SELECT COALESCE(MAX(iteration), 0) FROM proposals WHERE session = :session")

    # runs ----------------------------------------------------------------------------------------------------
    def was_dispatched(self, proposal_id: str) -> bool:
        """Whether a run was started (or about to start) for this proposal."""
        sql = "SELECT 1 FROM dispatches WHERE session = :session AND proposal_id = :proposal_id"
        return self._one(sql, proposal_id=proposal_id) is not None

    def run_with_status(self, proposal_id: str) -> tuple[list[tuple[str, dict[str, Any]]], str | None, str] | None:
        """A proposal's run documents, error and status (see :meth:`add_run`), or ``None`` if it has not run."""
        row = self._one(
            "SELECT documents, error, status FROM runs WHERE session = :session AND proposal_id = :proposal_id",
            proposal_id=proposal_id,
        )
        if row is None:
            return None
        return [(name, doc) for name, doc in json.loads(row[0])], row[1], row[2] or "done"

    def has_run(self, proposal_id: str) -> bool:
        """Whether the proposal's run is stored (without loading its documents)."""
        sql = "SELECT 1 FROM runs WHERE session = :session AND proposal_id = :proposal_id"
        return self._one(sql, proposal_id=proposal_id) is not None

    def run(self, proposal_id: str) -> tuple[list[tuple[str, dict[str, Any]]], str | None] | None:
        """A proposal's run documents and error, or ``None`` if it has not run."""
        found = self.run_with_status(proposal_id)
        return None if found is None else (found[0], found[1])

    def run_seconds(self, proposal_id: str) -> float:
        """Seconds the proposal's run spent inside the RunEngine (0 if it has not run)."""
        sql = "SELECT seconds FROM runs WHERE session = :session AND proposal_id = :proposal_id"
        row = self._one(sql, proposal_id=proposal_id)
        return float(row[0]) if row else 0.0

    # observations --------------------------------------------------------------------------------------------
    def observation(self, proposal_id: str) -> Observation | None:
        """The observation of one proposal, if any."""
        sql = "SELECT body FROM observations WHERE session = :session AND proposal_id = :proposal_id"
        row = self._one(sql, proposal_id=proposal_id)
        return Observation.model_validate_json(row[0]) if row else None

    def observations(self) -> list[Observation]:
        """Every observation, in the order they were made."""
        rows = self._all("SELECT body FROM observations WHERE session = :session ORDER BY seq")
        return [Observation.model_validate_json(row[0]) for row in rows]

    def unobserved_dispatches(self) -> list[str]:
        """The proposals whose run was started (:meth:`mark_dispatched`) and that have no observation, oldest first."""
        sql = (
            "SELECT proposal_id FROM dispatches WHERE session = :session AND proposal_id NOT IN "
            "(SELECT proposal_id FROM observations WHERE session = :session) ORDER BY time"
        )
        return [str(row[0]) for row in self._all(sql)]

    def dispatched_ids(self) -> set[str]:
        """Every proposal whose run was started."""
        return {str(row[0]) for row in self._all("SELECT proposal_id FROM dispatches WHERE session = :session")}

    def unobserved_runs(self) -> list[str]:
        """The proposals whose run is stored but not yet turned into an observation."""
        sql = (
            "SELECT proposal_id FROM runs WHERE session = :session AND proposal_id NOT IN "
            "(SELECT proposal_id FROM observations WHERE session = :session)"
        )
        return [str(row[0]) for row in self._all(sql)]

    def recent_observations(self, count: int) -> list[Observation]:
        """The last ``count`` observations, newest first."""
        sql = "SELECT body FROM observations WHERE session = :session ORDER BY seq DESC LIMIT :count"
        return [Observation.model_validate_json(row[0]) for row in self._all(sql, count=count)]

    def recent_statuses(self, count: int) -> list[str]:
        """The statuses of the last ``count`` observations, newest first."""
        sql = "SELECT status FROM observations WHERE session = :session ORDER BY seq DESC LIMIT :count"
        return [row[0] for row in self._all(sql, count=count)]

    def count_observations(self, status: ObservationStatus | None = None) -> int:
        """How many observations (of one status, if given)."""
        if status is None:
            return self._count("SELECT COUNT(*) FROM observations WHERE session = :session")
        sql = "SELECT COUNT(*) FROM observations WHERE session = :session AND status = :status"
        return self._count(sql, status=status.value)

    # decisions and the audit log -----------------------------------------------------------------------------
    def decisions_for(self, proposal_id: str) -> list[tuple[int, Decision]]:
        """The decisions that answered one proposal, in order."""
        rows = self._all(
            "SELECT iteration, body FROM decisions WHERE session = :session AND proposal_id = :proposal_id "
            "ORDER BY seq",
            proposal_id=proposal_id,
        )
        return [(int(row[0]), Decision.model_validate_json(row[1])) for row in rows]

    def count_decisions(self) -> int:
        """How many decisions are recorded."""
        return self._count("SELECT COUNT(*) FROM decisions WHERE session = :session")

    def decisions(self) -> list[tuple[int, Decision]]:
        """Every decision, in order, with its iteration."""
        rows = self._all("SELECT iteration, body FROM decisions WHERE session = :session ORDER BY seq")
        return [(int(row[0]), Decision.model_validate_json(row[1])) for row in rows]

    def logged(self, key: str) -> str | None:
        """The message of the audit-log line written with ``key``, if any."""
        row = self._one("SELECT message FROM events WHERE session = :session AND key = :key", key=key)
        return None if row is None else str(row[0])

    # lineage (see agent.provenance.lineage) ------------------------------------------------------------------
    def rejected_ids(self) -> list[str]:
        """The proposals rejected so far, in order of birth."""
        sql = "SELECT id FROM proposals WHERE session = :session AND status = :status ORDER BY seq"
        return [str(row[0]) for row in self._all(sql, status=ProposalStatus.REJECTED.value)]

    def lineage(self) -> dict[str, dict[str, Any]]:
        """Every lineage record: proposal id -> kind -> body."""
        found: dict[str, dict[str, Any]] = {}
        for pid, kind, body in self._all("SELECT proposal_id, kind, body FROM lineage WHERE session = :session"):
            found.setdefault(str(pid), {})[str(kind)] = json.loads(body)
        return found

    def last_event_time(self) -> float | None:
        """When the audit log's last line was written (None when it has none)."""
        row = self._one("SELECT MAX(time) FROM events WHERE session = :session")
        return None if row is None or row[0] is None else float(row[0])

    def tables_rows(self, tables: Mapping[str, Sequence[str]]) -> dict[str, list[tuple[Any, ...]]]:
        """Every row of these of the store's tables (these columns only), for a copy of the session (``export``),
        all read in one transaction from one snapshot: a session that writes meanwhile is copied as it was.

        Raises:
            ValueError: a table or column name that is not a plain name.
        """
        names = [*tables, *(column for columns in tables.values() for column in columns)]
        if not all(re.fullmatch(r"[a-z_]+", name) for name in names):
            raise ValueError(f"not a table or column name: {names}")
        with self._tx() as conn:
            if self.dialect.snapshot:
                conn.execute(self.dialect.snapshot)
            return {
                table: [
                    tuple(row)
                    for row in self._run(conn, f"SELECT {', '.join(columns)} FROM {table} WHERE session = :session")
                ]
                for table, columns in tables.items()
            }

    def events(self) -> list[tuple[float, str, str]]:
        """The audit log, oldest first."""
        rows = self._all("SELECT time, kind, message FROM events WHERE session = :session ORDER BY seq")
        return [(float(row[0]), str(row[1]), str(row[2])) for row in rows]
