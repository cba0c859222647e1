"""The planner base: the gest-api contract every closedloop planner keeps.

:class:`PlannerBase` owns what all planners share: checking the VOCS, handing out integer ``_id``s, tracking
pending points, parsing ingested results (numpy scalars, foreign points, failed points), and moving points
between the real domain and the unit cube. A subclass only writes :meth:`PlannerBase._propose`.
"""

from __future__ import annotations

import math
import random
from abc import abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import torch
from gest_api import Generator
from gest_api.vocs import VOCS, ContextualVariable, ContinuousVariable, MaximizeObjective, MinimizeObjective
from torch import Tensor

from closedloop.errors import PlannerError

ID_KEY = "_id"


@dataclass(frozen=True)
class _Record:
    """One ingested point. ``y`` is the objective as measured, ``None`` when the point failed."""

    x: tuple[float, ...]
    y: float | None
    point: dict[str, Any]


class PlannerBase(Generator):
    """A gest-api generator for one continuous, unconstrained, single-objective problem.

    Args:
        vocs: the problem. Continuous variables, exactly one ``MAXIMIZE`` or ``MINIMIZE`` objective, no
            constraints; constants are copied into every point, observables are ignored.
        seed: seed for everything random in the planner; ``None`` draws one (see :attr:`seed`).
        **options: planner options. The base takes none: any left over here are refused.

    Raises:
        PlannerError: the VOCS asks for something the planner cannot do, or an option is unknown.
    """

    returns_id = True

    def __init__(self, vocs: VOCS, *, seed: int | None = None, **options: Any) -> None:
        if options:
            raise PlannerError(
                f"{type(self).__name__} got unknown options: {', '.join(sorted(options))}",
                hint="check the planner options in the session file",
            )
        super().__init__(vocs)
        self.vocs = vocs
        self.seed: int = seed if seed is not None else random.SystemRandom().randrange(2**31)
        self.variable_names: list[str] = list(vocs.variable_names)
        self.objective_name: str = vocs.objective_names[0]
        self.maximize: bool = isinstance(vocs.objectives[self.objective_name], MaximizeObjective)
        self.constants: dict[str, Any] = {name: c.value for name, c in vocs.constants.items()}
        #: 2 x d, low and high of every variable, float64.
        self.bounds: Tensor = torch.tensor(vocs.bounds, dtype=torch.float64).T.contiguous()
        self._next_id = 0
        self._pending: dict[int, dict[str, Any]] = {}
        self._records: list[_Record] = []
        self._finalized = False

    # -- the VOCS check ------------------------------------------------------------------------------------

    def _validate_vocs(self, vocs: VOCS) -> None:
        name = type(self).__name__
        if not isinstance(vocs, VOCS):
            raise PlannerError(f"{name} needs a gest-api VOCS, got {type(vocs).__name__}")
        if not vocs.variables:
            raise PlannerError(f"{name} needs at least one variable")
        for var, spec in vocs.variables.items():
            if isinstance(spec, ContextualVariable) or not isinstance(spec, ContinuousVariable):
                raise PlannerError(
                    f"{name} supports continuous variables only; variable '{var}' is {type(spec).__name__}"
                )
            if not all(math.isfinite(b) for b in spec.domain):
                raise PlannerError(f"{name} needs finite bounds; variable '{var}' has {spec.domain}")
        if vocs.constraints:
            raise PlannerError(
                f"{name} does not support constraints; got {', '.join(vocs.constraints)}",
                hint="remove the constraints or choose a planner that supports them",
            )
        if len(vocs.objectives) != 1:
            raise PlannerError(
                f"{name} supports exactly one objective; got {len(vocs.objectives)}"
                + (f" ({', '.join(vocs.objectives)})" if vocs.objectives else "")
            )
        for obj, spec in vocs.objectives.items():
            if not isinstance(spec, MaximizeObjective | MinimizeObjective):
                raise PlannerError(
                    f"{name} supports MAXIMIZE or MINIMIZE objectives; objective '{obj}' is {type(spec).__name__}"
                )

    # -- gest-api ------------------------------------------------------------------------------------------

    def suggest(self, num_points: int | None = None) -> list[dict[str, Any]]:
        """Propose ``num_points`` points (one when ``None``).

        Returns:
            one dict per point: every variable (inside its bounds), every constant, and an integer ``"_id"``.

        Raises:
            ValueError: ``num_points`` is not a positive integer.
        """
        n = 1 if num_points is None else num_points
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise PlannerError(f"num_points must be a positive integer, got {num_points!r}")
        U = self._propose(n)
        if tuple(U.shape) != (n, self.dim):
            raise RuntimeError(f"{type(self).__name__}._propose returned shape {tuple(U.shape)}, not {(n, self.dim)}")
        points = []
        for x in self.from_unit(U).tolist():
            point: dict[str, Any] = dict(zip(self.variable_names, x, strict=True))
            point.update(self.constants)
            point[ID_KEY] = self._next_id
            self._pending[self._next_id] = dict(point)
            self._next_id += 1
            points.append(point)
        return points

    def ingest(self, results: list[dict[str, Any]]) -> None:
        """Take evaluated points.

        Each result needs every variable. The objective may be missing, ``None`` or not finite: the point is
        then recorded as failed and never fit as a number. A result without ``"_id"`` (or with ``None``) is a
        foreign point, for example one re-ingested from the store on resume. Nothing is recorded unless every
        result parses.

        Raises:
            ValueError: a result has an ``"_id"`` this planner never gave out, or a variable is missing or
                not a number.
        """
        parsed = [self._parse(result) for result in results]
        for record, point_id in parsed:
            if point_id is not None:
                self._pending.pop(point_id, None)
            self._records.append(record)

    def discard(self, ids: Iterable[int]) -> None:
        """Forget pending points that will never be measured (an operator rejected them, say).

        Raises:
            ValueError: an id is not pending.
        """
        wanted = [self._parse_id(i) for i in ids]
        unknown = [str(i) for i in wanted if i is None or i not in self._pending]
        if unknown:
            raise PlannerError(f"not pending: _id {', '.join(unknown)}")
        for i in wanted:
            if i is not None:
                del self._pending[i]

    def finalize(self) -> None:
        """Nothing to close down; harmless to call more than once."""
        self._finalized = True

    # -- for subclasses ------------------------------------------------------------------------------------

    @abstractmethod
    def _propose(self, n: int) -> Tensor:
        """Return ``n`` new points in the unit cube, ``n x d`` float64.

        :attr:`pending` holds the points already out (not including these), :meth:`train_data` the data.
        """

    @property
    def dim(self) -> int:
        """Number of variables ``d``."""
        return len(self.variable_names)

    @property
    def n_known(self) -> int:
        """Points this planner knows of: ingested (ok, failed or foreign) plus pending."""
        return len(self._records) + len(self._pending)

    def to_unit(self, X: Tensor) -> Tensor:
        """Map real-domain points ``X: n x d`` into the unit cube."""
        lo, hi = self.bounds
        return (X.to(torch.float64) - lo) / (hi - lo)

    def from_unit(self, U: Tensor) -> Tensor:
        """Map unit-cube points ``U: n x d`` to the real domain, clipped inside the bounds."""
        lo, hi = self.bounds
        X = lo + U.to(torch.float64).clamp(0.0, 1.0) * (hi - lo)
        return torch.minimum(torch.maximum(X, lo), hi)

    def train_data(self) -> tuple[Tensor, Tensor]:
        """Ok observations: ``X: n x d`` in the unit cube, ``Y: n x 1`` signed so that larger is better."""
        ok = [r for r in self._records if r.y is not None]
        sign = 1.0 if self.maximize else -1.0
        X = torch.tensor([r.x for r in ok], dtype=torch.float64).reshape(len(ok), self.dim)
        Y = torch.tensor([sign * r.y for r in ok if r.y is not None], dtype=torch.float64).reshape(-1, 1)
        return self.to_unit(X), Y

    def pending_unit(self) -> Tensor:
        """The pending points in the unit cube, ``n_pending x d``."""
        X = [[p[v] for v in self.variable_names] for p in self._pending.values()]
        return self.to_unit(torch.tensor(X, dtype=torch.float64).reshape(len(X), self.dim))

    # -- for the agent -------------------------------------------------------------------------------------

    @property
    def n_observed(self) -> int:
        """Number of ok observations ingested (own and foreign)."""
        return sum(r.y is not None for r in self._records)

    @property
    def n_failed(self) -> int:
        """Number of failed observations ingested."""
        return sum(r.y is None for r in self._records)

    @property
    def best(self) -> dict[str, Any] | None:
        """The best ok point so far (variables, constants, objective, ``"_id"`` if it had one), or None."""
        sign = 1.0 if self.maximize else -1.0
        scored = [(sign * r.y, i) for i, r in enumerate(self._records) if r.y is not None]
        if not scored:
            return None
        _, index = max(scored, key=lambda s: (s[0], -s[1]))  # the first of equals
        return dict(self._records[index].point)

    @property
    def pending(self) -> list[dict[str, Any]]:
        """Points suggested and not yet ingested, oldest first."""
        return [dict(p) for p in self._pending.values()]

    # -- parsing -------------------------------------------------------------------------------------------

    def _parse(self, result: dict[str, Any]) -> tuple[_Record, int | None]:
        if not isinstance(result, dict):
            raise PlannerError(f"each result must be a dict, got {type(result).__name__}")
        point_id = self._parse_id(result.get(ID_KEY))
        x = []
        for var in self.variable_names:
            if var not in result:
                raise PlannerError(f"result {self._label(point_id)} has no value for variable '{var}'")
            value = _as_float(result[var])
            if value is None or not math.isfinite(value):
                raise PlannerError(f"result {self._label(point_id)}: variable '{var}' is {result[var]!r}")
            x.append(value)
        # Missing, None, NaN, infinite or not a number at all: a failed point, kept as data, never fit.
        y = _as_float(result.get(self.objective_name))
        if y is not None and not math.isfinite(y):
            y = None
        point: dict[str, Any] = dict(zip(self.variable_names, x, strict=True))
        point.update(self.constants)
        point[self.objective_name] = y
        if point_id is not None:
            point[ID_KEY] = point_id
        return _Record(x=tuple(x), y=y, point=point), point_id

    def _parse_id(self, raw: Any) -> int | None:
        if raw is None:
            return None
        value = _as_float(raw)
        if value is None or not value.is_integer() or not 0 <= value < self._next_id:
            raise PlannerError(
                f"unknown _id {raw!r}: this planner gave out "
                + (f"ids 0..{self._next_id - 1}" if self._next_id else "no ids yet"),
                hint="points the planner did not suggest must be ingested without an '_id'",
            )
        return int(value)

    @staticmethod
    def _label(point_id: int | None) -> str:
        return f"_id={point_id}" if point_id is not None else "(no _id)"


def _as_float(value: Any) -> float | None:
    """``value`` as a float (numpy scalars and 0-d arrays included), or None when it is not a number."""
    if value is None or isinstance(value, bool | str | bytes):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None
