"""A warm start for generators that cannot propose without data.

Some gest-api generators (Xopt's Bayesian ones, for example) raise on a cold start: they expect the caller to
evaluate a few random points first. :class:`WarmStart` wraps any generator and proposes the first ``initial``
points from a seeded Sobol design itself, feeding every result to the wrapped generator, which takes over once
the design is done.
"""

from __future__ import annotations

from typing import Any

from gest_api import Generator
from gest_api.vocs import VOCS

from closedloop.errors import PlannerError
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
    """

    returns_id = True

    def __init__(self, vocs: VOCS, *, planner: Any, initial: int, seed: int | None = None) -> None:
        if initial < 0:
            raise PlannerError(f"initial must be >= 0, got {initial}")
        super().__init__(vocs)
        self.vocs = vocs
        self.planner = planner
        self.initial = initial
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

    def suggest(self, num_points: int | None = None) -> list[dict[str, Any]]:
        """Design points while the design lasts, then the wrapped generator's."""
        n = 1 if num_points is None else num_points
        if n < 1:
            raise PlannerError(f"num_points must be a positive integer, got {num_points!r}")
        from_design = max(0, min(n, self.initial - self.design.n_known))
        points = [self._tag(p, "design") for p in self.design.suggest(from_design)] if from_design else []
        if n > from_design:
            points += [self._tag(dict(p), "planner") for p in self.planner.suggest(n - from_design)]
        return points

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

    def finalize(self) -> None:
        """Finalize the wrapped generator (harmless to call twice if it is)."""
        finalize = getattr(self.planner, "finalize", None)
        if callable(finalize):
            finalize()
