"""Discrete (numeric set) and categorical (string set) variables: allowed values only, the right category."""

from __future__ import annotations

import numpy as np
import pytest
from gest_api.vocs import VOCS

from planners import BoTorchPlanner, SobolPlanner

MIXED = VOCS(
    variables={"x": [0.0, 1.0], "n": {1, 2, 5}, "mode": {"slow", "fast", "auto"}},
    objectives={"f": "MAXIMIZE"},
    constants={"energy": 9.5},
)
FAST = {"num_restarts": 2, "raw_samples": 32, "n_initial": 6, "maxiter": 30}
BONUS = {"slow": 0.0, "fast": 2.0, "auto": 0.3}


def evaluate(points: list[dict]) -> list[dict]:
    """'fast' is clearly the best category; the peak in x is at 0.3, and n = 2 is best."""
    return [dict(p, f=BONUS[p["mode"]] - (p["x"] - 0.3) ** 2 - 0.1 * (p["n"] - 2) ** 2) for p in points]


def assert_allowed(points: list[dict]) -> None:
    for p in points:
        assert p["n"] in {1, 2, 5} and type(p["n"]) is int
        assert p["mode"] in {"slow", "fast", "auto"}
        assert 0.0 <= p["x"] <= 1.0
        assert p["energy"] == 9.5


@pytest.mark.parametrize("planner_class", [BoTorchPlanner, SobolPlanner])
def test_proposals_carry_only_allowed_values(planner_class):
    options = FAST if planner_class is BoTorchPlanner else {}
    planner = planner_class(MIXED, seed=4, **options)
    design = planner.suggest(6)
    assert_allowed(design)
    assert {p["mode"] for p in design} == {"slow", "fast", "auto"}  # the design covers the categories
    planner.ingest(evaluate(design))
    points = planner.suggest(2)
    assert_allowed(points)
    assert len({(p["x"], p["n"], p["mode"]) for p in points}) == 2


def test_batch_has_no_duplicates_in_a_discrete_space():
    vocs = VOCS(variables={"n": {1, 2, 3}, "mode": {"a", "b"}}, objectives={"f": "MAXIMIZE"})
    planner = BoTorchPlanner(vocs, seed=0, **FAST | {"n_initial": 2})
    planner.ingest([dict(p, f=p["n"] + (p["mode"] == "a")) for p in planner.suggest(2)])
    points = planner.pending + planner.suggest(3)
    keys = [(p["n"], p["mode"]) for p in points]
    assert len(set(keys)) == len(keys)


def test_the_best_category_is_proposed_mostly():
    vocs = VOCS(variables={"x": [0.0, 1.0], "mode": {"slow", "fast", "auto"}}, objectives={"f": "MAXIMIZE"})
    planner = BoTorchPlanner(vocs, seed=0, **FAST)
    planner.ingest(evaluate([dict(p, n=2) for p in planner.suggest(6)]))
    modes = []
    for _ in range(4):
        points = planner.suggest(1)
        planner.ingest(evaluate([dict(p, n=2) for p in points]))
        modes += [p["mode"] for p in points]
    assert modes.count("fast") >= 3
    assert planner.best["mode"] == "fast"


def test_unit_round_trip_and_snapping():
    planner = SobolPlanner(MIXED, seed=0)
    X = np.array([[0.25, 2.0, 1.0], [1.0, 5.0, 0.0]])  # mode as index (sorted)
    assert np.array_equal(planner.from_unit(planner.to_unit(X)), X)
    snapped = planner.from_unit(np.array([[0.5, 0.2, 0.99]]))
    assert snapped.tolist() == [[0.5, 2.0, 2.0]]  # n: 1 + 0.2 * 4 = 1.8 -> 2; mode: last of three bins


def test_foreign_category_must_be_allowed():
    planner = SobolPlanner(MIXED, seed=0)
    with pytest.raises(ValueError, match="mode"):
        planner.ingest([{"x": 0.1, "n": 2, "mode": "turbo", "f": 1.0}])
    planner.ingest([{"x": 0.1, "n": 3, "mode": "fast", "f": 1.0}])  # a number between allowed ones is data
    assert planner.best["n"] == 3.0
