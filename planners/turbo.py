"""Trust-region Bayesian optimization (TuRBO-1, Eriksson et al., NeurIPS 2019) for problems of six or more variables.

A single GP fit over the whole space of a high-dimensional problem is spread thin; TuRBO keeps the search local.
A box around the best observed point, its sides shaped by the GP's lengthscales, grows after a run of improvements,
shrinks after a run of failures, and when it has shrunk to nothing the search starts again from a fresh space-filling
design.

The trust-region state is never stored: it is replayed from the ingested observations, in order, on every proposal
(:func:`replay_trust_region`). A planner rebuilt on resume by re-ingesting the observations is therefore in exactly
the state the original was in.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
from botorch.acquisition import qLogNoisyExpectedImprovement
from botorch.exceptions import ModelFittingError
from botorch.fit import fit_gpytorch_mll
from botorch.models import SingleTaskGP
from botorch.models.model import Model
from botorch.models.transforms import Standardize
from botorch.optim import optimize_acqf
from gest_api.vocs import VOCS, ContextualVariable, ContinuousVariable
from gpytorch.mlls import ExactMarginalLogLikelihood
from linear_operator.utils.errors import NotPSDError
from torch import Tensor
from torch.quasirandom import SobolEngine

from closedloop.errors import PlannerError
from planners._base import PlannerBase, near_any
from planners.gp.expected_warnings import expected_warnings_logged
from planners.options import MIN_OBSERVATIONS, TurboOptions

_log = logging.getLogger(__name__)


LENGTH_INIT = 0.8
LENGTH_MIN = 0.5**7
LENGTH_MAX = 1.6
SUCCESS_TOLERANCE = 3
#: An observation improves on the best when it beats it by this fraction of ``|best|`` (as in the paper).
IMPROVEMENT_FRACTION = 1e-3


@dataclass(frozen=True)
class TrustRegionState:
    """Where the trust region stands after a sequence of observations.

    Attributes:
        length: side length ``L`` of the region in the unit cube, before the lengthscale weights.
        successes: consecutive improving batches since the last change of ``length``.
        failures: consecutive non-improving batches since the last change of ``length``.
        restarts: times the region collapsed and the search started again.
        run_start: index (among ok observations, in ingest order) of the first observation of the current run;
            only observations from here on are fit and define the centre.
        best_value: best objective (larger is better) of the current run, or None when it has none yet.
    """

    length: float = LENGTH_INIT
    successes: int = 0
    failures: int = 0
    restarts: int = 0
    run_start: int = 0
    best_value: float | None = None


def failure_tolerance(dim: int, batch_size: int) -> int:
    """Non-improving batches before the region shrinks: ``ceil(max(4 / q, d / q))`` (the paper's choice)."""
    return math.ceil(max(4.0 / batch_size, dim / batch_size))


def replay_trust_region(Y: Sequence[float], *, dim: int, n_initial: int, batch_size: int = 1) -> TrustRegionState:
    """Replay TuRBO's success/failure rule over objective values ``Y`` (larger is better), in ingest order.

    Each run opens with its first ``n_initial`` observations (the space-filling design), which only set the best
    value. The rest are taken in consecutive batches of ``batch_size``: a batch whose best beats the run's best by
    ``1e-3 * |best|`` is a success, any other a failure. ``3`` successes in a row double the length (up to 1.6),
    :func:`failure_tolerance` failures in a row halve it; below ``0.5**7`` the run ends and a new one begins with
    the next observation. A trailing incomplete batch is not counted yet.
    """
    fail_tol = failure_tolerance(dim, batch_size)
    length, succ, fail, restarts, start = LENGTH_INIT, 0, 0, 0, 0
    best: float | None = None
    pos = 0
    while pos < len(Y):
        if pos - start < n_initial:
            best = Y[pos] if best is None else max(best, Y[pos])
            pos += 1
            continue
        batch = Y[pos : pos + batch_size]
        if len(batch) < batch_size:
            break
        pos += batch_size
        top = max(batch)
        if best is None or top > best + IMPROVEMENT_FRACTION * abs(best):
            succ, fail = succ + 1, 0
        else:
            succ, fail = 0, fail + 1
        best = top if best is None else max(best, top)
        if succ >= SUCCESS_TOLERANCE:
            length, succ = min(2.0 * length, LENGTH_MAX), 0
        elif fail >= fail_tol:
            length, fail = length / 2.0, 0
        if length < LENGTH_MIN:
            length, succ, fail, best = LENGTH_INIT, 0, 0, None
            restarts += 1
            start = pos
    return TrustRegionState(length, succ, fail, restarts, start, best)


class TurboPlanner(PlannerBase):
    """TuRBO-1: Bayesian optimization inside a trust region that follows the best point.

    Each run starts with ``n_initial`` scrambled Sobol points. Then a ``SingleTaskGP`` (float64, no input transform,
    ``Standardize``) is fit to the run's ok observations (the ``max_fit_points`` nearest the centre when there
    are more), and the region is the box centred on the run's best point with sides
    ``L * w_i``, where ``w`` are the GP's ARD lengthscales scaled to geometric mean 1, clipped to the unit cube.
    Points are chosen inside it by Thompson sampling over a perturbed Sobol candidate set (``acquisition="ts"``,
    the paper's choice) or by ``qLogNoisyExpectedImprovement`` optimized over the box (``"qlognei"``). Points in
    flight are accounted for: Thompson sampling conditions the GP on them at its posterior mean, qLogNEI takes
    them as ``X_pending``. ``L`` follows :func:`replay_trust_region`; a collapsed region starts a new run with a
    fresh Sobol design (a new scramble), fitting only the new run's data.

    Reproducible: the same seed and the same ingested sequence give the same points, and the state is a
    function of the ingested sequence alone, so a planner rebuilt from re-ingested observations carries on.

    Failed points (rejected, aborted, faulty runs) are never fit and stay pending for good (conditioned on for
    Thompson sampling, ``X_pending`` for qLogNEI); no proposal lies within ``SAME_POINT`` of one, of a pending
    point or of another point of the batch.

    Args:
        vocs: the problem: continuous variables, one objective, no constraints.
        seed: seed for the designs, the fit and the acquisition; ``None`` draws one.
        **options: see :class:`~planners.options.TurboOptions` (``closedloop planners turbo`` lists them).

    Raises:
        PlannerError: the VOCS is unsupported (constraints, several objectives, non-continuous variables) or an
            option is out of range.
    """

    options_model: ClassVar[type[TurboOptions]] = TurboOptions
    options: TurboOptions

    def __init__(self, vocs: VOCS, *, seed: int | None = None, **options: Any) -> None:
        super().__init__(vocs, seed=seed, **options)
        o, d = self.options, self.dim
        #: Sobol points of each run's design: the option, or ``max(2 d, 5)`` (the other options are read from
        #: :attr:`options`).
        self.n_initial = max(2 * d, 5) if o.n_initial is None else o.n_initial
        #: Thompson-sampling candidates: the option, or ``min(5000, max(1000, 100 d))``.
        self.n_candidates = min(5000, max(1000, 100 * d)) if o.n_candidates is None else o.n_candidates
        #: 2 x d, the trust region of the last proposal in the unit cube, or None when it came from a design.
        self.last_region: Tensor | None = None

    def _validate_vocs(self, vocs: VOCS) -> None:
        super()._validate_vocs(vocs)
        # Refused here as well, whatever the base comes to support: TuRBO-1 here is continuous, single objective.
        if vocs.constraints:
            raise PlannerError(
                f"TurboPlanner does not support constraints; got {', '.join(vocs.constraints)}",
                hint="remove the constraints or choose a planner that supports them",
            )
        if len(vocs.objectives) != 1:
            raise PlannerError(f"TurboPlanner supports exactly one objective; got {len(vocs.objectives)}")
        for var, spec in vocs.variables.items():
            if isinstance(spec, ContextualVariable) or not isinstance(spec, ContinuousVariable):
                raise PlannerError(
                    f"TurboPlanner supports continuous variables only; variable '{var}' is {type(spec).__name__}"
                )

    # -- state ---------------------------------------------------------------------------------------------

    @property
    def trust_region(self) -> TrustRegionState:
        """The trust-region state replayed from the ok observations ingested so far."""
        _, Y = self._data()
        return replay_trust_region(
            Y.reshape(-1).tolist(), dim=self.dim, n_initial=self.n_initial, batch_size=self.options.batch_size
        )

    def _design(self, n: int, restarts: int) -> Tensor:
        """``n`` Sobol points for run ``restarts`` (a new scramble per run), continuing after every known point."""
        seed = self.seed if restarts == 0 else (self.seed + 104_729 * restarts) % 2**31
        engine = SobolEngine(dimension=self.dim, scramble=True, seed=seed)
        if self.n_known:
            engine.fast_forward(self.n_known)
        return engine.draw(n, dtype=torch.float64)

    # -- proposing -----------------------------------------------------------------------------------------

    def _data(self) -> tuple[Tensor, Tensor]:
        """:meth:`train_data` as tensors (``0 x d`` and ``0 x 1`` before any ok observation)."""
        X, Y = self.train_data()
        return torch.from_numpy(X).reshape(-1, self.dim), torch.from_numpy(Y).reshape(-1, 1)

    def _propose(self, n: int) -> np.ndarray:
        return self._points(n).detach().numpy()

    def _points(self, n: int) -> Tensor:
        """``n`` new points in the unit cube, ``n x d`` (see :meth:`PlannerBase._propose`)."""
        X, Y = self._data()
        state = replay_trust_region(
            Y.reshape(-1).tolist(), dim=self.dim, n_initial=self.n_initial, batch_size=self.options.batch_size
        )
        X, Y = X[state.run_start :], Y[state.run_start :]
        n_design = min(n, max(0, self.n_initial - len(Y) - len(self._pending)))
        # failed points stay pending for good, so that they are never proposed again
        pending = torch.from_numpy(np.concatenate([self.pending_unit(), self.failed_unit()]))
        if len(Y) < MIN_OBSERVATIONS:
            n_design = n
        design = self._design(n_design, state.restarts)
        design_why = "initial design" if not state.restarts else f"initial design, restart {state.restarts}"
        self.last_region = None
        if n_design == n:
            self._explain([design_why] * n)
            return design
        X_pending = torch.cat([pending, design])
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed + self.n_known)
            center = X[Y.reshape(-1).argmax()]
            X, Y = self._nearest(X, Y, center)
            try:
                model = self._fit(X, Y)
                weights = self._weights(model)
            except (ModelFittingError, NotPSDError) as exc:
                _log.warning("GP fit failed (%s); sampling the trust region uniformly", exc)
                model, weights = None, torch.ones(self.dim, dtype=torch.float64)
            half = weights * state.length / 2.0
            region = torch.stack([(center - half).clamp(0.0, 1.0), (center + half).clamp(0.0, 1.0)])
            self.last_region = region
            q = n - n_design
            if model is None:
                candidates = region[0] + (region[1] - region[0]) * torch.rand(q, self.dim, dtype=torch.float64)
                how = "uniform in the trust region: the GP fit failed"
            elif self.options.acquisition == "ts":
                candidates = self._thompson(model, center, region, X_pending, q)
                how = f"model (Thompson sampling), trust region {state.length:.2g}"
            else:
                candidates = self._qlognei(model, X, region, X_pending, q)
                how = f"model (qLogNEI), trust region {state.length:.2g}"
            self._explain([design_why] * n_design + [how] * q)
            candidates = self._distinct(candidates, X_pending, region)
        return torch.cat([design, candidates])

    @staticmethod
    def _distinct(candidates: Tensor, avoid: Tensor, region: Tensor) -> Tensor:
        """Replace each candidate within ``SAME_POINT`` of ``avoid`` or of an earlier one by a uniform point of
        ``region`` that is not (kept after 100 tries, in a region too small to hold it)."""
        out: list[Tensor] = []
        for row in candidates:
            for _ in range(100):
                taken = torch.cat([avoid, *[r[None] for r in out]])
                if not len(taken) or not bool(near_any(row[None].numpy(), taken.numpy())[0]):
                    break
                row = region[0] + (region[1] - region[0]) * torch.rand(len(row), dtype=torch.float64)
            out.append(row)
        return torch.stack(out)

    def _nearest(self, X: Tensor, Y: Tensor, center: Tensor) -> tuple[Tensor, Tensor]:
        """The ``max_fit_points`` observations nearest ``center`` (sup norm), all of them when there are fewer."""
        if len(X) <= self.options.max_fit_points:
            return X, Y
        keep = (X - center).abs().amax(dim=-1).argsort(stable=True)[: self.options.max_fit_points]
        return X[keep], Y[keep]

    def _fit(self, X: Tensor, Y: Tensor) -> SingleTaskGP:
        """Fit a GP to ``X: n x d`` (unit cube) and ``Y: n x 1`` (larger is better)."""
        with expected_warnings_logged():
            model = SingleTaskGP(X, Y, outcome_transform=Standardize(m=1))  # X in the unit cube: no input transform
            fit_gpytorch_mll(ExactMarginalLogLikelihood(model.likelihood, model))
        return model

    def _weights(self, model: SingleTaskGP) -> Tensor:
        """The ARD lengthscales (``d``), scaled to geometric mean 1."""
        kernel = getattr(model.covar_module, "base_kernel", model.covar_module)
        lengthscales = kernel.lengthscale.detach().to(torch.float64).reshape(-1).expand(self.dim)
        return lengthscales / lengthscales.log().mean().exp()

    def _thompson(self, model: SingleTaskGP, center: Tensor, region: Tensor, X_pending: Tensor, q: int) -> Tensor:
        """Thompson sampling on perturbed Sobol candidates in ``region``: ``q x d``, distinct points."""
        m = max(self.n_candidates, q)
        engine = SobolEngine(dimension=self.dim, scramble=True, seed=int(torch.randint(2**31 - 1, (1,))))
        sobol = region[0] + (region[1] - region[0]) * engine.draw(m, dtype=torch.float64)
        # Perturb only some coordinates of the centre (about 20 of them), as the paper does for large d.
        mask = torch.rand(m, self.dim, dtype=torch.float64) <= min(20.0 / self.dim, 1.0)
        empty = ~mask.any(dim=-1)
        mask[empty, torch.randint(self.dim, (int(empty.sum()),))] = True
        candidates = torch.where(mask, sobol, center.expand_as(sobol))
        with expected_warnings_logged(), torch.no_grad():
            if len(X_pending):
                # Kriging believer: points in flight are taken at the posterior mean, which removes their
                # uncertainty, so samples do not pile up on them.
                believed = model.posterior(X_pending).mean
                sampled: Model = model.condition_on_observations(X_pending, believed)
            else:
                sampled = model
            samples = sampled.posterior(candidates).rsample(torch.Size([q])).reshape(q, -1)
        chosen: list[int] = []
        for sample in samples:
            order = sample.argsort(descending=True).tolist()
            chosen.append(next(i for i in order if i not in chosen))
        return candidates[chosen]

    def _qlognei(self, model: SingleTaskGP, X: Tensor, region: Tensor, X_pending: Tensor, q: int) -> Tensor:
        """``q`` points maximizing qLogNEI over ``region`` given the pending points: ``q x d``."""
        acq = qLogNoisyExpectedImprovement(
            model, X_baseline=X, X_pending=X_pending if len(X_pending) else None, prune_baseline=True
        )
        with expected_warnings_logged():
            candidates, _ = optimize_acqf(
                acq, bounds=region, q=q, num_restarts=self.options.num_restarts, raw_samples=self.options.raw_samples
            )
        return candidates.detach().reshape(q, self.dim)
