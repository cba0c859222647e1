"""What changed in a session file between a stop and a resume, and the fingerprint that notices it.

A session's file is fingerprinted when the session is created (:func:`spec_fingerprint`). On resume, a file with
another fingerprint is compared field by field with the one the session ran with (:func:`spec_changes`): edits
an operator may make (the budget, the review policy, the failure policy) are listed as allowed, every other edit
(a variable, a limit, an objective or the field it reads, a constraint, a constant, the planner, the instrument,
the seed, the name, the folder) as refused, since the data already taken would no longer mean what it says.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from closedloop.files import parse_yaml
from closedloop.spec import SessionSpec, spec_from_dict

#: Top-level sections of a session file that may change between a stop and a resume.
EDITABLE_SECTIONS = frozenset({"budget", "review", "failures", "tiled", "pipeline", "arrays"})

_ABSENT = object()
#: Where a session is kept, not what it measures: no part of the comparison (a store may move; its URL is not shown).
#: ``prior`` is read once, when the session is created (its data is then in the store): later it changes nothing.
_WHERE = {"store", "prior"}


@dataclass(frozen=True)
class SpecChanges:
    """The differences between two session specs, one ``"path: old -> new"`` line per changed field.

    Attributes:
        allowed: changes an operator may make between a stop and a resume (``budget.experiments: 20 -> 30``).
        refused: every other change (``objectives.flux.field: det-flux -> det-x``).
    """

    allowed: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.allowed or self.refused)


def _show(value: Any) -> str:
    if value is _ABSENT:
        return "(absent)"
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, separators=(", ", ": "), allow_nan=False)


def _differences(old: Any, new: Any, path: str) -> list[str]:
    """``path: old -> new`` for every leaf that differs, descending into mappings present on both sides."""
    if isinstance(old, dict) and isinstance(new, dict):
        lines: list[str] = []
        for key in list(old) + [k for k in new if k not in old]:
            sub = f"{path}.{key}" if path else str(key)
            lines += _differences(old.get(key, _ABSENT), new.get(key, _ABSENT), sub)
        return lines
    if old == new and type(old) is type(new):
        return []
    return [f"{path}: {_show(old)} -> {_show(new)}"]


def spec_changes(old: SessionSpec, new: SessionSpec) -> SpecChanges:
    """Compare the spec a session ran with (``old``) to an edited one (``new``).

    Both are compared as validated specs (defaults filled in), so writing a default out, reordering keys or
    reformatting the file is no change.

    Returns:
        The changed fields: in ``allowed`` those under :data:`EDITABLE_SECTIONS`, in ``refused`` the rest, each
        as ``"path: old -> new"`` (``(absent)`` for a key on one side only).
    """
    before, after = old.model_dump(mode="json", exclude=_WHERE), new.model_dump(mode="json", exclude=_WHERE)
    allowed: list[str] = []
    refused: list[str] = []
    for line in _differences(before, after, ""):
        section = line.split(".", 1)[0].split(":", 1)[0]
        (allowed if section in EDITABLE_SECTIONS else refused).append(line)
    return SpecChanges(allowed=allowed, refused=refused)


def canonical_json(spec: SessionSpec) -> str:
    """The validated spec as canonical JSON: defaults filled in, keys sorted, no spaces."""
    data = spec.model_dump(mode="json", exclude=_WHERE)
    return json.dumps(data, sort_keys=True, separators=(",", ":"), allow_nan=False)


def spec_fingerprint(text_or_spec: str | SessionSpec) -> str:
    """The SHA-256 (hex) of a session spec's canonical JSON.

    Args:
        text_or_spec: a validated spec, or the text of a session file (parsed and validated first).

    Raises:
        SpecError: the text is not a valid session file.
    """
    spec = text_or_spec
    if isinstance(spec, str):
        spec = spec_from_dict(parse_yaml(spec, "session file"))
    return hashlib.sha256(canonical_json(spec).encode("utf-8")).hexdigest()
