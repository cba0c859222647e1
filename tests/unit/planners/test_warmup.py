"""WarmStart: a design first, then the wrapped generator, with ids mapped both ways."""

from __future__ import annotations

from typing import Any

import pytest
from gest_api.vocs import VOCS

from planners.warmup import WarmStart

VOCS_2D = VOCS(variables={"x": [0.0, 1.0], "y": [-1.0, 1.0]}, objectives={"f": "MINIMIZE"})


class Recorder:
    """A tiny generator that cannot start cold and records what it is told."""

    def __init__(self) -> None:
        self.seen: list[dict[str, Any]] = []
        self.made = 0

    def suggest(self, num_points: int) -> list[dict[str, Any]]:
        if not self.seen:
            raise RuntimeError("no data")
        points = [{"x": 0.5, "y": 0.0, "_id": 100 + self.made + i} for i in range(num_points)]
        self.made += num_points
        return points

    def ingest(self, results: list[dict[str, Any]]) -> None:
        self.seen.extend(results)


def evaluate(points: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{**p, "f": (p["x"] - 0.3) ** 2 + p["y"] ** 2} for p in points]


def test_design_first_then_the_wrapped_generator_with_ids_mapped() -> None:
    inner = Recorder()
    warm = WarmStart(VOCS_2D, planner=inner, initial=3, seed=1)
    first = warm.suggest(2)
    assert [p["_id"] for p in first] == [0, 1]
    warm.ingest(evaluate(first))
    assert all("_id" not in r for r in inner.seen)  # design points are foreign to the wrapped generator
    mixed = warm.suggest(2)  # one design point, then one of the wrapped generator's
    assert [p["_id"] for p in mixed] == [2, 3]
    assert mixed[1] == {"x": 0.5, "y": 0.0, "_id": 3}
    inner.why = lambda point_id: f"its point {point_id}"  # type: ignore[attr-defined]
    assert [warm.why(p["_id"]) for p in mixed] == ["initial design", "its point 100"]  # asked with its own id
    warm.ingest(evaluate(mixed))
    assert [r.get("_id") for r in inner.seen] == [None, None, None, 100]
    assert all(0.0 <= p["x"] <= 1.0 and -1.0 <= p["y"] <= 1.0 for p in first + mixed)


def test_a_rebuilt_warm_start_continues_its_design() -> None:
    original = WarmStart(VOCS_2D, planner=Recorder(), initial=4, seed=3)
    points = original.suggest(2)
    results = evaluate(points)
    original.ingest(results)
    rebuilt = WarmStart(VOCS_2D, planner=Recorder(), initial=4, seed=3)
    rebuilt.ingest([{k: v for k, v in r.items() if k != "_id"} for r in results])
    assert [{k: p[k] for k in "xy"} for p in rebuilt.suggest(2)] == [
        {k: p[k] for k in "xy"} for p in original.suggest(2)
    ]


def test_bad_requests_are_refused() -> None:
    warm = WarmStart(VOCS_2D, planner=Recorder(), initial=1, seed=0)
    with pytest.raises(ValueError):
        warm.suggest(0)
    with pytest.raises(ValueError):
        WarmStart(VOCS_2D, planner=Recorder(), initial=-1)
