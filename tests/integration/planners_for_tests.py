"""Small gest-api generators used by the integration tests (a planner that misbehaves in a chosen way)."""

from __future__ import annotations

import math
import random
from typing import Any

from gest_api import Generator


class BadOnce(Generator):
    """Gives a point with a NaN, then one missing a variable, then a string for a number, then good random points."""

    returns_id = True

    def __init__(self, vocs: Any, seed: int | None = None, bad: int = 3) -> None:
        super().__init__(vocs)
        self.vocs = vocs
        self.rng = random.Random(seed)
        self.next_id = 0
        self.bad = [
            lambda p: p.update({next(iter(self.vocs.variables)): math.nan}),
            lambda p: p.pop(next(iter(self.vocs.variables))),
            lambda p: p.update({next(iter(self.vocs.variables)): "left"}),
        ][:bad]
        self.ingested: list[dict[str, Any]] = []

    def _validate_vocs(self, vocs: Any) -> None:
        return None

    def suggest(self, num_points: int | None) -> list[dict[str, Any]]:
        points = []
        for _ in range(num_points or 1):
            point: dict[str, Any] = {"_id": self.next_id}
            for name, variable in self.vocs.variables.items():
                low, high = variable.domain
                point[name] = self.rng.uniform(low, high)
            if self.bad:
                self.bad.pop(0)(point)
            self.next_id += 1
            points.append(point)
        return points

    def ingest(self, results: list[dict[str, Any]]) -> None:
        self.ingested.extend(results)


class Repeats(Generator):
    """Walks a fixed list of points in order, the third a repeat of the first: a generator that cannot be trusted
    not to give a point twice (each point has an integer ``_id``; what it is told is kept in ``ingested``)."""

    returns_id = True

    def __init__(self, vocs: Any, seed: int | None = None) -> None:
        super().__init__(vocs)
        self.vocs = vocs
        self.next_id = 0
        self.points = [(0.1, 0.2), (0.3, -0.4), (0.1, 0.2), (-0.5, 0.6), (0.7, -0.8), (-0.9, 1.0), (1.1, -1.2)]
        self.ingested: list[dict[str, Any]] = []

    def _validate_vocs(self, vocs: Any) -> None:
        return None

    def suggest(self, num_points: int | None) -> list[dict[str, Any]]:
        points = []
        for _ in range(num_points or 1):
            values = self.points[self.next_id % len(self.points)]
            point: dict[str, Any] = dict(zip(self.vocs.variables, values, strict=False))
            point["_id"] = self.next_id
            self.next_id += 1
            points.append(point)
        return points

    def ingest(self, results: list[dict[str, Any]]) -> None:
        self.ingested.extend(results)
