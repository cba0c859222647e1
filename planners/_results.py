"""Ingested results as a planner keeps them (:class:`Record`), and how a result dict becomes one
(:func:`parse_result`): numpy scalars, foreign points (no ``_id``), failed points (an objective missing or not
finite), missing constraint outputs (NaN). numpy only."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from closedloop.errors import PlannerError
from planners._space import Space, as_float

ID_KEY = "_id"


@dataclass(frozen=True)
class Record:
    """One ingested point.

    ``x`` is real-domain (categorical: the index). ``outcomes`` holds every objective then every constraint
    output as measured (NaN for a constraint output that is missing), or is ``None`` when the point failed (an
    objective missing or not finite); ``y`` is the first objective, ``None`` when failed.
    """

    x: tuple[float, ...]
    y: float | None
    point: dict[str, Any]
    outcomes: tuple[float, ...] | None = None


@dataclass(frozen=True)
class ResultShape:
    """What a result of one problem holds: its variables (``space``), objectives, constraint outputs, constants."""

    space: Space
    variable_names: list[str]
    objective_names: list[str]
    constraint_names: list[str]
    constants: dict[str, Any]


def parse_id(raw: Any, next_id: int) -> int | None:
    """``raw`` as one of the ids ``0 .. next_id - 1`` a planner gave out, or None for a foreign point.

    Raises:
        PlannerError: (a ``ValueError``) an id the planner never gave out.
    """
    if raw is None:
        return None
    value = as_float(raw)
    if value is None or not value.is_integer() or not 0 <= value < next_id:
        raise PlannerError(
            f"unknown _id {raw!r}: this planner gave out " + (f"ids 0..{next_id - 1}" if next_id else "no ids yet"),
            hint="points the planner did not suggest must be ingested without an '_id'",
        )
    return int(value)


def _label(point_id: int | None) -> str:
    return f"_id={point_id}" if point_id is not None else "(no _id)"


def parse_result(shape: ResultShape, result: dict[str, Any], next_id: int) -> tuple[Record, int | None]:
    """A result dict as a :class:`Record`, and its ``_id`` (None for a foreign point).

    Raises:
        PlannerError: (a ``ValueError``) not a dict, an unknown ``_id``, a variable missing or not a valid value.
    """
    if not isinstance(result, dict):
        raise PlannerError(f"each result must be a dict, got {type(result).__name__}")
    space, names = shape.space, shape.variable_names
    point_id = parse_id(result.get(ID_KEY), next_id)
    x = []
    for j, var in enumerate(names):
        if var not in result:
            raise PlannerError(f"result {_label(point_id)} has no value for variable '{var}'")
        value = space.parse(j, result[var])
        if value is None:
            allowed = space.variables[j].values
            raise PlannerError(
                f"result {_label(point_id)}: variable '{var}' is {result[var]!r}"
                + (f"; allowed: {', '.join(map(repr, allowed))}" if allowed else "")
            )
        x.append(value)
    point: dict[str, Any] = {v: space.member(j, x[j]) for j, v in enumerate(names)}
    for j in space.discrete_dims:  # a foreign value between the allowed ones is kept as measured
        if x[j] not in space.variables[j].numeric:
            point[names[j]] = x[j]
    point.update(shape.constants)
    # Missing, None, NaN, infinite or not a number at all: an objective so is a failed point, kept as data, never
    # fit; a constraint output so is missing at an ok point (NaN in its column of the outcomes).
    values = []
    for name in shape.objective_names + shape.constraint_names:
        value = as_float(result.get(name))
        values.append(value if value is not None and math.isfinite(value) else None)
        point[name] = values[-1]
    ok = all(v is not None for v in values[: len(shape.objective_names)])
    outcomes = tuple(math.nan if v is None else v for v in values) if ok else None
    if point_id is not None:
        point[ID_KEY] = point_id
    return Record(x=tuple(x), y=values[0] if ok else None, point=point, outcomes=outcomes), point_id
