"""A simulated motor with injectable faults: ophyd-async's :class:`~ophyd_async.sim.SimMotor` that can stall short
of its setpoint or stop on a limit switch, as real motors do.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from ophyd_async.core import TimeoutCalculator
from ophyd_async.sim import SimMotor
from ophyd_async.sim._motor import SimMotorMoveLogic

from simulators.faults import Faults, SimLimitSwitchError, never_connecting_signal

STALL_FRACTION = 0.5
"""How far towards its setpoint a stalled or limit-stopped move gets."""


@dataclass
class _FaultyMoveLogic(SimMotorMoveLogic):
    faults: Faults
    motor: str

    async def move(self, new_position: float, timeout: TimeoutCalculator) -> None:
        old = await self.readback.get_value()
        short = old + STALL_FRACTION * (new_position - old)
        if self.faults.fires("limit_switch"):
            await self._internal_sim_move(short)
            raise SimLimitSwitchError(f"{self.motor}: limit switch hit at {short:.6g} on the way to {new_position:.6g}")
        if self.faults.fires("stall"):
            # the move reports done, the read-back tells the truth: it stopped short
            await self._internal_sim_move(short)
            await self.setpoint.set(new_position)
            return
        await self._internal_sim_move(new_position)


class SimFaultyMotor(SimMotor):
    """A :class:`~ophyd_async.sim.SimMotor` whose moves stall or hit a limit switch when a fault fires.

    Args:
        name: device name.
        faults: decides which moves fail (``stall``, ``limit_switch``); shared with the rest of the instrument.
        instant: moves are instant (``False``: at the motor's velocity).
    """

    def __init__(self, name: str = "", faults: Faults | None = None, instant: bool = True) -> None:
        self._faults = faults or Faults()
        super().__init__(name=name, instant=instant)
        if self._faults.no_connect(name, default=""):
            self.link = never_connecting_signal()

    @cached_property
    def movable_logic(self) -> _FaultyMoveLogic:
        return _FaultyMoveLogic(
            readback=self.user_readback,
            readback_set=self._user_readback_set,
            setpoint=self.user_setpoint,
            velocity=self.velocity,
            acceleration_time=self.acceleration_time,
            faults=self._faults,
            motor=self.name,
        )
