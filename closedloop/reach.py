"""The reach of the hardware: where each variable's mover may go, and how a long move gets there.

Three things, each a pure function of the session spec and what the devices said at connect:

- **limits in force** (:func:`limits_in_force`): a numeric variable's hard limits (the session file's) cut to its
  device's own limits (an ophyd motor's soft limits), the tighter of the two on each side;
- **the reachable problem** (:func:`reachable_vocs`): the VOCS a planner searches, every variable's domain cut to
  its limits in force. The static part of reach narrows the VOCS, not a proposal box, so that every planner (a
  foreign generator included) searches it as it searches any domain: Sobol and random points stay space-filling
  over it, a grid is laid over it, and a model is normalised to it, where clipping points into a box would pile
  them on its faces;
- **the route** (:func:`route`): the waypoints of a move longer than ``max_step``, on the straight line to the
  setpoint, so that no leg moves any variable further than its ``max_step``. The dynamic part of reach (from where
  the movers are) is walked, not refused: a point out of reach now is reached in steps.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from gest_api.vocs import VOCS

from closedloop.errors import InstrumentError, SafetyError
from closedloop.spec import SessionSpec

Limits = tuple[float, float]


def device_limits(low: Any, high: Any) -> Limits | None:
    """A device's ``(low, high)`` limits as a pair of floats, or None when they say "no limits".

    ophyd classic positioners (and the EPICS motor record) report ``(0, 0)`` for none; a pair that is not two
    finite numbers with ``low < high`` limits nothing either.
    """
    try:
        lo, hi = float(low), float(high)
    except (TypeError, ValueError):
        return None
    if not (math.isfinite(lo) and math.isfinite(hi)) or lo >= hi:
        return None
    return (lo, hi)


def limits_in_force(spec: SessionSpec, devices: Mapping[str, Limits]) -> dict[str, Limits]:
    """Every numeric variable's limits in force: its hard limits cut to its device's limits (``devices``: variable
    -> the device's limits, for those that have any).

    Raises:
        InstrumentError: a variable's hard limits and its device's limits have no point in common.
    """
    out: dict[str, Limits] = {}
    for name, variable in spec.variables.items():
        if variable.categorical:
            continue
        low, high = variable.limits
        if name in devices:
            dlo, dhi = devices[name]
            low, high = max(low, dlo), min(high, dhi)
            if low > high:
                raise InstrumentError(
                    f"variables.{name}.hard_limits: {list(variable.limits)} and the limits of device "
                    f"'{spec.device_of(name)}' {[dlo, dhi]} have no point in common",
                    "check the device's soft limits or the session file",
                )
        out[name] = (low, high)
    return out


def reach_summary(spec: SessionSpec, devices: Mapping[str, Limits]) -> dict[str, dict[str, list[float] | None]]:
    """Each numeric variable's ``hard_limits``, its device's own limits (``device_limits``, None when none are
    known) and the ``limits`` in force, JSON-ready (what ``status`` and a checkpoint show).

    Raises:
        InstrumentError: a variable's hard limits and its device's limits have no point in common.
    """
    return {
        name: {
            "hard_limits": list(spec.variables[name].limits),
            "device_limits": list(devices[name]) if name in devices else None,
            "limits": list(limits),
        }
        for name, limits in limits_in_force(spec, devices).items()
    }


def in_force(summary: Mapping[str, Mapping[str, Any]]) -> dict[str, Limits]:
    """The limits in force from a :func:`reach_summary` (as a session stores it): variable -> ``(low, high)``."""
    return {name: (float(entry["limits"][0]), float(entry["limits"][1])) for name, entry in summary.items()}


def reachable_vocs(spec: SessionSpec, devices: Mapping[str, Limits]) -> VOCS:
    """The session's VOCS with every variable's domain cut to its limits in force (see the module's text).

    A continuous variable's bounds are cut; a discrete variable keeps the values within its limits.

    Raises:
        InstrumentError: no point of a variable's search range (bounds or values) is within its device's limits.
    """
    vocs = spec.vocs()
    if not devices:
        return vocs
    limits = limits_in_force(spec, devices)
    variables: dict[str, Any] = {}
    for name, variable in spec.variables.items():
        if name not in devices or name not in limits:
            variables[name] = vocs.variables[name]
            continue
        low, high = limits[name]
        what = f"variables.{name}.{'bounds' if variable.bounds is not None else 'values'}"
        if variable.bounds is not None:
            lo, hi = max(variable.bounds[0], low), min(variable.bounds[1], high)
            if not lo < hi:
                raise _unreachable(spec, name, what, list(variable.bounds), devices[name])
            variables[name] = [lo, hi]
        else:
            kept = {v for v in variable.values or [] if low <= float(v) <= high}
            if not kept:
                raise _unreachable(spec, name, what, variable.values, devices[name])
            variables[name] = kept
    return VOCS(
        variables=variables,
        objectives=dict(vocs.objectives),
        constraints=dict(vocs.constraints),
        constants=dict(vocs.constants),
    )


def _unreachable(spec: SessionSpec, name: str, what: str, given: Any, device: Limits) -> InstrumentError:
    return InstrumentError(
        f"{what}: {given} lies outside the limits of device '{spec.device_of(name)}' {list(device)}",
        "check the device's soft limits or the session file",
    )


def route(
    start: Mapping[str, float], target: Mapping[str, Any], max_step: Mapping[str, float]
) -> list[dict[str, float]]:
    """The waypoints of the move from ``start`` to ``target``, the target excluded: none when every variable is
    within its ``max_step``, else evenly spaced points on the straight line, as few as keep every leg of every
    variable within its ``max_step``.

    Args:
        start: variable -> where its mover is.
        target: variable -> setpoint (non-numeric values are not stepped).
        max_step: variable -> its largest step (variables missing from it are not stepped).

    Returns:
        The waypoints in order, each a value for every stepped variable.

    Raises:
        SafetyError: a variable to step has no finite position in ``start`` (nothing may move).
    """
    stepped = {}
    for name, value in target.items():
        if name not in max_step or not _is_number(value):
            continue
        if not _is_number(start.get(name)):
            raise SafetyError(
                f"setpoints.{name}: no read-back position to measure max_step from ({start.get(name)!r})",
                "nothing was moved",
            )
        stepped[name] = (float(start[name]), float(value))
    legs = max((math.ceil(abs(b - a) / max_step[n] * (1 - 1e-9)) for n, (a, b) in stepped.items()), default=1)
    legs = max(legs, 1)
    return [{name: a + (b - a) * k / legs for name, (a, b) in stepped.items()} for k in range(1, legs)]


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(float(value))
