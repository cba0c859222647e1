"""A warm start for generators that cannot propose without data.

Some gest-api generators (Xopt's Bayesian ones, for example) raise on a cold start: they expect the caller to
evaluate a few random points first. :class:`WarmStart` wraps any generator and proposes the first ``initial``
points from a seeded Sobol design itself, feeding every result to the wrapped generator, which takes over once
the design's results are in (see :class:`WarmStart`).
"""

from __future__ import annotations

from typing import Any

from gest_api import Generator
from gest_api.vocs import VOCS

from closedloop.errors import PlannerError
from planners._base import near_any
from planners.foreign import makes_one_at_a_time, said_why
from planners.sobol import SobolPlanner

ID_KEY = "_id"


class WarmStart(Generator):
    """Sobol points first, then the wrapped generator.

    Args:
        vocs: the problem.
        planner: the wrapped gest-api generator (already built for ``vocs``).
        initial: how many points the design proposes before the wrapped generator is asked.
        seed: seed of the design.

    Every point carries this wrapper's own integer ``_id``; the wrapped generator's ids are mapped back when its
    points are ingested, and the design's points reach it as points it did not make (no ``_id``). The design is
    counted from the points ingested and pending, so a wrapper rebuilt by re-ingesting observations carries on.

    The wrapped generator is first asked once the design's results are in, all but one (at least one), so that it
    never starts on no data while the design runs on several instruments: until then, more design points keep the
    instruments busy. One that makes one point at a time (:func:`~planners.foreign.makes_one_at_a_time`) waits
    for every design result instead (:attr:`room` is 0): it could not take a result that came after it started.

    Failed points (see :mod:`planners`) are passed on to the wrapped generator like any other result; a point it
    proposes within ``SAME_POINT`` of a failed one is replaced by the design's next Sobol point, and given back to
    it as a failed point.
    """

    returns_id = True

    def __init__(self, vocs: VOCS, *, planner: Any, initial: int, seed: int | None = None) -> None:
        if initial < 0:
            raise PlannerError(f"planner.initial_design must be >= 0, got {initial}")
        super().__init__(vocs)
        self.vocs = vocs
        self.planner = planner
        self.initial = initial
        self.one_at_a_time = makes_one_at_a_time(planner)
        self.design = SobolPlanner(vocs, seed=seed)
        self._next_id = 0
        self._origin: dict[int, tuple[str, int | None]] = {}

    def _validate_vocs(self, vocs: VOCS) -> None:
        if not isinstance(vocs, VOCS):
            raise PlannerError(f"WarmStart needs a gest-api VOCS, got {type(vocs).__name__}")

    def _tag(self, point: dict[str, Any], origin: str) -> dict[str, Any]:
        inner_id = point.pop(ID_KEY, None)
        self._origin[self._next_id] = (origin, inner_id)
        point[ID_KEY] = self._next_id
        self._next_id += 1
        return point

    @property
    def _design_results(self) -> int:
        return self.design.n_known - len(self.design.pending)

    @property
    def _results_to_start(self) -> int:
        """Design results the wrapped generator waits for before it is first asked."""
        return self.initial if self.one_at_a_time else max(1, self.initial - 1)

    @property
    def room(self) -> int | None:
        """How many more points it can give now (None: no limit): 0 while a one-at-a-time generator waits for the
        design's results or for its own point's."""
        if self.design.n_known < self.initial:
            return None
        if self._design_results < self._results_to_start:
            return 0 if self.one_at_a_time else None
        room = getattr(self.planner, "room", None)
        return room if isinstance(room, int) else None

    def suggest(self, num_points: int | None = None) -> list[dict[str, Any]]:
        """Design points while the design lasts (or its results are not in), then the wrapped generator's.

        Raises:
            PlannerError: ``num_points`` is not positive, or a one-at-a-time generator is asked while it waits
                (see :attr:`room`).
        """
        n = 1 if num_points is None else num_points
        if n < 1:
            raise PlannerError(f"num_points must be a positive integer, got {num_points!r}")
        from_design = max(0, min(n, self.initial - self.design.n_known))
        if n > from_design and self.initial and self._design_results < self._results_to_start:
            if self.one_at_a_time:
                raise PlannerError("the planner makes one point at a time: it waits for the design's results")
            from_design = n  # the design's results are not in yet: more design points meanwhile
        points = [self._tag(p, "design") for p in self.design.suggest(from_design)] if from_design else []
        if n > from_design:
            theirs = [dict(p) for p in self.planner.suggest(n - from_design)]
            failed = self.design.failed_unit()
            repeats: set[int] = set()
            if len(failed):
                # a failed (or rejected) point is not proposed again: a repeat gets the design's next point instead
                U = self.design.to_unit([self.design.point_x(p) for p in theirs])
                repeats = set(near_any(U, failed).nonzero()[0].tolist())
            for i, point in enumerate(theirs):
                if i in repeats:
                    points.append(self._tag(self.design.suggest(1)[0], "design"))
                else:
                    points.append(self._tag(point, "planner"))
            if repeats:
                # told as failed, as a rejected point is: it is never measured, and a generator counting its points
                # out (one at a time, say) must not wait for it
                nan = dict.fromkeys(self.vocs.output_names, float("nan"))
                self.planner.ingest([{**theirs[i], **nan} for i in sorted(repeats)])
        return points

    def why(self, point_id: int) -> str | None:
        """``initial design`` for a design point; for the wrapped generator's, what it says of it with its own id
        (if it has a ``why``: :class:`~planners.Explains`); None otherwise."""
        origin = self._origin.get(point_id)
        if origin is None:
            return None
        return "initial design" if origin[0] == "design" else said_why(self.planner, origin[1])

    def ingest(self, results: list[dict[str, Any]]) -> None:
        """Pass every result on to the wrapped generator (and the design, to keep its count)."""
        forward, design = [], []
        for result in results:
            result = dict(result)
            origin = self._origin.pop(result.pop(ID_KEY), None) if ID_KEY in result else None
            if origin is not None and origin[0] == "planner" and origin[1] is not None:
                result[ID_KEY] = origin[1]
            forward.append(result)
            design_result = {k: v for k, v in result.items() if k != ID_KEY}
            if origin is not None and origin[0] == "design":
                design_result[ID_KEY] = origin[1]
            design.append(design_result)
        self.design.ingest(design)
        self.planner.ingest(forward)

    def restore_pending(self, points: list[dict[str, Any]]) -> list[int]:
        """Take back an earlier instance's points still out (see :class:`~planners.RestoresPending`): each is
        pending in the design, so that the design's count and the wait for its results carry on; the wrapped
        generator gets their results as points it did not make."""
        ids = []
        for design_id in self.design.restore_pending(points):
            self._origin[self._next_id] = ("design", design_id)
            ids.append(self._next_id)
            self._next_id += 1
        return ids

    def finalize(self) -> None:
        """Finalize the wrapped generator (harmless to call twice if it is)."""
        finalize = getattr(self.planner, "finalize", None)
        if callable(finalize):
            finalize()
