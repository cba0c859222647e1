"""Resolving what a session file names by import path: the explicit step the agent takes after validation.

Validating a session file (:func:`closedloop.spec.load_spec`) checks its form only and imports nothing of the
user's: an import path must look like ``"package.module:attribute"``. :func:`resolve` is the step that imports:
the planner (a registered name, or a generator class by path), each instrument's device factory (or bundled
simulator), the plan's factory (and that it takes the arguments closedloop gives it) and the outputs' reducers. The
agent calls it once a spec is valid, before anything is created or moves (``closedloop run`` and ``resume``), so
that a path that does not resolve is bad input: one line naming the field, exit 2.

Reading a session's status, audit or limits never resolves: the planner's or the instrument's packages need not be
on that host.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from closedloop.errors import SpecError, one_line
from closedloop.plan import FACTORY_ARGUMENTS, PlanSpec
from closedloop.plugins import registered_planners, resolve_import_path
from closedloop.problem import path_segment
from closedloop.spec import SessionSpec


@dataclass(frozen=True)
class Resolved:
    """What a session file's import paths named, imported.

    Attributes:
        planner: the generator class ``planner.name`` names by import path; None for a registered planner (the
            registry loads it by name).
        factories: instrument name -> its device factory (a bundled simulator's included); a queueserver
            instrument has none.
        plan: the plan's ``factory``, if it names one.
        reducers: output name -> its reducer, for the objectives and constraints that name one.
    """

    planner: Any = None
    factories: dict[str, Callable[..., Any]] = field(default_factory=dict)
    plan: Callable[..., Any] | None = None
    reducers: dict[str, Callable[..., Any]] = field(default_factory=dict)


class _Unresolved(ValueError):
    """An import path that does not resolve, and the field that names it."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(message)
        self.path = path


def resolve(spec: SessionSpec, source: str = "session") -> Resolved:
    """Import everything ``spec`` names by import path (see the module's docstring).

    Args:
        spec: a validated session spec.
        source: what the spec was read from (the session file's path), named first in an error.

    Raises:
        SpecError: ``<source>: <field>: <why>`` on one line: the first path that does not import, is not callable,
            names no registered planner or bundled simulator, or a plan factory that cannot take closedloop's
            arguments and its options.
    """
    try:
        return Resolved(
            planner=_planner(spec.planner.name),
            factories=_factories(spec),
            plan=_plan(spec.plan),
            reducers=_reducers(spec),
        )
    except _Unresolved as exc:
        raise SpecError(one_line(f"{source}: {exc.path}: {exc}")) from None


def _planner(name: str) -> Any:
    if ":" in name:
        return _imported("planner.name", name)
    if name not in registered_planners():
        raise _Unresolved(
            "planner.name", f"unknown planner '{name}'; registered: {', '.join(registered_planners()) or 'none'}"
        )
    return None


def _factories(spec: SessionSpec) -> dict[str, Callable[..., Any]]:
    found = {}
    several = spec.instrument is None
    for index, (name, instrument) in enumerate(spec.lanes()):
        where = f"instruments.{index}" if several else "instrument"
        if instrument.factory is not None:
            found[name] = _callable(f"{where}.factory", instrument.factory)
        elif instrument.simulator is not None:
            path = f"simulators:{instrument.simulator}"
            try:
                found[name] = _callable(f"{where}.simulator", path)
            except _Unresolved as exc:
                raise _Unresolved(exc.path, f"no bundled simulator '{instrument.simulator}' ({exc})") from None
    return found


def _plan(plan: PlanSpec) -> Callable[..., Any] | None:
    if plan.factory is None:
        return None
    factory = _callable("plan.factory", plan.factory)
    try:
        signature = inspect.signature(factory)
    except (TypeError, ValueError):
        return factory  # a builtin or C callable: it is called as documented and fails at run time if it cannot
    try:
        signature.bind(**dict.fromkeys(FACTORY_ARGUMENTS), **plan.options)
    except TypeError as exc:
        raise _Unresolved(
            "plan",
            f"factory '{plan.factory}' cannot be called with {', '.join(FACTORY_ARGUMENTS)} and its options: {exc}",
        ) from None
    return factory


def _reducers(spec: SessionSpec) -> dict[str, Callable[..., Any]]:
    found = {}
    for section, outputs in (("objectives", spec.objectives), ("constraints", spec.constraints)):
        for name, output in outputs.items():
            if output.reducer is not None:
                found[name] = _callable(f"{section}.{path_segment(name)}.reducer", output.reducer)
    return found


def _imported(where: str, path: str) -> Any:
    try:
        return resolve_import_path(path)
    except ValueError as exc:
        raise _Unresolved(where, str(exc)) from None


def _callable(where: str, path: str) -> Callable[..., Any]:
    found = _imported(where, path)
    if not callable(found):
        raise _Unresolved(where, f"'{path}' is not callable")
    return found
