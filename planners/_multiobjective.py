"""The BoTorch planner's acquisition for two or more objectives: log hypervolume improvement against a reference
point, noisy or exact.

Model outputs are laid out as in :mod:`planners._acquisition`: ``[objective_1 .. objective_m, constraints ..]``,
objectives signed so that larger is better. Everything here is in that maximization space.
"""

from __future__ import annotations

from collections.abc import Callable

from botorch.acquisition import AcquisitionFunction
from botorch.acquisition.multi_objective.logei import (
    qLogExpectedHypervolumeImprovement,
    qLogNoisyExpectedHypervolumeImprovement,
)
from botorch.acquisition.multi_objective.objective import IdentityMCMultiOutputObjective
from botorch.models.model import Model
from botorch.sampling.base import MCSampler
from botorch.utils.multi_objective.box_decompositions.non_dominated import FastNondominatedPartitioning
from botorch.utils.multi_objective.pareto import is_non_dominated
from torch import Tensor

from planners._fitting import noise_share

#: The observed front is taken as exact (``qLogExpectedHypervolumeImprovement``) while the GP puts less than this
#: share of every objective's (standardized) variance in noise. On noiseless test functions the low-noise prior
#: still fits about 1 % (its prior mean) once there are three objectives, so "noiseless" alone
#: (:func:`~planners._fitting.noiseless`) would almost never choose it.
EXACT_BELOW = 0.05


def takes_as_exact(model: Model) -> bool:
    """Whether the observed objectives are near enough the model's noiseless values to serve as the front."""
    return noise_share(model) < EXACT_BELOW


def hypervolume_improvement(
    model: Model,
    X: Tensor,
    Y: Tensor,
    ref_point: Tensor,
    sampler: MCSampler,
    *,
    constraints: list[Callable[[Tensor], Tensor]] | None = None,
    X_pending: Tensor | None = None,
    exact: bool = False,
) -> AcquisitionFunction:
    """The log hypervolume improvement of new points over the observations, above ``ref_point``.

    With ``exact`` (the model puts little of the data's variance in noise, :func:`takes_as_exact`), no constraints
    and nothing pending: ``qLogExpectedHypervolumeImprovement`` over one box decomposition of the observed front.
    Otherwise ``qLogNoisyExpectedHypervolumeImprovement``, which integrates
    over the fronts of posterior samples at the observations: a box decomposition per sample, built when the
    function is made (with three objectives, most of a proposal's time). Where the posterior at the observations
    is nearly certain, the two agree.

    Args:
        model: the fitted GP, objectives first. X: ``n x d`` ok observations (unit cube).
        Y: ``n x m`` the objectives there (larger is better). ref_point: ``m``, in the same space.
        sampler: the quasi-MC sampler. constraints: BoTorch outcome constraints (feasible when ``<= 0``).
        X_pending: ``p x d`` points in flight (or failed), or None.
        exact: whether the observed objectives are the noiseless values.
    """
    objective = IdentityMCMultiOutputObjective(outcomes=list(range(Y.shape[-1])))
    if exact and not constraints and X_pending is None:
        front = Y[is_non_dominated(Y)]
        partitioning = FastNondominatedPartitioning(ref_point=ref_point, Y=front)
        return qLogExpectedHypervolumeImprovement(
            model, ref_point=ref_point, partitioning=partitioning, sampler=sampler, objective=objective
        )
    return qLogNoisyExpectedHypervolumeImprovement(
        model,
        sampler=sampler,
        ref_point=ref_point,
        X_baseline=X,
        objective=objective,
        constraints=constraints or None,
        X_pending=X_pending,
        prune_baseline=True,
    )
