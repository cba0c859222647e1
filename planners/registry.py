"""Finding planners: by name in the ``closedloop.planners`` entry-point group, or by import path.

The group is read in one place, :func:`closedloop.plugins.planner_entry_points` (the spec's validation needs the
names below ``planners``); this module, ``closedloop planners`` and the tests ask it.

Importing this module imports no torch, and neither do :func:`planner_names`, :func:`options_model` and
:func:`accepts_option` for our own planners: their options models live in :mod:`planners.options`, found from
the entry point's value without loading the planner class. :func:`load_planner` loads the class.
"""

from __future__ import annotations

import inspect
from importlib.metadata import EntryPoint
from typing import Any

from gest_api.vocs import VOCS

from closedloop.errors import PlannerError
from closedloop.plugins import planner_entry_points, registered_planners, resolve_import_path
from planners.options import BUILTIN_OPTIONS, PlannerOptions


def planner_names() -> list[str]:
    """Names registered in the ``closedloop.planners`` entry-point group, sorted."""
    return registered_planners()


def planner_paths() -> dict[str, str]:
    """Each registered name and the import path of its class (``"package.module:Class"``), sorted by name."""
    return {name: entry.value for name, entry in planner_entry_points().items()}


def _entry_point(name: str) -> EntryPoint:
    found = planner_entry_points().get(name)
    if found is None:
        raise PlannerError(
            f"unknown planner '{name}'; registered: {', '.join(planner_names()) or 'none'}",
            hint="or give the import path of a gest-api generator, 'package.module:Class'",
        )
    return found


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
        factory = _entry_point(name).load()
    if not callable(factory):
        raise PlannerError(f"planner '{name}' is {type(factory).__name__}, not a generator class")
    return factory


def options_model(name: str) -> type[PlannerOptions] | None:
    """The options model of a planner name or import path, or None when the planner declares none.

    Our planners' models are found without importing the planner (so without torch); any other planner is
    loaded and its ``options_model`` attribute read.

    Raises:
        PlannerError: the name is unknown or the path does not import.
    """
    path = name if ":" in name else _entry_point(name).value
    if path in BUILTIN_OPTIONS:
        return BUILTIN_OPTIONS[path]
    model = getattr(planner_class(name), "options_model", None)
    return model if isinstance(model, type) and issubclass(model, PlannerOptions) else None


def accepts_option(name: str, option: str) -> bool:
    """Whether the planner takes ``option``: a field of its options model, else a named constructor parameter
    (``**kwargs`` does not count)."""
    model = options_model(name)
    if model is not None:
        return option in model.model_fields
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
        the planner: anything with gest-api's ``suggest``, ``ingest`` and ``finalize``. A generator not of
        this package comes wrapped in :class:`~planners.foreign.Foreign`, which accounts for its points in
        flight and has one that cannot propose without data say to set ``planner.initial_design``.

    Raises:
        PlannerError: the name is unknown, the class does not import, the options do not fit its
            constructor (``planner.options.<name>: ...``), or the planner refuses the VOCS.
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
    if (name if ":" in name else _entry_point(name).value) not in BUILTIN_OPTIONS:
        from planners.foreign import Foreign

        return Foreign(planner, name=name, vocs=vocs, seed=options.get("seed", default_seed))
    return planner
