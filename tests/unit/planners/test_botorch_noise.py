"""The noise model on a flat, noisy background: the low-noise prior explains noise as structure (the creep seen
on narrow peaks); ``adaptive`` refits without it, and ``noise_fill`` fills the space until a reading stands out."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from botorch.fit import fit_gpytorch_mll
from botorch.models import SingleTaskGP
from gest_api.vocs import VOCS
from gpytorch.mlls import ExactMarginalLogLikelihood

from planners import BoTorchPlanner
from planners.gp.expected_warnings import expected_warnings_logged
from planners.gp.fitting import hyperparameters
from planners.gp.low_noise import fit_and_check_noise
from planners.gp.reading import interpolates_noise, noise_share, stands_out
from planners.sobol import sobol_points

VOCS_2D = VOCS(variables={"x": [-1.5, 1.5], "y": [-1.5, 1.5]}, objectives={"f": "MAXIMIZE"})
FAST = {"num_restarts": 2, "raw_samples": 32, "maxiter": 50, "n_initial": 40}


def flat_noise(points: list[dict], seed: int = 0) -> list[dict]:
    """Background 20 with noise sd 10: nothing to find here."""
    rng = np.random.default_rng(seed)
    return [dict(p, f=20.0 + 10.0 * rng.normal()) for p in points]


def fitted(noise_prior: str, results: list[dict]) -> tuple[BoTorchPlanner, object]:
    planner = BoTorchPlanner(VOCS_2D, seed=0, noise_prior=noise_prior, noise_fill=None, **FAST)
    planner.ingest(results)
    X, Y, C = planner.train_tensors()
    # the planner fits under a seeded RNG, as here: a fit that retries draws its new start from the priors, and from
    # an unseeded RNG the smooth data's low-noise fit ended at the lengthscale floor in about 1 run of 25
    torch.manual_seed(0)
    return planner, planner.fitting.fit(X, Y, C)


def design(n: int = 40) -> list[dict]:
    U = sobol_points(2, n, seed=11)
    return [{"x": -1.5 + 3 * u[0], "y": -1.5 + 3 * u[1]} for u in U.tolist()]


def test_the_low_noise_prior_explains_flat_noise_as_structure_and_adaptive_does_not() -> None:
    results = flat_noise(design())
    _, low = fitted("low", results)
    # measured: noise 1e-8, one lengthscale 0.025 (the bound), the other 0.09
    assert interpolates_noise(low) and noise_share(low) < 0.01  # noise taken for signal
    _, adaptive = fitted("adaptive", results)
    assert noise_share(adaptive) > 0.3  # measured 0.49: much of the variation is noise, as it is (all of it)


def test_smooth_data_keep_the_low_noise_fit() -> None:
    results = [dict(p, f=-((p["x"] - 0.3) ** 2) - (p["y"] + 0.2) ** 2) for p in design()]
    _, low = fitted("low", results)
    _, adaptive = fitted("adaptive", results)
    assert not interpolates_noise(low)
    assert noise_share(adaptive) < 0.01  # kept nearly noiseless, as noiseless data should be


def evaluations(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """A counter of the marginal likelihood's evaluations from here on (one element, reset by the caller)."""
    count = [0]
    forward = ExactMarginalLogLikelihood.forward

    def counted(self: ExactMarginalLogLikelihood, *args: object, **kwargs: object) -> torch.Tensor:
        count[0] += 1
        return forward(self, *args, **kwargs)

    monkeypatch.setattr(ExactMarginalLogLikelihood, "forward", counted)
    return count


def full_and_watched_fits(
    results: list[dict], monkeypatch: pytest.MonkeyPatch
) -> tuple[SingleTaskGP, int, SingleTaskGP, int, bool]:
    """The same low-noise GP fitted to the end by BoTorch and by :func:`fit_and_check_noise`, with the evaluations
    each took and the latter's verdict."""
    planner = BoTorchPlanner(VOCS_2D, seed=0, noise_prior="adaptive", noise_fill=None, **FAST)
    planner.ingest(results)
    X, Y, _ = planner.train_tensors()
    count = evaluations(monkeypatch)
    with expected_warnings_logged():
        full = planner.fitting.build(X, Y)
        torch.manual_seed(0)  # a fit that retries draws its new start from the priors
        fit_gpytorch_mll(ExactMarginalLogLikelihood(full.likelihood, full))
        n_full, count[0] = count[0], 0
        watched = planner.fitting.build(X, Y)
        torch.manual_seed(0)
        verdict = fit_and_check_noise(watched)
    return full, n_full, watched, count[0], verdict


def test_a_low_noise_fit_settled_at_the_lengthscale_floor_stops_early_with_the_same_verdict(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    full, n_full, _, n_watched, verdict = full_and_watched_fits(flat_noise(design(), seed=1), monkeypatch)
    assert interpolates_noise(full) and verdict  # the fit to the end lands where the watch stopped it: the floor
    assert n_watched < 0.8 * n_full  # measured: 28 against 40 evaluations


def test_a_low_noise_fit_off_the_floor_runs_to_the_end_unchanged(monkeypatch: pytest.MonkeyPatch) -> None:
    results = [dict(p, f=-((p["x"] - 0.3) ** 2) - (p["y"] + 0.2) ** 2) for p in design()]
    full, n_full, watched, n_watched, verdict = full_and_watched_fits(results, monkeypatch)
    assert not verdict and n_watched == n_full
    fitted_full, fitted_watched = hyperparameters(full), hyperparameters(watched)
    assert all(torch.equal(fitted_full[k], fitted_watched[k]) for k in fitted_full)


def test_stands_out() -> None:
    rng = np.random.default_rng(1)
    background = torch.from_numpy(20.0 + 10.0 * rng.normal(size=100))
    assert not stands_out(background)
    assert stands_out(torch.cat([background, torch.tensor([140.0], dtype=torch.float64)]))


@pytest.mark.parametrize("peak_seen", [False, True])
def test_noise_fill_fills_the_space_until_a_reading_stands_out(peak_seen: bool) -> None:
    results = flat_noise(design())
    if peak_seen:
        results[5]["f"] = 600.0  # the flank of a narrow peak
    planner = BoTorchPlanner(VOCS_2D, seed=0, **FAST)  # the defaults: adaptive, noise_fill 0.3
    planner.ingest(results)
    (point,) = planner.suggest(1)
    next_sobol = -1.5 + 3 * sobol_points(2, 1, seed=0, skip=40)[0]
    is_sobol = bool(np.allclose([point["x"], point["y"]], next_sobol))
    assert is_sobol is not peak_seen


@pytest.mark.parametrize(("dim", "prior"), [(2, "Gamma"), (4, "Gamma"), (5, "LogNormal"), (6, "LogNormal")])
def test_adaptive_takes_botorchs_noise_prior_from_five_variables_on(dim: int, prior: str) -> None:
    vocs = VOCS(variables={f"x{i}": [-1.5, 1.5] for i in range(dim)}, objectives={"f": "MAXIMIZE"})
    planner = BoTorchPlanner(vocs, seed=0, **FAST)  # noise_prior: adaptive, the default
    rng = np.random.default_rng(0)
    points = (-1.5 + 3 * sobol_points(dim, 12, seed=3)).tolist()
    planner.ingest([{**{f"x{i}": x[i] for i in range(dim)}, "f": float(rng.normal())} for x in points])
    X, Y, C = planner.train_tensors()
    model = planner.fitting.fit(X, Y, C)
    assert type(model.likelihood.noise_covar.noise_prior).__name__ == f"{prior}Prior"
    assert planner.fitting.fitted_noise_prior == ("botorch" if dim >= 5 else "adaptive")
