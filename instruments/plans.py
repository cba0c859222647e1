"""The Bluesky plans that carry out proposals, one run each, and :func:`plan_for`, which picks one for a session.

:func:`plan_for` is what an executor calls: it gives the session's plan (``plan:`` in the session file, see
:mod:`closedloop.plan`) the proposal's setpoints, the devices and the start document's metadata. The bundled
plans, :func:`measure_point` and :func:`scan_point`, are plain generators built from ``bps`` stubs:

- every detector and mover is staged before the run and unstaged after it, whatever happens
  (``bpp.stage_wrapper``; an ophyd-async ``SimStage`` feeds its pattern generator only while staged);
- an ophyd-async ``StandardDetector`` is prepared for one event per trigger, with ``count_time`` as its livetime;
  it writes its data to a file and puts references (``stream_resource``/``stream_datum``) in the events, so an
  objective from it needs a reducer (:mod:`instruments.reducers`);
- ``count_time`` on any other detector is put in its acquire-time signal (the first of ``acquire_time``,
  ``count_time``, ``preset_time``, ``exposure_time``, ``cam.acquire_time`` that can be set) for the run and put
  back afterwards; a run with a ``count_time`` that no detector takes fails, naming the option;
- every mover moves to its setpoint together (one ``mv``), then the detectors and the movers are triggered and
  read into the ``primary`` stream; a move longer than a variable's ``max_step`` is first walked through the
  waypoints :func:`plan_for` is given (``route``), each leg within ``max_step``, before the run opens.
"""

from __future__ import annotations

from collections.abc import Generator, Mapping, Sequence
from typing import Any

import bluesky.plan_stubs as bps
import bluesky.preprocessors as bpp
import numpy as np
from bluesky.protocols import Readable
from bluesky.utils import MsgGenerator
from ophyd_async.core import StandardDetector, TriggerInfo

from closedloop.errors import InstrumentError
from closedloop.plan import PlanSpec
from closedloop.plugins import resolve_import_path
from closedloop.problem import Problem

ACQUIRE_TIME_SIGNALS = ("acquire_time", "count_time", "preset_time", "exposure_time", "cam.acquire_time")
"""Where ``count_time`` goes on a detector that is not a StandardDetector: the first of these that can be set."""


def plan_for(
    problem: Problem,
    plan: PlanSpec,
    setpoints: Mapping[str, float | str],
    movers: Mapping[str, Any],
    detectors: Sequence[Any],
    md: Mapping[str, Any],
    *,
    route: Sequence[Mapping[str, float]] = (),
    limits: Mapping[str, tuple[float, float]] | None = None,
) -> MsgGenerator:
    """The plan that carries out one proposal as one run, as the session's ``plan:`` says.

    Nothing runs until the RunEngine iterates the plan, and nothing here raises: a plan factory that raises or
    returns something that is not a plan, or a plan that cannot be built, raises
    :class:`~closedloop.errors.InstrumentError` from inside the plan, before anything has moved, so the executor
    records a failed run with the reason.

    Args:
        problem: the variables (their hard limits).
        plan: the session's ``plan:``.
        setpoints: variable or constant name -> value, already through the safety gate.
        movers: variable or constant name -> the device that sets it.
        detectors: every device that moves nothing; all are triggered and read.
        md: the start document's metadata (with ``proposal_id``); the plan adds ``plan_name``, ``num_points``
            and a ``closedloop`` entry naming each variable's mover, the monitor and, for a scan, its motor.
        route: waypoints (variable -> value) the movers go through, in order, before the run (a move longer than
            ``max_step`` made in steps: :func:`closedloop.reach.route`); recorded as ``closedloop.route``.
        limits: variable -> its device's own limits; a scan is cut to them as to the hard limits.

    Returns:
        The plan (a generator of Bluesky messages); it returns the run's uid.
    """
    meta: dict[str, Any] = {
        **md,
        "plan_name": plan.label,
        "closedloop": {
            "movers": {name: _name(device) for name, device in movers.items()},
            "monitor": plan.monitor,
            "count_time": plan.count_time,
        },
    }
    if route:
        meta["closedloop"]["route"] = [dict(waypoint) for waypoint in route]
    if plan.factory is not None:
        chosen = _factory_plan(plan.factory, plan.options, setpoints, movers, detectors, meta)
    else:
        chosen = _bundled_plan(problem, plan, setpoints, movers, detectors, meta, limits or {})
    return _approach(route, movers, chosen) if route else chosen


def end_positions(
    problem: Problem,
    plan: PlanSpec,
    setpoints: Mapping[str, Any],
    limits: Mapping[str, tuple[float, float]] | None = None,
) -> dict[str, Any]:
    """Where the session's plan leaves the movers after a run to ``setpoints``: the setpoints, but for the scanned
    variable of the bundled ``scan``, which ends at the scan's last point (a factory's plan: the setpoints)."""
    ends = dict(setpoints)
    if plan.bundled == "scan":
        scan = plan.scan_options()
        centre = setpoints.get(scan.variable)
        if isinstance(centre, int | float) and not isinstance(centre, bool):
            ends[scan.variable] = scan_range(problem, plan, setpoints, limits)[1]
    return ends


def _approach(
    route: Sequence[Mapping[str, float]], movers: Mapping[str, Any], plan: MsgGenerator[Any]
) -> MsgGenerator[Any]:
    """Move the movers through ``route``'s waypoints (all together at each), then run ``plan``."""
    for waypoint in route:
        pairs: list[Any] = []
        for name, value in waypoint.items():
            pairs += [movers[name], value]
        yield from bps.mv(*pairs)
    return (yield from plan)


def measure_point(
    moves: Mapping[Any, float | str],
    detectors: Sequence[Any],
    md: Mapping[str, Any],
    *,
    num: int = 1,
    count_time: float | None = None,
) -> MsgGenerator[str]:
    """Move every device to its setpoint together, then take ``num`` readings, in one staged run.

    Args:
        moves: device -> setpoint.
        detectors: devices to trigger and read once the moves are done (the movers are read too).
        md: metadata for the start document.
        num: readings (``primary`` events).
        count_time: seconds of exposure per reading, where a detector takes it (see the module docstring).

    Returns:
        The run's uid.
    """

    def _readings() -> MsgGenerator[None]:
        readables = _readables(detectors, moves)
        for _ in range(num):
            yield from bps.trigger_and_read(readables)

    return (yield from _staged_run(moves, detectors, {"num_points": num, **md}, count_time, _readings))


def scan_point(
    moves: Mapping[Any, float | str],
    detectors: Sequence[Any],
    md: Mapping[str, Any],
    *,
    motor: Any,
    positions: Sequence[float],
    count_time: float | None = None,
) -> MsgGenerator[str]:
    """Move every device to its setpoint together, then step ``motor`` through ``positions``, one reading at each,
    in one staged run.

    Args:
        moves: device -> setpoint (``motor`` included: it goes there first, then to the first position).
        detectors: devices to trigger and read at each position (the movers are read too).
        md: metadata for the start document.
        motor: the device scanned.
        positions: where to read, in order.
        count_time: seconds of exposure per reading, where a detector takes it.

    Returns:
        The run's uid.
    """

    def _readings() -> MsgGenerator[None]:
        readables = _readables(detectors, {motor: None, **moves})
        for position in positions:
            yield from bps.mv(motor, position)
            yield from bps.trigger_and_read(readables)

    meta = {"num_points": len(positions), "motors": [_name(motor)], **md}
    return (yield from _staged_run(moves, detectors, meta, count_time, _readings))


def scan_range(
    problem: Problem,
    plan: PlanSpec,
    setpoints: Mapping[str, float | str],
    limits: Mapping[str, tuple[float, float]] | None = None,
) -> tuple[float, float]:
    """Where the ``scan`` plan starts and stops: ``width`` centred on the scanned variable's setpoint, cut to its
    hard limits and to the device's own (``limits``, by variable, where known).

    Raises:
        InstrumentError: the scanned variable has no numeric setpoint (``plan.options.variable``).
        ValueError: the session's plan is not ``scan``.
    """
    scan = plan.scan_options()
    centre = setpoints.get(scan.variable)
    if isinstance(centre, bool) or not isinstance(centre, int | float):
        raise InstrumentError(f"plan.options.variable: no numeric setpoint for '{scan.variable}'")
    low, high = problem.variables[scan.variable].limits
    if limits and scan.variable in limits:
        low, high = max(low, limits[scan.variable][0]), min(high, limits[scan.variable][1])
    return max(centre - scan.width / 2, low), min(centre + scan.width / 2, high)


def _bundled_plan(
    problem: Problem,
    plan: PlanSpec,
    setpoints: Mapping[str, float | str],
    movers: Mapping[str, Any],
    detectors: Sequence[Any],
    md: dict[str, Any],
    limits: Mapping[str, tuple[float, float]],
) -> MsgGenerator[str]:
    missing = [name for name in problem.variables if name not in movers]
    if missing:
        raise InstrumentError(f"variables.{missing[0]}: no device moves it")
    moves = {movers[name]: value for name, value in setpoints.items() if name in movers}
    if plan.bundled != "scan":
        num = plan.measure_options().num
        return (yield from measure_point(moves, detectors, md, num=num, count_time=plan.count_time))
    scan = plan.scan_options()
    start, stop = scan_range(problem, plan, setpoints, limits)
    positions = [float(x) for x in np.linspace(start, stop, scan.num)]
    motor = movers[scan.variable]
    md["closedloop"]["scan"] = {"variable": scan.variable, "motor": _name(motor), "start": start, "stop": stop}
    md["hints"] = {"dimensions": [(_hinted_fields(motor), "primary")], **(md.get("hints") or {})}
    return (yield from scan_point(moves, detectors, md, motor=motor, positions=positions, count_time=plan.count_time))


def _factory_plan(
    path: str,
    options: Mapping[str, Any],
    setpoints: Mapping[str, float | str],
    movers: Mapping[str, Any],
    detectors: Sequence[Any],
    md: dict[str, Any],
) -> MsgGenerator[Any]:
    try:
        factory = resolve_import_path(path)
        made = factory(setpoints=dict(setpoints), movers=dict(movers), detectors=list(detectors), md=md, **options)
    except Exception as exc:  # the factory is user code: whatever it raises is this run's failure, not a crash
        raise InstrumentError(f"plan.factory: {path} raised {type(exc).__name__}: {exc}") from None
    if not isinstance(made, Generator):
        raise InstrumentError(
            f"plan.factory: {path} returned {type(made).__name__} {made!r:.60}, not a plan (a generator of Msg)"
        )
    return (yield from made)


def _staged_run(
    moves: Mapping[Any, float | str],
    detectors: Sequence[Any],
    md: Mapping[str, Any],
    count_time: float | None,
    readings: Any,
) -> MsgGenerator[str]:
    """Set the count time, stage everything, prepare StandardDetectors, then one run: move, then ``readings``."""
    pairs: list[Any] = []
    for device, value in moves.items():
        pairs += [device, value]
    timed = _acquire_time_signals(detectors) if count_time is not None else []
    standard = [d for d in detectors if isinstance(d, StandardDetector)]
    if count_time is not None and not timed and not standard:
        names = ", ".join(_name(d) for d in detectors)
        raise InstrumentError(
            f"plan.count_time: no detector takes it ({names}: none is a StandardDetector or has one of "
            f"{', '.join(ACQUIRE_TIME_SIGNALS)})"
        )

    @bpp.run_decorator(md=dict(md))
    def _run() -> MsgGenerator[None]:
        if pairs:
            yield from bps.mv(*pairs)
        yield from readings()

    def _prepared() -> MsgGenerator[str]:
        info = TriggerInfo(number_of_events=1, livetime=count_time or 0.0)
        for detector in standard:
            yield from bps.prepare(detector, info, group="closedloop-prepare")
        if standard:
            yield from bps.wait(group="closedloop-prepare")
        return (yield from _run())

    staged = bpp.stage_wrapper(_prepared(), [*detectors, *moves])
    if not timed:
        return (yield from staged)
    before: list[Any] = []
    for signal in timed:
        before += [signal, (yield from bps.rd(signal))]

    def _restore() -> MsgGenerator[None]:
        yield from bps.mv(*before)

    yield from bps.mv(*[part for signal in timed for part in (signal, count_time)])
    return (yield from bpp.finalize_wrapper(staged, _restore()))


def _acquire_time_signals(detectors: Sequence[Any]) -> list[Any]:
    found = []
    for detector in detectors:
        if isinstance(detector, StandardDetector):
            continue  # its livetime goes in prepare()
        for path in ACQUIRE_TIME_SIGNALS:
            signal: Any = detector
            for part in path.split("."):
                signal = getattr(signal, part, None)
            if callable(getattr(signal, "set", None)) and callable(getattr(signal, "read", None)):
                found.append(signal)
                break
    return found


def _readables(detectors: Sequence[Any], moves: Mapping[Any, Any]) -> list[Any]:
    readables: list[Any] = []
    for device in [*detectors, *moves]:
        if isinstance(device, Readable) and not any(device is seen for seen in readables):
            readables.append(device)
    return readables


def _hinted_fields(device: Any) -> list[str]:
    hints = getattr(device, "hints", None)
    fields = hints.get("fields") if isinstance(hints, Mapping) else None
    return list(fields) if fields else [_name(device)]


def _name(device: Any) -> str:
    return str(getattr(device, "name", device))
