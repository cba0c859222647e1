"""BoTorchPlanner with two objectives: qLogNEHVI, the reference point, and the observed Pareto front."""

from __future__ import annotations

import pytest
import torch
from gest_api.vocs import VOCS

import planners._multiobjective as multiobjective
from planners import BoTorchPlanner

MO = VOCS(variables={"x1": [0.0, 1.0], "x2": [0.0, 1.0]}, objectives={"f1": "MINIMIZE", "f2": "MAXIMIZE"})
FAST = {"num_restarts": 2, "raw_samples": 32, "n_initial": 6}


def evaluate(points: list[dict]) -> list[dict]:
    """Two conflicting objectives: f1 wants x1 = 0, f2 wants x1 = 1; x2 hurts both."""
    return [dict(p, f1=p["x1"] ** 2 + p["x2"], f2=-((p["x1"] - 1.0) ** 2) - p["x2"]) for p in points]


@pytest.fixture
def ref_points(monkeypatch) -> list[torch.Tensor]:
    """Record the reference point each qLogNEHVI is built with."""
    seen: list[torch.Tensor] = []

    class Spy(multiobjective.qLogNoisyExpectedHypervolumeImprovement):
        def __init__(self, *args, ref_point, **kwargs):
            seen.append(torch.as_tensor(ref_point).clone())
            super().__init__(*args, ref_point=ref_point, **kwargs)

    monkeypatch.setattr(multiobjective, "qLogNoisyExpectedHypervolumeImprovement", Spy)
    return seen


def brute_force_front(points: list[dict]) -> list[dict]:
    """Points no other point dominates (f1 smaller-is-better, f2 larger-is-better)."""

    def dominates(a: dict, b: dict) -> bool:
        return a["f1"] <= b["f1"] and a["f2"] >= b["f2"] and (a["f1"] < b["f1"] or a["f2"] > b["f2"])

    return [p for p in points if not any(dominates(o, p) for o in points)]


def test_cold_and_warm_suggest(ref_points):
    planner = BoTorchPlanner(MO, seed=1, **FAST)
    cold = planner.suggest(6)
    assert ref_points == []  # the Sobol design
    planner.ingest(evaluate(cold))
    for q in (1, 2):
        points = planner.suggest(q)
        assert len(points) == q
        assert all(0.0 <= p["x1"] <= 1.0 and 0.0 <= p["x2"] <= 1.0 for p in points)
        planner.ingest(evaluate(points))
    assert len(ref_points) == 2


def test_pareto_front_is_the_non_dominated_observed_points():
    planner = BoTorchPlanner(MO, seed=2, **FAST)
    results = evaluate(planner.suggest(10))
    results[3]["f1"] = None  # a failed point is never on the front
    planner.ingest(results)
    ok = [r for r in results if r["f1"] is not None]
    expected = brute_force_front(ok)
    front = planner.pareto_front()
    assert [p["_id"] for p in front] == [p["_id"] for p in expected]
    assert all({"x1", "x2", "f1", "f2"} <= set(p) for p in front)
    assert 1 <= len(front) < len(ok)


def test_reference_point_from_options_is_used(ref_points):
    planner = BoTorchPlanner(MO, seed=1, reference_point={"f1": 3.0, "f2": -4.0}, **FAST)
    planner.ingest(evaluate(planner.suggest(6)))
    planner.suggest(1)
    assert ref_points[0].tolist() == [-3.0, -4.0]  # maximization space: f1 negated


def test_reference_point_inferred_from_the_nadir(ref_points):
    planner = BoTorchPlanner(MO, seed=1, **FAST)
    results = evaluate(planner.suggest(6))
    planner.ingest(results)
    planner.suggest(1)
    y1 = torch.tensor([-r["f1"] for r in results], dtype=torch.float64)
    y2 = torch.tensor([r["f2"] for r in results], dtype=torch.float64)
    expected = [float(y.min() - 0.1 * (y.max() - y.min())) for y in (y1, y2)]
    assert ref_points[0].tolist() == pytest.approx(expected)


@pytest.mark.parametrize(
    "reference_point", [{"f1": 1.0}, {"f1": 1.0, "f2": 1.0, "f3": 0.0}, {"f1": 1.0, "f2": float("nan")}]
)
def test_bad_reference_point_is_refused(reference_point):
    with pytest.raises(ValueError, match="reference_point"):
        BoTorchPlanner(MO, seed=1, reference_point=reference_point)
