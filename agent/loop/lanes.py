"""The session's instruments as lanes: each runs one proposal at a time in a thread of its own, so that the loop
can propose, review and ingest while runs go on.

A :class:`Lane` owns one executor (one RunEngine, or one queueserver manager) and never gives it two runs at once.
The loop's dispatch step checks a proposal against the safety gate on a free lane, stores the intent and creates
the run's documents file (:meth:`Lanes.start` takes them), and returns at once; the lane's thread runs the
proposal, stores the run, and wakes whoever waits in :meth:`Lanes.wait`. Runs that finished are collected by the
ingest step, from memory (:meth:`Lanes.take_ended`: the documents the instrument's writer kept as they streamed);
the store's copy is read back only for a run that ended before this process started. An instrument that stops
answering (:class:`~closedloop.errors.InstrumentError`) takes its lane out of use; its proposal keeps its intent
without a run, which the loop records as interrupted, and the other lanes go on. What each lane is doing is kept
in the store's ``instruments`` meta for ``closedloop status``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from agent.store import RunFile, SqlStore, read_run_file
from closedloop.errors import InstrumentError
from closedloop.reach import Limits
from closedloop.records import Proposal
from instruments.protocols import Document, Executes, Reaches, RunRecord

EndedRun = tuple[list[Document], str | None, str]
"""A run as the store keeps it: its documents, its error (or None) and its status (``done``, ``aborted``)."""


@dataclass
class Lane:
    """One instrument and what it is doing.

    Attributes:
        name: the instrument's name (``instrument`` when the session has one).
        executor: runs its proposals.
        proposal: the proposal it is running, if any.
        setpoints: where that run leaves the movers (a scan's end), so the next proposal can be planned from there.
        since: when it started its run, or became idle.
        failed: why it is out of use, if it is.
    """

    name: str
    executor: Executes
    proposal: str | None = None
    setpoints: dict[str, Any] = field(default_factory=dict)
    since: float = field(default_factory=time.time)
    failed: str | None = None

    @property
    def state(self) -> str:
        """``running``, ``idle`` or ``failed``."""
        return "failed" if self.failed else "running" if self.proposal else "idle"


class Lanes:
    """The session's instruments, each run in a thread of its own.

    Args:
        lanes: the instruments.
        store: where each finished run is stored (thread-safe).
        emit: the loop's event stream (``run_started``, ``run_finished``, ``failure``).
    """

    def __init__(
        self, lanes: Sequence[Lane], store: SqlStore, emit: Callable[[str, dict[str, Any]], object] | None = None
    ) -> None:
        self.lanes = list(lanes)
        self.store = store
        self.emit = emit or (lambda kind, data: None)
        self._changed = threading.Condition()
        self._threads: list[threading.Thread] = []
        self._ended: dict[str, EndedRun] = {}  # proposal id -> its run, stored and not yet ingested
        self._publish()

    def __len__(self) -> int:
        return len(self.lanes)

    @property
    def first(self) -> Executes:
        """The first instrument's executor."""
        return self.lanes[0].executor

    def usable(self) -> list[Lane]:
        """The lanes still in use (not failed)."""
        return [lane for lane in self.lanes if lane.failed is None]

    def running(self) -> list[str]:
        """The proposal ids running now."""
        with self._changed:
            return [lane.proposal for lane in self.lanes if lane.proposal]

    def _idle(self) -> Lane | None:
        """The first idle lane still in use, if any (the caller holds the condition's lock)."""
        return next((lane for lane in self.usable() if lane.proposal is None), None)

    def gone(self) -> InstrumentError:
        """The error for a session whose every instrument is out of use (the last one's reason)."""
        return InstrumentError(self.lanes[-1].failed or "no instrument is left")

    def wait(self, ready: Callable[[], bool], timeout: float | None = None) -> bool:
        """Block until ``ready()`` is true (checked whenever a run starts or ends); False on ``timeout``."""
        with self._changed:
            return self._changed.wait_for(ready, timeout)

    def wait_free(self) -> Lane:
        """Block until a lane is idle and return it.

        Raises:
            InstrumentError: every lane is out of use.
        """
        with self._changed:
            self._changed.wait_for(lambda: not self.usable() or self._idle() is not None)
            lane = self._idle()
        if lane is None:
            raise self.gone()
        return lane

    def wait_idle(self) -> None:
        """Block until no lane runs anything."""
        self.wait(lambda: not any(lane.proposal for lane in self.lanes))

    def next_positions(self) -> dict[str, Any]:
        """Where the instrument that takes the next proposal will be when it starts it: an idle lane's read-back,
        or, all being busy, where the run that started first is going."""
        with self._changed:
            usable = self.usable() or self.lanes
            idle = next((lane for lane in usable if lane.proposal is None), None)
            busy = min(usable, key=lambda lane: lane.since)
        if idle is not None:
            return idle.executor.positions()
        positions = dict(busy.executor.positions())
        positions.update({k: v for k, v in busy.setpoints.items() if k in positions})
        return positions

    def device_limits(self) -> dict[str, Limits]:
        """Variable -> the limits every instrument's device can reach (the tightest of their own limits, for the
        instruments that know them: :class:`~instruments.protocols.Reaches`)."""
        found: dict[str, Limits] = {}
        for lane in self.lanes:
            if not isinstance(lane.executor, Reaches):
                continue
            for name, (low, high) in lane.executor.limits().items():
                old = found.get(name, (low, high))
                found[name] = (max(low, old[0]), min(high, old[1]))
        return found

    def start(self, lane: Lane, proposal: Proposal, md: Mapping[str, Any], sink: RunFile) -> None:
        """Run ``proposal`` (through the safety gate, its intent stored, ``sink`` open) on ``lane``'s thread."""
        with self._changed:
            if lane.proposal is not None or lane.failed is not None:
                raise RuntimeError(f"instrument {lane.name} is not free")
            ends = dict(proposal.setpoints)
            if isinstance(lane.executor, Reaches):
                ends = lane.executor.end_positions(ends)
            lane.proposal, lane.setpoints, lane.since = proposal.id, ends, time.time()
            self._changed.notify_all()
        self._publish()
        self.emit(
            "run_started", {"proposal": proposal.id, "setpoints": dict(proposal.setpoints), "instrument": lane.name}
        )
        thread = threading.Thread(
            target=self._run, args=(lane, proposal, dict(md), sink), name=f"lane-{lane.name}", daemon=True
        )
        self._threads = [t for t in self._threads if t.is_alive()] + [thread]
        thread.start()

    def _run(self, lane: Lane, proposal: Proposal, md: dict[str, Any], sink: RunFile) -> None:
        stored = False
        try:
            try:
                record = lane.executor.run(proposal, md, sink)
            except InstrumentError as exc:
                # the instrument is gone (a manager that stopped answering): its lane is out of use, and the
                # proposal keeps its intent without a run (recorded as interrupted, never run again by itself)
                lane.failed = str(exc)
                self.store.log("failure", f"instrument {lane.name} out of use: {exc}")
                self.emit("failure", {"instrument": lane.name, "reason": str(exc)})
                return
            except Exception as exc:  # an executor bug is a failed run, never a dead session
                sink.close()  # what the run emitted before the bug is in its file
                record = RunRecord(error=f"{type(exc).__name__}: {exc}", documents=read_run_file(sink.path))
            finally:
                sink.close()
            status = "aborted" if record.aborted_by_operator else "done"
            self.store.add_run(proposal.id, record.documents, record.error, record.seconds, status=status)
            with self._changed:
                self._ended[proposal.id] = (record.documents, record.error, status)
            stored = True
            scan_ids = [doc.get("scan_id") for name, doc in record.documents if name == "start"]
            if scan_ids and isinstance(scan_ids[-1], int):
                self.store.set_meta(scan_id=max(scan_ids[-1], int(self.store.meta("scan_id", 0))))
            self.emit(
                "run_finished",
                {"proposal": proposal.id, "error": record.error, "status": status, "instrument": lane.name},
            )
        finally:
            with self._changed:
                lane.proposal, lane.setpoints, lane.since = None, {}, time.time()
                self._changed.notify_all()
            self._publish()
            if not stored and lane.failed is None:
                self.store.log("error", f"{proposal.id}: the run on {lane.name} ended without a record")

    def take_ended(self, proposal_id: str) -> EndedRun | None:
        """The run of ``proposal_id`` that ended in this process (stored already), handed over once, from memory;
        None when it is not here (it ended before this process started: read the store's copy)."""
        with self._changed:
            return self._ended.pop(proposal_id, None)

    def states(self) -> dict[str, dict[str, Any]]:
        """Each instrument's state, proposal and since when, as ``status`` shows them."""
        with self._changed:
            return {
                lane.name: {"state": lane.state, "proposal": lane.proposal, "since": lane.since, "error": lane.failed}
                for lane in self.lanes
            }

    def _publish(self) -> None:
        self.store.set_meta(instruments=self.states())

    def abort(self, reason: str) -> None:
        """Abort every run in progress."""
        for lane in self.lanes:
            lane.executor.abort(reason)

    def close(self) -> None:
        """Wait for the runs in progress (an operator's abort ends them) and release every instrument."""
        for thread in self._threads:
            thread.join(timeout=60)
        for lane in self.lanes:
            lane.executor.close()
