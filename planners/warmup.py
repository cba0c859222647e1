"""A warm start for generators that cannot propose without data.

Some gest-api generators (Xopt's Bayesian ones, for example) raise on a cold start: they expect the caller to
evaluate a few random points first. :class:`WarmStart` wraps any generator and proposes the first ``initial``
points from a seeded Sobol design itself, feeding every result to the wrapped generator, which takes over once
the design is done. :class:`ColdStartGuard` wraps a generator that is not ours, so that one that cannot start cold
fails with a message saying to set ``planner.initial_design``.
"""

from __future__ import annotations

from typing import Any

from gest_api import Generator
from gest_api.vocs import VOCS

from closedloop.errors import PlannerError
from planners._base import near_any
from planners.sobol import SobolPlanner

ID_KEY = "_id"
INITIAL_DESIGN_HINT = "set planner.initial_design: N in the session file to have closedloop propose the first N points"


class ColdStartGuard:
    """A generator, unchanged, except that an error from its first ``suggest`` before any data says what to do.

    Every attribute but ``suggest`` and ``ingest`` is the wrapped generator's (``isinstance`` checks against the
    protocols in :mod:`planners._protocols` see its methods).

    Args:
        planner: the generator.
        name: its name or import path, for the message.
    """

    def __init__(self, planner: Any, *, name: str) -> None:
        self.planner = planner
        self.name = name
        self._has_data = False

    def suggest(self, num_points: int | None = None) -> list[dict[str, Any]]:
        """The wrapped generator's points.

        Raises:
            PlannerError: it failed before it was given any data (the hint says to set ``planner.initial_design``).
        """
        if self._has_data:
            return self.planner.suggest(num_points)
        try:
            return self.planner.suggest(num_points)
        except PlannerError:
            raise
        except Exception as exc:
            reason = (str(exc).splitlines() or [""])[0]
            raise PlannerError(
                f"planner '{self.name}' cannot propose without data: {type(exc).__name__}: {reason}",
                hint=INITIAL_DESIGN_HINT,
            ) from exc

    def ingest(self, results: list[dict[str, Any]]) -> None:
        """Pass the results on."""
        self.planner.ingest(results)
        self._has_data = self._has_data or bool(results)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.planner, name)


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

    Failed points (see :mod:`planners`) are passed on to the wrapped generator like any other result; a point it
    proposes within ``SAME_POINT`` of a failed one is replaced by the design's next Sobol point.
    """

    returns_id = True

    def __init__(self, vocs: VOCS, *, planner: Any, initial: int, seed: int | None = None) -> None:
        if initial < 0:
            raise PlannerError(f"planner.initial_design must be >= 0, got {initial}")
        super().__init__(vocs)
        self.vocs = vocs
        # the design gives the wrapped generator its data before it is asked: no guard needed
        self.planner = planner.planner if isinstance(planner, ColdStartGuard) else planner
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
