"""A low-noise GP fit that ends once it has settled at the lengthscale floor (:func:`fit_and_check_noise`).

With ``noise_prior: adaptive`` such a fit is thrown away for one with no noise prior; running it to its end gains
nothing (:class:`_WatchesTheFloor`).
"""

from __future__ import annotations

from collections import deque
from typing import Any

from botorch.fit import fit_gpytorch_mll
from botorch.models import SingleTaskGP
from botorch.optim.closures import get_loss_closure_with_grads
from botorch.optim.core import OptimizationResult
from botorch.optim.fit import fit_gpytorch_mll_scipy
from botorch.optim.utils import get_parameters
from gpytorch.mlls import ExactMarginalLogLikelihood
from torch import Tensor

from planners.gp.reading import fitted_noise, interpolates_noise

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

    Such a fit is thrown away for a fit with no noise prior (:meth:`~planners.gp.fitting.GPFitting.fit`); run to its
    end, it would drive the noise towards its lower bound in small steps that gain almost nothing. The closure raises
    :class:`_Settled` once the fit has sat at the floor for :data:`SETTLED_EVALUATIONS` evaluations while the best
    loss fell by at most :data:`SETTLED_GAIN` of itself, with the noise below :data:`SETTLED_NOISE` (how these were
    chosen, and what the rule saves: ``docs/explanation/planners.md``).
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
