"""The safety gate: no setpoint outside a variable's hard limits ever reaches a plan."""

from __future__ import annotations

import math
from collections.abc import Mapping

from closedloop.errors import SafetyError
from closedloop.spec import SessionSpec


def check_setpoints(spec: SessionSpec, setpoints: Mapping[str, float]) -> dict[str, float]:
    """Check a proposal's setpoints against the session's hard limits, before any plan is built.

    Args:
        spec: the session spec holding each variable's hard limits.
        setpoints: variable name -> value to move to.

    Returns:
        The setpoints as plain floats, in the spec's variable order.

    Raises:
        SafetyError: a variable is missing or unknown, a value is not a finite number, or a value lies outside
            its hard limits. Nothing has moved.
    """
    unknown = sorted(set(setpoints) - set(spec.variables))
    if unknown:
        raise SafetyError(f"setpoints.{unknown[0]}: not a variable of this session", "check the proposal")
    checked: dict[str, float] = {}
    for name, variable in spec.variables.items():
        if name not in setpoints:
            raise SafetyError(f"setpoints.{name}: missing", "every variable needs a setpoint")
        try:
            value = float(setpoints[name])
        except (TypeError, ValueError):
            raise SafetyError(f"setpoints.{name}: {setpoints[name]!r} is not a number") from None
        if not math.isfinite(value):
            raise SafetyError(f"setpoints.{name}: {value} is not a finite number")
        low, high = variable.limits
        if not low <= value <= high:
            raise SafetyError(
                f"setpoints.{name}: {value} is outside the hard limits [{low}, {high}]", "nothing was moved"
            )
        checked[name] = value
    return checked
