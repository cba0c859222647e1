"""The in-process executor: owns the one RunEngine and the session's devices, runs one plan at a time.

It builds the RunEngine as beamlines configure it (session metadata in every start document, ``scan_id``
continuing from the last one used, suspenders from the session file, one subscriber writing every document: the
:class:`~instruments.writer.DocumentWriter`, which publishes to 0MQ, writes to Tiled and keeps the run), connects
the devices within their timeout (reading each mover's own travel limits), and runs each proposal under the
session's run timeout and retry policy, a move longer than ``max_step`` walked in steps of at most that
(:func:`closedloop.reach.route`). It does not check proposals: :func:`instruments.safety.gate` does, above every
executor.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from bluesky import RunEngine
from bluesky.run_engine import TransitionError
from bluesky.utils import MsgGenerator, RunEngineInterrupted

from closedloop.errors import InstrumentError
from closedloop.execution import ExecutorArgs
from closedloop.reach import Limits, route
from closedloop.records import Proposal
from instruments.checks import check_connected
from instruments.devices import find_movers, in_loop, make_devices, movers_limits, position_sources, read_position
from instruments.plans import end_positions, plan_for
from instruments.protocols import DocumentSink, EventSink, RunRecord, is_transient
from instruments.run_engine import build_run_engine
from instruments.suspenders import build_suspenders
from instruments.timeouts import default_run_timeout
from instruments.writer import DocumentWriter, document_writer

if TYPE_CHECKING:
    from instruments.tiled import TiledSink

log = logging.getLogger(__name__)
WATCHDOG_TICK = 0.02
"""Seconds between the run-timeout watchdog's looks at the clock."""

__all__ = ["InProcessExecutor", "build_run_engine"]


class _Interrupted(Exception):
    """Raised by the guarded plan when an abort or a timeout came before the RunEngine started it."""


class InProcessExecutor:
    """Runs proposals on one instrument's devices through a RunEngine in this process.

    The RunEngine is created first, then the devices (from the instrument's factory, which may take the
    RunEngine as ``run_engine``), each connected within ``instrument.connect_timeout``. Devices that move a
    variable or a constant (``device``, or a dotted path such as ``stage.x``) are movers; every other device of
    the factory is triggered and read as a detector (a parent of a mover included, so that it can be staged).

    Args:
        args: what it uses (:class:`~closedloop.execution.ExecutorArgs`): the problem, the instrument, the plan,
            the session id and metadata that go into every start document, the seed, the suspenders.
        run_engine: an existing RunEngine to use (tests); by default one is built (:func:`build_run_engine`).
        scan_id: the last scan id used (from the store, on resume); the next run gets ``scan_id + 1``.
        on_event: called with ``(kind, details)`` on ``"suspended"``, ``"resumed"`` and ``"retry"``, from the
            RunEngine's thread (for suspenders) or the running thread (for retries); it must not block.
        writer: the one subscriber that writes every document (:class:`~instruments.writer.DocumentWriter`), as
            the session's ``arrays``, ``publish`` and ``tiled`` sections ask (the agent builds it with
            :func:`~instruments.writer.document_writer`); by default one that keeps each run's documents, arrays
            inline, and nothing more. The executor closes it.

    Raises:
        InstrumentError: the factory failed or returned a non-device, a device did not connect in time, a
            suspender's device does not exist, a ``max_step`` cannot be enforced because its
            device cannot report a position, or there is no detector.
        SpecError: a variable's or constant's device does not exist, or the session file does not fit the
            connected devices (:mod:`instruments.checks`); nothing moved.
    """

    def __init__(
        self,
        args: ExecutorArgs,
        run_engine: RunEngine | None = None,
        *,
        scan_id: int = 0,
        on_event: EventSink | None = None,
        writer: DocumentWriter | None = None,
    ) -> None:
        self.args = args
        self.session_id = args.session_id
        problem, plan, instrument = args.problem, args.plan, args.instrument
        self.run_engine = run_engine or build_run_engine()
        self.run_engine.md["scan_id"] = int(scan_id)
        self._on_event = on_event
        self._lock = threading.Lock()
        self._state = threading.Lock()
        self._active = False
        self._interrupt: tuple[str, str] | None = None
        self._wake = threading.Event()
        self._tokens: list[int] = []
        self.writer: DocumentWriter | None = writer
        self.devices = make_devices(instrument, self.run_engine, args.seed)
        self.movers = find_movers(problem, self.devices)
        moving = {id(device) for device in self.movers.values()}
        top_level_movers = {key for key, device in self.devices.items() if id(device) in moving}
        self.detectors = [device for key, device in self.devices.items() if key not in top_level_movers]
        if not self.detectors:
            raise InstrumentError("instrument: no detector (every device moves a variable)")
        unreadable = [
            key for key, device in self.devices.items() if key not in top_level_movers and not _readable(device)
        ]
        if unreadable:
            raise InstrumentError(f"instrument: device '{unreadable[0]}' moves nothing and has no read()")
        timeout = instrument.connect_timeout
        check_connected(problem, plan, self.movers, self.detectors, self.run_engine, timeout)  # before anything moves
        self._sources = in_loop(self.run_engine, position_sources(problem, self.movers))
        self._limits: dict[str, Limits] = in_loop(self.run_engine, movers_limits(problem, self.movers))
        self.run_timeout = instrument.run_timeout
        """Seconds a run may take: ``instrument.run_timeout``, or one derived from the plan
        (:func:`~instruments.timeouts.default_run_timeout`)."""
        if self.run_timeout is None:
            estimate = default_run_timeout(problem, plan, self.movers, self.detectors)
            self.run_timeout = in_loop(self.run_engine, estimate)
        self._suspenders = build_suspenders(args.suspenders, self.devices, self.run_engine, self._suspender_changed)
        if self.writer is None:
            self.writer = document_writer()
        self._tokens.append(self.run_engine.subscribe(self.writer))  # the one subscription: every document

    @property
    def tiled(self) -> TiledSink | None:
        """The Tiled server every run is written to (the writer's, as the session's ``tiled`` says), if any."""
        return self.writer.tiled if self.writer is not None else None

    def limits(self) -> dict[str, Limits]:
        """Variable -> its device's own travel limits, as read at connect (variables whose device has none are left
        out); see :func:`~instruments.devices.read_limits`."""
        return dict(self._limits)

    def end_positions(self, setpoints: Mapping[str, Any]) -> dict[str, Any]:
        """Where a run to ``setpoints`` leaves the movers (a scan's end, not its centre)."""
        return end_positions(self.args.problem, self.args.plan, setpoints, self._limits)

    @property
    def scan_id(self) -> int:
        """The last scan id used (the next run gets one more); store it to continue after a resume."""
        return int(self.run_engine.md.get("scan_id", 0))

    @property
    def suspended(self) -> bool:
        """Whether a suspender is holding runs now (the beam is down)."""
        return any(suspender.tripped for suspender in self._suspenders)

    def _emit(self, kind: str, details: dict[str, Any]) -> None:
        if self._on_event is None:
            return
        try:
            self._on_event(kind, details)
        except Exception:  # a listener's fault must not break a suspender or a run
            log.exception("on_event(%r) raised", kind)

    def _suspender_changed(self, tripped: bool, details: dict[str, Any]) -> None:
        self._emit("suspended" if tripped else "resumed", details)

    def run(
        self, proposal: Proposal, md: Mapping[str, Any] | None = None, on_document: DocumentSink | None = None
    ) -> RunRecord:
        """Carry out one proposal (already through :func:`~instruments.safety.gate`) as one Bluesky run.

        The start document holds the session's ``metadata``, then ``md``, then ``proposal_id``, ``session_id``,
        ``iteration`` and ``attempt`` (which nothing overrides). A failure inside the run (a device error, a
        timeout, an abort) is not raised: it comes back in the record, with whatever documents were emitted. A
        run that failed of a transient fault is run again, up to ``instrument.retries.attempts`` times.
        """
        problem = self.args.problem
        setpoints: dict[str, float | str] = {
            name: proposal.setpoints.get(name, constant.value) for name, constant in problem.constants.items()
        }
        setpoints.update({k: v for k, v in proposal.setpoints.items() if k in problem.variables})
        retries = self.args.instrument.retries
        with self._lock:
            with self._state:
                self._active, self._interrupt = True, None
                self._wake.clear()
            total = 0.0
            try:
                for attempt in range(1, retries.attempts + 1):
                    record, transient = self._run_once(proposal, setpoints, md, on_document, attempt)
                    total += record.seconds
                    if record.error is None or not transient or self._interrupt or attempt == retries.attempts:
                        break
                    wait = retries.backoff * 2 ** (attempt - 1)
                    self._emit("retry", {"proposal_id": proposal.id, "attempt": attempt, "error": record.error})
                    if self._wake.wait(wait):
                        break  # aborted while waiting to retry
            finally:
                with self._state:
                    self._active = False
        record.seconds = total
        if self._interrupt is not None and self._interrupt[0] == "operator" and not record.aborted_by_operator:
            record.aborted_by_operator = True
            record.error = f"aborted by operator: {self._interrupt[1]}"
        return record

    def _run_once(
        self,
        proposal: Proposal,
        setpoints: dict[str, float | str],
        md: Mapping[str, Any] | None,
        sink: DocumentSink | None,
        attempt: int,
    ) -> tuple[RunRecord, bool]:
        metadata = {
            "plan_name": "measure_point",
            **self.args.metadata,
            **(md or {}),
            "proposal_id": proposal.id,
            "session_id": self.session_id,
            "iteration": proposal.iteration,
            "attempt": attempt,
        }
        record = RunRecord(attempts=attempt)
        transient = False
        done = threading.Event()
        timeout = self.run_timeout
        watchdog = threading.Thread(target=self._watchdog, args=(timeout, done), daemon=True) if timeout else None
        started = time.perf_counter()
        try:
            variables = self.args.problem.variables
            steps = {name: v.max_step for name, v in variables.items() if v.max_step is not None}
            # a move longer than max_step is made in steps of at most max_step, from where the movers are now
            legs = route(self.positions(), setpoints, steps) if steps else []
            plan = plan_for(
                self.args.problem,
                self.args.plan,
                setpoints,
                self.movers,
                self.detectors,
                metadata,
                route=legs,
                limits=self._limits,
            )
            if watchdog is not None:
                watchdog.start()
            record.documents = self._writer().begin(sink)  # this attempt's documents, kept once, as they come
            self.run_engine(self._guarded(plan))
        except (RunEngineInterrupted, _Interrupted):
            pass  # an abort or a timeout: said below
        except Exception as exc:
            root = _root_cause(exc)
            record.error = f"{type(root).__name__}: {root}"
            transient = is_transient(exc)
        finally:
            self._writer().end()
            done.set()
            if watchdog is not None:
                watchdog.join()
        record.seconds = time.perf_counter() - started
        if self._interrupt is not None:
            kind, reason = self._interrupt
            record.aborted_by_operator = kind == "operator"
            record.error = f"aborted by operator: {reason}" if kind == "operator" else reason
        return record, transient

    def _guarded(self, plan: MsgGenerator[Any]) -> MsgGenerator[Any]:
        if self._interrupt is not None:  # came after the run was asked for, before the RunEngine started it
            plan.close()
            raise _Interrupted(self._interrupt[1])
        return (yield from plan)

    def _watchdog(self, limit: float, done: threading.Event) -> None:
        """Abort the run once it has run ``limit`` seconds, not counting time held by a suspender."""
        used, last = 0.0, time.monotonic()
        while not done.wait(WATCHDOG_TICK):
            now = time.monotonic()
            if not self.suspended:
                used += now - last
            last = now
            if used >= limit:
                derived = "" if self.args.instrument.run_timeout else " (derived from the plan: instrument.run_timeout)"
                self._interrupt_run("timeout", f"timed out after {limit:g} s{derived}")
                return

    def abort(self, reason: str) -> None:
        """Abort the run in progress, if any, from any thread; its record then says ``aborted_by_operator``.

        The RunEngine aborts cleanly (its stop document says ``abort``) and stays usable; with no run in progress
        this does nothing.
        """
        self._interrupt_run("operator", reason)

    def _interrupt_run(self, kind: str, reason: str) -> None:
        with self._state:
            if not self._active or self._interrupt is not None:
                return
            self._interrupt = (kind, reason)
        self._wake.set()
        if threading.get_ident() == getattr(self.run_engine.loop, "_thread_id", None):
            # RunEngine.abort waits for its own loop: never call it from there
            threading.Thread(target=self._abort_engine, args=(reason,), daemon=True).start()
        else:
            self._abort_engine(reason)

    def _abort_engine(self, reason: str) -> None:
        with contextlib.suppress(TransitionError):  # not started yet (the guarded plan refuses to start) or over
            self.run_engine.abort(reason)

    def positions(self) -> dict[str, Any]:
        """Variable -> the read-back position of its device now, for every variable whose device can report one
        (all those with a ``max_step``: the executor refuses to be built otherwise)."""

        async def read_all() -> dict[str, Any]:
            found = {}
            for name, (device, source, field) in self._sources.items():
                found[name] = await read_position(device, source, field)
            return found

        found = in_loop(self.run_engine, read_all())
        return {name: float(v) if _is_number(v) else v for name, v in found.items()}

    def close(self) -> None:
        """Stop any run, remove the suspenders, stop publishing."""
        if self.run_engine.state != "idle":
            self.run_engine.halt()
        for suspender in self._suspenders:
            self.run_engine.remove_suspender(suspender)
        for token in self._tokens:
            self.run_engine.unsubscribe(token)
        self._tokens.clear()
        if self.writer is not None:
            self.writer.close()
            self.writer = None

    def _writer(self) -> DocumentWriter:
        if self.writer is None:
            raise InstrumentError("instrument: the executor is closed")
        return self.writer


def _readable(device: Any) -> bool:
    return callable(getattr(device, "read", None))


def _is_number(value: Any) -> bool:
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return not isinstance(value, bool | str)


def _root_cause(exc: BaseException) -> BaseException:
    while exc.__cause__ is not None:
        exc = exc.__cause__
    return exc
