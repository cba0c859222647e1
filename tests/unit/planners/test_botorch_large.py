"""Large data (:mod:`planners._large`): above ``max_model_points`` the GP and the acquisition's baseline see a
subset, nearest the incumbents plus a seeded sample, and below it nothing changes. Speed and memory are measured
in ``benchmarks/proposal_scaling.py``, not here."""

from __future__ import annotations

import pytest
import torch
from gest_api.vocs import VOCS

import planners._choice as choice
from closedloop.errors import PlannerError
from planners import BoTorchPlanner
from planners._acquisition import infer_reference_point
from planners._large import incumbents, model_subset, violations

FAST = {"num_restarts": 2, "raw_samples": 32, "maxiter": 30, "n_initial": 5}


def grid(n: int) -> torch.Tensor:
    """``n`` seeded random points of the unit square, ``n x 2``."""
    return torch.rand(n, 2, generator=torch.Generator().manual_seed(n), dtype=torch.float64)


def test_no_subset_up_to_max_points():
    X = grid(20)
    assert model_subset(X, X[:, :1], torch.zeros(20), max_points=20, seed=0) is None


def test_the_subset_is_half_nearest_the_best_then_a_seeded_sample():
    X = grid(200)
    Y = -(X - 0.7).pow(2).sum(-1, keepdim=True)
    keep = model_subset(X, Y, torch.zeros(200), max_points=40, seed=3)
    assert keep is not None and len(keep) == 40 and keep.unique().numel() == 40
    assert torch.equal(keep, keep.sort().values)  # the order ingested
    best = int(Y.argmax())
    distance = (X - X[best]).norm(dim=-1)
    nearest = set(distance.argsort()[:20].tolist())
    assert nearest <= set(keep.tolist())
    others = set(keep.tolist()) - nearest
    assert max(distance[list(others)]) > 2 * max(distance[list(nearest)])  # the sample reaches beyond them
    assert torch.equal(keep, model_subset(X, Y, torch.zeros(200), max_points=40, seed=3))
    assert not torch.equal(keep, model_subset(X, Y, torch.zeros(200), max_points=40, seed=4))


def test_the_incumbent_is_the_best_feasible_or_the_least_violating():
    Y = torch.tensor([[5.0], [4.0], [3.0], [9.0], [1.0], [2.0]], dtype=torch.float64)
    feasible_some = torch.tensor([0.0, 0.0, 0.0, 2.0, 0.0, 0.5], dtype=torch.float64)
    assert incumbents(Y, feasible_some).tolist() == [0]  # 9.0 is infeasible
    none_feasible = torch.tensor([3.0, 1.0, 2.0, 5.0, 1.0, 4.0], dtype=torch.float64)
    assert incumbents(Y, none_feasible).tolist() == [1]  # least violating, then the best of those


def test_several_objectives_have_the_front_as_incumbents():
    Y = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.4, 0.4], [0.6, 0.6], [0.1, 0.1]], dtype=torch.float64)
    assert incumbents(Y, torch.zeros(5)).tolist() == [0, 1, 3]


def test_with_several_objectives_the_subset_keeps_the_front_and_the_nadir():
    X = grid(300)
    Y = -torch.stack([(X - torch.tensor([0.3, 0.5])).norm(dim=-1), (X - torch.tensor([0.6, 0.5])).norm(dim=-1)], -1)
    keep = model_subset(X, Y, torch.zeros(300), max_points=40, seed=0)
    assert keep is not None and len(keep) == 40
    front = set(incumbents(Y, torch.zeros(300)).tolist())
    assert 3 < len(front) < 20
    assert front <= set(keep.tolist())
    assert set(Y.argmin(dim=0).tolist()) <= set(keep.tolist())
    assert torch.equal(infer_reference_point(Y[keep]), infer_reference_point(Y))


def test_violations_sum_each_constraints_excess():
    vocs = VOCS(
        variables={"x": [0.0, 1.0]},
        objectives={"f": "MAXIMIZE"},
        constraints={"a": ["LESS_THAN", 1.0], "b": ["GREATER_THAN", 0.0]},
    )
    C = torch.tensor([[0.5, 1.0], [3.0, 1.0], [2.0, -0.5]], dtype=torch.float64)
    assert violations(vocs, C).tolist() == [0.0, 2.0, 1.5]


def observed(vocs_outcomes, n: int) -> list[dict]:
    """``n`` seeded observations of a 2-D problem with outcomes from ``vocs_outcomes(x1, x2)``."""
    return [dict({"x1": a, "x2": b}, **vocs_outcomes(a, b)) for a, b in grid(n).tolist()]


def spy_models(monkeypatch) -> list[tuple[int, int | None]]:
    """Record, for each ``_optimize``, the points the model is conditioned on and qLogNEI's baseline size."""
    seen: list[tuple[int, int | None]] = []
    optimize = BoTorchPlanner._optimize

    def spy(self, model, X, *args, **kwargs):
        seen.append((model.train_inputs[0].shape[-2], len(X)))  # batched outputs: k x n x d
        return optimize(self, model, X, *args, **kwargs)

    monkeypatch.setattr(BoTorchPlanner, "_optimize", spy)
    return seen


SINGLE = VOCS(variables={"x1": [0.0, 1.0], "x2": [0.0, 1.0]}, objectives={"f": "MAXIMIZE"})


def peak(a: float, b: float) -> dict:
    return {"f": -((a - 0.3) ** 2) - (b - 0.6) ** 2}


def test_up_to_max_model_points_the_points_are_as_without_it():
    data = observed(peak, 24)
    points = []
    for limit in (24, 10**9):
        planner = BoTorchPlanner(SINGLE, seed=5, max_model_points=limit, **FAST)
        planner.ingest(data)
        points.append(planner.suggest(2))
    assert points[0] == points[1]


def test_above_max_model_points_the_gp_and_baseline_see_the_subset(monkeypatch):
    seen = spy_models(monkeypatch)
    baselines = []

    class Spy(choice.qLogNoisyExpectedImprovement):
        def __init__(self, model, X_baseline, **kwargs):
            baselines.append(X_baseline)
            super().__init__(model, X_baseline, **kwargs)

    monkeypatch.setattr(choice, "qLogNoisyExpectedImprovement", Spy)
    planner = BoTorchPlanner(SINGLE, seed=5, max_model_points=12, **FAST)
    planner.ingest(observed(peak, 25))
    (point,) = planner.suggest(1)
    assert 0.0 <= point["x1"] <= 1.0
    assert seen == [(12, 12)]
    X, Y, _ = planner.train_tensors()
    keep = model_subset(X, Y, torch.zeros(25), 12, planner.seed + 25)
    assert keep is not None and torch.equal(baselines[0], X[keep])
    prediction = planner.predict([{"x1": 0.3, "x2": 0.6}])  # the model of the last proposal
    assert prediction[0]["f"]["mean"] == pytest.approx(0.0, abs=0.05)


def test_constrained_and_two_objective_planners_use_the_subset_too(monkeypatch):
    seen = spy_models(monkeypatch)
    constrained = VOCS(
        variables={"x1": [0.0, 1.0], "x2": [0.0, 1.0]},
        objectives={"f": "MAXIMIZE"},
        constraints={"c": ["LESS_THAN", 0.1]},
    )
    planner = BoTorchPlanner(constrained, seed=1, max_model_points=12, **FAST)
    planner.ingest(observed(lambda a, b: {"f": a + b, "c": (a - 0.2) ** 2 + (b - 0.2) ** 2}, 25))
    planner.suggest(1)
    two = VOCS(variables={"x1": [0.0, 1.0], "x2": [0.0, 1.0]}, objectives={"f1": "MINIMIZE", "f2": "MAXIMIZE"})
    planner = BoTorchPlanner(two, seed=1, max_model_points=12, **FAST)
    planner.ingest(observed(lambda a, b: {"f1": a**2 + b, "f2": -((a - 1.0) ** 2) - b}, 25))
    planner.suggest(2)
    assert seen == [(12, 12), (12, 12)]


def test_max_model_points_is_validated():
    with pytest.raises(PlannerError, match="max_model_points"):
        BoTorchPlanner(SINGLE, seed=0, max_model_points=3)
