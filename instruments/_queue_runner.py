"""Running plan items on a bluesky-queueserver RE Manager, one proposal's at a time, and collecting their run.

:class:`ItemRunner` keeps the queueserver executor's rules while an item runs: a manager busy with someone else's
plan is waited for (up to ``busy_timeout``), never interrupted; our item goes in front of the queue and the queue
is stopped behind it, so only our own items run; an abort pauses the plan at once and then aborts (or stops) it,
or takes the item off the queue before it starts; an aborted or failed item, which the manager puts back at the
front of the queue, is removed. The run's documents, received from the manager's 0MQ proxy, go through the
instrument's :class:`~instruments.writer.DocumentWriter` as they arrive.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Mapping
from typing import Any

from bluesky_queueserver_api import BPlan

from closedloop.errors import InstrumentError
from closedloop.queueserver import QueueServerSpec
from instruments._document_stream import DocumentStream, RunWatch
from instruments._manager_client import ManagerClient
from instruments.protocols import Document, DocumentSink, RunRecord
from instruments.writer import DocumentWriter


class ItemRunner:
    """Runs items on the manager and collects their run's documents through ``writer``.

    Args:
        qs: the instrument's ``queueserver`` section.
        manager: the connection to the RE Manager.
        stream: the documents from the manager's 0MQ proxy.
        writer: every document received goes through it, kept for the run in progress.

    Attributes:
        abort_reason: set (from any thread) to abort our item in progress; None while nothing asks.
        stop_requested: end our run through ``re_stop`` instead of ``re_abort``.
        history_uid: the manager's ``plan_history_uid`` after our last item ended.
    """

    def __init__(self, qs: QueueServerSpec, manager: ManagerClient, stream: DocumentStream, writer: DocumentWriter):
        self.qs = qs
        self.manager = manager
        self.stream = stream
        self.writer = writer
        self.abort_reason: str | None = None
        self.stop_requested = False
        self.history_uid: str | None = None
        self._lock = threading.Lock()

    def carry_out(self, items: list[BPlan], proposal_id: str, sink: DocumentSink | None) -> RunRecord:
        """Run ``items`` one after the other (stopping at the first that fails) and collect their run."""
        record = RunRecord()
        with self._lock:
            self.abort_reason, self.stop_requested = None, False
            watch = self.stream.watch(proposal_id)
            record.documents = self.writer.begin(sink)
            try:
                opened = False
                for item in items:
                    result = self._execute(item, watch, record)
                    opened = opened or bool(result.get("run_uids"))
                    if result["exit_status"] != "completed":
                        record.error = describe(result)
                        break
                self._collect(watch, wait=opened)
            finally:
                self.writer.end()
                self.stream.unwatch(proposal_id)
        return record

    def _execute(self, item: BPlan, watch: RunWatch, record: RunRecord) -> dict[str, Any]:
        """Wait for an idle manager, run ``item`` alone, and return its history entry's ``result``."""
        status = self._wait_idle(watch, record)
        if status is None:
            return {"exit_status": "aborted", "msg": self.abort_reason}
        added = self.manager.request("item_add", item, pos="front")["item"]
        uid = added["item_uid"]
        if self.manager.attempt("queue_start")["success"] and status["items_in_queue"] > 0:
            self.manager.attempt("queue_stop")  # the others' items wait for their owner; ours runs alone
        seen_running = interrupted = False
        deadline = time.monotonic() + self.qs.run_timeout
        while True:
            self._collect(watch, wait=False)
            status = self.manager.status()
            if status["running_item_uid"] == uid:
                seen_running = True
                if self.abort_reason is not None and not interrupted:
                    interrupted = self._interrupt(status)
            elif (result := self.manager.history_result(uid)) is not None:
                break
            elif not seen_running and self.abort_reason is not None:
                if self.manager.attempt("item_remove", uid=uid)["success"]:  # not started yet: now it never will
                    record.aborted_by_operator = True
                    return {"exit_status": "aborted", "msg": self.abort_reason}
            elif not seen_running and status["manager_state"] == "idle" and not status["queue_stop_pending"]:
                restarted = self.manager.attempt("queue_start")["success"]  # someone stopped the queue meanwhile
                if not restarted and self.manager.status()["manager_state"] == "idle":
                    raise InstrumentError(f"queueserver: the RE Manager does not start item {uid}")
            if time.monotonic() > deadline:
                raise InstrumentError(f"queueserver: item {uid} did not finish within {self.qs.run_timeout:g} s")
            time.sleep(self.qs.poll_interval)
        self.history_uid = self.manager.status()["plan_history_uid"]
        if result["exit_status"] not in {"completed", "stopped"}:
            self.manager.remove_requeued(added)
        if self.abort_reason is not None and result["exit_status"] in {"aborted", "stopped"}:
            record.aborted_by_operator = True
            result = {**result, "msg": self.abort_reason}
        return result

    def _wait_idle(self, watch: RunWatch, record: RunRecord) -> dict[str, Any] | None:
        """Wait (up to ``busy_timeout``) until the manager is idle; ``None`` when we are aborted meanwhile."""
        deadline = time.monotonic() + self.qs.busy_timeout
        while True:
            status = self.manager.status()
            if self.abort_reason is not None:
                record.aborted_by_operator = True
                return None
            if status["manager_state"] == "idle" and status["worker_environment_exists"]:
                return status
            if status["manager_state"] == "idle":
                self.manager.open_environment()  # closed since we started (raises unless open_environment)
                continue
            if time.monotonic() > deadline:
                raise InstrumentError(
                    f"queueserver: the RE Manager stayed busy ({status['manager_state']}) for "
                    f"{self.qs.busy_timeout:g} s (busy_timeout)"
                )
            self._collect(watch, wait=False)
            time.sleep(self.qs.poll_interval)

    def follow(
        self, proposal_id: str, item: dict[str, Any], documents: list[Document], sink: DocumentSink | None
    ) -> dict[str, Any]:
        """Wait for our running ``item`` to end, adding its documents that arrive to ``documents``; its result."""
        uid = item["item_uid"]
        with self._lock:
            active = self.manager.request("re_runs", option="active").get("run_list") or []
            uids = [str(run["uid"]) for run in active if run.get("uid")]  # its start may have gone unheard
            watch = self.stream.watch(proposal_id, documents, uids)
            arrived = self.writer.begin(sink)
            try:
                deadline = time.monotonic() + self.qs.run_timeout
                while (result := self.manager.history_result(uid)) is None:
                    self._collect(watch, wait=False)
                    if time.monotonic() > deadline:
                        raise InstrumentError(
                            f"queueserver: item {uid} did not finish within {self.qs.run_timeout:g} s"
                        )
                    time.sleep(self.qs.poll_interval)
                self.history_uid = self.manager.status()["plan_history_uid"]
                # the stop document may have gone out while no one listened: the run is then incomplete
                with contextlib.suppress(InstrumentError):
                    self._collect(watch, wait=bool(result.get("run_uids")))
            finally:
                self.writer.end()
                self.stream.unwatch(proposal_id)
        if result["exit_status"] not in {"completed", "stopped"}:
            self.manager.remove_requeued(item)
        documents.extend(arrived)
        return result

    def _interrupt(self, status: dict[str, Any]) -> bool:
        """Pause our running plan at once, then abort (or stop) it; True once the abort or stop is accepted."""
        if status["manager_state"] == "executing_queue" and not status["pause_pending"]:
            self.manager.attempt("re_pause", "immediate")
        elif status["manager_state"] == "paused":
            return bool(self.manager.attempt("re_stop" if self.stop_requested else "re_abort")["success"])
        return False

    def _collect(self, watch: RunWatch, wait: bool) -> None:
        """Write the documents received so far; with ``wait``, until the run's stop document arrives."""
        deadline = time.monotonic() + self.qs.documents_timeout
        while True:
            for received in watch.drain():
                self.writer(*received)
            if not wait or watch.stopped:
                return
            if time.monotonic() > deadline:
                raise InstrumentError(
                    f"instrument.queueserver.documents_address: the documents of proposal {watch.proposal_id}'s run "
                    f"did not arrive from {self.qs.documents_address} within {self.qs.documents_timeout:g} s"
                    f"{self.stream.describe_trouble()}",
                    "is the profile's RunEngine publishing to this proxy?",
                )
            watch.wait(self.qs.poll_interval)


def describe(result: Mapping[str, Any]) -> str:
    """An item's end for people: ``plan failed: <the last line of its message>``."""
    message = str(result.get("msg") or "").strip().splitlines()
    return f"plan {result.get('exit_status')}: {message[-1] if message else 'no reason given'}"
