"""Bayesian optimization with BoTorch: a GP on the observations and a log-improvement acquisition function."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from botorch.acquisition import AcquisitionFunction, LogExpectedImprovement, qLogNoisyExpectedImprovement
from botorch.exceptions import ModelFittingError
from botorch.exceptions.warnings import BadInitialCandidatesWarning, InputDataWarning, OptimizationWarning
from botorch.fit import fit_gpytorch_mll
from botorch.models import SingleTaskGP
from botorch.models.transforms import Normalize, Standardize
from botorch.optim import optimize_acqf
from gest_api.vocs import VOCS
from gpytorch.mlls import ExactMarginalLogLikelihood
from linear_operator.utils.warnings import NumericalWarning
from torch import Tensor

from closedloop.errors import PlannerError
from planners._base import PlannerBase
from planners.sobol import sobol_points

_log = logging.getLogger(__name__)

#: Warnings BoTorch emits in normal use (a fit that retried, a restart that stopped early, a foreign
#: point just outside the bounds). They are logged, not shown; any other warning passes through unchanged.
_EXPECTED_WARNINGS = (InputDataWarning, OptimizationWarning, BadInitialCandidatesWarning, NumericalWarning)

#: The model needs at least this many ok observations; before that the planner keeps to the Sobol design.
MIN_OBSERVATIONS = 2


@contextmanager
def _expected_warnings_logged() -> Iterator[None]:
    """Log BoTorch's expected warnings raised inside the block; re-emit every other warning."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    for w in caught:
        if issubclass(w.category, _EXPECTED_WARNINGS):
            _log.info("%s: %s", w.category.__name__, w.message)
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno, source=w.source)


class BoTorchPlanner(PlannerBase):
    """Bayesian optimization: a Sobol start, then a GP and log expected improvement.

    The first ``n_initial`` points come from a seeded scrambled Sobol design, so a cold start is
    space-filling. After that, a ``SingleTaskGP`` (float64, inputs in the unit cube, ``Standardize`` on the
    outcome) is fit to the ok observations with ``fit_gpytorch_mll``. One point with nothing pending is
    chosen by ``LogExpectedImprovement`` against the best observed value; a batch, or one point while others
    are in flight, by ``qLogNoisyExpectedImprovement`` with the pending points as ``X_pending``, so points in
    flight are not proposed again. Failed points are never fit. Minimization negates the objective.

    Reproducible: the same seed and the same ingested data give the same points (the torch RNG is forked and
    seeded from ``seed`` and the number of points known for every call, and global state is left untouched).

    Args:
        vocs: the problem (see :class:`~planners.PlannerBase`).
        seed: seed for the design, the fit and the acquisition optimizer; ``None`` draws one.
        n_initial: points of the Sobol design before the model takes over.
        num_restarts: optimizer restarts for the acquisition function.
        raw_samples: random samples used to choose the restarts.
        maxiter: most optimizer iterations per restart.

    Raises:
        PlannerError: the VOCS is unsupported or an option is out of range.
    """

    def __init__(
        self,
        vocs: VOCS,
        *,
        seed: int | None = None,
        n_initial: int = 5,
        num_restarts: int = 4,
        raw_samples: int = 128,
        maxiter: int = 200,
        **options: Any,
    ) -> None:
        super().__init__(vocs, seed=seed, **options)
        for option, value, least in (
            ("n_initial", n_initial, 1),
            ("num_restarts", num_restarts, 1),
            ("raw_samples", raw_samples, num_restarts),
            ("maxiter", maxiter, 1),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < least:
                raise PlannerError(f"BoTorchPlanner option {option} must be an integer >= {least}, got {value!r}")
        self.n_initial = n_initial
        self.num_restarts = num_restarts
        self.raw_samples = raw_samples
        self.maxiter = maxiter
        self._unit_bounds = torch.stack([torch.zeros(self.dim), torch.ones(self.dim)]).to(torch.float64)

    def _propose(self, n: int) -> Tensor:
        known = self.n_known
        n_design = min(n, max(0, self.n_initial - known))
        if self.n_observed < MIN_OBSERVATIONS:
            n_design = n
        design = sobol_points(self.dim, n_design, seed=self.seed, skip=known)
        if n_design == n:
            return design
        X, Y = self.train_data()
        X_pending = torch.cat([self.pending_unit(), design])
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed + known)
            try:
                model = self._fit(X, Y)
            except ModelFittingError as exc:
                _log.warning("GP fit failed (%s); proposing Sobol points instead", exc)
                return sobol_points(self.dim, n, seed=self.seed, skip=known)
            candidates = self._optimize(model, X, Y, X_pending, q=n - n_design)
        return torch.cat([design, candidates])

    def _fit(self, X: Tensor, Y: Tensor) -> SingleTaskGP:
        """Fit a GP to ``X: n x d`` (unit cube) and ``Y: n x 1`` (larger is better)."""
        with _expected_warnings_logged():
            model = SingleTaskGP(
                X,
                Y,
                input_transform=Normalize(d=self.dim, bounds=self._unit_bounds),
                outcome_transform=Standardize(m=1),
            )
            fit_gpytorch_mll(ExactMarginalLogLikelihood(model.likelihood, model))
        return model

    def _optimize(self, model: SingleTaskGP, X: Tensor, Y: Tensor, X_pending: Tensor, q: int) -> Tensor:
        """Choose ``q`` new points (``q x d``, unit cube) given the pending ones (``X_pending: p x d``)."""
        acq: AcquisitionFunction
        if q == 1 and len(X_pending) == 0:
            acq = LogExpectedImprovement(model, best_f=Y.max())
        else:
            acq = qLogNoisyExpectedImprovement(
                model, X_baseline=X, X_pending=X_pending if len(X_pending) else None, prune_baseline=True
            )
        with _expected_warnings_logged():
            candidates, _ = optimize_acqf(
                acq,
                bounds=self._unit_bounds,
                q=q,
                num_restarts=self.num_restarts,
                raw_samples=self.raw_samples,
                options={"maxiter": self.maxiter},
            )
        return candidates.detach().reshape(q, self.dim)
