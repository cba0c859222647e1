"""The in-process executor: owns the one RunEngine and the session's devices, runs one plan at a time."""

from __future__ import annotations

import asyncio
import inspect
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from bluesky import RunEngine
from bluesky.run_engine import call_in_bluesky_event_loop

from closedloop.errors import InstrumentError
from closedloop.records import Proposal
from closedloop.spec import SessionSpec, resolve_import_path
from instruments.plans import measure_point
from instruments.protocols import DocumentSink, RunRecord
from instruments.safety import check_setpoints


def build_run_engine() -> RunEngine:
    """The RunEngine as closedloop uses it: no signal handlers (safe off the main thread), plans' results."""
    return RunEngine(context_managers=[], call_returns_result=True)


class InProcessExecutor:
    """Runs proposals on the session's devices through a RunEngine in this process.

    The RunEngine is created first, then the devices (from the session's instrument factory), which are
    connected in the RunEngine's event loop. Devices that move a variable are movers; every other device is
    triggered and read as a detector.

    Args:
        spec: the session spec.
        session_id: goes into every start document.
        run_engine: an existing RunEngine to use (tests); by default one is built.

    Raises:
        InstrumentError: the factory failed, or a variable's device does not exist, or there is no detector.
    """

    def __init__(self, spec: SessionSpec, session_id: str, run_engine: RunEngine | None = None) -> None:
        self.spec = spec
        self.session_id = session_id
        self.run_engine = run_engine or build_run_engine()
        self._lock = threading.Lock()
        self.devices = self._make_devices()
        self._steps_limited = any(v.max_step is not None for v in spec.variables.values())
        self.movers = {name: self.devices[spec.device_of(name)] for name in spec.variables}
        self.movers.update({name: self.devices[c.device] for name, c in spec.constants.items() if c.device is not None})
        mover_names = {spec.device_of(name) for name in spec.variables}
        mover_names |= {c.device for c in spec.constants.values() if c.device is not None}
        self.detectors = [device for key, device in self.devices.items() if key not in mover_names]
        if not self.detectors:
            raise InstrumentError("instrument: no detector (every device moves a variable)")

    def _make_devices(self) -> dict[str, Any]:
        instrument = self.spec.instrument
        factory: Callable[..., dict[str, Any]] = resolve_import_path(instrument.factory_path)
        options = dict(instrument.options)
        if self.spec.seed is not None and "seed" in inspect.signature(factory).parameters:
            options.setdefault("seed", self.spec.seed)
        try:
            devices = factory(**options)
        except Exception as exc:
            raise InstrumentError(f"instrument: {instrument.factory_path} failed: {exc}") from exc
        if not isinstance(devices, dict):
            raise InstrumentError(f"instrument: {instrument.factory_path} must return a dict of devices")
        wanted = {f"variables.{name}.device": self.spec.device_of(name) for name in self.spec.variables}
        wanted.update(
            {f"constants.{name}.device": c.device for name, c in self.spec.constants.items() if c.device is not None}
        )
        for where, device in wanted.items():
            if device not in devices:
                raise InstrumentError(
                    f"{where}: no device '{device}' in the instrument", f"devices are: {', '.join(sorted(devices))}"
                )
        connects = [d.connect() for d in devices.values() if inspect.iscoroutinefunction(d.connect)]

        async def _connect_all() -> None:
            await asyncio.gather(*connects)

        if connects:
            call_in_bluesky_event_loop(_connect_all())
        return devices

    def run(
        self, proposal: Proposal, md: Mapping[str, Any] | None = None, on_document: DocumentSink | None = None
    ) -> RunRecord:
        """Check the proposal against the hard limits, then carry it out as one Bluesky run.

        A failure inside the run (a device error, an abort) is not raised: it comes back in the record, with
        whatever documents were emitted, so the caller stores a failed observation.

        Raises:
            SafetyError: a setpoint is outside its hard limits; nothing was moved and no plan was built.
        """
        current = self.positions() if self._steps_limited else None  # read positions only when a step is limited
        setpoints = check_setpoints(self.spec, proposal.setpoints, current)
        metadata = {
            "proposal_id": proposal.id,
            "session_id": self.session_id,
            "iteration": proposal.iteration,
            "plan_name": "measure_point",
            **(md or {}),
        }
        moves = {self.movers[name]: value for name, value in setpoints.items() if name in self.movers}
        record = RunRecord()
        with self._lock:
            started = time.perf_counter()
            try:
                self.run_engine(
                    measure_point(moves, self.detectors, metadata),
                    lambda name, doc: _collect(record, on_document, name, doc),
                )
            except Exception as exc:
                record.error = f"{type(exc).__name__}: {_root_cause(exc)}"
            record.seconds = time.perf_counter() - started
        return record

    def positions(self) -> dict[str, Any]:
        """Where each variable's device is now (its read-back), for devices that can say (``Locatable``)."""
        locatable = {
            name: self.movers[name]
            for name in self.spec.variables
            if callable(getattr(self.movers[name], "locate", None))
        }
        if not locatable:
            return {}

        async def _locate() -> dict[str, Any]:
            found = {}
            for name, device in locatable.items():
                location = device.locate()
                if inspect.isawaitable(location):
                    location = await location
                found[name] = location["readback"]
            return found

        return call_in_bluesky_event_loop(_locate())

    def close(self) -> None:
        """Stop the RunEngine's event loop thread."""
        if self.run_engine.state != "idle":
            self.run_engine.halt()


def _collect(record: RunRecord, sink: DocumentSink | None, name: str, doc: dict[str, Any]) -> None:
    record.documents.append((name, doc))
    if sink is not None:
        sink(name, doc)


def _root_cause(exc: BaseException) -> str:
    while exc.__cause__ is not None:
        exc = exc.__cause__
    return str(exc)
