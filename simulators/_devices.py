"""Simulated devices built from ophyd-async soft signals.

:class:`SimFieldDetector` is a triggerable detector whose reading is a function of other devices' read-back
signals (usually :class:`ophyd_async.sim.SimMotor` positions), scaled by the beam it was exposed to, plus Gaussian
noise, with faults that can be injected for tests.
"""

from __future__ import annotations

import asyncio
import time
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

from simulators.faults import Faults, SimTransientError, never_connecting_signal

BEAM_SAMPLE = 0.02
"""Seconds between samples of the beam current during an exposure."""


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
        exposure: seconds each trigger takes (awaited, so the RunEngine stays responsive meanwhile).
        beam: a signal with the beam current; the main reading is scaled by its mean over the exposure divided
            by ``nominal_beam`` (no beam, no signal).
        nominal_beam: the beam current at which the reading is ``function(**inputs)``.
        faults: the instrument's injected faults (``hang_trigger``, ``nan_reading``, ``transient``,
            ``no_connect``).

    Signals:
        ``fail_next``: writable count of triggers to fail from now (fault injection); each failing trigger
        raises ``RuntimeError`` and decrements it. ``exposure`` and ``noise`` are configuration signals.
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
        exposure: float = 0.0,
        beam: SignalR[float] | None = None,
        nominal_beam: float = 1.0,
        faults: Faults | None = None,
    ) -> None:
        if exposure < 0:
            raise ValueError(f"exposure: {exposure} is negative")
        self._function = function
        self._inputs = dict(inputs)
        self._rng = np.random.default_rng(seed)
        self._beam = {"current": beam} if beam is not None else {}  # a dict: the signal stays the ring's child
        self._nominal_beam = float(nominal_beam)
        self._faults = faults or Faults()
        self._generation = 0
        value, self._set_value = soft_signal_r_and_setter(float, 0.0)
        self._extra = dict(extra or {})
        self._set_extra = {}
        with self.add_children_as_readables(StandardReadableFormat.HINTED_SIGNAL):
            setattr(self, field, value)
            for extra_field in self._extra:
                signal, self._set_extra[extra_field] = soft_signal_r_and_setter(float, 0.0)
                setattr(self, extra_field, signal)
        with self.add_children_as_readables(StandardReadableFormat.CONFIG_SIGNAL):
            self.noise = soft_signal_rw(float, float(noise))
            self.exposure = soft_signal_rw(float, float(exposure), units="s")
        self.fail_next = soft_signal_rw(int, 0)
        if self._faults.no_connect(name, default="det"):
            self.link = never_connecting_signal()
        self.triggers = 0
        super().__init__(name=name)

    async def _beam_fraction(self, exposure: float) -> float:
        """Wait out the exposure; the mean beam current over it, as a fraction of nominal."""
        if not self._beam:
            await asyncio.sleep(exposure)
            return 1.0
        beam = self._beam["current"]
        if exposure <= 0:
            return float(await beam.get_value()) / self._nominal_beam
        end = time.monotonic() + exposure
        last, integral = end - exposure, 0.0
        current = float(await beam.get_value())
        while last < end:  # up to the end itself: a slow clock read never drops the exposure's last moments
            await asyncio.sleep(min(BEAM_SAMPLE, end - last))
            now = min(time.monotonic(), end)
            integral += current * (now - last)
            last, current = now, float(await beam.get_value())
        return integral / exposure / self._nominal_beam

    @AsyncStatus.wrap
    async def trigger(self) -> None:
        """Read the inputs, expose, compute the value and publish it (or show an injected fault)."""
        self.triggers += 1
        self._generation += 1
        generation = self._generation
        failing = await self.fail_next.get_value()
        if failing > 0:
            await self.fail_next.set(failing - 1)
            raise RuntimeError(f"{self.name}: injected detector fault")
        if self._faults.fires("transient"):
            raise SimTransientError(f"{self.name}: detector busy (injected transient fault)")
        if self._faults.fires("hang_trigger"):
            await asyncio.Event().wait()  # the trigger status never completes
        positions = {key: float(await signal.get_value()) for key, signal in self._inputs.items()}
        beam = await self._beam_fraction(await self.exposure.get_value())
        if generation != self._generation:
            return  # a newer trigger (after a suspension or an abort) publishes instead
        noise = await self.noise.get_value()
        value = self._function(**positions) * beam
        if noise > 0:
            value += float(self._rng.normal(0.0, noise))
        if self._faults.fires("nan_reading"):
            value = float("nan")
        for extra_field, (function, extra_noise) in self._extra.items():
            extra_value = function(**positions)
            if extra_noise > 0:
                extra_value += float(self._rng.normal(0.0, extra_noise))
            self._set_extra[extra_field](extra_value)
        self._set_value(value)
