"""Simulated devices built from ophyd-async soft signals.

:class:`SimFieldDetector` is a triggerable detector whose reading is a function of other devices' read-back
signals (usually :class:`ophyd_async.sim.SimMotor` positions), plus Gaussian noise, with faults that can be
injected for tests.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
from ophyd_async.core import (
    AsyncStatus,
    SignalR,
    StandardReadable,
    StandardReadableFormat,
    soft_signal_r_and_setter,
    soft_signal_rw,
)


class SimFieldDetector(StandardReadable):
    """A detector that computes ``function(**inputs)`` each time it is triggered.

    Args:
        function: maps input name -> position to the noiseless value.
        inputs: input name -> the signal read at trigger time (for example a motor's ``user_readback``).
        field: name of the reading; the event key is ``"{name}-{field}"``.
        noise: standard deviation of additive Gaussian noise, in the reading's units.
        seed: seed of the noise generator.
        name: device name.

    Signals:
        ``fail_next``: writable count of triggers to fail from now (fault injection); each failing trigger
        raises ``RuntimeError`` and decrements it.
    """

    def __init__(
        self,
        function: Callable[..., float],
        inputs: Mapping[str, SignalR[float]],
        field: str = "value",
        noise: float = 0.0,
        seed: int | None = None,
        name: str = "",
    ) -> None:
        self._function = function
        self._inputs = dict(inputs)
        self._noise = float(noise)
        self._rng = np.random.default_rng(seed)
        value, self._set_value = soft_signal_r_and_setter(float, 0.0)
        with self.add_children_as_readables(StandardReadableFormat.HINTED_SIGNAL):
            setattr(self, field, value)
        with self.add_children_as_readables(StandardReadableFormat.CONFIG_SIGNAL):
            self.noise = soft_signal_rw(float, self._noise)
        self.fail_next = soft_signal_rw(int, 0)
        self.triggers = 0
        super().__init__(name=name)

    @AsyncStatus.wrap
    async def trigger(self) -> None:
        """Read the inputs, compute the value and publish it (or fail, if a fault is injected)."""
        self.triggers += 1
        failing = await self.fail_next.get_value()
        if failing > 0:
            await self.fail_next.set(failing - 1)
            raise RuntimeError(f"{self.name}: injected detector fault")
        positions = {key: float(await signal.get_value()) for key, signal in self._inputs.items()}
        noise = await self.noise.get_value()
        value = self._function(**positions)
        if noise > 0:
            value += float(self._rng.normal(0.0, noise))
        self._set_value(value)
