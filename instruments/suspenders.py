"""Suspenders from the session file, on ophyd classic and ophyd-async signals, that report when they trip.

Bluesky's suspenders watch a signal through ophyd classic's ``subscribe(callback, event_type=, run=)``,
``clear_sub(callback)`` and ``get()``; ophyd-async signals have ``subscribe_reading`` (called with a reading) instead.
:class:`ClassicSubscription` gives an ophyd-async signal the classic calls. :class:`ReportingSuspendFloor` is
bluesky's ``SuspendFloor`` that also says when it trips and when it lets go.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from bluesky import RunEngine
from bluesky.suspenders import SuspendFloor
from ophyd_async.core import SignalR

from closedloop.errors import InstrumentError
from closedloop.instrument import SuspenderSpec
from instruments.devices import resolve_device

SuspendedCallback = Callable[[bool, dict[str, Any]], None]
"""Called with ``(tripped, details)`` when a suspender trips (``True``) or lets the run go on (``False``)."""


class ClassicSubscription:
    """An ophyd-async signal seen through ophyd classic's subscription calls, for bluesky's suspenders.

    Args:
        signal: an ophyd-async ``SignalR``.
        loop: the event loop the signal lives in (the RunEngine's); subscriptions are made there.
    """

    def __init__(self, signal: Any, loop: asyncio.AbstractEventLoop) -> None:
        self._signal = signal
        self._loop = loop
        self._callbacks: dict[Callable[..., Any], Callable[[dict[str, Any]], None]] = {}
        self._value: Any = None

    @property
    def name(self) -> str:
        """The signal's name."""
        return str(self._signal.name)

    def __repr__(self) -> str:
        return f"ClassicSubscription({self.name!r})"

    def get(self) -> Any:
        """The last value the subscription saw."""
        return self._value

    def subscribe(self, callback: Callable[..., Any], event_type: str | None = None, run: bool = True) -> None:
        """Call ``callback(value=..., old_value=..., obj=self)`` on every change (and now: ophyd-async always does)."""

        def on_reading(reading: dict[str, Any]) -> None:
            value = next(iter(reading.values()))["value"]
            old, self._value = self._value, value
            callback(value=value, old_value=old, obj=self)

        self._callbacks[callback] = on_reading
        self._in_loop(lambda: self._signal.subscribe_reading(on_reading))

    def clear_sub(self, callback: Callable[..., Any]) -> None:
        """Stop calling ``callback``."""
        on_reading = self._callbacks.pop(callback, None)
        if on_reading is not None:
            self._in_loop(lambda: self._signal.clear_sub(on_reading))

    def _in_loop(self, call: Callable[[], None]) -> None:
        if threading.get_ident() == getattr(self._loop, "_thread_id", None):
            call()
            return
        done = threading.Event()

        def run() -> None:
            try:
                call()
            finally:
                done.set()

        self._loop.call_soon_threadsafe(run)
        done.wait()


class ReportingSuspendFloor(SuspendFloor):
    """Bluesky's ``SuspendFloor`` that calls ``on_change(tripped, details)`` when it trips and when it lets go.

    Args:
        signal: the watched signal (ophyd classic, or wrapped in :class:`ClassicSubscription`).
        spec: the floor, the resume level and the settling time.
        on_change: called in the thread the signal reports from (the RunEngine's, for ophyd-async).
    """

    def __init__(self, signal: Any, spec: SuspenderSpec, on_change: SuspendedCallback) -> None:
        super().__init__(signal, spec.below, resume_thresh=spec.resume_above, sleep=spec.sleep)
        self.spec = spec
        self._on_change = on_change

    def __call__(self, value: Any, **kwargs: Any) -> None:
        was = self.tripped
        super().__call__(value, **kwargs)
        if self.tripped != was:
            level = self.spec.below if self.tripped else (self.spec.resume_above or self.spec.below)
            self._on_change(self.tripped, {"signal": self.spec.signal, "value": value, "level": level})


def build_suspenders(
    specs: Sequence[SuspenderSpec], devices: Mapping[str, Any], run_engine: RunEngine, on_change: SuspendedCallback
) -> list[ReportingSuspendFloor]:
    """Make the session's suspenders and install them on ``run_engine``.

    Raises:
        InstrumentError: a suspender's signal is not in the instrument (``suspenders.<i>.signal: ...``).
    """
    made = []
    for index, spec in enumerate(specs):
        where = f"suspenders.{index}.signal"
        try:
            signal = resolve_device(devices, spec.signal)
        except KeyError as exc:
            raise InstrumentError(f"{where}: {exc.args[0]} for '{spec.signal}'") from None
        if isinstance(signal, SignalR):
            signal = ClassicSubscription(signal, run_engine.loop)
        elif not (callable(getattr(signal, "subscribe", None)) and callable(getattr(signal, "get", None))):
            raise InstrumentError(f"{where}: '{spec.signal}' is not a signal (no subscribe/get)")
        suspender = ReportingSuspendFloor(signal, spec, on_change)
        run_engine.install_suspender(suspender)
        made.append(suspender)
    return made
