"""The run timeout a session gets when its file gives none: derived from the plan and the connected devices.

A run is the plan's moves, then its readings. :func:`default_run_timeout` estimates the longest run the plan can
make and allows :data:`RUN_TIMEOUT_FACTOR` times that, never less than :data:`RUN_TIMEOUT_FLOOR` seconds:

- moves: each mover of a numeric variable travelling its whole hard-limit span at its ``velocity`` (plus its
  ``acceleration_time``), all movers together (the slowest counts); for the ``scan`` plan, the scanned motor also
  travels the scan's width. A mover with no velocity, or a velocity of 0 (instant), adds nothing;
- readings: the plan's events (``measure``'s ``num``, ``scan``'s ``num``, one for a plan factory) times the
  longest exposure: ``plan.count_time``, or else the largest acquire time a detector holds (``acquire_time``,
  ``count_time``, ``preset_time``, ``exposure_time``, ``exposure``, ``cam.acquire_time``).

Signals are read as ophyd-async (``get_value()``) or ophyd classic (``get()``) devices hold them; one that cannot
be read is left out of the estimate.
"""

from __future__ import annotations

import asyncio
import inspect
import math
from collections.abc import Mapping, Sequence
from typing import Any

from closedloop.plan import PlanSpec
from closedloop.problem import Problem
from instruments.plans import ACQUIRE_TIME_SIGNALS

RUN_TIMEOUT_FLOOR = 60.0
"""Seconds: the shortest derived run timeout (staging a detector or settling a motor takes time of its own)."""
RUN_TIMEOUT_FACTOR = 4.0
"""The derived run timeout is this many times the longest run the plan can make."""
EXPOSURE_SIGNALS = (*ACQUIRE_TIME_SIGNALS, "exposure")


async def default_run_timeout(
    problem: Problem, plan: PlanSpec, movers: Mapping[str, Any], detectors: Sequence[Any]
) -> float:
    """Seconds a run of this session may take before it is aborted, when ``instrument.run_timeout`` is not given.

    Args:
        problem: the variables (each one's hard limits).
        plan: the plan (its events, its ``count_time``, the scan's width).
        movers: variable or constant name -> the device that sets it (connected).
        detectors: the devices read in each run (connected).

    Returns:
        ``max(RUN_TIMEOUT_FLOOR, RUN_TIMEOUT_FACTOR * estimate)`` (see the module docstring).
    """
    moves = 0.0
    for name, variable in problem.variables.items():
        if variable.categorical:
            continue  # a setting by name: no travel to estimate
        low, high = variable.limits
        travel = high - low
        if plan.bundled == "scan" and plan.scan_options().variable == name:
            travel += plan.scan_options().width
        moves = max(moves, await _travel_time(movers[name], travel))
    if plan.count_time is not None:
        exposure = plan.count_time
    else:
        exposure = max([await _exposure(detector) for detector in detectors], default=0.0)
    estimate = moves + (plan.expected_events or 1) * exposure
    return max(RUN_TIMEOUT_FLOOR, RUN_TIMEOUT_FACTOR * estimate)


async def _travel_time(mover: Any, travel: float) -> float:
    velocity = await _number(getattr(mover, "velocity", None))
    if velocity is None or velocity <= 0:
        return 0.0
    return travel / velocity + (await _number(getattr(mover, "acceleration_time", None)) or 0.0)


async def _exposure(detector: Any) -> float:
    for path in EXPOSURE_SIGNALS:
        signal: Any = detector
        for part in path.split("."):
            signal = getattr(signal, part, None)
        value = await _number(signal)
        if value is not None and value >= 0:
            return value
    return 0.0


async def _number(signal: Any) -> float | None:
    """The signal's value as a finite float, or None (no such signal, unreadable, not a number)."""
    if signal is None:
        return None
    try:
        if callable(getattr(signal, "get_value", None)):
            value = await signal.get_value()
        elif callable(getattr(signal, "get", None)):
            value = await asyncio.to_thread(signal.get)
        else:
            return None
        if inspect.isawaitable(value):
            value = await value
        number = float(value)
    except Exception:  # a signal that cannot be read says nothing about how long a run takes
        return None
    return number if math.isfinite(number) else None
