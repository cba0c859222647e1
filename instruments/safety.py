"""The safety gate: no setpoint outside a variable's limits in force, or a step past ``max_step``, reaches a plan.

:func:`gate` is what the loop calls before every run, whatever the executor. The limits in force are the hard
limits cut to the devices' own limits, when the executor knows them (:class:`~instruments.protocols.Reaches`,
see :mod:`closedloop.reach`). A move longer than ``max_step`` goes through to an executor that makes it in steps
(a ``Reaches`` one); for any other the gate reads where the movers are and refuses it.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from typing import Any

from closedloop.errors import InstrumentError, SafetyError
from closedloop.problem import Value, VariableSpec
from closedloop.reach import Limits, limits_in_force
from closedloop.spec import SessionSpec
from instruments.protocols import Executes, Reaches


def gate(spec: SessionSpec, setpoints: Mapping[str, Any], executor: Executes) -> dict[str, Value]:
    """The one safety check before any executor runs a proposal.

    Args:
        spec: the session spec.
        setpoints: the proposal's setpoints.
        executor: asked for its devices' limits when it knows them (:class:`~instruments.protocols.Reaches`), and
            for :meth:`~instruments.protocols.Executes.positions` when any variable has a ``max_step`` and it
            cannot make a long move in steps.

    Returns:
        The checked setpoints (see :func:`check_setpoints`).

    Raises:
        SafetyError: the proposal is refused (nothing has moved); also when a variable has a ``max_step`` and the
            executor cannot say where its device is.
    """
    devices = executor.limits() if isinstance(executor, Reaches) else {}
    limits = _limits(spec, devices) if devices else None
    limited = [name for name, variable in spec.variables.items() if variable.max_step is not None]
    if not limited or isinstance(executor, Reaches):
        return check_setpoints(spec, setpoints, limits=limits)
    current = {name: float(value) for name, value in executor.positions().items() if _is_real(value)}
    unknown = [name for name in limited if name not in current]
    if unknown:
        device = spec.device_of(unknown[0])
        raise SafetyError(
            f"setpoints.{unknown[0]}: no read-back position from device '{device}' to measure max_step from",
            "nothing was moved",
        )
    return check_setpoints(spec, setpoints, current, limits=limits)


def check_edit(
    spec: SessionSpec, setpoints: Mapping[str, Any], current: Mapping[str, Any], executor: Executes
) -> dict[str, Value]:
    """Check an operator's setpoints before they are accepted, as :func:`gate` will check them on ``executor``: within
    its devices' limits too, and ``max_step`` from ``current`` only when it cannot make a long move in steps.

    Raises:
        SafetyError: the setpoints would be refused (the message names the field).
    """
    devices = executor.limits() if isinstance(executor, Reaches) else {}
    limits = _limits(spec, devices) if devices else None
    return check_setpoints(spec, setpoints, None if isinstance(executor, Reaches) else current, limits=limits)


def _limits(spec: SessionSpec, devices: dict[str, Limits]) -> dict[str, Limits]:
    try:
        return limits_in_force(spec, devices)
    except InstrumentError as exc:  # no point in common: nothing can move
        raise SafetyError(str(exc), "nothing was moved") from None


def _is_real(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(float(value))


def check_setpoints(
    spec: SessionSpec,
    setpoints: Mapping[str, Any],
    current: Mapping[str, Any] | None = None,
    *,
    limits: Mapping[str, Limits] | None = None,
) -> dict[str, Value]:
    """Check a proposal's setpoints against the session's limits, before any plan is built.

    Args:
        spec: the session spec holding each variable's hard limits, allowed values and largest step.
        setpoints: variable (and constant) name -> value to move to.
        current: variable name -> where its device is now, for the largest-step check (omit to skip it).
        limits: variable name -> its limits in force (:func:`closedloop.reach.limits_in_force`), when the devices'
            own limits are known; the hard limits otherwise.

    Returns:
        Every variable's and constant's setpoint (numbers as floats), in the spec's order.

    Raises:
        SafetyError: a variable is missing or unknown, a value is not a finite number or not an allowed value,
            lies outside its hard limits, or is further than ``max_step`` from the current position, or a
            constant differs from its fixed value. Nothing has moved.
    """
    unknown = sorted(set(setpoints) - set(spec.variables) - set(spec.constants))
    if unknown:
        raise SafetyError(f"setpoints.{unknown[0]}: not a variable of this session", "check the proposal")
    checked: dict[str, Value] = {}
    for name, variable in spec.variables.items():
        if name not in setpoints:
            raise SafetyError(f"setpoints.{name}: missing", "every variable needs a setpoint")
        value = checked[name] = _check_variable(name, variable, setpoints[name])
        if limits is not None and name in limits and isinstance(value, float):
            low, high = limits[name]
            if not low <= value <= high:
                raise SafetyError(
                    f"setpoints.{name}: {checked[name]} is outside the limits in force [{low}, {high}] (the hard "
                    f"limits {list(variable.limits)} cut to device '{spec.device_of(name)}''s own limits)",
                    "nothing was moved",
                )
        here = (current or {}).get(name)
        if variable.max_step is not None and isinstance(here, int | float) and not isinstance(here, bool):
            step = abs(float(checked[name]) - float(here))
            if step > variable.max_step * (1 + 1e-9):
                raise SafetyError(
                    f"setpoints.{name}: a move of {step:.6g} from {here:.6g} exceeds max_step {variable.max_step}",
                    "nothing was moved",
                )
    for name, constant in spec.constants.items():
        value = setpoints.get(name, constant.value)
        if value != constant.value:
            raise SafetyError(f"setpoints.{name}: {value!r} differs from the constant {constant.value!r}")
        checked[name] = constant.value
    return checked


def _check_variable(name: str, variable: VariableSpec, raw: Any) -> Value:
    if variable.categorical:
        if raw not in (variable.values or []):
            raise SafetyError(f"setpoints.{name}: {raw!r} is not one of {variable.values}")
        return str(raw)
    if isinstance(raw, bool):
        raise SafetyError(f"setpoints.{name}: {raw!r} is not a number")
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise SafetyError(f"setpoints.{name}: {raw!r} is not a number") from None
    if not math.isfinite(value):
        raise SafetyError(f"setpoints.{name}: {value} is not a finite number")
    low, high = variable.limits
    if not low <= value <= high:
        raise SafetyError(f"setpoints.{name}: {value} is outside the hard limits [{low}, {high}]", "nothing was moved")
    if variable.values is not None:
        allowed = [float(v) for v in variable.values]
        match = [v for v in allowed if math.isclose(v, value, rel_tol=1e-9, abs_tol=1e-12)]
        if not match:
            raise SafetyError(f"setpoints.{name}: {value} is not one of {variable.values}")
        value = match[0]
    return value
