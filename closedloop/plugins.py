"""Where planners and instrument factories come from: the ``closedloop.planners`` entry-point group, or an import
path ``"package.module:attribute"`` named in a session file.

Importing a named module runs foreign code; whatever it raises is reported as a bad value of the field that named
it, never as a crash or an exit of the caller.
"""

from __future__ import annotations

import contextlib
import contextvars
import importlib
from collections.abc import Iterator
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from closedloop.errors import one_line

PLANNER_GROUP = "closedloop.planners"

_IMPORTS_CHECKED: contextvars.ContextVar[bool] = contextvars.ContextVar("closedloop_imports_checked", default=True)


@contextlib.contextmanager
def imports_unchecked() -> Iterator[None]:
    """Validate specs without importing what they name (planners, factories, plans, reducers): for reading a
    session's status or audit where the instrument's packages may not be importable, and quickly."""
    token = _IMPORTS_CHECKED.set(False)
    try:
        yield
    finally:
        _IMPORTS_CHECKED.reset(token)


def imports_checked() -> bool:
    """Whether spec validation imports what a spec names (the default), or only checks its form."""
    return _IMPORTS_CHECKED.get()


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
