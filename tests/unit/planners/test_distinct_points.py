"""Points a planner must not give: two equal points in one batch, or a point that failed (rejected) again."""

from __future__ import annotations

import math

import pytest
from gest_api.vocs import VOCS

from planners import BoTorchPlanner, TurboPlanner
from planners._base import SAME_POINT

VOCS_2D = VOCS(variables={"x1": [-1.5, 1.5], "x2": [0.0, 5.0]}, objectives={"f": "MAXIMIZE"})
FAST = {"num_restarts": 2, "raw_samples": 32, "n_initial": 6, "maxiter": 50}
SPAN = {"x1": 3.0, "x2": 5.0}


def peak(point: dict) -> float:
    """Largest at (1.2, 4.5), in a corner far from the start."""
    return -((point["x1"] - 1.2) ** 2) - 0.5 * (point["x2"] - 4.5) ** 2


def evaluate(points: list[dict]) -> list[dict]:
    return [dict(p, f=peak(p)) for p in points]


def same(a: dict, b: dict) -> bool:
    return all(abs(a[v] - b[v]) <= SAME_POINT * SPAN[v] for v in SPAN)


def start(**options) -> BoTorchPlanner:
    planner = BoTorchPlanner(VOCS_2D, seed=3, **FAST, **options)
    planner.ingest(evaluate(planner.suggest(6)))
    return planner


@pytest.mark.parametrize("max_travel", [None, {"x1": 0.1, "x2": 0.2}])
def test_the_points_of_a_batch_are_distinct_with_and_without_max_travel(max_travel) -> None:
    """With max_travel the acquisition's best lies outside the box: both points of a batch used to end on the
    box's corner nearest the peak, the same point twice."""
    planner = start(max_travel=max_travel)
    planner.set_position({"x1": -1.0, "x2": 1.0})
    for _ in range(3):
        batch = planner.suggest(2)
        assert not same(batch[0], batch[1]), f"a batch of two equal points: {batch}"
        if max_travel:
            assert all(abs(p[v] - q) <= max_travel[v] + 1e-12 for p in batch for v, q in (("x1", -1.0), ("x2", 1.0)))
        planner.ingest(evaluate(batch))
        planner.set_position({"x1": -1.0, "x2": 1.0})


def test_a_batch_is_distinct_from_the_points_in_flight() -> None:
    planner = start(max_travel={"x1": 0.1, "x2": 0.2})
    planner.set_position({"x1": -1.0, "x2": 1.0})
    first = planner.suggest(2)
    second = planner.suggest(2)  # the first two still pending
    for p in second:
        assert not any(same(p, q) for q in first)


def rejected_then_suggested(rebuild: bool) -> tuple[dict, list[dict]]:
    planner = start()
    (best,) = planner.suggest(1)
    failed = {**best, "f": math.nan}  # how the agent tells a planner about a rejected point
    if rebuild:  # on resume: a new planner, every result re-ingested without _id
        done = [{k: v for k, v in r.items() if k != "_id"} for r in planner.results]
        planner = BoTorchPlanner(VOCS_2D, seed=3, **FAST)
        planner.ingest(done + [{k: v for k, v in failed.items() if k != "_id"}])
    else:
        planner.ingest([failed])
    return best, planner.suggest(1) + planner.suggest(2)


@pytest.mark.parametrize("rebuild", [False, True], ids=["live", "rebuilt"])
def test_a_rejected_point_is_not_proposed_again(rebuild: bool) -> None:
    """The acquisition's best point, rejected: nothing changed in the data, so a planner that forgot it (or,
    rebuilt, never knew it) proposes it again."""
    rejected, later = rejected_then_suggested(rebuild)
    for point in later:
        assert not same(point, rejected), f"proposed the rejected point {rejected} again: {point}"


def test_turbo_keeps_away_from_a_failed_point() -> None:
    vocs = VOCS(variables={"x1": [-1.5, 1.5], "x2": [0.0, 5.0]}, objectives={"f": "MAXIMIZE"})
    planner = TurboPlanner(vocs, seed=1, n_initial=5)
    planner.ingest(evaluate(planner.suggest(5)))
    (point,) = planner.suggest(1)
    planner.ingest([{**point, "f": None}])
    for later in planner.suggest(3):
        assert not same(later, point)
