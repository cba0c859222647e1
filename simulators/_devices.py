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
        extra: more readings, field -> (function of the same inputs, noise standard deviation), for
            multi-objective and constrained problems (a beam's width, a mirror's heat load).

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
        extra: Mapping[str, tuple[Callable[..., float], float]] | None = None,
    ) -> None:
        self._function = function
        self._inputs = dict(inputs)
        self._noise = float(noise)
        self._rng = np.random.default_rng(seed)
        value, self._set_value = soft_signal_r_and_setter(float, 0.0)
        self._extra = dict(extra or {})
        self._set_extra = {}
        with self.add_children_as_readables(StandardReadableFormat.HINTED_SIGNAL):
            setattr(self, field, value)
            for extra_field in self._extra:
                signal, self._set_extra[extra_field] = soft_signal_r_and_setter(float, 0.0)
                setattr(self, extra_field, signal)
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
        for extra_field, (function, extra_noise) in self._extra.items():
            extra_value = function(**positions)
            if extra_noise > 0:
                extra_value += float(self._rng.normal(0.0, extra_noise))
            self._set_extra[extra_field](extra_value)
        self._set_value(value)
