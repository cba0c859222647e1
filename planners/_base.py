"""The planner base: the gest-api contract every closedloop planner keeps.

:class:`PlannerBase` owns what all planners share: checking the VOCS against the class's ``supports_*`` flags,
handing out integer ``_id``s, tracking pending points, parsing ingested results (numpy scalars, foreign
points, failed points), telling feasible points from infeasible ones, and moving points between their values,
the real domain and the unit cube (see :mod:`planners._space`). A subclass only writes
:meth:`PlannerBase._propose`.

numpy only: a planner that needs no model (Sobol, random, grid, manual) never imports torch. Arrays are float64
``n x d``; the model-based planners convert at their edge.
"""

from __future__ import annotations

import math
import random
from abc import abstractmethod
from collections.abc import Iterable
from typing import Any, ClassVar

import numpy as np
from gest_api import Generator
from gest_api.vocs import VOCS, MaximizeObjective

from closedloop.errors import PlannerError
from planners._points import SAME_POINT, near_any, non_dominated
from planners._results import ID_KEY, Record, ResultShape, parse_id, parse_result
from planners._space import Space, as_float, build_variables
from planners._vocs_check import check_vocs
from planners.options import MIN_OBSERVATIONS, NoOptions, PlannerOptions, validate_options

__all__ = ["ID_KEY", "SAME_POINT", "PlannerBase", "near_any", "non_dominated"]


class PlannerBase(Generator):
    """A gest-api generator; what a subclass may handle is set by its ``supports_*`` flags.

    A point is *failed* when any objective is missing, ``None`` or not finite: it is counted in :attr:`n_failed`,
    kept, and never fit as a number. A point whose objectives were measured but some constraint output is missing
    (its reducer could not compute it, say) is an ok observation with that output missing: the objectives are fit,
    the missing output is NaN in :meth:`train_outcomes` (a model of that output skips the point), and the point is
    not feasible, as its constraint is not known to hold. A point is *feasible* when every VOCS constraint holds
    (:meth:`feasible`).

    Args:
        vocs: the problem. Variables (continuous; discrete or categorical where ``supports_discrete``),
            ``MAXIMIZE``/``MINIMIZE`` objectives (several where ``supports_multi_objective``), constraints
            where ``supports_constraints``; constants are copied into every point, observables are ignored.
        seed: seed for everything random in the planner; ``None`` draws one (see :attr:`seed`).
        **options: planner options, validated against :attr:`options_model` (the base's takes none).

    Raises:
        PlannerError: the VOCS asks for something the planner cannot do (the message names it), or an
            option is unknown or out of range (the message names ``planner.options.<name>``).
    """

    returns_id = True
    #: Outcome constraints (``LESS_THAN``, ``GREATER_THAN``, ``BOUNDS``) are accepted.
    supports_constraints: ClassVar[bool] = False
    #: More than one objective is accepted.
    supports_multi_objective: ClassVar[bool] = False
    #: Discrete (numeric set) and categorical (non-numeric set) variables are accepted.
    supports_discrete: ClassVar[bool] = False
    #: The pydantic model of the planner's options (see :mod:`planners.options`).
    options_model: ClassVar[type[PlannerOptions]] = NoOptions

    def __init__(self, vocs: VOCS, *, seed: int | None = None, **options: Any) -> None:
        #: The validated options (an instance of the class's :attr:`options_model`).
        self.options: PlannerOptions = validate_options(self.options_model, options)
        super().__init__(vocs)
        self.vocs = vocs
        self.seed: int = seed if seed is not None else random.SystemRandom().randrange(2**31)
        self.variable_names: list[str] = list(vocs.variable_names)
        self.objective_names: list[str] = list(vocs.objective_names)
        self.objective_name: str = self.objective_names[0]
        #: +1 for each objective maximized, -1 for each minimized.
        self.signs: list[float] = [
            1.0 if isinstance(vocs.objectives[o], MaximizeObjective) else -1.0 for o in self.objective_names
        ]
        self.maximize: bool = self.signs[0] > 0
        self.constraint_names: list[str] = list(vocs.constraint_names)
        self.constants: dict[str, Any] = {name: c.value for name, c in vocs.constants.items()}
        self.space = Space(build_variables(vocs))
        #: 2 x d, low and high of every variable in the real domain (categorical: index 0 .. k-1), float64.
        self.bounds: np.ndarray = np.stack([self.space.lo, self.space.hi])
        self._shape = ResultShape(
            self.space, self.variable_names, self.objective_names, self.constraint_names, self.constants
        )
        self._next_id = 0
        self._pending: dict[int, dict[str, Any]] = {}
        #: why each point was proposed, by ``_id`` (see :meth:`why`); :meth:`_propose` gives the reasons
        self._reasons: dict[int, str] = {}
        self._proposing: list[str] = []
        self._records: list[Record] = []
        self._finalized = False

    # -- the VOCS check ------------------------------------------------------------------------------------

    def _validate_vocs(self, vocs: VOCS) -> None:
        """Refuse what the ``supports_*`` flags exclude (:func:`~planners._vocs_check.check_vocs`); a subclass may
        override and call this."""
        check_vocs(type(self), vocs)

    # -- gest-api ------------------------------------------------------------------------------------------

    def suggest(self, num_points: int | None = None) -> list[dict[str, Any]]:
        """Propose ``num_points`` points (one when ``None``).

        Returns:
            one dict per point: every variable (inside its bounds; discrete and categorical ones an allowed
            member of their set), every constant, and an integer ``"_id"``.

        Raises:
            ValueError: ``num_points`` is not a positive integer.
        """
        n = 1 if num_points is None else num_points
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise PlannerError(f"num_points must be a positive integer, got {num_points!r}")
        self._proposing = []
        U = np.array(self._propose(n), dtype=np.float64)
        if tuple(U.shape) != (n, self.dim):
            raise RuntimeError(f"{type(self).__name__}._propose returned shape {tuple(U.shape)}, not {(n, self.dim)}")
        X = self.from_unit(U)
        box = self._proposal_box()
        if box is not None:
            for j in self.space.cont_dims:
                X[:, j] = np.clip(X[:, j], box[0, j], box[1, j])
        points: list[dict[str, Any]] = []
        for x in X.tolist():
            point: dict[str, Any] = {v: self.space.member(j, x[j]) for j, v in enumerate(self.variable_names)}
            point.update(self.constants)
            point[ID_KEY] = self._next_id
            self._pending[self._next_id] = dict(point)
            if len(self._proposing) == n:
                self._reasons[self._next_id] = self._proposing[len(points)]
            self._next_id += 1
            points.append(point)
        return points

    def why(self, point_id: int) -> str | None:
        """Why the point with this ``_id`` was proposed (``initial design``, ``model (qLogNEI)``, ...), or None
        when the planner did not say (:class:`~planners.Explains`)."""
        return self._reasons.get(point_id)

    def _explain(self, reasons: list[str]) -> None:
        """Called by :meth:`_propose`: why each of the rows it returns was proposed, in order (one per row)."""
        self._proposing = list(reasons)

    def ingest(self, results: list[dict[str, Any]]) -> None:
        """Take evaluated points.

        Each result needs every variable (a categorical one an allowed member). An objective or constraint
        output may be missing, ``None`` or not finite: with an objective so, the point is recorded as failed and
        never fit as a number; with only constraint outputs so, it is ok with those outputs missing. A result
        without ``"_id"`` (or with ``None``) is a foreign point, for example one re-ingested from the store on
        resume. Nothing is recorded unless every result parses.

        Raises:
            ValueError: a result has an ``"_id"`` this planner never gave out, or a variable is missing or
                not a valid value.
        """
        parsed = [parse_result(self._shape, result, self._next_id) for result in results]
        for record, point_id in parsed:
            if point_id is not None:
                self._pending.pop(point_id, None)
            self._records.append(record)

    def discard(self, ids: Iterable[int]) -> None:
        """Forget pending points that will never be measured (an operator rejected them, say).

        Raises:
            ValueError: an id is not pending.
        """
        wanted = [parse_id(i, self._next_id) for i in ids]
        unknown = [str(i) for i in wanted if i is None or i not in self._pending]
        if unknown:
            raise PlannerError(f"not pending: _id {', '.join(unknown)}")
        for i in wanted:
            if i is not None:
                del self._pending[i]

    def restore_pending(self, points: list[dict[str, Any]]) -> list[int]:
        """Take back points an earlier instance of this planner gave out that are still out (a session resumed in a
        new process: proposed, not yet measured nor rejected), as pending, each under a new ``_id`` (returned in
        order). With every point it gave out known (ingested or pending), a rebuilt planner continues its sequence
        instead of giving one of them again (:class:`~planners.RestoresPending`).

        Raises:
            ValueError: a point misses a variable or has an invalid value (nothing is taken).
        """
        for given in points:
            missing = [var for var in self.variable_names if var not in given]
            if missing:
                raise PlannerError(f"a point given back has no value for variable '{missing[0]}'")
        parsed = [self.point_x(point) for point in points]
        ids: list[int] = []
        for x in parsed:
            point: dict[str, Any] = {v: self.space.member(j, x[j]) for j, v in enumerate(self.variable_names)}
            point.update(self.constants)
            point[ID_KEY] = self._next_id
            self._pending[self._next_id] = point
            ids.append(self._next_id)
            self._next_id += 1
        return ids

    def finalize(self) -> None:
        """Nothing to close down; harmless to call more than once."""
        self._finalized = True

    # -- for subclasses ------------------------------------------------------------------------------------

    @abstractmethod
    def _propose(self, n: int) -> np.ndarray:
        """Return ``n`` new points in the unit cube, ``n x d`` float64.

        :attr:`pending` holds the points already out (not including these), :meth:`train_data` the data.
        Discrete and categorical columns may be anywhere in ``[0, 1]``: :meth:`suggest` snaps them to the
        allowed value they fall on (see :mod:`planners._space`).
        """

    def _proposal_box(self) -> np.ndarray | None:
        """A ``2 x d`` real-domain box every proposal is clipped to (continuous columns), or None."""
        return None

    @property
    def dim(self) -> int:
        """Number of variables ``d``."""
        return self.space.d

    @property
    def n_known(self) -> int:
        """Points this planner knows of: ingested (ok, failed or foreign) plus pending."""
        return len(self._records) + len(self._pending)

    def to_unit(self, X: Any) -> np.ndarray:
        """Map real-domain points ``X: n x d`` into the unit cube (categorical columns hold the index)."""
        return self.space.to_unit(X)

    def from_unit(self, U: Any) -> np.ndarray:
        """Map unit-cube points ``U: n x d`` to the real domain: clipped inside the bounds, discrete columns
        on the nearest allowed value, categorical columns the index of the category whose bin they fall in."""
        return self.space.from_unit(U)

    def train_data(self) -> tuple[np.ndarray, np.ndarray]:
        """Ok observations: ``X: n x d`` in the unit cube, ``Y: n x 1`` the first objective, larger is better."""
        X, Y, _ = self.train_outcomes()
        return X, Y[:, :1]

    def train_outcomes(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Ok observations with every outcome.

        Returns:
            ``X: n x d`` in the unit cube; ``Y: n x m`` the objectives, each signed so that larger is better;
            ``C: n x k`` the constraint outputs as measured, in VOCS order, NaN where one is missing.
        """
        ok = [r for r in self._records if r.outcomes is not None]
        m = len(self.objective_names)
        X = np.array([r.x for r in ok], dtype=np.float64).reshape(len(ok), self.dim)
        k = m + len(self.constraint_names)
        out = np.array([r.outcomes for r in ok], dtype=np.float64).reshape(len(ok), k)
        Y = out[:, :m] * np.array(self.signs, dtype=np.float64)
        return self.to_unit(X), Y, out[:, m : m + len(self.constraint_names)]

    def pending_unit(self) -> np.ndarray:
        """The pending points in the unit cube, ``n_pending x d``."""
        X = [self.point_x(p) for p in self._pending.values()]
        return self.to_unit(np.array(X, dtype=np.float64).reshape(len(X), self.dim))

    def failed_unit(self) -> np.ndarray:
        """The failed points (rejected, aborted or faulty runs) in the unit cube, ``n_failed x d``, in ingest order."""
        X = [r.x for r in self._records if r.outcomes is None]
        return self.to_unit(np.array(X, dtype=np.float64).reshape(len(X), self.dim))

    # -- for the agent -------------------------------------------------------------------------------------

    @property
    def n_observed(self) -> int:
        """Number of ok observations ingested (own and foreign)."""
        return sum(r.outcomes is not None for r in self._records)

    @property
    def n_failed(self) -> int:
        """Number of failed observations ingested."""
        return sum(r.outcomes is None for r in self._records)

    def feasible(self, point: dict[str, Any]) -> bool:
        """Whether every VOCS constraint holds at ``point`` (a result dict); a missing output is infeasible."""
        for name, spec in self.vocs.constraints.items():
            value = as_float(point.get(name))
            if value is None or not math.isfinite(value) or not spec.check(value):
                return False
        return True

    def any_feasible(self) -> bool:
        """Whether an ok observation is feasible (:meth:`feasible`)."""
        return any(r.outcomes is not None and self.feasible(r.point) for r in self._records)

    def unmeasured_output(self) -> str | None:
        """A constraint output measured at fewer than :data:`~planners.options.MIN_OBSERVATIONS` ok observations (its
        reducer could not compute it at the others), or None: a model of it needs that many."""
        _, _, C = self.train_outcomes()
        counts = (~np.isnan(C)).sum(axis=0)
        short = [n for n, count in zip(self.constraint_names, counts.tolist(), strict=True) if count < MIN_OBSERVATIONS]
        return short[0] if short else None

    @property
    def best(self) -> dict[str, Any] | None:
        """The best ok, feasible point so far (variables, constants, outputs, ``"_id"`` if it had one), or None.

        With several objectives, the best in the first one (see :meth:`pareto_front` for the trade-off).
        """
        sign = self.signs[0]
        scored = [(sign * r.y, i) for i, r in enumerate(self._records) if r.y is not None and self.feasible(r.point)]
        if not scored:
            return None
        _, index = max(scored, key=lambda s: (s[0], -s[1]))  # the first of equals
        return dict(self._records[index].point)

    def pareto_front(self) -> list[dict[str, Any]]:
        """The ok, feasible observed points no other such point dominates, in the order ingested."""
        front = [r for r in self._records if r.outcomes is not None and self.feasible(r.point)]
        if not front:
            return []
        m = len(self.objective_names)
        Y = np.array([r.outcomes[:m] for r in front if r.outcomes is not None], dtype=np.float64)
        keep = non_dominated(Y * np.array(self.signs, dtype=np.float64))
        return [dict(r.point) for r, k in zip(front, keep.tolist(), strict=True) if k]

    @property
    def results(self) -> list[dict[str, Any]]:
        """Every ingested point as a result (variables, constants, outputs; ``_id`` if it had one), in order;
        a failed point's outputs are None."""
        return [dict(r.point) for r in self._records]

    @property
    def pending(self) -> list[dict[str, Any]]:
        """Points suggested and not yet ingested, oldest first."""
        return [dict(p) for p in self._pending.values()]

    def point_x(self, point: dict[str, Any]) -> list[float]:
        """The real-domain coordinates of a point's variables (categorical: the index).

        Raises:
            ValueError: a variable is not a valid value.
        """
        x = []
        for j, var in enumerate(self.variable_names):
            value = self.space.parse(j, point[var])
            if value is None:
                raise PlannerError(f"variable '{var}' is {point[var]!r}")
            x.append(value)
        return x
