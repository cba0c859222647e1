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

A move longer than a variable's ``max_step`` is walked, not refused: an ``mv`` item per waypoint of
:func:`closedloop.reach.route` from :meth:`QueueServerExecutor.positions`, each leg within ``max_step``, then the
run's item (the executor :class:`~instruments.protocols.Reaches`; the manager must allow ``mv``, checked at
connect). The devices' own limits are not read through the manager (:meth:`QueueServerExecutor.limits` is empty).

``positions()`` reads every mover's read-back from the last run's documents while nothing else has run on the
manager since (after a scan: where the scan left its motor); otherwise (at the start, or after someone else's
plan) it submits a zero-move ``count`` of the movers and reads them from that run.

``recover()`` finds, after the agent's process ended during a run, what the manager did with that proposal's item:
still running (the rest of its documents is collected), finished (its documents are those captured before the
end, when they hold the whole run, else the run read back from the Tiled server the manager's profile writes to,
``instrument.queueserver.tiled``) or never started (taken off the queue).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bluesky_queueserver_api import BPlan

from closedloop.errors import InstrumentError, SafetyError
from closedloop.queueserver import QueueServerSpec
from closedloop.reach import route
from closedloop.records import Proposal
from closedloop.spec import SessionSpec
from closedloop.tiled import TiledSpec
from instruments._document_stream import DocumentStream
from instruments._manager_client import ManagerClient, close_api
from instruments._queue_items import choose_plan, plan_items
from instruments._queue_runner import ItemRunner, describe
from instruments.plans import end_positions
from instruments.protocols import Document, DocumentSink, Recovery, RunRecord
from instruments.writer import DocumentWriter, document_writer

__all__ = ["QueueServerExecutor", "close_api"]


class QueueServerExecutor:
    """Runs proposals as plan items on a bluesky-queueserver RE Manager.

    The constructor connects to the manager and to the document proxy, opens the manager's worker environment if
    it is closed (``open_environment``), and checks the plan and every device against what the manager allows the
    spec's user group.

    Args:
        spec: the session spec; its ``instrument.queueserver`` section says where the manager is.
        session_id: goes into every start document.
        arrays_dir: the folder large array readings in the manager's documents are written to as HDF5 files, as
            they arrive (``spec.arrays``, :class:`~instruments.arrays.ExternalArrays`); None keeps them inline.
        writer: the one writer every document received goes through (:class:`~instruments.writer.DocumentWriter`);
            by default one that moves large arrays as ``arrays_dir`` says. The executor closes it.

    Raises:
        InstrumentError: the manager or the proxy does not answer within ``timeout``, the environment does not
            open, or the manager lacks the plan or a device (the message names it).
    """

    def __init__(
        self,
        spec: SessionSpec,
        session_id: str,
        arrays_dir: Path | None = None,
        writer: DocumentWriter | None = None,
    ) -> None:
        qs = spec.one_instrument().queueserver
        if qs is None:
            raise InstrumentError("instrument.queueserver: the session names no queueserver")
        self.spec = spec
        self.qs: QueueServerSpec = qs
        self.session_id = session_id
        self._positions: dict[str, Any] | None = None
        self._manager = ManagerClient(qs)
        self._stream: DocumentStream | None = None
        self._runner: ItemRunner | None = None
        #: Every document received goes through it (large arrays to HDF5 files in ``arrays_dir``, as in process).
        self.writer = writer or document_writer(arrays=spec.arrays, arrays_dir=arrays_dir)
        try:
            status = self._manager.status()
            self._stream = DocumentStream(qs.documents_address, qs.serializer, qs.timeout)
            self._runner = ItemRunner(qs, self._manager, self._stream, self.writer)
            if not status["worker_environment_exists"]:
                self._manager.open_environment()
            allowed = self._manager.allowed("plans")
            self.plan = choose_plan(spec, allowed)
            walked = [name for name, v in spec.variables.items() if v.max_step is not None]
            if walked and "mv" not in allowed:
                raise InstrumentError(
                    f"variables.{walked[0]}.max_step: a longer move is walked in 'mv' items, and the RE Manager "
                    f"allows no 'mv' to user group '{qs.user_group}'",
                    "allow 'mv' in the manager's user_group_permissions.yaml, or remove max_step",
                )
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
        setpoints = dict(proposal.setpoints)
        setpoints.update({n: c.value for n, c in self.spec.constants.items() if c.device is not None})
        try:
            legs = self._route(setpoints)
        except SafetyError as exc:
            return RunRecord(error=f"SafetyError: {exc}", seconds=time.perf_counter() - started)
        items = plan_items(self.spec, self.plan, setpoints, self.movers, metadata, route=legs)
        record = self._run_items().carry_out(items, proposal.id, on_document)
        record.seconds = time.perf_counter() - started
        self._positions = self._readbacks(record.documents) if record.error is None else None
        return record

    def _route(self, setpoints: Mapping[str, Any]) -> list[dict[str, float]]:
        """The waypoints of a move longer than ``max_step`` from where the movers are (:func:`closedloop.reach.route`);
        the positions are read only for a variable whose ``max_step`` is shorter than its whole range.

        Raises:
            SafetyError: such a variable's position is unknown (nothing moves).
        """
        steps = {}
        for name, variable in self.spec.variables.items():
            if variable.max_step is not None and not variable.categorical:
                low, high = variable.limits
                if variable.max_step < high - low:
                    steps[name] = variable.max_step
        return route(self.positions(), setpoints, steps) if steps else []

    def limits(self) -> dict[str, tuple[float, float]]:
        """The devices' own travel limits: none known (they are not read through the manager), so the hard limits
        alone are in force."""
        return {}

    def end_positions(self, setpoints: Mapping[str, Any]) -> dict[str, Any]:
        """Where a run to ``setpoints`` leaves the movers (a scan's end, not its centre)."""
        return end_positions(self.spec, setpoints)

    def positions(self) -> dict[str, Any]:
        """Variable name -> its mover's read-back, for every variable whose mover the run's events hold.

        A variable whose device puts no read-back in the events (the spec's ``readback`` field missing) is left
        out; the safety gate refuses to move a variable with a ``max_step`` that has none.

        Raises:
            InstrumentError: the positions must be read, a variable has a ``max_step``, and the manager allows no
                ``count`` to read them with.
        """
        if self._positions is None or self._manager.status()["plan_history_uid"] != self._run_items().history_uid:
            self._positions = self._read_positions()
        return dict(self._positions)

    def recover(
        self, proposal_id: str, captured: list[Document], on_document: DocumentSink | None = None
    ) -> Recovery | None:
        """What the manager did with ``proposal_id``'s item while the agent's process was gone.

        Running: its remaining documents are collected until it ends (``captured`` says which run they belong
        to). Finished: its documents are ``captured``, complete when they reach the run's stop document; otherwise
        (the manager keeps no documents, and what the proxy sent while no one listened is gone) the run is read
        back from Tiled when ``instrument.queueserver.tiled`` names the server the manager's profile writes to.
        Never started: it is taken off the queue. A failed or aborted item's copy, re-queued by the manager, is
        removed.

        Returns:
            The run, complete or with the reason it is lost; None when the manager has no item for the proposal.

        Raises:
            InstrumentError: the manager stopped answering, or the running item did not end within
                ``run_timeout``.
        """
        found = self._manager.find(proposal_id)
        if found is None:
            return None
        where, item = found
        documents = list(captured)
        if where == "queued":
            self._manager.attempt("item_remove", uid=item["item_uid"])
            reason = "the RE Manager had not started it when the agent stopped; taken off its queue, never run"
            return Recovery(RunRecord(documents=documents, error=reason), complete=False)
        if where == "running":
            result = self._run_items().follow(proposal_id, item, documents, on_document)
        else:
            result = dict(item.get("result") or {})
            if result.get("exit_status") not in {"completed", "stopped"}:
                self._manager.remove_requeued(item)
        error = None if result.get("exit_status") == "completed" else describe(result)
        if {"start", "stop"} <= {name for name, _ in documents}:
            return Recovery(RunRecord(documents=documents, error=error), complete=True)
        uids = list(result.get("run_uids") or [])
        runs = ", ".join(uids) or "none"
        lost = (
            f"the RE Manager finished it ({result.get('exit_status')}, run {runs}) while the agent was stopped; "
            f"{len(documents)} of its documents reached the agent, not the whole run, and the manager keeps none"
        )
        if len(uids) == 1 and self.qs.tiled is not None:
            try:
                return Recovery(
                    RunRecord(documents=_from_tiled(self.qs.tiled, uids[0], proposal_id), error=error), complete=True
                )
            except InstrumentError as exc:
                lost += f"; nor could it be read back from Tiled: {exc}"
        elif self.qs.tiled is None:
            lost += (
                "; no Tiled to read it back from: have the manager's profile write runs to Tiled and name that server "
                "in instrument.queueserver.tiled"
            )
        return Recovery(RunRecord(documents=documents, error=f"{lost}: the measurement is lost"), complete=False)

    def abort(self, reason: str) -> None:
        """Abort our plan in progress (``re_pause`` then ``re_abort``), or drop our item before it starts.

        Returns at once; the run in progress ends aborted and its record says ``aborted_by_operator``. Someone
        else's plan is never touched.
        """
        if self._runner is not None:
            self._runner.abort_reason = reason or "aborted by an operator"

    def stop(self, reason: str = "stopped by an operator") -> None:
        """Like :meth:`abort`, but ends our run through ``re_stop`` (the run closes as a success, events cut short)."""
        if self._runner is not None:
            self._runner.stop_requested = True
            self._runner.abort_reason = reason

    def close(self) -> None:
        """Close the document subscription and the connection to the manager (the manager keeps running)."""
        self._runner = None
        if self._stream is not None:
            self._stream.close()
            self._stream = None
        self.writer.close()
        self._manager.close()

    # ---------------------------------------------------------------------------------------- set-up checks

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

    def _run_items(self) -> ItemRunner:
        if self._runner is None:
            raise InstrumentError("queueserver: the executor is closed")
        return self._runner

    # ------------------------------------------------------------------------------------------- positions

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
            if not any(v.max_step is not None for v in self.spec.variables.values()):
                return {}  # nothing needs them: the positions are known after the first run
            raise InstrumentError(
                f"variables: max_step cannot be enforced: the RE Manager allows no 'count' to user group "
                f"'{self.qs.user_group}' to read the movers' positions with",
                "allow 'count' or remove max_step",
            )
        movers = sorted({self.spec.device_of(name) for name in self.spec.variables})
        token = f"positions-{time.time_ns()}"
        md = {"proposal_id": token, "session_id": self.session_id, "purpose": "read positions"}
        record = self._run_items().carry_out([BPlan("count", movers, num=1, md=md)], token, None)
        if record.error is not None:
            raise InstrumentError(f"queueserver: reading the movers' positions failed: {record.error}")
        return self._readbacks(record.documents)


def _from_tiled(tiled: TiledSpec, run_uid: str, proposal_id: str) -> list[Document]:
    """The run ``run_uid`` read back from ``tiled`` (:func:`instruments.tiled.read_run`), checked to be
    ``proposal_id``'s.

    Raises:
        InstrumentError: Tiled does not hold it whole, or it is another proposal's run.
    """
    from instruments.tiled import read_run  # the tiled extra is optional: imported only when asked for

    documents = read_run(tiled, run_uid)
    named = documents[0][1].get("proposal_id")
    if named != proposal_id:
        raise InstrumentError(f"run {run_uid} in Tiled names proposal {named!r}, not {proposal_id!r}")
    return documents
