"""The search space: how each kind of variable maps between its own values, the real domain and the unit cube.

Three kinds of variable, from gest-api's VOCS:

- **continuous** (``ContinuousVariable``): real domain = its value; unit value ``(x - lo) / (hi - lo)``.
- **discrete** (``DiscreteVariable`` whose ``values`` are all numbers): ordinal. Real domain = its value; unit
  value scaled like a continuous one over ``[min, max]`` of the set; a unit value maps back to the *nearest
  allowed* value.
- **categorical** (``DiscreteVariable`` with any non-number value, e.g. strings): real domain = the index of the
  category (categories sorted by ``repr``); the unit interval is cut into ``k`` equal bins, category ``i``
  owns ``[i / k, (i + 1) / k)`` and sits at the bin centre ``(i + 0.5) / k``, so a Sobol draw picks each
  category equally often and the categorical kernel sees one fixed value per category.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from numbers import Real
from typing import Any, Literal

import numpy as np
from gest_api.vocs import VOCS, ContextualVariable, ContinuousVariable, DiscreteVariable

from closedloop.errors import PlannerError

Kind = Literal["continuous", "discrete", "categorical"]


@dataclass(frozen=True)
class Variable:
    """One variable: its kind, real-domain bounds and, for discrete and categorical ones, the allowed values.

    ``values`` holds the members as the VOCS gave them (sorted); ``numeric`` their real-domain values (the
    number itself for discrete, the index for categorical).
    """

    name: str
    kind: Kind
    lo: float
    hi: float
    values: tuple[Any, ...] = ()
    numeric: tuple[float, ...] = ()


def _is_number(value: Any) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool) and math.isfinite(float(value))


def build_variables(vocs: VOCS) -> list[Variable]:
    """The variables of ``vocs`` in VOCS order.

    Raises:
        PlannerError: a contextual variable, or a continuous one without finite bounds.
    """
    out = []
    for name, spec in vocs.variables.items():
        if isinstance(spec, ContextualVariable):
            raise PlannerError(f"contextual variable '{name}' is not supported")
        if isinstance(spec, ContinuousVariable):
            lo, hi = (float(b) for b in spec.domain)
            if not (math.isfinite(lo) and math.isfinite(hi)):
                raise PlannerError(f"variable '{name}' needs finite bounds, has {spec.domain}")
            out.append(Variable(name, "continuous", lo, hi))
        elif isinstance(spec, DiscreteVariable):
            members = list(spec.values)
            if all(_is_number(v) for v in members):
                members.sort(key=float)
                numeric = tuple(float(v) for v in members)
                out.append(Variable(name, "discrete", numeric[0], numeric[-1], tuple(members), numeric))
            else:
                members.sort(key=repr)
                index = tuple(float(i) for i in range(len(members)))
                out.append(Variable(name, "categorical", 0.0, len(members) - 1.0, tuple(members), index))
        else:
            raise PlannerError(f"variable '{name}' is {type(spec).__name__}, which is not supported")
    return out


class Space:
    """Moves points between real-domain arrays (``n x d``, float64 numpy), the unit cube, and point values.

    numpy, not torch, so that the planners that need no model never import torch; the model-based planners
    convert at their edge (``torch.from_numpy``).

    Args:
        variables: from :func:`build_variables`.
    """

    def __init__(self, variables: list[Variable]) -> None:
        self.variables = variables
        self.d = len(variables)
        self.lo = np.array([v.lo for v in variables], dtype=np.float64)
        self.hi = np.array([v.hi for v in variables], dtype=np.float64)
        span = self.hi - self.lo
        #: Width used for scaling; a one-value discrete variable gets 1 so that it never divides by zero.
        self.span = np.where(span > 0, span, 1.0)
        self.cat_dims = [j for j, v in enumerate(variables) if v.kind == "categorical"]
        self.discrete_dims = [j for j, v in enumerate(variables) if v.kind == "discrete"]
        self.cont_dims = [j for j, v in enumerate(variables) if v.kind == "continuous"]

    def category_units(self, j: int) -> np.ndarray:
        """The unit values (bin centres) of categorical variable ``j``."""
        k = len(self.variables[j].values)
        return (np.arange(k, dtype=np.float64) + 0.5) / k

    def allowed_units(self, j: int) -> np.ndarray:
        """The unit values of the allowed values of discrete or categorical variable ``j``."""
        if j in self.cat_dims:
            return self.category_units(j)
        numeric = np.array(self.variables[j].numeric, dtype=np.float64)
        if self.hi[j] == self.lo[j]:
            return np.full_like(numeric, 0.5)
        return (numeric - self.lo[j]) / self.span[j]

    def to_unit(self, X: Any) -> np.ndarray:
        """Real-domain ``X: n x d`` (categorical columns hold the index) to the unit cube."""
        X = np.array(X, dtype=np.float64).reshape(-1, self.d)
        U = (X - self.lo) / self.span
        for j in self.discrete_dims:
            if self.hi[j] == self.lo[j]:
                U[:, j] = 0.5
        for j in self.cat_dims:
            U[:, j] = (X[:, j] + 0.5) / len(self.variables[j].values)
        return U

    def from_unit(self, U: Any) -> np.ndarray:
        """Unit-cube ``U: n x d`` to the real domain, clipped to the bounds, discrete values snapped to allowed."""
        U = np.clip(np.array(U, dtype=np.float64).reshape(-1, self.d), 0.0, 1.0)
        X = np.minimum(np.maximum(self.lo + U * self.span, self.lo), self.hi)
        for j in self.discrete_dims:
            numeric = np.array(self.variables[j].numeric, dtype=np.float64)
            X[:, j] = numeric[np.abs(X[:, j, None] - numeric).argmin(axis=-1)]
        for j in self.cat_dims:
            k = len(self.variables[j].values)
            X[:, j] = np.clip(np.floor(U[:, j] * k), 0, k - 1)
        return X

    def snap_unit(self, U: Any, box: Any = None) -> np.ndarray:
        """Put every discrete and categorical column of ``U: n x d`` on an allowed value, inside ``box``.

        Args:
            U: unit-cube points.
            box: ``2 x d`` unit-cube box (low, high) that continuous and discrete columns must keep to;
                ``None`` for the whole cube. Categorical columns ignore it.

        Raises:
            PlannerError: no allowed value of a discrete variable lies inside the box.
        """
        U = np.clip(np.array(U, dtype=np.float64).reshape(-1, self.d), 0.0, 1.0)
        if box is not None:
            box = np.asarray(box, dtype=np.float64)
            for j in self.cont_dims:
                U[:, j] = np.clip(U[:, j], box[0, j], box[1, j])
        for j in self.discrete_dims:
            allowed = self.allowed_units(j)
            if box is not None:
                allowed = allowed[(allowed >= box[0, j] - 1e-12) & (allowed <= box[1, j] + 1e-12)]
                if len(allowed) == 0:
                    name = self.variables[j].name
                    raise PlannerError(
                        f"no allowed value of '{name}' lies within max_travel of the current position",
                        hint="raise max_travel or move the instrument",
                    )
            U[:, j] = allowed[np.abs(U[:, j, None] - allowed).argmin(axis=-1)]
        for j in self.cat_dims:
            k = len(self.variables[j].values)
            U[:, j] = (np.clip(np.floor(U[:, j] * k), 0, k - 1) + 0.5) / k
        return U

    def member(self, j: int, x: float) -> Any:
        """The value of variable ``j`` for real-domain ``x``: a float, or the allowed member itself."""
        var = self.variables[j]
        if var.kind == "continuous":
            return float(x)
        nearest = min(range(len(var.numeric)), key=lambda i: abs(var.numeric[i] - x))
        return var.values[nearest]

    def parse(self, j: int, raw: Any) -> float | None:
        """The real-domain value of ``raw`` for variable ``j``, or None when it is not a valid value.

        Continuous and discrete variables take any finite number (a foreign point may sit between the
        allowed values); categorical ones only an allowed member.
        """
        var = self.variables[j]
        if var.kind == "categorical":
            for i, member in enumerate(var.values):
                try:
                    if bool(member == raw):
                        return float(i)
                except (TypeError, ValueError):
                    continue
            return None
        value = as_float(raw)
        return value if value is not None and math.isfinite(value) else None


def as_float(value: Any) -> float | None:
    """``value`` as a float (numpy scalars and 0-d arrays included), or None when it is not a number."""
    if value is None or isinstance(value, bool | str | bytes):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None
