"""Sub-packages that export their public names without importing them all.

An agent sub-package's ``__init__`` names what others may use and the module each name lives in; a name's module
is imported when the name is first used. Importing one light module of a package (``agent.views.status`` for
``closedloop status``) therefore never pays for its heavy neighbours (matplotlib for the report, LangGraph and
Bluesky for the loop), while ``from agent.views import summarize`` still works. Type checkers read the same names
from the ``TYPE_CHECKING`` imports each ``__init__`` keeps beside its table.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(package: str, exports: Mapping[str, str]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The module ``__getattr__`` and ``__dir__`` of ``package`` whose public names are ``exports``.

    Args:
        package: the package's ``__name__``.
        exports: each public name mapped to the module of ``package`` that defines it (``"status"`` for
            ``package.status``).

    Returns:
        ``(__getattr__, __dir__)``: ``__getattr__(name)`` imports ``name``'s module and returns the name, and
        raises :class:`AttributeError` for a name not in ``exports``, as a module does.
    """

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(f"{package}.{module}"), name)

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(exports))

    return __getattr__, __dir__
