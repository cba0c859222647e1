"""BoTorchPlanner's acquisition and noise-prior options (what the benchmark ablation compares)."""

from __future__ import annotations

import math

import pytest
import torch
from gest_api.vocs import VOCS

from closedloop.errors import PlannerError
from planners import BoTorchPlanner
from planners.gp.fitting import GPFitting

VOCS_2D = VOCS(variables={"x": [0.0, 1.0], "y": [-1.0, 1.0]}, objectives={"f": "MAXIMIZE"})


def peak(x: float, y: float) -> float:
    return math.exp(-((x - 0.7) ** 2 + (y + 0.2) ** 2) / 0.1)


@pytest.mark.parametrize("acquisition", ["auto", "logei", "logei-mean", "qlognei"])
@pytest.mark.parametrize("low_noise_prior", [False, True])
def test_every_acquisition_and_prior_proposes_inside_the_bounds(acquisition: str, low_noise_prior: bool) -> None:
    planner = BoTorchPlanner(
        VOCS_2D,
        seed=1,
        n_initial=4,
        num_restarts=2,
        raw_samples=32,
        acquisition=acquisition,
        low_noise_prior=low_noise_prior,
    )
    for _ in range(6):
        (point,) = planner.suggest(1)
        assert 0.0 <= point["x"] <= 1.0 and -1.0 <= point["y"] <= 1.0
        planner.ingest([{**point, "f": peak(point["x"], point["y"])}])
    assert planner.fitting.n_fits >= 2


def test_the_low_noise_prior_lets_the_gp_interpolate_noiseless_data() -> None:
    noises = {}
    for low in (False, True):
        planner = BoTorchPlanner(VOCS_2D, seed=0, n_initial=12, noise_prior="low" if low else "botorch")
        points = planner.suggest(12)
        planner.ingest([{**p, "f": peak(p["x"], p["y"])} for p in points])
        X, Y, C = planner.train_tensors()
        noises[low] = float(planner.fitting.model_for(X, Y, C).likelihood.noise.detach().mean())
    assert noises[True] < noises[False] / 10


@pytest.mark.parametrize(
    ("options", "words"),
    [
        ({"acquisition": "ucb"}, "^planner.options.acquisition: Input should be 'auto', 'qlognei', 'logei' or "),
        (
            {"noise_prior": "none"},
            "^planner.options.noise_prior: Input should be 'low', 'botorch', 'flat' or 'adaptive', got 'none'$",
        ),
        ({"low_noise_prior": "yes"}, "^planner.options.low_noise_prior: Input should be a valid boolean, got 'yes'$"),
        ({"warm_start": 1}, "^planner.options.warm_start: Input should be a valid boolean, got 1$"),
        ({"ftol": 0}, "^planner.options.ftol: Input should be greater than 0, got 0$"),
        ({"ftol": "1e-4"}, "^planner.options.ftol: Input should be a valid number, got '1e-4'$"),
        ({"num_restarts": 0}, "^planner.options.num_restarts: Input should be greater than or equal to 1, got 0$"),
        ({"raw_samples": 2, "num_restarts": 4}, r"^planner.options: raw_samples \(2\) must be >= num_restarts \(4\)$"),
        ({"raw_samples": 1}, r"^planner.options.raw_samples: must be >= num_restarts \(2\), got 1$"),
        ({"n_intial": 3}, r"^planner.options.n_intial: unknown option \(options: n_initial, "),
    ],
)
def test_bad_options_are_refused(options: dict, words: str) -> None:
    with pytest.raises(PlannerError, match=words):
        BoTorchPlanner(VOCS_2D, **options)


def test_noiseless_tells_noiseless_data_from_noisy_data() -> None:
    """What the constrained qLogEI path is switched on (``noiseless``)."""
    import numpy as np

    from planners.gp.reading import noiseless

    found = {}
    for noise in (0.0, 0.1):
        rng = np.random.default_rng(0)
        planner = BoTorchPlanner(VOCS_2D, seed=0, n_initial=40, num_restarts=2, raw_samples=32)
        points = planner.suggest(40)
        planner.ingest([{**p, "f": peak(p["x"], p["y"]) + noise * rng.normal()} for p in points])
        X, Y, C = planner.train_tensors()
        model = planner.fitting.model_for(X, Y, C)
        found[noise] = noiseless(model)
        # one objective, no constraints: qLogNEI either way
        acq = planner._acquisition(model, X, Y, C, torch.from_numpy(planner.pending_unit()), q=1)
        assert type(acq).__name__ == "qLogNoisyExpectedImprovement"
    assert found == {0.0: True, 0.1: False}


def test_fits_start_cold_on_a_geometric_schedule_and_warm_in_between(monkeypatch) -> None:
    seen: list[tuple[int, bool]] = []
    fit = GPFitting.fit

    def spy(self, X, Y, C, start=None):
        seen.append((len(X), start is not None))
        return fit(self, X, Y, C, start)

    monkeypatch.setattr(GPFitting, "fit", spy)
    planner = BoTorchPlanner(VOCS_2D, seed=0, n_initial=20, num_restarts=2, raw_samples=32)
    planner.ingest([{**p, "f": peak(p["x"], p["y"])} for p in planner.suggest(20)])
    for _ in range(7):
        (point,) = planner.suggest(1)
        planner.ingest([{**point, "f": peak(point["x"], point["y"])}])
    # cold at 20, warm until 20 * 1.25 = 25, cold again there
    assert seen == [(20, False), (21, True), (22, True), (23, True), (24, True), (25, False), (26, True)]


def test_warm_start_can_be_turned_off(monkeypatch) -> None:
    seen: list[bool] = []
    fit = GPFitting.fit

    def spy(self, X, Y, C, start=None):
        seen.append(start is not None)
        return fit(self, X, Y, C, start)

    monkeypatch.setattr(GPFitting, "fit", spy)
    planner = BoTorchPlanner(VOCS_2D, seed=0, n_initial=12, num_restarts=2, raw_samples=32, warm_start=False)
    planner.ingest([{**p, "f": peak(p["x"], p["y"])} for p in planner.suggest(12)])
    for _ in range(3):
        (point,) = planner.suggest(1)
        planner.ingest([{**point, "f": peak(point["x"], point["y"])}])
    assert seen == [False, False, False]


def test_default_restarts_depend_on_the_problem() -> None:
    two_objectives = VOCS(variables={"x": [0.0, 1.0], "y": [-1.0, 1.0]}, objectives={"f": "MAXIMIZE", "g": "MINIMIZE"})
    six_d = VOCS(variables={f"x{i}": [0.0, 1.0] for i in range(6)}, objectives={"f": "MINIMIZE"})
    assert BoTorchPlanner(VOCS_2D).optimizer.num_restarts == 2
    assert BoTorchPlanner(two_objectives).optimizer.num_restarts == 4
    assert BoTorchPlanner(six_d).optimizer.num_restarts == 4
    assert BoTorchPlanner(six_d, num_restarts=3).optimizer.num_restarts == 3
