"""Which plan the queueserver executor asks an RE Manager for, and the queue items that carry out one proposal.

The session's ``plan:`` says what a proposal's run is (``measure``: readings at the point; ``scan``: a scan of one
variable around it); ``instrument.queueserver.plan`` says which of the manager's plans makes it:

- ``closedloop_point`` (closedloop's profile) measures; ``closedloop_scan`` (closedloop's profile) scans;
- ``scan`` is Bluesky's standard ``scan``: for ``measure`` every mover is an axis from its setpoint to itself over
  ``num`` points; for ``scan`` the scanned variable's mover is the first axis (from the start to the stop of the
  range) and every other mover an axis that stays at its setpoint, so the run reads every mover at every point;
- ``count`` is ``mv`` (one item) then Bluesky's ``count`` of the detectors and the movers (a second item); it
  cannot scan.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from bluesky_queueserver_api import BPlan

from closedloop.errors import InstrumentError
from closedloop.plan import PlanSpec
from closedloop.problem import Problem
from closedloop.queueserver import AUTO_PLAN, CLOSEDLOOP_PLAN, QueueServerSpec
from instruments.plans import scan_range

CLOSEDLOOP_SCAN = "closedloop_scan"
"""closedloop's own scan plan, offered by the bundled startup folder (``simulators/qserver``)."""


def choose_plan(qs: QueueServerSpec, spec: PlanSpec, allowed: set[str]) -> str:
    """The manager's plan that carries out the session's ``plan:`` (``spec``), among the plans ``allowed`` the user
    group of ``qs`` (the instrument's ``queueserver``).

    Raises:
        InstrumentError: the manager allows no plan that can, or the one named cannot (the message names it).
    """
    group = f"user group '{qs.user_group}'"
    scanning = spec.bundled == "scan"
    choices: tuple[tuple[str, set[str]], ...]
    if scanning:
        choices = ((CLOSEDLOOP_SCAN, {CLOSEDLOOP_SCAN}), ("scan", {"scan"}))
    else:
        choices = ((CLOSEDLOOP_PLAN, {CLOSEDLOOP_PLAN}), ("scan", {"scan"}), ("count", {"mv", "count"}))
    if qs.plan == AUTO_PLAN:
        for plan, needs in choices:
            if needs <= allowed:
                return plan
        labels = [f"'{plan}'" if plan != "count" else "'mv' with 'count'" for plan, _ in choices]
        names = ", ".join(labels[:-1]) + f", or {labels[-1]}"
        raise InstrumentError(
            f"instrument.queueserver.plan: the RE Manager allows none of {names} to {group}"
            + (" (plan: scan needs a scan)" if scanning else ""),
            "add closedloop's plans to the profile (simulators/qserver/10-plans.py) or allow a standard one",
        )
    if scanning and qs.plan not in {CLOSEDLOOP_SCAN, "scan"}:
        raise InstrumentError(
            f"instrument.queueserver.plan: '{qs.plan}' cannot carry out plan: scan; use 'scan', '{CLOSEDLOOP_SCAN}' "
            "or auto"
        )
    needs = {"mv", "count"} if qs.plan == "count" else {qs.plan}
    missing = sorted(needs - allowed)
    if missing:
        raise InstrumentError(
            f"instrument.queueserver.plan: the RE Manager has no plan '{missing[0]}' for {group}",
            f"it allows: {', '.join(sorted(allowed)) or 'nothing'}",
        )
    return qs.plan


def plan_items(
    problem: Problem,
    qs: QueueServerSpec,
    spec: PlanSpec,
    plan: str,
    setpoints: Mapping[str, Any],
    movers: Mapping[str, str],
    md: dict[str, Any],
    route: Sequence[Mapping[str, float]] = (),
) -> list[BPlan]:
    """The queue items that carry out one proposal with ``plan``: one item, or ``mv`` then ``count``; first an
    ``mv`` item per waypoint of ``route`` (a move longer than ``max_step`` walked in legs).

    Args:
        problem: the variables (the scanned one's hard limits).
        qs: the instrument's ``queueserver`` (its detectors).
        spec: the session's ``plan:``.
        plan: the manager's plan, from :func:`choose_plan`.
        setpoints: variable or constant name -> value (the constants with a device included).
        movers: variable or constant name -> its device's name in the manager's namespace.
        md: the start document's metadata (the proposal id).
        route: waypoints (variable -> value) to move through, in order, before the run
            (:func:`closedloop.reach.route`).

    Raises:
        InstrumentError: a scan without a numeric setpoint for its variable (nothing is submitted).
    """
    legs = [BPlan("mv", *[p for n, v in waypoint.items() for p in (movers[n], v)]) for waypoint in route]
    detectors = list(qs.detectors)
    moves = [(movers[name], value) for name, value in setpoints.items() if name in movers]
    if spec.bundled == "scan":
        return [*legs, _scan_item(problem, spec, plan, setpoints, movers, moves, detectors, md)]
    num = spec.measure_options().num
    if plan == "scan":
        axes = [part for device, value in moves for part in (device, value, value)]
        return [*legs, BPlan("scan", detectors, *axes, num=num, md=md)]
    if plan == "count":
        pairs = [part for move in moves for part in move]
        return [*legs, BPlan("mv", *pairs), BPlan("count", detectors + [d for d, _ in moves], num=num, md=md)]
    extra = {"num": num} if num > 1 else {}
    return [*legs, BPlan(plan, detectors, [d for d, _ in moves], [v for _, v in moves], md=md, **extra)]


def _scan_item(
    problem: Problem,
    spec: PlanSpec,
    plan: str,
    setpoints: Mapping[str, Any],
    movers: Mapping[str, str],
    moves: list[tuple[str, Any]],
    detectors: list[str],
    md: dict[str, Any],
) -> BPlan:
    scan = spec.scan_options()
    start, stop = scan_range(problem, spec, setpoints)
    motor = movers[scan.variable]
    if plan == CLOSEDLOOP_SCAN:
        devices, values = [d for d, _ in moves], [v for _, v in moves]
        return BPlan(CLOSEDLOOP_SCAN, detectors, devices, values, motor, start, stop, scan.num, md=md)
    axes: list[Any] = [motor, start, stop]
    for device, value in moves:
        if device != motor:
            axes += [device, value, value]
    return BPlan("scan", detectors, *axes, num=scan.num, md=md)
