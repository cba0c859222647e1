"""The queueserver executor: carries out proposals on a bluesky-queueserver RE Manager, documents from its 0MQ proxy.

Each proposal becomes a plan item submitted through bluesky-queueserver-api (0MQ) with the proposal id in the
plan's ``md``; the item's end is read from the manager's status and history (item uid, exit status), and the run's
documents arrive through the ``bluesky-0MQ-proxy`` the manager's RunEngine publishes to (JSON or msgpack, never
pickle), matched to the proposal by the start document's ``proposal_id``.

Rules it keeps: a manager busy with someone else's plan is waited for, never interrupted; only our own items run
(when others' items wait in a stopped queue, ours goes in front and the queue is stopped behind it); an aborted or
failed item, which the manager puts back at the front of the queue, is removed from it, so it never runs again.
An unreachable manager or proxy, a plan or device the manager does not offer, or documents that never arrive raise
:class:`~closedloop.errors.InstrumentError` (one line, within the spec's timeouts); a plan that fails or is aborted
comes back in the :class:`~instruments.protocols.RunRecord`.

``positions()`` reads the movers' read-backs from the last run's documents while nothing else has run on the
manager since; otherwise (at the start, or after someone else's plan) it submits a zero-move ``count`` of the
movers and reads them from that run.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from typing import Any

from bluesky_queueserver_api import BPlan

from closedloop.errors import InstrumentError
from closedloop.queueserver import AUTO_PLAN, CLOSEDLOOP_PLAN, QueueServerSpec
from closedloop.records import Proposal
from closedloop.spec import SessionSpec
from instruments._document_stream import DocumentStream, RunWatch
from instruments._manager_client import ManagerClient, close_api
from instruments.protocols import Document, DocumentSink, RunRecord

__all__ = ["QueueServerExecutor", "close_api"]


class QueueServerExecutor:
    """Runs proposals as plan items on a bluesky-queueserver RE Manager.

    The constructor connects to the manager and to the document proxy, opens the manager's worker environment if
    it is closed (``open_environment``), and checks the plan and every device against what the manager allows the
    spec's user group.

    Args:
        spec: the session spec; its ``instrument.queueserver`` section says where the manager is.
        session_id: goes into every start document.

    Raises:
        InstrumentError: the manager or the proxy does not answer within ``timeout``, the environment does not
            open, or the manager lacks the plan or a device (the message names it).
    """

    def __init__(self, spec: SessionSpec, session_id: str) -> None:
        qs = spec.instrument.queueserver
        if qs is None:
            raise InstrumentError("instrument.queueserver: the session names no queueserver")
        self.spec = spec
        self.qs: QueueServerSpec = qs
        self.session_id = session_id
        self._abort_reason: str | None = None
        self._stop_requested = False
        self._lock = threading.Lock()
        self._positions: dict[str, Any] | None = None
        self._history_uid: str | None = None
        self._manager = ManagerClient(qs)
        self._stream: DocumentStream | None = None
        try:
            status = self._manager.status()
            self._stream = DocumentStream(qs.documents_address, qs.serializer, qs.timeout)
            if not status["worker_environment_exists"]:
                self._manager.open_environment()
            self.plan = self._choose_plan()
            self._check_devices()
        except BaseException:
            self.close()
            raise

    # ----------------------------------------------------------------------------------------------- the seam

    @property
    def movers(self) -> dict[str, str]:
        """Variable (or constant) name -> the name of its device in the manager's namespace."""
        movers = {name: self.spec.device_of(name) for name in self.spec.variables}
        movers.update({name: c.device for name, c in self.spec.constants.items() if c.device is not None})
        return movers

    def run(
        self, proposal: Proposal, md: Mapping[str, Any] | None = None, on_document: DocumentSink | None = None
    ) -> RunRecord:
        """Carry out one proposal as plan items on the manager; its documents come from the proxy.

        Returns:
            The record: the run's documents, or the plan's failure (``error``), or ``aborted_by_operator``.

        Raises:
            InstrumentError: the manager stopped answering, refused the item, stayed busy past ``busy_timeout``,
                or the run's documents did not arrive within ``documents_timeout``.
        """
        metadata = {"proposal_id": proposal.id, "session_id": self.session_id, "iteration": proposal.iteration}
        metadata.update(md or {})
        started = time.perf_counter()
        record = self._carry_out(self._items(proposal, metadata), proposal.id, on_document)
        record.seconds = time.perf_counter() - started
        self._positions = self._readbacks(record.documents) if record.error is None else None
        return record

    def positions(self) -> dict[str, Any]:
        """Variable name -> its mover's read-back, for every variable with a ``max_step``.

        Raises:
            InstrumentError: the positions must be read and the manager allows no ``count`` to read them with.
        """
        limited = [name for name, v in self.spec.variables.items() if v.max_step is not None]
        if not limited:
            return {}
        if self._positions is None or self._manager.status()["plan_history_uid"] != self._history_uid:
            self._positions = self._read_positions()
        return {name: self._positions[name] for name in limited if name in self._positions}

    def abort(self, reason: str) -> None:
        """Abort our plan in progress (``re_pause`` then ``re_abort``), or drop our item before it starts.

        Returns at once; the run in progress ends aborted and its record says ``aborted_by_operator``. Someone
        else's plan is never touched.
        """
        self._abort_reason = reason or "aborted by an operator"

    def stop(self, reason: str = "stopped by an operator") -> None:
        """Like :meth:`abort`, but ends our run through ``re_stop`` (the run closes as a success, events cut short)."""
        self._stop_requested = True
        self._abort_reason = reason

    def close(self) -> None:
        """Close the document subscription and the connection to the manager (the manager keeps running)."""
        if self._stream is not None:
            self._stream.close()
            self._stream = None
        self._manager.close()

    # ---------------------------------------------------------------------------------------- set-up checks

    def _choose_plan(self) -> str:
        allowed = self._manager.allowed("plans")
        group = f"user group '{self.qs.user_group}'"
        if self.qs.plan == AUTO_PLAN:
            for plan, needs in ((CLOSEDLOOP_PLAN, {CLOSEDLOOP_PLAN}), ("scan", {"scan"}), ("count", {"mv", "count"})):
                if needs <= allowed:
                    return plan
            raise InstrumentError(
                f"instrument.queueserver.plan: the RE Manager allows none of '{CLOSEDLOOP_PLAN}', 'scan', or 'mv' "
                f"with 'count' to {group}",
                "add closedloop's plan to the profile (simulators/qserver/10-plans.py) or allow a standard one",
            )
        needs = {"mv", "count"} if self.qs.plan == "count" else {self.qs.plan}
        missing = sorted(needs - allowed)
        if missing:
            raise InstrumentError(
                f"instrument.queueserver.plan: the RE Manager has no plan '{missing[0]}' for {group}",
                f"it allows: {', '.join(sorted(allowed)) or 'nothing'}",
            )
        return self.qs.plan

    def _check_devices(self) -> None:
        allowed = self._manager.allowed("devices")
        wanted = {f"instrument.queueserver.detectors.{i}": name for i, name in enumerate(self.qs.detectors)}
        wanted.update({f"variables.{n}.device": self.spec.device_of(n) for n in self.spec.variables})
        wanted.update({f"constants.{n}.device": c.device for n, c in self.spec.constants.items() if c.device})
        for where, device in wanted.items():
            if device not in allowed:
                raise InstrumentError(
                    f"{where}: the RE Manager has no device '{device}' for user group '{self.qs.user_group}'",
                    f"it allows: {', '.join(sorted(allowed)) or 'nothing'}",
                )

    # ----------------------------------------------------------------------------------------- running items

    def _items(self, proposal: Proposal, md: dict[str, Any]) -> list[BPlan]:
        """The plan items that carry out ``proposal``: one, or ``mv`` then ``count``."""
        setpoints = dict(proposal.setpoints)
        setpoints.update({n: c.value for n, c in self.spec.constants.items() if c.device is not None})
        movers = self.movers
        moves = [(movers[name], value) for name, value in setpoints.items() if name in movers]
        detectors = list(self.qs.detectors)
        if self.plan == "scan":
            axes = [part for device, value in moves for part in (device, value, value)]
            return [BPlan("scan", detectors, *axes, num=1, md=md)]
        if self.plan == "count":
            pairs = [part for move in moves for part in move]
            return [BPlan("mv", *pairs), BPlan("count", detectors + [d for d, _ in moves], num=1, md=md)]
        return [BPlan(self.plan, detectors, [d for d, _ in moves], [v for _, v in moves], md=md)]

    def _carry_out(self, items: list[BPlan], proposal_id: str, sink: DocumentSink | None) -> RunRecord:
        """Run ``items`` one after the other (stopping at the first that fails) and collect their run."""
        record = RunRecord()
        with self._lock:
            self._abort_reason, self._stop_requested = None, False
            watch = self._stream_or_fail().watch(proposal_id)
            try:
                opened = False
                for item in items:
                    result = self._execute(item, watch, record, sink)
                    opened = opened or bool(result.get("run_uids"))
                    if result["exit_status"] != "completed":
                        record.error = _describe(result)
                        break
                self._collect(watch, record, sink, wait=opened)
            finally:
                self._stream_or_fail().unwatch(proposal_id)
        return record

    def _execute(self, item: BPlan, watch: RunWatch, record: RunRecord, sink: DocumentSink | None) -> dict[str, Any]:
        """Wait for an idle manager, run ``item`` alone, and return its history entry's ``result``."""
        status = self._wait_idle(watch, record, sink)
        if status is None:
            return {"exit_status": "aborted", "msg": self._abort_reason}
        added = self._manager.request("item_add", item, pos="front")["item"]
        uid = added["item_uid"]
        if self._manager.attempt("queue_start")["success"] and status["items_in_queue"] > 0:
            self._manager.attempt("queue_stop")  # the others' items wait for their owner; ours runs alone
        seen_running = interrupted = False
        deadline = time.monotonic() + self.qs.run_timeout
        while True:
            self._collect(watch, record, sink, wait=False)
            status = self._manager.status()
            if status["running_item_uid"] == uid:
                seen_running = True
                if self._abort_reason is not None and not interrupted:
                    interrupted = self._interrupt(status)
            elif (result := self._manager.history_result(uid)) is not None:
                break
            elif not seen_running and self._abort_reason is not None:
                if self._manager.attempt("item_remove", uid=uid)["success"]:  # not started yet: now it never will
                    record.aborted_by_operator = True
                    return {"exit_status": "aborted", "msg": self._abort_reason}
            elif not seen_running and status["manager_state"] == "idle" and not status["queue_stop_pending"]:
                restarted = self._manager.attempt("queue_start")["success"]  # someone stopped the queue meanwhile
                if not restarted and self._manager.status()["manager_state"] == "idle":
                    raise InstrumentError(f"queueserver: the RE Manager does not start item {uid}")
            if time.monotonic() > deadline:
                raise InstrumentError(f"queueserver: item {uid} did not finish within {self.qs.run_timeout:g} s")
            time.sleep(self.qs.poll_interval)
        self._history_uid = self._manager.status()["plan_history_uid"]
        if result["exit_status"] not in {"completed", "stopped"}:
            self._manager.remove_requeued(added)
        if self._abort_reason is not None and result["exit_status"] in {"aborted", "stopped"}:
            record.aborted_by_operator = True
            result = {**result, "msg": self._abort_reason}
        return result

    def _wait_idle(self, watch: RunWatch, record: RunRecord, sink: DocumentSink | None) -> dict[str, Any] | None:
        """Wait (up to ``busy_timeout``) until the manager is idle; ``None`` when we are aborted meanwhile."""
        deadline = time.monotonic() + self.qs.busy_timeout
        while True:
            status = self._manager.status()
            if self._abort_reason is not None:
                record.aborted_by_operator = True
                return None
            if status["manager_state"] == "idle" and status["worker_environment_exists"]:
                return status
            if status["manager_state"] == "idle":
                self._manager.open_environment()  # closed since we started (raises unless open_environment)
                continue
            if time.monotonic() > deadline:
                raise InstrumentError(
                    f"queueserver: the RE Manager stayed busy ({status['manager_state']}) for "
                    f"{self.qs.busy_timeout:g} s (busy_timeout)"
                )
            self._collect(watch, record, sink, wait=False)
            time.sleep(self.qs.poll_interval)

    def _interrupt(self, status: dict[str, Any]) -> bool:
        """Pause our running plan at once, then abort (or stop) it; True once the abort or stop is accepted."""
        if status["manager_state"] == "executing_queue" and not status["pause_pending"]:
            self._manager.attempt("re_pause", "immediate")
        elif status["manager_state"] == "paused":
            return bool(self._manager.attempt("re_stop" if self._stop_requested else "re_abort")["success"])
        return False

    # ------------------------------------------------------------------------------------------- documents

    def _stream_or_fail(self) -> DocumentStream:
        if self._stream is None:
            raise InstrumentError("queueserver: the executor is closed")
        return self._stream

    def _collect(self, watch: RunWatch, record: RunRecord, sink: DocumentSink | None, wait: bool) -> None:
        """Hand on the documents received so far; with ``wait``, until the run's stop document arrives."""
        deadline = time.monotonic() + self.qs.documents_timeout
        while True:
            for name, doc in watch.drain():
                record.documents.append((name, doc))
                if sink is not None:
                    sink(name, doc)
            if not wait or watch.stopped:
                return
            if time.monotonic() > deadline:
                raise InstrumentError(
                    f"instrument.queueserver.documents_address: the documents of proposal {watch.proposal_id}'s run "
                    f"did not arrive from {self.qs.documents_address} within {self.qs.documents_timeout:g} s"
                    f"{self._stream_or_fail().describe_trouble()}",
                    "is the profile's RunEngine publishing to this proxy?",
                )
            watch.wait(self.qs.poll_interval)

    def _readbacks(self, documents: list[Document]) -> dict[str, Any]:
        events = [doc for name, doc in documents if name == "event"]
        if not events:
            return {}
        data = events[-1]["data"]
        return {
            name: data[self.spec.readback_of(name)]
            for name in self.spec.variables
            if self.spec.readback_of(name) in data
        }

    def _read_positions(self) -> dict[str, Any]:
        """Read the movers with a zero-move ``count`` on the manager."""
        if "count" not in self._manager.allowed("plans"):
            raise InstrumentError(
                f"variables: max_step cannot be enforced: the RE Manager allows no 'count' to user group "
                f"'{self.qs.user_group}' to read the movers' positions with",
                "allow 'count' or remove max_step",
            )
        movers = sorted({self.spec.device_of(name) for name in self.spec.variables})
        token = f"positions-{time.time_ns()}"
        md = {"proposal_id": token, "session_id": self.session_id, "purpose": "read positions"}
        record = self._carry_out([BPlan("count", movers, num=1, md=md)], token, None)
        if record.error is not None:
            raise InstrumentError(f"queueserver: reading the movers' positions failed: {record.error}")
        return self._readbacks(record.documents)


def _describe(result: Mapping[str, Any]) -> str:
    message = str(result.get("msg") or "").strip().splitlines()
    return f"plan {result.get('exit_status')}: {message[-1] if message else 'no reason given'}"
