"""Pydantic's validation errors as one line naming the field, and the finite-number check of a whole spec.

A session file's bad value is reported as ``<field path>: <why>`` (the path in the file's own keys, a key with a
dot in it quoted), an unknown key with the page that lists every key; see :func:`closedloop.spec.spec_from_dict`.
"""

from __future__ import annotations

import math
from typing import Any

from pydantic_core import ErrorDetails

from closedloop.errors import one_line
from closedloop.problem import FieldError, path_segment


def non_finite_path(data: Any, path: str = "") -> str | None:
    """The path of the first NaN or infinite float in nested dicts and lists (``variables.p.bounds.0``), or None."""
    if isinstance(data, float):
        return None if math.isfinite(data) else path or "(top level)"
    if isinstance(data, dict):
        items: Any = ((path_segment(str(key)), value) for key, value in data.items())
    elif isinstance(data, list | tuple):
        items = ((str(i), value) for i, value in enumerate(data))
    else:
        return None
    for segment, value in items:
        found = non_finite_path(value, f"{path}.{segment}" if path else segment)
        if found is not None:
            return found
    return None


REFERENCE_PAGE = "docs/reference/session-file.md"
"""The documentation page that lists every key of the session file, named in an unknown key's error."""


def _field_path(loc: tuple[int | str, ...]) -> str:
    return ".".join(path_segment(part) if isinstance(part, str) else str(part) for part in loc)


def describe_error(error: ErrorDetails) -> str:
    """One of pydantic's errors as one line naming the field: ``variables.p.bounds: low must be below high``."""
    path = _field_path(error["loc"])
    cause = (error.get("ctx") or {}).get("error")
    if isinstance(cause, FieldError):
        path = f"{path}.{cause.path}" if path else cause.path
    path = path or "(top level)"
    if error["type"] == "extra_forbidden":
        return f"{path}: unknown key (every key of the session file: {REFERENCE_PAGE})"
    if error["type"] == "missing":
        return f"{path}: required but missing"
    message = str(error["msg"]).removeprefix("Value error, ")
    return one_line(f"{path}: {message}")
