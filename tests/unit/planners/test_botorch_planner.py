"""BoTorchPlanner specifics: the Sobol start, which acquisition function, pending points, failed points."""

from __future__ import annotations

import logging
import math

import pytest
import torch

import planners._choice as choice
from planners import BoTorchPlanner, SobolPlanner
from planners.gp.fitting import GPFitting


@pytest.fixture
def spy(monkeypatch):
    """Record which acquisition function each proposal used, and with how many pending points."""
    calls: list[tuple[str, int]] = []

    class LogEI(choice.LogExpectedImprovement):
        def __init__(self, *args, **kwargs):
            calls.append(("LogEI", 0))
            super().__init__(*args, **kwargs)

    class QLogNEI(choice.qLogNoisyExpectedImprovement):
        def __init__(self, *args, X_pending=None, **kwargs):
            calls.append(("qLogNEI", 0 if X_pending is None else len(X_pending)))
            super().__init__(*args, X_pending=X_pending, **kwargs)

    monkeypatch.setattr(choice, "LogExpectedImprovement", LogEI)
    monkeypatch.setattr(choice, "qLogNoisyExpectedImprovement", QLogNEI)
    return calls


def test_cold_start_is_the_sobol_design(vocs, spy):
    bo = BoTorchPlanner(vocs, seed=3, n_initial=5)
    sobol = SobolPlanner(vocs, seed=3)
    assert bo.suggest(2) + bo.suggest(3) == sobol.suggest(2) + sobol.suggest(3)
    assert spy == []


def test_design_fills_up_then_model_takes_over(vocs, spy, evaluate):
    planner = BoTorchPlanner(vocs, seed=3, n_initial=5)
    planner.ingest(evaluate(planner.suggest(4)))
    planner.suggest(3)  # 1 design point, then 2 from the model with that one pending
    assert spy == [("qLogNEI", 1)]


def test_the_model_waits_for_the_design_results_all_but_one(vocs, spy, evaluate):
    """Several instruments: the design proposed, two results in, three runs in flight. The next proposals are
    Sobol points until four results are in; then the model takes over with the fifth design point in flight."""
    planner = BoTorchPlanner(vocs, seed=3, n_initial=5)
    design = planner.suggest(5)
    planner.ingest(evaluate(design[:2]))
    planner.suggest(1)
    planner.ingest(evaluate(design[2:3]))
    planner.suggest(1)
    assert spy == [] and planner.n_observed == 3
    planner.ingest(evaluate(design[3:4]))
    planner.suggest(1)
    assert spy == [("qLogNEI", 3)]  # the fifth design point and the two extra Sobol points pending


def test_one_point_nothing_pending_uses_log_ei(vocs, spy, evaluate):
    planner = BoTorchPlanner(vocs, seed=3, n_initial=5, acquisition="logei")
    planner.ingest(evaluate(planner.suggest(5)))
    planner.suggest(1)
    assert spy == [("LogEI", 0)]


def test_one_point_with_pending_uses_q_log_nei(vocs, spy, evaluate):
    planner = BoTorchPlanner(vocs, seed=3, n_initial=5, acquisition="logei")
    planner.ingest(evaluate(planner.suggest(5)))
    (first,) = planner.suggest(1)
    (second,) = planner.suggest(1)
    assert spy == [("LogEI", 0), ("qLogNEI", 1)]
    assert (first["x1"], first["x2"]) != pytest.approx((second["x1"], second["x2"]), abs=1e-3)


def test_batch_uses_q_log_nei(vocs, spy, evaluate):
    planner = BoTorchPlanner(vocs, seed=3, n_initial=5)
    planner.ingest(evaluate(planner.suggest(5)))
    points = planner.suggest(3)
    assert spy == [("qLogNEI", 0)]
    assert len({(round(p["x1"], 3), round(p["x2"], 3)) for p in points}) == 3


def test_failed_points_are_never_fit(vocs, monkeypatch, evaluate):
    fitted = []
    original = GPFitting.fit

    def fit(self, X, Y, C, start=None):
        fitted.append(Y.clone())
        return original(self, X, Y, C, start)

    monkeypatch.setattr(GPFitting, "fit", fit)
    planner = BoTorchPlanner(vocs, seed=3, n_initial=5)
    results = evaluate(planner.suggest(6))
    results[0]["f"] = math.nan
    results[1]["f"] = None
    planner.ingest(results)
    planner.suggest(1)
    assert len(fitted) == 1
    assert fitted[0].shape == (4, 1)
    assert torch.isfinite(fitted[0]).all()


def test_too_few_ok_points_keeps_to_sobol(vocs, spy, evaluate):
    planner = BoTorchPlanner(vocs, seed=3, n_initial=2)
    results = evaluate(planner.suggest(3))
    for result in results[1:]:
        result["f"] = math.nan
    planner.ingest(results)
    assert len(planner.suggest(1)) == 1
    assert spy == []


def test_global_torch_rng_untouched(vocs, evaluate):
    planner = BoTorchPlanner(vocs, seed=3, n_initial=5)
    planner.ingest(evaluate(planner.suggest(5)))
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    planner.suggest(1)
    assert torch.equal(torch.rand(3), expected)


def test_foreign_point_outside_bounds_warns_nothing(vocs, caplog, evaluate):
    planner = BoTorchPlanner(vocs, seed=3, n_initial=3)
    foreign = [{"x1": x1, "x2": x2} for x1, x2 in [(-1.6, 1.0), (0.2, 2.2), (1.2, 5.3), (0.5, 0.5)]]
    planner.ingest(evaluate(foreign))
    with caplog.at_level(logging.INFO, logger="planners.bayes"):
        (point,) = planner.suggest(1)  # filterwarnings=error would fail on an escaped warning
    assert -1.5 <= point["x1"] <= 1.5 and 0.0 <= point["x2"] <= 5.0


def test_moves_towards_the_peak(vocs, evaluate):
    planner = BoTorchPlanner(vocs, seed=0, n_initial=5)
    for _ in range(12):
        planner.ingest(evaluate(planner.suggest(1)))
    best = planner.best
    assert best["f"] > 10.0 - 0.05


def test_each_point_says_why_it_was_proposed(vocs, evaluate):
    """What the operator is shown as the proposal's why (:class:`planners.Explains`)."""
    planner = BoTorchPlanner(vocs, seed=3, n_initial=5)
    design = planner.suggest(5)
    assert [planner.why(p["_id"]) for p in design] == ["initial design"] * 5
    planner.ingest(evaluate(design[:2]))
    more = planner.suggest(2)  # two results of five: the model waits, Sobol points keep the instruments busy
    assert [planner.why(p["_id"]) for p in more] == ["design: the model waits for the design's results"] * 2
    planner.ingest(evaluate(design[2:] + more))
    model = planner.suggest(2)
    assert [planner.why(p["_id"]) for p in model] == ["model (qLogNEI)"] * 2
    assert planner.why(10_000) is None  # an id it never gave out
