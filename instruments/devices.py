"""Devices as beamlines have them: ophyd-async and ophyd classic, mixed in one instrument.

This module owns making the session's devices (calling its factory), connecting each within a timeout (ophyd-async
``connect(timeout=)`` in the RunEngine's event loop, ophyd classic ``wait_for_connection(timeout=)``), finding a
device by its dotted path (``stage.x``) and the mover of each variable and constant (:func:`find_movers`), their
own travel limits, and reading where a mover is: ``locate()`` (ophyd-async, any
``Locatable``), ``position`` (ophyd classic positioners such as ``EpicsMotor`` or ``ophyd.sim.SynAxis``), or the
read-back field of the mover's ``read()``.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable, Coroutine, Mapping
from typing import Any, Literal, TypeVar

from bluesky import RunEngine

from closedloop.errors import InstrumentError, SpecError
from closedloop.instrument import InstrumentSpec
from closedloop.plugins import resolve_import_path
from closedloop.problem import Problem
from closedloop.reach import device_limits

T = TypeVar("T")
PositionSource = Literal["locate", "position", "read"]
CONNECT_GRACE = 1.0
"""Seconds allowed past the connect timeout for a device that ignores its own timeout, before it is given up on."""
DETAIL_CHARS = 160


def in_loop(run_engine: RunEngine, coroutine: Coroutine[Any, Any, T]) -> T:
    """Run ``coroutine`` in the RunEngine's event loop from any other thread and return its result."""
    return asyncio.run_coroutine_threadsafe(coroutine, run_engine.loop).result()


def is_device(obj: Any) -> bool:
    """Whether ``obj`` looks like a Bluesky device: a ``name`` and a ``read()`` or a ``set()`` (a write-only
    setpoint is a device too), ophyd classic or ophyd-async."""
    if not isinstance(getattr(obj, "name", None), str):
        return False
    return callable(getattr(obj, "read", None)) or callable(getattr(obj, "set", None))


def make_devices(instrument: InstrumentSpec, run_engine: RunEngine, seed: int | None = None) -> dict[str, Any]:
    """Call the instrument's device factory, check what it returned and connect every device.

    The factory gets ``instrument.options`` as keyword arguments, ``seed`` (the session's) if it takes one and the
    options give none, and ``run_engine`` if it takes that keyword.

    Raises:
        InstrumentError: the factory raised, returned something other than a dict of devices, or a device did
            not connect within ``instrument.connect_timeout`` (one line naming the device).
    """
    factory: Callable[..., Any] = resolve_import_path(instrument.factory_path)
    options = dict(instrument.options)
    parameters = inspect.signature(factory).parameters
    if seed is not None and "seed" in parameters:
        options.setdefault("seed", seed)
    if "run_engine" in parameters:
        options["run_engine"] = run_engine
    try:
        devices = factory(**options)
    except Exception as exc:
        raise InstrumentError(f"instrument: {instrument.factory_path} failed: {exc}") from exc
    if not isinstance(devices, dict):
        raise InstrumentError(
            f"instrument: {instrument.factory_path} returned {type(devices).__name__}, not a dict of devices"
        )
    for key, device in devices.items():
        if not is_device(device):
            raise InstrumentError(
                f"instrument: '{key}' from {instrument.factory_path} is not a device "
                f"(no name, or neither read() nor set()): {type(device).__name__}"
            )
    connect_devices(devices, run_engine, instrument.connect_timeout)
    return devices


def connect_devices(devices: Mapping[str, Any], run_engine: RunEngine, timeout: float) -> None:
    """Connect every device, all at once, each within ``timeout`` seconds.

    ophyd-async devices connect in the RunEngine's event loop; ophyd classic devices wait for their connection
    in a worker thread; a device with neither is taken as connected.

    Raises:
        InstrumentError: the first device (in the factory's order) that did not connect, by name.
    """

    async def connect(device: Any) -> None:
        if inspect.iscoroutinefunction(getattr(device, "connect", None)):
            await asyncio.wait_for(device.connect(timeout=timeout), timeout + CONNECT_GRACE)
        elif callable(getattr(device, "wait_for_connection", None)):
            call = asyncio.to_thread(device.wait_for_connection, timeout=timeout)
            await asyncio.wait_for(call, timeout + CONNECT_GRACE)

    async def connect_all() -> list[BaseException | None]:
        return await asyncio.gather(*(connect(device) for device in devices.values()), return_exceptions=True)

    for key, outcome in zip(devices, in_loop(run_engine, connect_all()), strict=True):
        if outcome is None:
            continue
        lines = [line.strip() for line in str(outcome).splitlines() if line.strip()]
        detail = (lines[0] if lines else type(outcome).__name__)[:DETAIL_CHARS]
        if isinstance(outcome, TimeoutError) or type(outcome).__name__ == "NotConnectedError":
            hint = detail if lines else None
            raise InstrumentError(f"instrument: device '{key}' did not connect within {timeout:g} s", hint)
        raise InstrumentError(f"instrument: device '{key}' did not connect: {detail}") from outcome


def resolve_device(devices: Mapping[str, Any], path: str) -> Any:
    """The device at ``path``: a key of ``devices``, or a dotted path into one (``"stage.x"``).

    Raises:
        KeyError: no such device (the message names the missing part).
    """
    if path in devices:
        return devices[path]
    head, *rest = path.split(".")
    if head not in devices:
        raise KeyError(f"no device '{head}'")
    found = devices[head]
    for part in rest:
        if not hasattr(found, part):
            raise KeyError(f"device '{head}' has no '{part}' in '{path}'")
        found = getattr(found, part)
    return found


async def position_source(device: Any, field: str) -> PositionSource | None:
    """How ``device``'s position can be read, or ``None`` if it cannot.

    ``locate`` for a ``Locatable``, ``position`` for an ophyd classic positioner, ``read`` if its ``read()``
    describes ``field`` (asked of the device's ``describe()``; an ophyd-async device must be connected).
    """
    if callable(getattr(device, "locate", None)):
        return "locate"
    if isinstance(getattr(type(device), "position", None), property):
        return "position"
    if not callable(getattr(device, "describe", None)):
        return None
    if inspect.iscoroutinefunction(device.describe):
        keys = await device.describe()
    else:
        keys = await asyncio.to_thread(device.describe)
    return "read" if field in keys else None


async def read_position(device: Any, source: PositionSource, field: str) -> Any:
    """Where ``device`` is now, read the way :func:`position_source` found (classic calls run in a thread)."""
    if source == "locate":
        location = device.locate()
        if inspect.isawaitable(location):
            location = await location
        return location["readback"]
    if source == "position":
        return await asyncio.to_thread(getattr, device, "position")
    if inspect.iscoroutinefunction(device.read):
        reading = await device.read()
    else:
        reading = await asyncio.to_thread(device.read)
    return reading[field]["value"]


async def read_limits(device: Any) -> tuple[float, float] | None:
    """The device's own travel limits, or None when it has none (or says none).

    ophyd-async motors: the ``low_limit_travel`` / ``high_limit_travel`` signals, none when the dial limits are
    both 0 (as the EPICS motor record and ophyd-async's own move check read them); ophyd classic positioners
    (``EpicsMotor``, ``SoftPositioner``): ``limits``, where ``(0, 0)`` means none. A device whose limits cannot be
    read is taken as having none: the safety gate's hard limits still hold.
    """
    try:
        low: Any = getattr(device, "low_limit_travel", None)
        high: Any = getattr(device, "high_limit_travel", None)
        if callable(getattr(low, "get_value", None)) and callable(getattr(high, "get_value", None)):
            dial: list[Any] = [getattr(device, f"dial_{side}_limit_travel", None) for side in ("low", "high")]
            readable = all(callable(getattr(signal, "get_value", None)) for signal in dial)
            if readable and [await signal.get_value() for signal in dial] == [0, 0]:
                return None
            return device_limits(await low.get_value(), await high.get_value())
        if "limits" in dir(type(device)):
            limits = await asyncio.to_thread(getattr, device, "limits")
            if isinstance(limits, tuple | list) and len(limits) == 2:
                return device_limits(*limits)
    except Exception:  # a device that cannot say its limits has none we know of
        return None
    return None


def find_movers(problem: Problem, devices: Mapping[str, Any]) -> dict[str, Any]:
    """Variable (or constant with a ``device``) -> the device that moves it, found by its dotted path.

    Raises:
        SpecError: a variable's or constant's device is not among ``devices`` (the field named).
    """
    wanted = {name: (f"variables.{name}.device", problem.device_of(name)) for name in problem.variables}
    for name, constant in problem.constants.items():
        if constant.device is not None:
            wanted[name] = (f"constants.{name}.device", constant.device)
    movers = {}
    for name, (where, path) in wanted.items():
        try:
            movers[name] = resolve_device(devices, path)
        except KeyError as exc:  # a mistake in the session file: bad input, like any other found at connect
            raise SpecError(
                f"{where}: {exc.args[0]} in the instrument", f"devices are: {', '.join(sorted(devices))}"
            ) from None
    return movers


async def position_sources(problem: Problem, movers: Mapping[str, Any]) -> dict[str, tuple[Any, PositionSource, str]]:
    """Variable -> (its device, how to read its position, its read-back field), for each whose device can say.

    Raises:
        InstrumentError: a variable with a ``max_step`` whose device cannot report its position (the ``max_step``
            could not be enforced).
    """
    sources = {}
    for name, variable in problem.variables.items():
        device = movers[name]
        field = variable.readback or device.name
        source = await position_source(device, field)
        if source is not None:
            sources[name] = (device, source, field)
        elif variable.max_step is not None:
            raise InstrumentError(
                f"variables.{name}.max_step: device '{problem.device_of(name)}' cannot report its position "
                f"(no locate(), no position, no '{field}' in its read()), so max_step cannot be enforced"
            )
    return sources


async def movers_limits(problem: Problem, movers: Mapping[str, Any]) -> dict[str, tuple[float, float]]:
    """Variable -> its device's own travel limits (:func:`read_limits`); variables whose device has none left out."""
    found = {name: await read_limits(movers[name]) for name in problem.variables}
    return {name: limits for name, limits in found.items() if limits is not None}
