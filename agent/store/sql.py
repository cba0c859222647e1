"""The session store's SQL, written once for every database it lives in (SQLite, PostgreSQL).

:class:`SqlStore` is the store the rest of the agent calls: the reads of :class:`~agent.store.reads.StoreReader` and
the appends here, as text with named parameters (``:name``) that a :class:`~agent.store.dialect.Dialect` turns into
the database's own form. A subclass only connects and runs transactions: see :class:`agent.store.SessionStore` (one
SQLite file) and :class:`agent.store.PostgresStore`.

Rows are appended and never rewritten, except a proposal's status and the session's small ``meta`` table. The
LangGraph state holds ids only; everything that grows lives here.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from agent.store.dialect import NO_LIMIT as NO_LIMIT  # re-exported: the store's SQL in one place to import from
from agent.store.dialect import POSTGRESQL as POSTGRESQL
from agent.store.dialect import SQLITE as SQLITE
from agent.store.dialect import Dialect as Dialect
from agent.store.dialect import dumps as dumps
from agent.store.reads import StoreReader
from closedloop.records import Decision, Observation, Proposal, ProposalStatus


class SqlStore(StoreReader):
    """The append-only store of one session: the reads of :class:`~agent.store.reads.StoreReader`, and the appends
    (thread-safe, under the same lock).

    Subclasses set :attr:`dialect`, :attr:`scope` and ``_conn`` and implement :meth:`_tx` and :meth:`close`.
    """

    # meta ----------------------------------------------------------------------------------------------------
    def set_meta(self, **values: Any) -> None:
        """Set session-level values (state, session id, ...), stored as JSON."""
        with self._tx() as conn:
            self._run_many(conn, self.dialect.upsert_meta, [{"key": k, "value": dumps(v)} for k, v in values.items()])

    # proposals -----------------------------------------------------------------------------------------------
    def add_proposals(self, proposals: Sequence[Proposal], taken: Mapping[int, str] | None = None) -> None:
        """Store new proposals (in order), and mark the queued points they take (``{seq: proposal id}``), at once."""
        with self._tx() as conn:
            start = self._run(
                conn, "SELECT COALESCE(MAX(seq), -1) + 1 FROM proposals WHERE session = :session"
            ).fetchone()[0]
            self._run_many(
                conn,
                "INSERT INTO proposals (session, id, seq, iteration, status, body) "
                "VALUES (:session, :id, :seq, :iteration, :status, :body) ON CONFLICT DO NOTHING",
                [
                    dict(id=p.id, seq=start + i, iteration=p.iteration, status=p.status.value, body=p.model_dump_json())
                    for i, p in enumerate(proposals)
                ],
            )
            self._run_many(
                conn,
                "UPDATE queued_points SET proposal_id = :proposal_id "
                "WHERE session = :session AND seq = :seq AND proposal_id IS NULL",
                [{"proposal_id": proposal_id, "seq": seq} for seq, proposal_id in (taken or {}).items()],
            )

    # points an operator queued -------------------------------------------------------------------------------
    def queue_points(self, points: Sequence[Mapping[str, float | str]], by: str = "operator") -> list[int]:
        """Queue checked setpoints to be proposed before the planner's own, oldest first; their sequence numbers."""
        seqs: list[int] = []
        with self._tx() as conn:
            for point in points:
                row = self._run(
                    conn,
                    "INSERT INTO queued_points (session, time, by, setpoints) "
                    "VALUES (:session, :time, :by, :setpoints) RETURNING seq",
                    time=time.time(),
                    by=by,
                    setpoints=dumps(point),
                ).fetchone()
                seqs.append(int(row[0]))
        return seqs

    def set_status(self, proposal_ids: Sequence[str], status: ProposalStatus) -> None:
        """Move proposals to a new status."""
        with self._tx() as conn:
            for proposal_id in proposal_ids:
                self._restatus(conn, proposal_id, status)

    def _restatus(self, conn: Any, proposal_id: str, status: ProposalStatus) -> None:
        row = self._run(conn, "SELECT body FROM proposals WHERE session = :session AND id = :id", id=proposal_id)
        row = row.fetchone()
        if row is None:
            return
        body = Proposal.model_validate_json(row[0]).model_copy(update={"status": status})
        self._run(
            conn,
            "UPDATE proposals SET status = :status, body = :body WHERE session = :session AND id = :id",
            status=status.value,
            body=body.model_dump_json(),
            id=proposal_id,
        )

    # runs ----------------------------------------------------------------------------------------------------
    def mark_dispatched(self, proposal_id: str, setpoints: Mapping[str, Any]) -> None:
        """Record, durably and before anything moves, that a proposal's run is about to start."""
        with self._tx() as conn:
            self._run(
                conn,
                "INSERT INTO dispatches (session, proposal_id, time, setpoints) "
                "VALUES (:session, :proposal_id, :time, :setpoints) ON CONFLICT DO NOTHING",
                proposal_id=proposal_id,
                time=time.time(),
                setpoints=dumps(dict(setpoints)),
            )

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
            self._run(
                conn,
                "INSERT INTO runs (session, proposal_id, error, seconds, documents, status) "
                "VALUES (:session, :proposal_id, :error, :seconds, :documents, :status) ON CONFLICT DO NOTHING",
                proposal_id=proposal_id,
                error=error,
                seconds=float(seconds),
                documents=dumps(documents),
                status=status,
            )

    # observations --------------------------------------------------------------------------------------------
    def add_observation(self, observation: Observation) -> bool:
        """Store an observation; returns False if the proposal already has one (nothing is duplicated)."""
        with self._tx() as conn:
            cursor = self._run(
                conn,
                "INSERT INTO observations (session, proposal_id, status, body) "
                "VALUES (:session, :proposal_id, :status, :body) ON CONFLICT DO NOTHING",
                proposal_id=observation.proposal_id,
                status=observation.status.value,
                body=observation.model_dump_json(),
            )
            added = cursor.rowcount == 1
            if added:
                self._restatus(conn, observation.proposal_id, ProposalStatus.OBSERVED)
        return added

    # decisions and the audit log -----------------------------------------------------------------------------
    def add_decision(self, iteration: int, decision: Decision, key: str | None = None) -> bool:
        """Record an answer at a checkpoint, once per ``key`` (a re-run step writes nothing twice); True if added."""
        proposal_id = decision.proposal_ids[0] if len(decision.proposal_ids) == 1 else None
        with self._tx() as conn:
            cursor = self._run(
                conn,
                "INSERT INTO decisions (session, iteration, body, key, proposal_id) "
                "VALUES (:session, :iteration, :body, :key, :proposal_id) ON CONFLICT DO NOTHING",
                iteration=iteration,
                body=decision.model_dump_json(),
                key=key,
                proposal_id=proposal_id,
            )
            return bool(cursor.rowcount == 1)

    def log(self, kind: str, message: str, key: str | None = None) -> None:
        """Append a line to the audit log (once per ``key``, when one is given: a re-run step logs nothing twice)."""
        with self._tx() as conn:
            self._run(
                conn,
                "INSERT INTO events (session, time, kind, message, key) "
                "VALUES (:session, :time, :kind, :message, :key) ON CONFLICT DO NOTHING",
                time=time.time(),
                kind=kind,
                message=message,
                key=key,
            )

    # lineage (see agent.provenance.lineage) ------------------------------------------------------------------
    def add_lineage(self, entries: Sequence[tuple[str, str, Mapping[str, Any]]]) -> None:
        """Record what produced proposals, as ``(proposal id, kind, body)``: once per proposal and kind (a re-run
        step writes nothing twice)."""
        with self._tx() as conn:
            self._run_many(
                conn,
                "INSERT INTO lineage (session, proposal_id, kind, body) VALUES (:session, :proposal_id, :kind, :body) "
                "ON CONFLICT DO NOTHING",
                [{"proposal_id": pid, "kind": kind, "body": dumps(dict(body))} for pid, kind, body in entries],
            )
