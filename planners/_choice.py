"""Which acquisition function the BoTorch planner maximizes (:func:`choose_acquisition`), and the analytic one of
the recovery step ``simpler acquisition`` (:func:`simple_acquisition`).

Which acquisition function:

- one objective, no constraints: ``qLogNoisyExpectedImprovement`` with the pending points as ``X_pending``;
  ``acquisition="logei"`` (``"logei-mean"``) is ``LogExpectedImprovement`` against the best observed value
  (the best posterior mean) for one point with nothing pending; ``pending="believe"``, one point with points in
  flight, once a reading stood out: UCB on the GP told its own mean there
  (:func:`~planners._acquisition.believed_ucb`);
- while no ok observation is feasible, the search for feasibility (``feasibility_search``, said in ``why``;
  :mod:`planners._feasibility`);
- one objective with constraints: ``qLogNoisyExpectedImprovement`` with the constraints as outcome constraints;
  one point with nothing pending on data the GP fits as noiseless (or with ``acquisition="logei"``): the
  analytic ``LogConstrainedExpectedImprovement`` against the best feasible observed value;
- two or more objectives: ``qLogNoisyExpectedHypervolumeImprovement`` against ``reference_point`` or the nadir
  of the observed objectives less 10% of their range (:mod:`planners._multiobjective`).

Model outputs are laid out as ``[objective_1 .. objective_m, constraint_1 .. constraint_k]`` (see
:mod:`planners._acquisition`); ``docs/explanation/planners.md`` says why each choice, with the measurements.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np
import torch
from botorch.acquisition import AcquisitionFunction, LogExpectedImprovement, qLogNoisyExpectedImprovement
from botorch.acquisition.analytic import LogConstrainedExpectedImprovement, LogProbabilityOfFeasibility
from botorch.acquisition.logei import qLogProbabilityOfFeasibility
from botorch.acquisition.objective import GenericMCObjective
from botorch.models.model import Model
from botorch.sampling.normal import SobolQMCNormalSampler
from gest_api.vocs import VOCS
from torch import Tensor

from planners._acquisition import (
    believed_ucb,
    constraint_bounds,
    first_output,
    infer_reference_point,
    outcome_constraints,
)
from planners._multiobjective import hypervolume_improvement
from planners._pending import choose_pending
from planners.gp.reading import noiseless, stood_out
from planners.options import BoTorchOptions


class Chooser(Protocol):
    """What the acquisition choice reads of its planner (a :class:`~planners.BoTorchPlanner`), named here so that
    this module does not import the planner that calls it."""

    @property
    def vocs(self) -> VOCS: ...
    @property
    def options(self) -> BoTorchOptions: ...
    @property
    def reference_point(self) -> Tensor | None: ...
    @property
    def best(self) -> dict[str, Any] | None: ...
    @property
    def signs(self) -> list[float]: ...
    @property
    def objective_names(self) -> list[str]: ...
    def any_feasible(self) -> bool: ...
    def pending_unit(self) -> np.ndarray: ...


def sampler(options: BoTorchOptions) -> SobolQMCNormalSampler:
    """Quasi-MC base samples for the MC acquisition functions (``mc_samples`` of them)."""
    return SobolQMCNormalSampler(sample_shape=torch.Size([options.mc_samples]))


def best_feasible(planner: Chooser) -> Tensor:
    """The best feasible observed objective value (:attr:`~planners.PlannerBase.best`), signed so that larger is
    better, as a float64 tensor; asked for only once an observation is feasible."""
    best = planner.best
    assert best is not None, "no feasible observation yet"
    return torch.tensor(planner.signs[0] * float(best[planner.objective_names[0]]), dtype=torch.float64)


def choose_acquisition(
    planner: Chooser, model: Model, X: Tensor, Y: Tensor, C: Tensor, X_pending: Tensor, q: int
) -> AcquisitionFunction:
    """The acquisition function for ``q`` new points given the model, the ok observations it is conditioned on
    (``X: n x d`` unit cube, ``Y: n x m`` signed objectives, ``C: n x k`` constraint outputs) and the points in
    flight (``X_pending: p x d``, failed points included): see :class:`~planners.BoTorchPlanner`."""
    m = Y.shape[1]
    constraints = outcome_constraints(planner.vocs, first_col=m)
    pending = X_pending if len(X_pending) else None
    if constraints and not planner.any_feasible():
        return qLogProbabilityOfFeasibility(
            model, constraints=constraints, X_pending=pending, sampler=sampler(planner.options)
        )
    if m > 1:
        ref_point = planner.reference_point if planner.reference_point is not None else infer_reference_point(Y)
        return hypervolume_improvement(
            model, X, Y, ref_point, sampler(planner.options), constraints=constraints, X_pending=pending
        )
    acquisition = planner.options.acquisition
    if (
        constraints
        and q == 1
        and pending is None
        and (acquisition == "logei" or (acquisition == "auto" and noiseless(model)))
    ):
        # the incumbent is known exactly: analytic, no joint posterior over the observed points; with one
        # restart at the best feasible observation it closes in on an optimum on a constraint's boundary
        # (see docs/benchmarks/constrained.md)
        return LogConstrainedExpectedImprovement(
            model,
            best_f=best_feasible(planner),
            objective_index=0,
            constraints=constraint_bounds(planner.vocs, m),
        )
    if constraints:
        return qLogNoisyExpectedImprovement(
            model,
            sampler=sampler(planner.options),
            X_baseline=X,
            objective=GenericMCObjective(first_output),
            constraints=constraints,
            X_pending=pending,
            prune_baseline=True,
        )
    if pending is not None and q == 1 and believes(planner, model, X, Y):
        return believed_ucb(model, pending, planner.options.ucb_beta)
    if q == 1 and pending is None and planner.options.acquisition == "logei":
        return LogExpectedImprovement(model, best_f=Y.max())
    if q == 1 and pending is None and planner.options.acquisition == "logei-mean":
        with torch.no_grad():
            incumbent = model.posterior(X).mean.max()  # type: ignore[attr-defined]
        return LogExpectedImprovement(model, best_f=incumbent)
    return qLogNoisyExpectedImprovement(
        model, X_baseline=X, X_pending=pending, prune_baseline=True, sampler=sampler(planner.options)
    )


def believes(planner: Chooser, model: Model, X: Tensor, Y: Tensor) -> bool:
    """Whether a proposal with points in flight believes the GP there (``pending``; :mod:`planners._pending`)."""
    if planner.options.pending == "auto":
        in_flight = len(planner.pending_unit())
        return choose_pending(model, X, Y, in_flight, planner.options.n_initial) == "believe"
    return planner.options.pending == "believe" and stood_out(Y[:, 0])


def simple_acquisition(planner: Chooser, model: Model, Y: Tensor, G: Tensor | None) -> AcquisitionFunction:
    """An analytic acquisition function on ``model`` for one point, the recovery step ``simpler acquisition``:
    ``LogProbabilityOfFeasibility`` while nothing is feasible, ``LogConstrainedExpectedImprovement`` with
    constraints, else ``LogExpectedImprovement``. One objective only (the planner skips the step for several)."""
    m = Y.shape[1]
    if G is not None:
        return LogProbabilityOfFeasibility(model, {i: (None, 0.0) for i in range(G.shape[-1])})
    if planner.vocs.constraints:
        bounds = constraint_bounds(planner.vocs, m)
        return LogConstrainedExpectedImprovement(model, best_feasible(planner), 0, constraints=bounds)
    return LogExpectedImprovement(model, best_f=Y.max())
