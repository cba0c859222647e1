"""A simulated storage ring's beam current, which can dump and come back, for suspenders to watch."""

from __future__ import annotations

import asyncio

from ophyd_async.core import (
    DEFAULT_TIMEOUT,
    DeviceMock,
    StandardReadable,
    StandardReadableFormat,
    soft_signal_r_and_setter,
)


class SimRing(StandardReadable):
    """The ring's beam current (``current``, mA, read as ``<name>-current``).

    Args:
        current: the nominal current, mA.
        name: device name.

    The current is read at every trigger-and-read of the run, so each event records the beam it was taken with.
    """

    def __init__(self, current: float = 400.0, name: str = "") -> None:
        self.nominal = float(current)
        with self.add_children_as_readables(StandardReadableFormat.HINTED_SIGNAL):
            self.current, self._set_current = soft_signal_r_and_setter(float, self.nominal, units="mA")
        self._loop: asyncio.AbstractEventLoop | None = None
        self._refill: asyncio.TimerHandle | None = None
        super().__init__(name=name)

    async def connect(
        self,
        mock: bool | DeviceMock = False,
        timeout: float = DEFAULT_TIMEOUT,
        force_reconnect: bool = False,
    ) -> None:
        """Connect, and remember the event loop the current lives in (dumps are scheduled on it)."""
        self._loop = asyncio.get_running_loop()
        await super().connect(mock=mock, timeout=timeout, force_reconnect=force_reconnect)

    def dump(self, seconds: float, current: float = 0.0) -> None:
        """Lose the beam now (the current drops to ``current``) and refill to nominal after ``seconds``.

        Safe to call from any thread once the ring is connected.

        Raises:
            RuntimeError: the ring is not connected yet.
        """
        if self._loop is None:
            raise RuntimeError(f"{self.name}: connect the ring before dumping its beam")
        loop = self._loop

        def start() -> None:
            if self._refill is not None:
                self._refill.cancel()
            self._set_current(current)
            self._refill = loop.call_later(seconds, self._set_current, self.nominal)

        loop.call_soon_threadsafe(start)
