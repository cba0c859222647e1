"""BoTorchPlanner's refit schedule: when the hyperparameters are fitted, reused and subset, and that reuse
keeps the points reproducible, for a rebuilt planner too. Speed itself is measured in
``benchmarks/proposal_scaling.py``, not here."""

from __future__ import annotations

import pytest

from closedloop.errors import PlannerError
from planners import BoTorchPlanner
from planners.gp.fitting import GPFitting, refit_size

#: Small and quick; the schedule fits at 6, 9, 14 and 21 ok observations and at every size below 6.
SCHEDULE = {"always_refit_below": 6, "refit_growth": 1.5}
FAST = {"num_restarts": 2, "raw_samples": 32, "maxiter": 30, "n_initial": 5}


def run(planner: BoTorchPlanner, evaluate, until: int) -> tuple[list[dict], list[tuple[int, int, int]]]:
    """Suggest and ingest one point at a time until ``until`` are observed.

    Returns:
        every result ingested, and ``(ok observations, n_fits, n_reuses)`` after each model-based proposal.
    """
    results: list[dict] = []
    counts = []
    while planner.n_observed < until:
        n_ok = planner.n_observed
        (point,) = planner.suggest(1)
        if n_ok >= FAST["n_initial"]:
            counts.append((n_ok, planner.fitting.n_fits, planner.fitting.n_reuses))
        (result,) = evaluate([point])
        planner.ingest([result])
        results.append(result)
    return results, counts


def test_refit_size_follows_the_geometric_schedule():
    assert [refit_size(n, 100, 1.2) for n in (3, 99, 100, 119, 120, 143, 144, 172, 173)] == [
        3,
        99,
        100,
        100,
        120,
        120,
        144,
        144,
        173,
    ]
    assert [refit_size(n, 6, 1.001) for n in (6, 7, 8)] == [6, 7, 8]  # never less than one more


def test_fits_on_the_schedule_and_reuses_between(vocs, evaluate):
    planner = BoTorchPlanner(vocs, seed=1, **FAST, **SCHEDULE)
    _, counts = run(planner, evaluate, until=16)
    fits = [n_fits for _, n_fits, _ in counts]
    fitted_at = [n_ok for (n_ok, n_fits, _), before in zip(counts, [0, *fits], strict=False) if n_fits > before]
    assert fitted_at == [5, 6, 9, 14]
    assert counts[-1] == (15, 4, 7)


def test_reused_hyperparameters_give_points_inside_the_bounds(vocs, evaluate):
    planner = BoTorchPlanner(vocs, seed=2, **FAST, **SCHEDULE)
    results, _ = run(planner, evaluate, until=13)
    assert planner.fitting.n_reuses > 0
    for point in results + planner.suggest(2):
        assert -1.5 <= point["x1"] <= 1.5 and 0.0 <= point["x2"] <= 5.0


def test_same_seed_and_data_give_the_same_points(vocs, evaluate):
    first, _ = run(BoTorchPlanner(vocs, seed=3, **FAST, **SCHEDULE), evaluate, until=12)
    second, _ = run(BoTorchPlanner(vocs, seed=3, **FAST, **SCHEDULE), evaluate, until=12)
    assert first == second


def test_a_rebuilt_planner_proposes_what_the_original_would(vocs, evaluate):
    original = BoTorchPlanner(vocs, seed=4, **FAST, **SCHEDULE)
    results, _ = run(original, evaluate, until=11)  # hyperparameters last fitted at 9, reused at 10
    rebuilt = BoTorchPlanner(vocs, seed=4, **FAST, **SCHEDULE)
    rebuilt.ingest([{k: v for k, v in r.items() if k != "_id"} for r in results])  # as on resume
    (expected,) = original.suggest(1)
    (got,) = rebuilt.suggest(1)
    assert (got["x1"], got["x2"]) == (expected["x1"], expected["x2"])
    assert (rebuilt.fitting.n_fits, rebuilt.fitting.n_reuses) == (1, 0)  # one fit, to the first 9, as the original did
    assert original.fitting.n_reuses > 0


def test_refit_always_fits_for_every_proposal(vocs, evaluate):
    planner = BoTorchPlanner(vocs, seed=5, refit="always", **FAST, **SCHEDULE)
    _, counts = run(planner, evaluate, until=12)
    assert [(fits, reuses) for _, fits, reuses in counts] == [(i + 1, 0) for i in range(len(counts))]


def test_large_fits_use_a_subset_and_condition_on_all(vocs, evaluate, monkeypatch):
    fitted: list[int] = []
    conditioned: list[tuple[int, float, float]] = []
    fit, optimize = GPFitting.fit, BoTorchPlanner._optimize

    def spy_fit(self, X, Y, C, start=None):
        fitted.append(len(X))
        return fit(self, X, Y, C, start)

    def spy_optimize(self, model, X, Y, *args, **kwargs):
        conditioned.append((len(model.train_inputs[0]), float(model.outcome_transform.means), float(Y.mean())))
        return optimize(self, model, X, Y, *args, **kwargs)

    monkeypatch.setattr(GPFitting, "fit", spy_fit)
    monkeypatch.setattr(BoTorchPlanner, "_optimize", spy_optimize)
    planner = BoTorchPlanner(vocs, seed=6, max_fit_points=10, **FAST, **SCHEDULE)
    run(planner, evaluate, until=16)
    assert fitted == [5, 6, 9, 10]  # the fit at 14 used 10 of them
    assert [n for n, _, _ in conditioned] == list(range(5, 16))
    for _, mean, data_mean in conditioned:  # Standardize recomputed from all the data, not reused
        assert mean == pytest.approx(data_mean)


@pytest.mark.parametrize(
    "options",
    [
        {"refit": "never"},
        {"refit_growth": 1.0},
        {"refit_growth": "2"},
        {"max_fit_points": 3},
        {"always_refit_below": 1},
    ],
)
def test_bad_refit_options_are_refused(vocs, options):
    with pytest.raises(PlannerError, match=next(iter(options))):
        BoTorchPlanner(vocs, seed=0, **options)
