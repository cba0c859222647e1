"""Faults injected into the simulated instruments from a session file (``instrument.options.faults``).

Each fault is given as a count or a rate: an integer ``N`` fails the next ``N`` triggers (or moves), a number
strictly between 0 and 1 fails each one with that probability, drawn from a generator seeded with the session's
seed. The faults, and how each shows itself as ophyd-async devices show real faults:

- ``hang_trigger``: the detector's trigger status never completes.
- ``nan_reading``: the detector reads NaN.
- ``transient``: the detector's trigger fails with :class:`SimTransientError` (``transient = True``), a fault
  worth retrying.
- ``stall``: a motor's move completes with its read-back half-way to the setpoint.
- ``limit_switch``: a motor stops half-way and its move fails with :class:`SimLimitSwitchError`.
- ``no_connect``: a device whose connect never completes (``true``: the detector; or a device's name).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Annotated

import numpy as np
from ophyd_async.core import SignalR, SoftSignalBackend
from pydantic import BaseModel, ConfigDict, Field, ValidationError

Count = Annotated[int, Field(ge=0)] | Annotated[float, Field(gt=0, lt=1)]


class SimTransientError(RuntimeError):
    """A simulated fault that is gone on the next try (a detector busy, a dropped packet).

    Marked with ``transient = True``: the executor retries a run that failed of it.
    """

    transient = True


class SimLimitSwitchError(RuntimeError):
    """A simulated motor hit a limit switch and stopped short of its setpoint."""


class FaultSpec(BaseModel):
    """The faults a simulated instrument injects (see the module docstring)."""

    model_config = ConfigDict(extra="forbid")

    hang_trigger: Count = 0
    nan_reading: Count = 0
    transient: Count = 0
    stall: Count = 0
    limit_switch: Count = 0
    no_connect: bool | str = False


class Faults:
    """Decides, trigger by trigger and move by move, whether a fault fires.

    Args:
        faults: the session file's ``faults`` mapping (or a :class:`FaultSpec`).
        seed: seeds the draws of faults given as rates.

    Raises:
        ValueError: an unknown fault or a bad count, naming ``instrument.options.faults.<name>``.

    Attributes:
        fired: fault name -> how many times it has fired.
    """

    def __init__(self, faults: FaultSpec | dict | None = None, seed: int | None = None) -> None:
        try:
            spec = faults if isinstance(faults, FaultSpec) else FaultSpec.model_validate(faults or {})
        except ValidationError as exc:
            error = exc.errors()[0]
            where = ".".join(str(part) for part in error["loc"] if not str(part).startswith(("int", "float")))
            raise ValueError(f"instrument.options.faults.{where}: {error['msg']}") from None
        self.spec = spec
        self._left: dict[str, int] = {}
        self._rate: dict[str, float] = {}
        for name, value in spec.model_dump(exclude={"no_connect"}).items():
            if isinstance(value, float):
                self._rate[name] = value
            else:
                self._left[name] = int(value)
        self._rng = np.random.default_rng(None if seed is None else [seed, 0xFA])
        self.fired: Counter[str] = Counter()

    def fires(self, name: str) -> bool:
        """Whether the fault ``name`` fires now (counting it down, or drawing it at its rate)."""
        if self._left.get(name, 0) > 0:
            self._left[name] -= 1
            hit = True
        else:
            hit = name in self._rate and bool(self._rng.random() < self._rate[name])
        if hit:
            self.fired[name] += 1
        return hit

    def no_connect(self, device: str, default: str) -> bool:
        """Whether ``device`` is the one that never connects (``no_connect: true`` means ``default``)."""
        target = self.spec.no_connect
        return target == device or (target is True and device == default)


class _NeverConnectingBackend(SoftSignalBackend[float]):
    """A signal backend whose connect never completes, like a transport whose server never answers."""

    async def connect(self, timeout: float) -> None:
        await asyncio.Event().wait()


def never_connecting_signal() -> SignalR[float]:
    """A read-only signal that never connects, to make the device holding it hang at connect."""
    return SignalR(_NeverConnectingBackend(float))
