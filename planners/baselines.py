"""Baselines that ignore the data: uniform random points, a full factorial grid, and points an operator lists.

They keep the whole planner contract (integer ``_id``, pending points, foreign and failed points ingested), so
the loop, the store and the reports treat them like any other planner: a random or grid run is the baseline a
Bayesian run is measured against, and a manual run replays a plan someone wrote by hand.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from gest_api.vocs import VOCS

from closedloop.errors import PlannerError, PointsExhaustedError
from planners._base import ID_KEY, PlannerBase
from planners.options import GridOptions, ManualOptions, RandomOptions
from planners.points_file import read_points

__all__ = ["MAX_GRID_POINTS", "GridPlanner", "ManualPlanner", "RandomPlanner", "read_points"]

#: The largest grid :class:`GridPlanner` builds (its visiting order is held in memory).
MAX_GRID_POINTS = 1_000_000


class RandomPlanner(PlannerBase):
    """Points drawn uniformly in the bounds from a seeded numpy generator.

    The ``k``-th call after ``m`` known points draws ``m + n`` points from a generator seeded with ``seed`` and
    returns the last ``n``, so the points are a function of the seed and the number of points known only (failed
    and rejected ones included): a planner rebuilt on resume from re-ingested observations carries on instead of
    repeating its first points.

    Args:
        vocs: the problem: continuous variables, one objective, no constraints.
        seed: seed of the generator; ``None`` draws one.
    """

    options_model: ClassVar[type[RandomOptions]] = RandomOptions

    def __init__(self, vocs: VOCS, *, seed: int | None = None, **options: Any) -> None:
        super().__init__(vocs, seed=seed, **options)

    def _propose(self, n: int) -> np.ndarray:
        self._explain(["random"] * n)
        return np.random.default_rng(self.seed).random((self.n_known + n, self.dim))[-n:]


class GridPlanner(PlannerBase):
    """A full factorial grid, walked in a seeded shuffled order or in order (the last variable fastest).

    A variable with ``k`` points per dimension takes ``k`` evenly spaced values from its low to its high bound
    (its midpoint when ``k`` is 1). A grid point counts as done once a point at it is pending or ingested (own,
    foreign or failed: a rejected point is ingested as failed), so a planner rebuilt on resume from re-ingested
    observations skips what was measured or rejected.

    Args:
        vocs: the problem: continuous variables, one objective, no constraints.
        seed: seed of the shuffle; ``None`` draws one.
        points_per_dim: points per variable: one number for all, or a dict by variable name (variables it does
            not name get 5).
        shuffle: walk the grid in a random order fixed by ``seed`` (default), or in order.

    Raises:
        PlannerError: an option is out of range, names an unknown variable, or the grid has more than
            1,000,000 points. ``suggest`` raises it (a ``ValueError``) when fewer grid points than asked for
            are left.
    """

    options_model: ClassVar[type[GridOptions]] = GridOptions
    options: GridOptions

    def __init__(self, vocs: VOCS, *, seed: int | None = None, **options: Any) -> None:
        super().__init__(vocs, seed=seed, **options)
        points_per_dim, shuffle = self.options.points_per_dim, self.options.shuffle
        if isinstance(points_per_dim, dict):
            unknown = sorted(set(points_per_dim) - set(self.variable_names))
            if unknown:
                raise PlannerError(f"planner.options.points_per_dim: unknown variables {', '.join(unknown)}")
            counts = [points_per_dim.get(v, 5) for v in self.variable_names]
        else:
            counts = [points_per_dim] * self.dim
        size = math.prod(counts)
        if size > MAX_GRID_POINTS:
            raise PlannerError(
                f"planner.options.points_per_dim: the grid has {size} points, more than {MAX_GRID_POINTS}",
                hint="lower points_per_dim",
            )
        #: Points per variable, in variable order.
        self.counts: list[int] = counts
        self.shuffle = shuffle
        self._radix = np.array(counts, dtype=np.int64)
        # Mixed-radix place values, the last variable fastest (as itertools.product).
        self._place = np.array([math.prod(counts[j + 1 :]) for j in range(self.dim)], dtype=np.int64)
        self._order = np.random.default_rng(self.seed).permutation(size) if shuffle else np.arange(size)
        self._done = np.zeros(size, dtype=bool)

    @property
    def size(self) -> int:
        """Number of grid points."""
        return len(self._order)

    @property
    def remaining(self) -> int:
        """Grid points neither pending nor ingested."""
        return int((~self._visited()).sum())

    def ingest(self, results: list[dict[str, Any]]) -> None:
        """Take evaluated points (see :meth:`PlannerBase.ingest`); those on the grid are marked done, and so is the
        grid point each of its own points (by ``_id``) was, wherever the instrument read back."""
        ids = [r.get(ID_KEY) for r in results if isinstance(r, dict)]
        asked = [self._pending.get(int(i)) for i in ids if isinstance(i, int | np.integer)]
        super().ingest(results)
        points = list(results) + [p for p in asked if p is not None]
        X = np.array([[float(r[v]) for v in self.variable_names] for r in points], dtype=np.float64)
        self._done[self._indices(self.to_unit(X.reshape(len(points), self.dim)))] = True

    def _indices(self, U: np.ndarray) -> np.ndarray:
        """Flat grid indices of the rows of ``U: n x d`` (unit cube) that lie on the grid."""
        steps = np.maximum(self._radix - 1, 1).astype(np.float64)
        scaled = U * steps
        digits = np.round(scaled)
        single = self._radix == 1
        on_grid = np.where(single, np.abs(U - 0.5) < 1e-9, np.abs(scaled - digits) < 1e-6)
        on_grid &= (digits >= 0) & (digits < self._radix)
        digits = np.where(single, 0.0, digits).astype(np.int64)
        return (digits * self._place).sum(axis=-1)[on_grid.all(axis=-1)]

    def _visited(self) -> np.ndarray:
        visited = self._done.copy()
        visited[self._indices(self.pending_unit())] = True
        return visited

    def _propose(self, n: int) -> np.ndarray:
        visited = self._visited()
        free = self._order[~visited[self._order]]
        if len(free) < n:
            raise PointsExhaustedError(
                f"the grid is exhausted: {len(free)} of its {self.size} points left, asked for {n}",
                hint="ask for fewer points, or choose more points_per_dim",
            )
        digits = (free[:n, None] // self._place) % self._radix
        steps = np.maximum(self._radix - 1, 1).astype(np.float64)
        return np.where(self._radix == 1, 0.5, digits.astype(np.float64) / steps)


class ManualPlanner(PlannerBase):
    """Points an operator lists, suggested in order.

    Points come from ``points``, then ``file``, then each :meth:`add`. Each point is a dict with a value for
    every variable (a constant may be given too, with the VOCS's value); every value is checked against the
    bounds when it is queued. A suggested point carries exactly the queued values. A foreign point (no
    ``"_id"``) ingested at the same place as a queued point takes that point off the queue, so a planner rebuilt
    on resume from re-ingested observations does not measure again what was measured or rejected (a rejected
    point comes back as a failed one).

    Args:
        vocs: the problem: continuous variables, one objective, no constraints.
        seed: unused (the order is the operator's); accepted so that a session seed can be passed.
        points: points to queue first.
        file: a CSV file with a header row of variable names, or a YAML or JSON list of dicts (``.yaml``,
            ``.yml``, ``.json``), queued after ``points``.

    Raises:
        PlannerError: the file cannot be read, or a point is missing a variable, names an unknown one, or is
            outside the bounds (the message names the variable and the value). ``suggest`` raises it (a
            ``ValueError``) when fewer points than asked for are queued.
    """

    options_model: ClassVar[type[ManualOptions]] = ManualOptions
    options: ManualOptions

    def __init__(self, vocs: VOCS, *, seed: int | None = None, **options: Any) -> None:
        if isinstance(options.get("file"), Path):
            options["file"] = str(options["file"])
        super().__init__(vocs, seed=seed, **options)
        points, file = self.options.points, self.options.file
        self._queue: list[list[float]] = []
        self._taken: list[list[float]] = []
        if points is not None:
            self.add(points)
        if file is not None:
            self.add(read_points(Path(file)))

    @property
    def queued(self) -> list[dict[str, float]]:
        """The points still to be suggested, in order."""
        return [dict(zip(self.variable_names, x, strict=True)) for x in self._queue]

    def add(self, points: list[dict[str, Any]]) -> None:
        """Queue ``points`` after those already queued; none is queued unless all are valid.

        Raises:
            PlannerError: a point is not a dict, misses a variable, names an unknown key, has a value that is
                not a finite number or is outside its bounds.
        """
        if not isinstance(points, list | tuple):
            raise PlannerError(f"ManualPlanner points must be a list of dicts, got {type(points).__name__}")
        self._queue.extend([self._check(i, point) for i, point in enumerate(points)])

    def _check(self, index: int, point: Any) -> list[float]:
        if not isinstance(point, dict):
            raise PlannerError(f"ManualPlanner point {index} must be a dict, got {type(point).__name__}")
        unknown = sorted(str(k) for k in point if k not in self.variable_names and k not in self.constants)
        if unknown:
            raise PlannerError(f"ManualPlanner point {index} names unknown variables: {', '.join(unknown)}")
        for name, value in self.constants.items():
            if name in point and point[name] != value:
                raise PlannerError(
                    f"ManualPlanner point {index}: constant '{name}' is {point[name]!r}, the VOCS fixes it at {value!r}"
                )
        x = []
        lo, hi = self.bounds.tolist()
        for j, var in enumerate(self.variable_names):
            if var not in point:
                raise PlannerError(f"ManualPlanner point {index} has no value for variable '{var}'")
            value = _number(point[var])
            if value is None or not math.isfinite(value):
                raise PlannerError(f"ManualPlanner point {index}: variable '{var}' is {point[var]!r}, not a number")
            if not lo[j] <= value <= hi[j]:
                raise PlannerError(
                    f"ManualPlanner point {index}: variable '{var}' = {value!r} is outside its bounds "
                    f"[{lo[j]!r}, {hi[j]!r}]"
                )
            x.append(value)
        return x

    def ingest(self, results: list[dict[str, Any]]) -> None:
        """Take evaluated points (see :meth:`PlannerBase.ingest`); a foreign one takes its match off the queue."""
        super().ingest(results)
        self._dequeue([result for result in results if result.get("_id") is None])

    def restore_pending(self, points: list[dict[str, Any]]) -> list[int]:
        """Take back an earlier instance's points still out (see :meth:`PlannerBase.restore_pending`); each takes
        its match off the queue, as a measured one does."""
        ids = super().restore_pending(points)
        self._dequeue(points)
        return ids

    def _dequeue(self, points: list[dict[str, Any]]) -> None:
        """Take the queued point at the place of each of ``points`` off the queue (the first match each)."""
        span = (self.bounds[1] - self.bounds[0]).tolist()
        for result in points:
            if not self._queue:
                break
            x = [float(result[v]) for v in self.variable_names]
            for i, queued in enumerate(self._queue):
                if all(abs(a - b) <= 1e-9 * s for a, b, s in zip(x, queued, span, strict=True)):
                    del self._queue[i]
                    break

    def suggest(self, num_points: int | None = None) -> list[dict[str, Any]]:
        """The next ``num_points`` queued points (one when ``None``), with exactly the queued values.

        Raises:
            ValueError: fewer than ``num_points`` points are queued (nothing is taken off the queue).
        """
        points = super().suggest(num_points)
        # The trip through the unit cube can move a value by an ulp (0.3 comes back as 0.30000000000000004):
        # give the operator's number back, wherever nothing but rounding moved it.
        span = (self.bounds[1] - self.bounds[0]).tolist()
        for point, queued in zip(points, self._taken, strict=True):
            for var, value, s in zip(self.variable_names, queued, span, strict=True):
                if abs(point[var] - value) <= 1e-12 * s:
                    point[var] = value
        return points

    def _propose(self, n: int) -> np.ndarray:
        if len(self._queue) < n:
            raise PointsExhaustedError(
                f"ManualPlanner has {len(self._queue)} queued point(s) left, asked for {n}",
                hint="queue more with add(), or with closedloop add in a session",
            )
        self._taken = self._queue[:n]
        del self._queue[:n]
        return self.to_unit(np.array(self._taken, dtype=np.float64))


def _number(value: Any) -> float | None:
    if value is None or isinstance(value, bool | bytes):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None
