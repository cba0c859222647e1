"""Fitting the BoTorch planner's GPs: afresh for every proposal while data are few, then on a schedule.

Above ``always_refit_below`` ok observations the hyperparameters are fitted only when the count reaches the next
size of a geometric schedule (:func:`refit_size`), and reused in between with the GP conditioned on all the data.
When an outcome is missing at some points (NaN: a constraint its reducer could not compute), the outcomes are
modelled by a ``ModelListGP`` of one GP per outcome, each fitted to the points where its outcome was measured
(:meth:`ScheduledFitting._fit`), instead of one batched GP over every outcome.
Also here: the filter for the warnings BoTorch raises in normal use.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from botorch.exceptions.warnings import (
    BadInitialCandidatesWarning,
    BotorchWarning,
    InputDataWarning,
    OptimizationWarning,
)
from botorch.fit import fit_gpytorch_mll
from botorch.models import MixedSingleTaskGP, ModelListGP, SingleTaskGP
from botorch.models.model import Model
from botorch.models.transforms import Standardize
from botorch.optim.closures import get_loss_closure_with_grads
from botorch.optim.core import OptimizationResult
from botorch.optim.fit import fit_gpytorch_mll_scipy
from botorch.optim.utils import get_parameters, sample_all_priors
from gpytorch.constraints import GreaterThan
from gpytorch.likelihoods import GaussianLikelihood
from gpytorch.mlls import ExactMarginalLogLikelihood
from gpytorch.priors import GammaPrior
from linear_operator.utils.warnings import NumericalWarning
from torch import Tensor

from planners._base import PlannerBase
from planners.options import NoisePrior, Refit

_log = logging.getLogger(__name__)

#: Warnings BoTorch emits in normal use (a fit that retried, a restart that stopped early, a foreign
#: point just outside the bounds). They are logged, not shown; any other warning passes through unchanged.
_EXPECTED_WARNINGS = (InputDataWarning, OptimizationWarning, BadInitialCandidatesWarning, NumericalWarning)
#: With outcome constraints, some posterior samples of the observed points are all infeasible even when an
#: observed point is feasible; BoTorch then falls back to a lower bound and says so. Expected, logged.
_ALL_INFEASIBLE_SAMPLES = "When all training points are infeasible"
#: BoTorch retries an acquisition optimization whose L-BFGS-B run stopped abnormally, and says so. Expected, logged.
_RETRYING_OPTIMIZATION = "Optimization failed"


#: State-dict entries that belong to the data, not to the GP's hyperparameters: the outcome transform's mean
#: and scale (recomputed from all the data each time).
_DATA_STATE = ("outcome_transform.",)


#: Below this fitted noise variance (in standardized units) a GP takes its data as noiseless. Measured here with
#: the low-noise prior: Branin (noiseless) fits 1e-8, the beamline (noise sd 10 on a 1000-count peak) 2e-4 to 7e-4.
NOISELESS_BELOW = 1e-6


def fitted_noise(model: Model) -> Tensor | None:
    """A fitted GP's noise variance per outcome (standardized units), or None for a likelihood without one."""
    if isinstance(model, ModelListGP):
        parts = [fitted_noise(m) for m in model.models]  # type: ignore[arg-type]
        return None if any(p is None for p in parts) else torch.cat([p.reshape(-1) for p in parts if p is not None])
    noise = getattr(getattr(model, "likelihood", None), "noise", None)
    return None if noise is None else noise.detach()


def noiseless(model: Model) -> bool:
    """Whether a fitted GP takes its data as noiseless (noise variance below :data:`NOISELESS_BELOW`)."""
    noise = fitted_noise(model)
    return noise is not None and float(noise.max()) < NOISELESS_BELOW


def noise_share(model: Model) -> float:
    """The largest share of an outcome's (standardized) variance a fitted GP puts in noise, between 0 and 1."""
    noise = fitted_noise(model)
    return 0.0 if noise is None else float((noise / (1.0 + noise)).max())


#: A reading stands out when it is this many robust standard deviations (1.4826 MAD) above the median.
STANDS_OUT = 5.0


def stands_out(y: Tensor) -> bool:
    """Whether the largest of ``y: n`` lies more than :data:`STANDS_OUT` robust standard deviations above the
    median: a signal, where a flat noisy background has none (the largest of 100 normal readings is about 2.5
    standard deviations above their median)."""
    median = y.median()
    spread = 1.4826 * (y - median).abs().median()
    return bool(spread > 0 and (y.max() - median) > STANDS_OUT * spread) or bool(spread == 0 and y.max() > median)


def stood_out(y: Tensor, first: int = 10) -> bool:
    """Whether a reading stood out (:func:`stands_out`) among the first ``k`` readings, for any ``k >= first``.

    Once the data gather on a peak, its readings raise the median and the spread, and the best no longer stands out
    of all of them; it did when the peak was found. A function of the readings in the order ingested.
    """
    return any(stands_out(y[:k]) for k in range(min(first, len(y)), len(y) + 1))


#: BoTorch's lower bound on a GP lengthscale (in the unit cube), and how near it counts as at it.
LENGTHSCALE_FLOOR = 0.025
AT_FLOOR = 1.5


def lengthscales(model: Model) -> Tensor | None:
    """The fitted lengthscales, ``outputs x d`` (in the unit cube), or None for a kernel without them."""
    if isinstance(model, ModelListGP):
        parts = [lengthscales(m) for m in model.models]  # type: ignore[arg-type]
        return None if any(p is None for p in parts) else torch.cat([p for p in parts if p is not None])
    kernel = getattr(model, "covar_module", None)
    lengthscale = getattr(getattr(kernel, "base_kernel", kernel), "lengthscale", None)
    return None if lengthscale is None else lengthscale.detach().reshape(-1, lengthscale.shape[-1])


def interpolates_noise(model: Model) -> bool:
    """Whether a fitted GP may be explaining noise as structure: a lengthscale at (within 1.5x of) BoTorch's lower
    bound, the wiggliest function it may fit along that variable.

    On a flat, noisy background (the narrow-peak benchmark problems, before the peak is found) the low-noise
    prior fits exactly this: noise 1e-8 to 0.15 (standardized) where the data are nearly all noise, lengthscales
    0.025, and the acquisition then chases noise. A genuinely narrow peak or ridge fits short lengthscales too;
    refitting it without the noise prior costs a second fit and finds the same structure.
    """
    per_output = lengthscales(model)
    return per_output is not None and bool((per_output <= AT_FLOOR * LENGTHSCALE_FLOOR).any())


#: A low-noise fit of one outcome is over once a lengthscale has sat at the floor (:func:`interpolates_noise`) for
#: this many evaluations of the marginal likelihood in a row, the best loss fell by at most this fraction over them,
#: and the noise variance (standardized) is below this.
SETTLED_EVALUATIONS = 5
SETTLED_GAIN = 1e-4
SETTLED_NOISE = 1e-3


class _Settled(Exception):
    """Ends a low-noise fit that has settled at the lengthscale floor (raised by :class:`_WatchesTheFloor`)."""


class _WatchesTheFloor:
    """The loss closure of a low-noise fit, watching for the fit to settle at the lengthscale floor.

    Such a fit is thrown away for a fit with no noise prior (:meth:`ScheduledFitting._fit`), but it used to run on
    to its end: with a lengthscale at the floor it explains the noise as structure, and it drives the noise towards
    its lower bound of 1e-8 in small steps that gain almost nothing (``ridge3``, 27 points: 43 steps, the floor
    reached at step 5, the last 15 steps gaining 1.4e-4 of the loss). The closure raises :class:`_Settled` once the
    fit has sat at the floor for :data:`SETTLED_EVALUATIONS` evaluations while the best loss fell by at most
    :data:`SETTLED_GAIN` of itself, with the noise below :data:`SETTLED_NOISE`.

    Chosen from the trajectories of every low-noise fit on 7 harness problems (5 seeds each): no fit it ends would
    have finished off the floor, and it skips 17 % of the evaluations on ``ridge3``. Without the noise condition,
    Branin lost a fit: a retry started from the priors sat at the floor on a plateau (noise 0.09), then left it.
    """

    def __init__(self, mll: ExactMarginalLogLikelihood) -> None:
        self._closure = get_loss_closure_with_grads(mll, parameters=get_parameters(mll, requires_grad=True))
        self._model = mll.model
        self._at_floor_for = 0  # evaluations in a row with a lengthscale at the floor
        self._best: deque[float] = deque(maxlen=SETTLED_EVALUATIONS + 1)  # best loss so far, at the last evaluations

    def __call__(self, **kwargs: object) -> tuple[Tensor, tuple[Tensor | None, ...]]:
        loss, grads = self._closure(**kwargs)
        self._at_floor_for = self._at_floor_for + 1 if interpolates_noise(self._model) else 0
        value = loss.detach().item()
        self._best.append(min(value, self._best[-1]) if self._best else value)
        if (
            self._at_floor_for >= SETTLED_EVALUATIONS
            and len(self._best) == self._best.maxlen
            and self._best[0] - self._best[-1] <= SETTLED_GAIN * abs(self._best[-1])
            and (noise := fitted_noise(self._model)) is not None
            and float(noise.max()) < SETTLED_NOISE
        ):
            raise _Settled
        return loss, grads


def _watched_fit(mll: ExactMarginalLogLikelihood, closure: object = None, **kwargs: Any) -> OptimizationResult:
    """One attempt of BoTorch's fit with :class:`_WatchesTheFloor` as its closure (a fresh watch per attempt: a
    retry starts from parameters drawn from the priors)."""
    return fit_gpytorch_mll_scipy(mll, closure=_WatchesTheFloor(mll), **kwargs)


def fit_and_check_noise(model: SingleTaskGP) -> bool:
    """Fit a low-noise GP; return whether it :func:`interpolates_noise`.

    When it does, the fit may have been ended early (:class:`_WatchesTheFloor`), and then BoTorch leaves the model
    where the fit started: such a model is only good for being replaced by a fit with no noise prior.

    A GP of several outcomes is fitted unwatched, as before: BoTorch fits such a GP's outcomes one by one only when
    it is given no closure.
    """
    mll = ExactMarginalLogLikelihood(model.likelihood, model)
    if model.num_outputs > 1:
        fit_gpytorch_mll(mll)
        return interpolates_noise(model)
    try:
        fit_gpytorch_mll(mll, optimizer=_watched_fit)
    except _Settled:
        return True
    return interpolates_noise(model)


#: From this many variables on, ``noise_prior: adaptive`` fits with BoTorch's own noise prior (LogNormal(-4, 1), the
#: partner of its dimension-scaled lengthscale prior) instead of the low one. In 6-D the data are too sparse for the
#: low prior's short-lengthscale fits, and filling the space rarely lands on a small spot, while a GP that takes most
#: of the data as noise follows a spot's weak, wide flank up (``spot6``, 5 seeds: median regret 9.04 against 566; see
#: the README's benchmarks).
HIGH_DIMENSIONAL = 5


#: A fitted lengthscale (unit cube) below this marks a narrow peak or ridge, for :func:`peak_box`.
NARROW_BELOW = 0.1


def peak_box(model: Model, X: Tensor, Y: Tensor, half_width: float) -> Tensor | None:
    """A ``2 x d`` unit-cube box around a narrow peak the data have found, or None.

    When a reading stood out (:func:`stood_out`) and the GP fits some lengthscale below
    :data:`NARROW_BELOW`, the box reaches ``half_width`` fitted lengthscales either side of the observed point with
    the highest posterior mean. A GP with short lengthscales is unsure of everything a few lengthscales from its
    data, so over the whole space the acquisition sends most points to the flat background, which may hide
    another peak as high (on ``ridge3``, after the ridge was found at 700 counts, 30 of the next 36 points read
    background and the best stayed at 926 of 1020). Inside the box it refines the peak; the box moves with the
    best posterior mean, so it follows a ridge.

    Args:
        model: the fitted GP, objective first. X: ``n x d`` ok observations (unit cube). Y: ``n x 1`` objective.
        half_width: in fitted lengthscales.
    """
    ls = lengthscales(model)
    if ls is None or float(ls[0].min()) >= NARROW_BELOW or not stood_out(Y[:, 0]):
        return None
    with torch.no_grad():
        mean = model.posterior(X).mean[..., 0]  # type: ignore[attr-defined]
    centre = X[int(mean.argmax())]
    half = half_width * ls[0]
    return torch.stack([(centre - half).clamp(0.0, 1.0), (centre + half).clamp(0.0, 1.0)])


def refit_size(n: int, always_below: int, growth: float) -> int:
    """How many ok observations the hyperparameters used at ``n`` ok observations are fitted to.

    Every size below ``always_below``; from there the sizes ``always_below``, ``ceil(always_below * growth)``,
    and so on (each at least one more than the one before): the largest of these not above ``n``. A function
    of ``n`` alone, so a planner rebuilt from the same data fits to the same observations.
    """
    if n < always_below:
        return n
    size = always_below
    while (grown := max(size + 1, math.ceil(size * growth))) <= n:
        size = grown
    return size


def hyperparameters(model: torch.nn.Module) -> dict[str, Tensor]:
    """The fitted hyperparameters of one GP (its state dict without the transforms' data-dependent entries), or of
    each GP of a ``ModelListGP`` (under ``models.<i>.``)."""
    return {
        k: v.detach().clone()
        for k, v in model.state_dict().items()
        if not k.startswith(_DATA_STATE) and not any(f".{d}" in k for d in _DATA_STATE)
    }


def loaded(model: torch.nn.Module, fitted: dict[str, Tensor]) -> bool:
    """Load ``fitted`` (:func:`hyperparameters`) into ``model``; False, and nothing loaded, when they are another
    model's (a batched GP's into a ``ModelListGP``, or shapes that differ)."""
    state = model.state_dict()
    if any(k not in state or state[k].shape != v.shape for k, v in fitted.items()):
        return False
    model.load_state_dict(state | fitted)
    return True


def _within(fitted: dict[str, Tensor] | None, prefix: str) -> dict[str, Tensor] | None:
    """The entries of ``fitted`` under ``prefix``, the prefix taken off (one GP's of a ``ModelListGP``'s)."""
    if fitted is None:
        return None
    return {k.removeprefix(prefix): v for k, v in fitted.items() if k.startswith(prefix)}


#: Below ``always_refit_below``, a fit from the defaults (a cold fit) happens whenever the ok observations have
#: grown by this factor since the last one; the fits in between start from the last fit (warm).
COLD_FIT_GROWTH = 1.25


@contextmanager
def expected_warnings_logged() -> Iterator[None]:
    """Log BoTorch's expected warnings raised inside the block; re-emit every other warning."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    for w in caught:
        if (
            issubclass(w.category, _EXPECTED_WARNINGS)
            or (issubclass(w.category, BotorchWarning) and str(w.message).startswith(_ALL_INFEASIBLE_SAMPLES))
            or (issubclass(w.category, RuntimeWarning) and str(w.message).startswith(_RETRYING_OPTIMIZATION))
        ):
            _log.info("%s: %s", w.category.__name__, w.message)
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno, source=w.source)


class ScheduledFitting(PlannerBase):
    """The GP fitting half of :class:`~planners.BoTorchPlanner` (see its docstring for the schedule)."""

    noise_prior: NoisePrior
    warm_start: bool
    refit: Refit
    always_refit_below: int
    refit_growth: float
    max_fit_points: int
    n_fits: int
    n_reuses: int
    _fitted: tuple[int, dict[str, Tensor]] | None
    _warm: tuple[int, dict[str, Tensor]] | None

    @property
    def fitted_noise_prior(self) -> NoisePrior:
        """The noise prior the GPs are fitted with: ``adaptive`` is ``botorch`` in :data:`HIGH_DIMENSIONAL` variables
        and up."""
        if self.noise_prior == "adaptive" and self.dim >= HIGH_DIMENSIONAL:
            return "botorch"
        return self.noise_prior

    def _likelihood(self, k: int, noise_prior: NoisePrior | None = None) -> GaussianLikelihood | None:
        """The likelihood of a GP over ``k`` outcomes with ``noise_prior`` (default: the planner's; ``adaptive`` is
        the low one), or None for BoTorch's own, with its noise prior."""
        batch = torch.Size([k]) if k > 1 else torch.Size()
        noise_prior = noise_prior or self.fitted_noise_prior
        if noise_prior in ("low", "adaptive"):
            return GaussianLikelihood(
                noise_prior=GammaPrior(1.0, 100.0), noise_constraint=GreaterThan(1e-8), batch_shape=batch
            )
        if noise_prior == "flat":
            return GaussianLikelihood(noise_constraint=GreaterThan(1e-8), batch_shape=batch)
        return None

    def _build(self, X: Tensor, outcomes: Tensor, noise_prior: NoisePrior | None = None) -> SingleTaskGP | ModelListGP:
        """An unfitted GP on ``X: n x d`` (unit cube) and ``outcomes: n x k``; one batched GP for all ``k``, or, when
        an outcome is NaN at some point, a ``ModelListGP`` of one GP per outcome on the points where it is not.

        ``noise_prior`` defaults to the planner's (``adaptive`` builds with the low one first).
        """
        present = ~outcomes.isnan()
        if not bool(present.all()):
            return ModelListGP(
                *(self._build(X[rows], outcomes[rows, i : i + 1], noise_prior) for i, rows in enumerate(present.T))
            )
        k = outcomes.shape[-1]
        likelihood = self._likelihood(k, noise_prior)
        if self.space.cat_dims:
            return MixedSingleTaskGP(
                X, outcomes, cat_dims=self.space.cat_dims, outcome_transform=Standardize(m=k), likelihood=likelihood
            )
        # No input transform: X is in the unit cube already, and a ``Normalize`` to the unit cube is the identity
        # that cost up to a quarter of a proposal's time (the same proposals bit for bit; see
        # ``benchmarks/proposal_overhead.py``).
        return SingleTaskGP(X, outcomes, likelihood=likelihood, outcome_transform=Standardize(m=k))

    def _fit(
        self, X: Tensor, Y: Tensor, C: Tensor, start: dict[str, Tensor] | None = None, from_priors: bool = False
    ) -> SingleTaskGP | ModelListGP:
        """Fit one GP to ``X: n x d`` (unit cube) and the outcomes ``[Y | C]: n x k``; with an outcome NaN at some
        point, one GP per outcome, each fitted as here to the points where its outcome is not NaN (a
        ``ModelListGP``: the objective's GP uses a point whose constraint output is missing, the constraint's
        skips it).

        The fit starts from ``start`` (hyperparameters of an earlier fit of the same outcomes) when given, from
        hyperparameters drawn from their priors (BoTorch's ``sample_all_priors``, torch's RNG) with ``from_priors``,
        otherwise from the defaults. A refit with no noise prior (``adaptive``) always starts from the defaults:
        started from the last such refit, it kept the noise of fewer data (``spot2_noisy``, 5 seeds: median regret
        134 and worst 802, against 2.02 and 34).
        """
        outcomes = torch.cat([Y, C], dim=-1)
        present = ~outcomes.isnan()
        if not bool(present.all()):
            return ModelListGP(
                *(
                    self._fit(
                        X[rows], outcomes[rows, i : i + 1], C[rows, :0], _within(start, f"models.{i}."), from_priors
                    )
                    for i, rows in enumerate(present.T)
                )
            )
        with expected_warnings_logged():
            model = self._build(X, outcomes)
            if start is not None:
                loaded(model, start)  # a start of another shape (fitted before an output went missing) is not used
            if from_priors:
                sample_all_priors(model)
            if self.fitted_noise_prior != "adaptive":
                fit_gpytorch_mll(ExactMarginalLogLikelihood(model.likelihood, model))
            elif fit_and_check_noise(model):
                # the low-noise prior made the GP explain noise as structure: fit again with no prior on the noise
                model = self._build(X, torch.cat([Y, C], dim=-1), noise_prior="flat")
                fit_gpytorch_mll(ExactMarginalLogLikelihood(model.likelihood, model))
        return model

    def _model(self, X: Tensor, Y: Tensor, C: Tensor, keep: Tensor | None = None) -> Model:
        """The model for this proposal: fitted (warm-started), or conditioned with reused hyperparameters.

        ``keep`` (indices into ``X``, see :mod:`planners._large`): the GP is conditioned on those observations only;
        the hyperparameters are fitted as without it.
        """
        n = len(X)
        if self.refit == "always" or n < self.always_refit_below:
            if n <= self.max_fit_points and keep is None:
                # A warm start from a fit that took the data as noiseless begins at the noise's lower bound, where the
                # gradient of its softplus parameter vanishes: warm fits alone never found the noise that more data
                # reveal (noisy beamline, 10 seeds: median regret 0.49 against 0.13 with every fit cold). Cold fits
                # on a geometric schedule find it; warm fits in between halve the fitting time.
                warm = self._warm if self.warm_start and self._warm and n < self._warm[0] * COLD_FIT_GROWTH else None
                model = self._fit(X, Y, C, start=warm[1] if warm else None)
                self._warm = (warm[0] if warm else n, hyperparameters(model))
                self.n_fits += 1
                return model
            fitted = self._fit_hyperparameters(X, Y, C)
            reused = False
        else:
            size = refit_size(n, self.always_refit_below, self.refit_growth)
            reused = self._fitted is not None and self._fitted[0] == size
            if self._fitted is None or not reused:
                with torch.random.fork_rng(devices=[]):
                    torch.manual_seed(self.seed + size)
                    self._fitted = (size, self._fit_hyperparameters(X[:size], Y[:size], C[:size]))
            fitted = self._fitted[1]
        if keep is not None:
            X, Y, C = X[keep], Y[keep], C[keep]
        conditioned = self._conditioned(X, Y, C, fitted)
        if conditioned is not None:
            self.n_reuses += reused
            return conditioned
        # hyperparameters fitted to data without a missing output (a batched GP), these data with one: one GP per
        # outcome, fitted to all, and on the schedule reused as such
        model = self._fit(X, Y, C)
        self.n_fits += 1
        if self._fitted is not None and self._fitted[1] is fitted:
            self._fitted = (self._fitted[0], hyperparameters(model))
        return model

    def _fit_hyperparameters(self, X: Tensor, Y: Tensor, C: Tensor) -> dict[str, Tensor]:
        """Fit a GP to ``X, Y, C`` (a seeded subset of ``max_fit_points`` when larger) from the defaults."""
        n = len(X)
        if n > self.max_fit_points:
            generator = torch.Generator().manual_seed(self.seed + n)
            keep = torch.randperm(n, generator=generator)[: self.max_fit_points].sort().values
            X, Y, C = X[keep], Y[keep], C[keep]
        model = self._fit(X, Y, C)
        self.n_fits += 1
        return hyperparameters(model)

    def _conditioned(self, X: Tensor, Y: Tensor, C: Tensor, fitted: dict[str, Tensor]) -> Model | None:
        """A GP on all of ``X`` and ``[Y | C]`` with the given hyperparameters; None when they are another model's
        (:func:`loaded`)."""
        with expected_warnings_logged():
            model = self._build(X, torch.cat([Y, C], dim=-1))
            if not loaded(model, fitted):
                return None
        return model.eval()
