"""The session file checked against its connected devices, once, before anything moves.

:func:`check_devices` is what an executor calls after connecting the devices. It refuses, in one line naming the
field:

- a variable (or a constant with a ``device``) whose device cannot be moved: no ``set()``, not a bluesky
  ``Movable`` (a detector named as a motor);
- a variable whose device reads back the wrong kind of value: names (categories) where the variable holds
  numbers, numbers where it holds names, or names that are not among the device's ``choices``;
- a variable's read-back, an objective's or a constraint's ``field``, or the plan's ``monitor`` that is not among
  the fields the devices describe, looked up as ingestion looks them up
  (:meth:`instruments.reducers.RunDocuments.field`); an output with a ``reducer`` is made by it and not looked up,
  nor are the outputs and monitor of a plan ``factory`` (it may read devices of its own);
- an output without a reducer whose field a detector writes to a file (``external``): the events hold references,
  not values, so it needs a reducer.

The fields are what ``describe()`` of the devices read in each run gives (ophyd-async and ophyd classic). An
ophyd-async ``StandardDetector`` describes its fields only once prepared: it is staged, prepared for one event
(no exposure is taken; its writer may open a file) and unstaged.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Mapping, Sequence
from typing import Any

from bluesky.protocols import Movable
from ophyd_async.core import StandardDetector, TriggerInfo

from closedloop.errors import InstrumentError, SpecError
from closedloop.plan import PlanSpec
from closedloop.problem import Problem, VariableSpec, path_segment
from instruments.devices import in_loop
from instruments.reducers import RunDocuments

NUMERIC = ("number", "integer")


def check_connected(
    problem: Problem,
    plan: PlanSpec,
    movers: Mapping[str, Any],
    detectors: Sequence[Any],
    engine: Any,
    timeout: float = 10.0,
) -> None:
    """Describe what a run reads (``detectors`` and ``movers``) in the RunEngine ``engine``'s loop, then
    :func:`check_devices`; each device has ``timeout`` seconds (``instrument.connect_timeout``) to describe itself.

    Raises:
        SpecError: see :func:`check_devices`.
        InstrumentError: a device could not describe itself.
    """
    readables: list[Any] = []
    for device in [*detectors, *movers.values()]:
        if not any(device is seen for seen in readables):
            readables.append(device)
    described = in_loop(engine, describe_devices(readables, plan.count_time, timeout))
    check_devices(problem, plan, movers, readables, described)


def check_devices(
    problem: Problem,
    plan: PlanSpec,
    movers: Mapping[str, Any],
    readables: Sequence[Any],
    describe: Mapping[str, Any],
) -> None:
    """Check the session file against its devices (see the module docstring).

    Args:
        problem: the variables (their devices and read-backs), the constants and the outputs' fields.
        plan: the plan (a factory's plan may make fields of its own; the monitor's field).
        movers: variable or constant name -> the device that sets it.
        readables: every device a run reads (detectors and movers).
        describe: what :func:`describe_devices` gave for ``readables``.

    Raises:
        SpecError: the first mismatch, naming the field and what the devices offer.
    """
    fields = RunDocuments([("descriptor", {"uid": "check", "name": "primary", **describe})])
    for name in movers:
        where = f"{'variables' if name in problem.variables else 'constants'}.{path_segment(name)}"
        if not isinstance(movers[name], Movable):
            can = ", ".join(sorted(_name(d) for d in readables if isinstance(d, Movable))) or "none"
            raise SpecError(
                f"{where}.device: '{_name(movers[name])}' cannot be moved (no set(): a detector?); "
                f"devices that can: {can}"
            )
    for name, variable in problem.variables.items():
        _check_readback(problem, plan, name, variable, movers[name], fields)
    for name, constant in problem.constants.items():
        if constant.device is not None and name in movers:
            own = _own_key(movers[name], fields)
            if own is not None:
                where = f"constants.{path_segment(name)}"
                _check_kind(where, isinstance(constant.value, str), [constant.value], fields.data_keys[own])
    if plan.factory is not None:
        return  # a plan of the user's own may read devices and make fields of its own: its outputs are not looked up
    for section, outputs in (("objectives", problem.objectives), ("constraints", problem.constraints)):
        for name, output in outputs.items():
            if output.reducer is None:
                _check_value_field(f"{section}.{path_segment(name)}.field", problem.field_of(name), fields)
    if plan.monitor is not None:
        _check_value_field("plan.monitor", plan.monitor, fields)


def _check_readback(
    problem: Problem, plan: PlanSpec, name: str, variable: VariableSpec, mover: Any, fields: RunDocuments
) -> None:
    where = f"variables.{path_segment(name)}"
    field = _own_key(mover, fields) if variable.readback is None else None
    if field is None and variable.readback is None and not callable(getattr(mover, "describe", None)):
        return  # a write-only setpoint: nothing to compare
    if field is None:
        wanted = variable.readback or problem.device_of(name)
        if plan.factory is not None and wanted not in fields.data_keys:
            return  # a plan of the user's own may read it from a device of its own
        field = _lookup(f"{where}.readback", wanted, fields)
    _check_kind(where, variable.categorical, list(variable.values or []), fields.data_keys[field])


def _check_kind(where: str, named: bool, values: list[Any], key: Mapping[str, Any]) -> None:
    """A categorical input needs a device that takes names (a string or an enum with ``choices``); a numeric one
    a device that reads numbers."""
    dtype, choices = key.get("dtype"), key.get("choices")
    if named and choices:
        missing = [v for v in values if v not in choices]
        if missing:
            raise SpecError(f"{where}: '{missing[0]}' is not among the device's choices ({', '.join(choices)})")
    elif named and dtype != "string":
        raise SpecError(f"{where}: names ({', '.join(map(str, values))}) on a device that reads {dtype} values")
    elif not named and (choices or dtype not in (*NUMERIC, None)):
        kind = f"one of {', '.join(choices)}" if choices else f"{dtype} values"
        raise SpecError(f"{where}: numbers on a device that reads {kind}; list its names as values")


def _check_value_field(where: str, name: str, fields: RunDocuments) -> None:
    field = _lookup(where, name, fields)
    key = fields.data_keys[field]
    if fields.is_external(field):
        raise SpecError(
            f"{where}: '{field}' is written to a file by its detector, not put in the events; "
            "give a reducer (instruments.reducers:mean, or frame_sum for images)"
        )
    if key.get("dtype") not in (*NUMERIC, "array", None):
        raise SpecError(f"{where}: '{field}' reads {key.get('dtype')} values, not numbers")


def _lookup(where: str, name: str, fields: RunDocuments) -> str:
    try:
        return fields.field(name)
    except InstrumentError:
        known = ", ".join(sorted(fields.data_keys)) or "none"
        raise SpecError(f"{where}: no field '{name}' is read from the devices (their fields: {known})") from None


def _own_key(device: Any, fields: RunDocuments) -> str | None:
    """The field a mover reads its own position into, when its name finds one."""
    try:
        return fields.field(_name(device))
    except InstrumentError:
        return None


async def describe_devices(devices: Sequence[Any], count_time: float | None, timeout: float) -> dict[str, Any]:
    """A descriptor's ``data_keys``, ``object_keys`` and ``hints`` for ``devices``, as a run reading them makes.

    Runs in the RunEngine's event loop; ophyd classic devices are described in a worker thread.

    Raises:
        InstrumentError: a device did not describe itself within ``timeout`` seconds, or failed to.
    """
    data_keys: dict[str, Any] = {}
    object_keys: dict[str, list[str]] = {}
    hints: dict[str, Any] = {}
    for device in devices:
        if not callable(getattr(device, "describe", None)):
            continue
        try:
            keys = await asyncio.wait_for(_describe(device, count_time), timeout)
        except Exception as exc:
            reason = "timed out" if isinstance(exc, TimeoutError) else f"{type(exc).__name__}: {exc}"
            message = f"instrument: device '{_name(device)}' could not describe its fields ({reason})"
            raise InstrumentError(message) from exc
        data_keys.update(keys)
        object_keys[_name(device)] = list(keys)
        device_hints = getattr(device, "hints", None)
        if isinstance(device_hints, Mapping):
            hints[_name(device)] = dict(device_hints)
    return {"data_keys": data_keys, "object_keys": object_keys, "hints": hints}


async def _describe(device: Any, count_time: float | None) -> dict[str, Any]:
    if isinstance(device, StandardDetector):
        await device.stage()
        try:
            await device.prepare(TriggerInfo(number_of_events=1, livetime=count_time or 0.0))
            return dict(await device.describe())
        finally:
            await device.unstage()
    if inspect.iscoroutinefunction(device.describe):
        return dict(await device.describe())
    return dict(await asyncio.to_thread(device.describe))


def _name(device: Any) -> str:
    return str(getattr(device, "name", device))
