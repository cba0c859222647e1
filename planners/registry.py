"""Finding planners: by name in the ``closedloop.planners`` entry-point group, or by import path."""

from __future__ import annotations

import inspect
from importlib.metadata import entry_points
from typing import Any

from gest_api.vocs import VOCS

from closedloop.errors import PlannerError
from closedloop.spec import PLANNER_GROUP, registered_planners, resolve_import_path


def planner_names() -> list[str]:
    """Names registered in the ``closedloop.planners`` entry-point group, sorted."""
    return registered_planners()


def planner_class(name: str) -> Any:
    """The class (or factory) a planner name or import path stands for.

    Raises:
        PlannerError: the name is unknown or the path does not import to something callable.
    """
    if ":" in name:
        try:
            factory = resolve_import_path(name)
        except ValueError as exc:
            raise PlannerError(str(exc)) from None
    else:
        found = [entry for entry in entry_points(group=PLANNER_GROUP) if entry.name == name]
        if not found:
            raise PlannerError(
                f"unknown planner '{name}'; registered: {', '.join(planner_names()) or 'none'}",
                hint="or give the import path of a gest-api generator, 'package.module:Class'",
            )
        factory = found[0].load()
    if not callable(factory):
        raise PlannerError(f"planner '{name}' is {type(factory).__name__}, not a generator class")
    return factory


def accepts_option(name: str, option: str) -> bool:
    """Whether the planner's constructor names ``option`` among its parameters (``**kwargs`` does not count)."""
    return _accepts_name(planner_class(name), option)


def _accepts_name(factory: Any, name: str) -> bool:
    try:
        return name in inspect.signature(factory).parameters
    except (TypeError, ValueError):
        return False


def load_planner(name: str, vocs: VOCS, *, default_seed: int | None = None, **options: Any) -> Any:
    """Build a planner for ``vocs``.

    Args:
        name: a name registered in ``closedloop.planners`` (``sobol``, ``botorch``, ...), or the import path
            ``"package.module:Class"`` of any gest-api generator class.
        vocs: the problem.
        default_seed: the session's seed, passed as ``seed=`` when the options give none and the constructor
            takes one (third-party generators without a ``seed`` parameter are built without it).
        **options: keyword arguments for the planner's constructor.

    Returns:
        the planner: anything with gest-api's ``suggest``, ``ingest`` and ``finalize``.

    Raises:
        PlannerError: the name is unknown, the class does not import, the options do not fit its
            constructor, or the planner refuses the VOCS.
    """
    factory = planner_class(name)
    if default_seed is not None and "seed" not in options and _accepts_name(factory, "seed"):
        options["seed"] = default_seed
    try:
        planner = factory(vocs=vocs, **options) if _accepts_name(factory, "vocs") else factory(vocs, **options)
    except PlannerError:
        raise
    except (TypeError, ValueError) as exc:
        raise PlannerError(f"planner '{name}' could not be built: {exc}") from exc
    missing = [method for method in ("suggest", "ingest") if not callable(getattr(planner, method, None))]
    if missing:
        raise PlannerError(f"planner '{name}' is not a gest-api generator: it has no {', '.join(missing)}")
    return planner
