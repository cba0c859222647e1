"""Where planners and instrument factories come from: the ``closedloop.planners`` entry-point group, or an import
path ``"package.module:attribute"`` named in a session file.

Validating a session file checks an import path's form only (:func:`check_import_path`); importing a named module
(:func:`resolve_import_path`, called by :func:`closedloop.resolve.resolve`) runs foreign code, and whatever it
raises is reported as a bad value of the field that named it, never as a crash or an exit of the caller.
"""

from __future__ import annotations

import importlib
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from closedloop.errors import one_line

PLANNER_GROUP = "closedloop.planners"


def check_import_path(path: str) -> str:
    """``path`` if it has the form ``"package.module:attribute"`` (dotted identifiers); nothing is imported.

    Raises:
        ValueError: it has not that form.
    """
    module_name, sep, attribute = path.partition(":")
    parts = module_name.split(".")
    if not sep or not all(part.isidentifier() for part in parts) or not attribute.isidentifier():
        raise ValueError(f"'{path}' is not of the form 'package.module:function'")
    return path


def planner_entry_points() -> dict[str, EntryPoint]:
    """The ``closedloop.planners`` entry points by name, sorted (the first of a name registered twice): the one
    place that reads the group (``planners.registry`` and ``closedloop planners`` ask here)."""
    found: dict[str, EntryPoint] = {}
    for entry in entry_points(group=PLANNER_GROUP):
        found.setdefault(entry.name, entry)
    return dict(sorted(found.items()))


def registered_planners() -> list[str]:
    """Names of the planners registered in the ``closedloop.planners`` entry-point group, sorted."""
    return list(planner_entry_points())


def _failure(path: str, exc: BaseException) -> ValueError:
    return ValueError(f"'{path}' does not import: {type(exc).__name__}: {one_line(str(exc)) or '(no message)'}")


def resolve_import_path(path: str) -> Any:
    """Import ``"package.module:attribute"`` and return the attribute.

    Whatever importing the module raises (any exception, or ``SystemExit`` from a module that calls ``sys.exit``
    at import) becomes a ``ValueError`` naming the path and the error; ``KeyboardInterrupt`` still propagates.

    Raises:
        ValueError: ``'pkg.mod:attr' does not import: <ExceptionType>: <message>`` (on one line), or the path is
            malformed, or the module has no such attribute.
    """
    module_name, sep, attribute = path.partition(":")
    if not sep or not module_name or not attribute:
        raise ValueError(f"'{path}' is not of the form 'package.module:function'")
    try:
        module = importlib.import_module(module_name)
    except (Exception, SystemExit) as exc:  # a module is foreign code: whatever it raises makes the path bad
        raise _failure(path, exc) from None
    try:
        return getattr(module, attribute)
    except AttributeError:
        raise ValueError(f"'{path}' does not import: module '{module_name}' has no '{attribute}'") from None
    except (Exception, SystemExit) as exc:  # a module-level __getattr__ is foreign code too
        raise _failure(path, exc) from None
