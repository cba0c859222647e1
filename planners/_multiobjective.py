"""The BoTorch planner's acquisition for two or more objectives: the log noisy expected hypervolume improvement
against a reference point, given or inferred.

Model outputs are laid out as in :mod:`planners._acquisition`: ``[objective_1 .. objective_m, constraints ..]``,
objectives signed so that larger is better. Everything here is in that maximization space.

Why the noisy form even on data measured without noise: ``qLogNoisyExpectedHypervolumeImprovement`` samples the
new point jointly with the observations, so a point on (or next to) an observation gains nothing from the model's
small uncertainty there. ``qLogExpectedHypervolumeImprovement`` over the observed front, one box decomposition
instead of one per posterior sample and so much cheaper with three objectives, credits that uncertainty as
improvement; with a reference point far from the front (ZDT's (11, 11)) an end of the front gains a sliver as
thin as the model's uncertainty times the whole width of the box, and it proposed the same corner point over and
over (see docs/benchmarks/multi-objective.md).
"""

from __future__ import annotations

from collections.abc import Callable

from botorch.acquisition.multi_objective.logei import qLogNoisyExpectedHypervolumeImprovement
from botorch.acquisition.multi_objective.objective import IdentityMCMultiOutputObjective
from botorch.models.model import Model
from botorch.sampling.base import MCSampler
from torch import Tensor

#: Options for BoTorch's initial conditions with several objectives: sample around the observed Pareto front too.
FRONT_STARTS = {"sample_around_best": True}


def hypervolume_improvement(
    model: Model,
    X: Tensor,
    Y: Tensor,
    ref_point: Tensor,
    sampler: MCSampler,
    *,
    constraints: list[Callable[[Tensor], Tensor]] | None = None,
    X_pending: Tensor | None = None,
) -> qLogNoisyExpectedHypervolumeImprovement:
    """The log noisy expected hypervolume improvement of new points over the observations, above ``ref_point``.

    Args:
        model: the fitted GP, objectives first. X: ``n x d`` ok observations (unit cube), the baseline (pruned to
            the points that may be on the front). Y: ``n x m`` the objectives there (larger is better).
        ref_point: ``m``, in the same space. sampler: the quasi-MC sampler.
        constraints: BoTorch outcome constraints (feasible when ``<= 0``).
        X_pending: ``p x d`` points in flight (or failed), or None.
    """
    return qLogNoisyExpectedHypervolumeImprovement(
        model,
        sampler=sampler,
        ref_point=ref_point,
        X_baseline=X,
        objective=IdentityMCMultiOutputObjective(outcomes=list(range(Y.shape[-1]))),
        constraints=constraints or None,
        X_pending=X_pending,
        prune_baseline=True,
    )
