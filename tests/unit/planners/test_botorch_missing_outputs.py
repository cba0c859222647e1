"""BoTorchPlanner given points whose objective was measured but a constraint output is missing (NaN): a reducer
could not compute it (a peak whose half height is beyond the scan's end). The objective's GP uses those points,
the constraint's GP skips them, and they are neither failed nor feasible."""

from __future__ import annotations

import math

import numpy as np
import torch
from botorch.models import ModelListGP
from gest_api.vocs import VOCS

from planners import BoTorchPlanner

#: Maximize x1 + x2 inside a disc around (0.2, 0.2).
CONSTRAINED = VOCS(
    variables={"x1": [0.0, 1.0], "x2": [0.0, 1.0]},
    objectives={"f": "MAXIMIZE"},
    constraints={"c": ["LESS_THAN", 0.1]},
)
FAST = {"num_restarts": 2, "raw_samples": 32, "n_initial": 6}


def evaluate(points: list[dict], missing_above: float = 0.6) -> list[dict]:
    """f everywhere; c missing (NaN) where x1 > ``missing_above``, as a reducer that cannot compute it leaves it."""
    results = []
    for p in points:
        c = (p["x1"] - 0.2) ** 2 + (p["x2"] - 0.2) ** 2
        results.append(dict(p, f=p["x1"] + p["x2"], c=math.nan if p["x1"] > missing_above else c))
    return results


def rows(model: torch.nn.Module) -> int:
    return len(model.train_inputs[0])  # type: ignore[attr-defined, index]


def test_the_objective_model_uses_a_point_whose_constraint_is_missing() -> None:
    planner = BoTorchPlanner(CONSTRAINED, seed=0, **FAST)
    results = evaluate(planner.suggest(6))
    gaps = sum(math.isnan(r["c"]) for r in results)
    assert 0 < gaps < 5  # the design has points on both sides of x1 = 0.6
    planner.ingest(results)
    assert (planner.n_observed, planner.n_failed) == (6, 0)
    assert len(planner.failed_unit()) == 0  # not avoided for good as a failed point is
    X, Y, C = planner.train_outcomes()
    assert Y.shape == (6, 1) and int(np.isnan(C).sum()) == gaps
    (point,) = planner.suggest(1)
    assert 0.0 <= point["x1"] <= 1.0
    assert planner.why(point["_id"]).startswith("model")
    model = planner._last_model[1]
    assert isinstance(model, ModelListGP)
    objective_gp, constraint_gp = model.models
    assert rows(objective_gp) == 6  # every point, the ones with c missing included
    assert rows(constraint_gp) == 6 - gaps  # only where c was measured


def test_a_point_with_its_constraint_missing_is_not_the_best() -> None:
    planner = BoTorchPlanner(CONSTRAINED, seed=0, **FAST)
    planner.ingest([{"x1": 0.2, "x2": 0.2, "f": 0.4, "c": 0.0}, {"x1": 0.9, "x2": 0.9, "f": 1.8, "c": math.nan}])
    best = planner.best
    assert best is not None and best["f"] == 0.4
    assert planner.results[1]["c"] is None and planner.results[1]["f"] == 1.8


def test_a_missing_objective_still_fails_the_point() -> None:
    planner = BoTorchPlanner(CONSTRAINED, seed=0, **FAST)
    planner.ingest([{"x1": 0.2, "x2": 0.2, "f": math.nan, "c": 0.0}])
    assert (planner.n_observed, planner.n_failed) == (0, 1)


def test_a_constraint_measured_at_too_few_points_keeps_the_design_going() -> None:
    planner = BoTorchPlanner(CONSTRAINED, seed=0, **FAST)
    planner.ingest(evaluate(planner.suggest(6), missing_above=-1.0))  # c missing everywhere
    (point,) = planner.suggest(1)
    assert planner.why(point["_id"]) == "design: the model waits for values of 'c' (missing at the points so far)"


def test_the_search_for_feasibility_skips_the_missing_values() -> None:
    planner = BoTorchPlanner(CONSTRAINED, seed=0, **FAST)
    results = evaluate(planner.suggest(6), missing_above=0.6)
    for r in results:  # nothing feasible: the planner searches for feasibility on the log violations
        r["c"] = r["c"] + 1.0
    planner.ingest(results)
    (point,) = planner.suggest(1)
    assert planner.why(point["_id"]).startswith("searching for feasibility")


def test_reused_hyperparameters_of_complete_data_are_refitted_once_an_output_goes_missing() -> None:
    planner = BoTorchPlanner(CONSTRAINED, seed=0, refit="scheduled", always_refit_below=4, refit_growth=3.0, **FAST)
    planner.ingest(evaluate(planner.suggest(6), missing_above=2.0))  # complete
    planner.suggest(1)  # hyperparameters fitted to the first 4 points (the schedule's sizes: 4, 12)
    fits = planner.fitting.n_fits
    planner.ingest([{"x1": 0.95, "x2": 0.5, "f": 1.45, "c": math.nan}])
    planner.suggest(1)  # the batched GP's hyperparameters do not fit a GP per outcome: fitted afresh
    assert planner.fitting.n_fits == fits + 1 and isinstance(planner._last_model[1], ModelListGP)
    planner.ingest([{"x1": 0.1, "x2": 0.3, "f": 0.4, "c": 0.02}])
    reuses = planner.fitting.n_reuses
    planner.suggest(1)  # and reused from then on, as the schedule says
    assert planner.fitting.n_reuses == reuses + 1 and planner.fitting.n_fits == fits + 1
