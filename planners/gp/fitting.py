"""Fitting the BoTorch planner's GPs (:class:`GPFitting`): afresh for every proposal while data are few, then on a
schedule.

Above ``always_refit_below`` ok observations the hyperparameters are fitted only when the count reaches the next
size of a geometric schedule (:func:`refit_size`), and reused in between with the GP conditioned on all the data.
When an outcome is missing at some points (NaN: a constraint its reducer could not compute), the outcomes are
modelled by a ``ModelListGP`` of one GP per outcome, each fitted to the points where its outcome was measured
(:meth:`GPFitting.fit`), instead of one batched GP over every outcome.
"""

from __future__ import annotations

import math

import torch
from botorch.fit import fit_gpytorch_mll
from botorch.models import MixedSingleTaskGP, ModelListGP, SingleTaskGP
from botorch.models.model import Model
from botorch.models.transforms import Standardize
from botorch.optim.utils import sample_all_priors
from gpytorch.constraints import GreaterThan
from gpytorch.likelihoods import GaussianLikelihood
from gpytorch.mlls import ExactMarginalLogLikelihood
from gpytorch.priors import GammaPrior
from torch import Tensor

from planners._space import Space
from planners.gp.expected_warnings import expected_warnings_logged
from planners.gp.low_noise import fit_and_check_noise
from planners.options import BoTorchOptions, NoisePrior

#: State-dict entries that belong to the data, not to the GP's hyperparameters: the outcome transform's mean
#: and scale (recomputed from all the data each time).
_DATA_STATE = ("outcome_transform.",)

#: From this many variables on, ``noise_prior: adaptive`` fits with BoTorch's own noise prior (LogNormal(-4, 1), the
#: partner of its dimension-scaled lengthscale prior) instead of the low one: there the data are too sparse for the
#: low prior's short-lengthscale fits (measured: ``docs/explanation/planners.md``).
HIGH_DIMENSIONAL = 5


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


class GPFitting:
    """How the BoTorch planner fits its GPs, and what it keeps between fits: the hyperparameters of the last
    scheduled fit, the last fit's for warm starts, and counts of fits and reuses.

    A planner composes one (:attr:`~planners.BoTorchPlanner.fitting`); a subclass changes how GPs are built or
    fitted (a benchmark's, say) and is handed in through the planner class's ``fitting_class``.

    Refitting: with fewer than ``always_refit_below`` ok observations (or with ``refit: always``) the
    hyperparameters are fitted afresh for every proposal; with ``warm_start`` a fit starts from the defaults (cold)
    only when the ok observations have grown by :data:`COLD_FIT_GROWTH` since the last cold fit, and otherwise from
    the last fit's hyperparameters (warm). From ``always_refit_below`` on they are fitted only when the number of ok
    observations reaches the next size of the schedule (:func:`refit_size`), to the *first* that many ok observations
    in the order ingested, from the defaults, seeded from ``seed`` and the size (a seeded random subset of
    ``max_fit_points`` when larger); between refits they are reused and the GP is conditioned on all the ok
    observations. So from ``always_refit_below`` on the model is a function of the data alone: a planner rebuilt
    by re-ingesting the same observations fits once, at the last scheduled size, and proposes as the original did.

    Args:
        options: the planner's options (read, never copied: ``noise_prior``, ``low_noise_prior``, ``warm_start``,
            ``refit``, ``always_refit_below``, ``refit_growth``, ``max_fit_points``).
        space: the planner's variables (categorical ones make a ``MixedSingleTaskGP``).
        seed: the planner's seed (scheduled fits are seeded from it and their size).
    """

    def __init__(self, options: BoTorchOptions, space: Space, seed: int) -> None:
        self.options = options
        self.space = space
        self.seed = seed
        #: The prior on the GP noise: ``noise_prior``, or the older spelling ``low_noise_prior`` when given.
        self.noise_prior: NoisePrior = options.noise_prior
        if options.low_noise_prior is not None:
            self.noise_prior = "low" if options.low_noise_prior else "botorch"
        #: Proposals whose GP hyperparameters were fitted successfully (one count for all the GPs of a proposal).
        self.n_fits = 0
        #: Proposals that reused the hyperparameters of the last scheduled fit.
        self.n_reuses = 0
        self._fitted: tuple[int, dict[str, Tensor]] | None = None  # (size, hyperparameters)
        #: (ok observations at the last cold fit, the last fit's hyperparameters), for warm starts
        self._warm: tuple[int, dict[str, Tensor]] | None = None

    @property
    def fitted_noise_prior(self) -> NoisePrior:
        """The noise prior the GPs are fitted with: ``adaptive`` is ``botorch`` in :data:`HIGH_DIMENSIONAL` variables
        and up."""
        if self.noise_prior == "adaptive" and self.space.d >= HIGH_DIMENSIONAL:
            return "botorch"
        return self.noise_prior

    def likelihood(self, k: int, noise_prior: NoisePrior | None = None) -> GaussianLikelihood | None:
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

    def build(self, X: Tensor, outcomes: Tensor, noise_prior: NoisePrior | None = None) -> SingleTaskGP | ModelListGP:
        """An unfitted GP on ``X: n x d`` (unit cube) and ``outcomes: n x k``; one batched GP for all ``k``, or, when
        an outcome is NaN at some point, a ``ModelListGP`` of one GP per outcome on the points where it is not.

        ``noise_prior`` defaults to the planner's (``adaptive`` builds with the low one first).
        """
        present = ~outcomes.isnan()
        if not bool(present.all()):
            return ModelListGP(
                *(self.build(X[rows], outcomes[rows, i : i + 1], noise_prior) for i, rows in enumerate(present.T))
            )
        k = outcomes.shape[-1]
        likelihood = self.likelihood(k, noise_prior)
        if self.space.cat_dims:
            return MixedSingleTaskGP(
                X, outcomes, cat_dims=self.space.cat_dims, outcome_transform=Standardize(m=k), likelihood=likelihood
            )
        # No input transform: X is in the unit cube already, and a ``Normalize`` to the unit cube is the identity
        # that cost proposal time for the same proposals bit for bit (see
        # ``benchmarks/proposal_overhead.py``).
        return SingleTaskGP(X, outcomes, likelihood=likelihood, outcome_transform=Standardize(m=k))

    def fit(
        self, X: Tensor, Y: Tensor, C: Tensor, start: dict[str, Tensor] | None = None, from_priors: bool = False
    ) -> SingleTaskGP | ModelListGP:
        """Fit one GP to ``X: n x d`` (unit cube) and the outcomes ``[Y | C]: n x k``; with an outcome NaN at some
        point, one GP per outcome, each fitted as here to the points where its outcome is not NaN (a
        ``ModelListGP``: the objective's GP uses a point whose constraint output is missing, the constraint's
        skips it).

        The fit starts from ``start`` (hyperparameters of an earlier fit of the same outcomes) when given, from
        hyperparameters drawn from their priors (BoTorch's ``sample_all_priors``, torch's RNG) with ``from_priors``,
        otherwise from the defaults. A refit with no noise prior (``adaptive``) always starts from the defaults:
        started from the last such refit, it kept the noise of fewer data (``docs/explanation/planners.md``).
        """
        outcomes = torch.cat([Y, C], dim=-1)
        present = ~outcomes.isnan()
        if not bool(present.all()):
            return ModelListGP(
                *(
                    self.fit(
                        X[rows], outcomes[rows, i : i + 1], C[rows, :0], _within(start, f"models.{i}."), from_priors
                    )
                    for i, rows in enumerate(present.T)
                )
            )
        with expected_warnings_logged():
            model = self.build(X, outcomes)
            if start is not None:
                loaded(model, start)  # a start of another shape (fitted before an output went missing) is not used
            if from_priors:
                sample_all_priors(model)
            if self.fitted_noise_prior != "adaptive":
                fit_gpytorch_mll(ExactMarginalLogLikelihood(model.likelihood, model))
            elif fit_and_check_noise(model):
                # the low-noise prior made the GP explain noise as structure: fit again with no prior on the noise
                model = self.build(X, torch.cat([Y, C], dim=-1), noise_prior="flat")
                fit_gpytorch_mll(ExactMarginalLogLikelihood(model.likelihood, model))
        return model

    def model_for(self, X: Tensor, Y: Tensor, C: Tensor, keep: Tensor | None = None) -> Model:
        """The model for this proposal: fitted (warm-started), or conditioned with reused hyperparameters.

        ``keep`` (indices into ``X``, see :mod:`planners._large`): the GP is conditioned on those observations only;
        the hyperparameters are fitted as without it.
        """
        n = len(X)
        if self.options.refit == "always" or n < self.options.always_refit_below:
            if n <= self.options.max_fit_points and keep is None:
                # A warm start from a fit that took the data as noiseless begins at the noise's lower bound, where the
                # gradient of its softplus parameter vanishes: warm fits alone never found the noise that more data
                # reveal. Cold fits on a geometric schedule find it; warm fits in between are cheaper (the
                # measurements: docs/explanation/planners.md).
                warm = (
                    self._warm
                    if self.options.warm_start and self._warm and n < self._warm[0] * COLD_FIT_GROWTH
                    else None
                )
                model = self.fit(X, Y, C, start=warm[1] if warm else None)
                self._warm = (warm[0] if warm else n, hyperparameters(model))
                self.n_fits += 1
                return model
            fitted = self._fit_hyperparameters(X, Y, C)
            reused = False
        else:
            size = refit_size(n, self.options.always_refit_below, self.options.refit_growth)
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
        model = self.fit(X, Y, C)
        self.n_fits += 1
        if self._fitted is not None and self._fitted[1] is fitted:
            self._fitted = (self._fitted[0], hyperparameters(model))
        return model

    def _fit_hyperparameters(self, X: Tensor, Y: Tensor, C: Tensor) -> dict[str, Tensor]:
        """Fit a GP to ``X, Y, C`` (a seeded subset of ``max_fit_points`` when larger) from the defaults."""
        n = len(X)
        if n > self.options.max_fit_points:
            generator = torch.Generator().manual_seed(self.seed + n)
            keep = torch.randperm(n, generator=generator)[: self.options.max_fit_points].sort().values
            X, Y, C = X[keep], Y[keep], C[keep]
        model = self.fit(X, Y, C)
        self.n_fits += 1
        return hyperparameters(model)

    def _conditioned(self, X: Tensor, Y: Tensor, C: Tensor, fitted: dict[str, Tensor]) -> Model | None:
        """A GP on all of ``X`` and ``[Y | C]`` with the given hyperparameters; None when they are another model's
        (:func:`loaded`)."""
        with expected_warnings_logged():
            model = self.build(X, torch.cat([Y, C], dim=-1))
            if not loaded(model, fitted):
                return None
        return model.eval()
