"""The acquisition optimizer the BoTorch planner composes (:class:`AcquisitionOptimizer`), and the operator's names of
the acquisition functions (:func:`acquisition_name`).

``optimize_acqf`` (L-BFGS-B) starts from ``num_restarts`` of ``raw_samples`` random points chosen by BoTorch's
initialization heuristic; given a starting point (the best feasible observation, under outcome constraints), the
last restart starts there instead (:func:`starting_at`): an optimum on a constraint's edge, where BoTorch's smoothed
feasibility is nearly a step, is reached from there in fewer steps. BoTorch's own ``sample_around_best`` does not
serve: it cannot see the constraints and samples around the best point whether feasible or not. Categorical
variables are optimized by ``optimize_acqf_mixed`` over every combination of categories when there are at most
:data:`~planners._acquisition.MAX_ENUMERATED` (:func:`~planners._acquisition.categorical_combinations`).
"""

from __future__ import annotations

from functools import partial
from typing import Any

from botorch.acquisition import AcquisitionFunction
from botorch.optim import optimize_acqf, optimize_acqf_mixed
from botorch.optim.initializers import gen_batch_initial_conditions
from torch import Tensor

from closedloop.errors import PlannerError
from planners._acquisition import categorical_combinations
from planners._multiobjective import FRONT_STARTS
from planners._recovery import check_finite
from planners._space import Space
from planners.options import BoTorchOptions

#: What the operator is told made a point (the proposal's ``why``), by acquisition function.
ACQUISITION_NAMES = {
    "qLogNoisyExpectedImprovement": "qLogNEI",
    "LogExpectedImprovement": "LogEI",
    "qLogExpectedImprovement": "qLogEI",
    "LogConstrainedExpectedImprovement": "constrained LogEI",
    "qLogNoisyExpectedHypervolumeImprovement": "qLogNEHVI",
    "qLogProbabilityOfFeasibility": "probability of feasibility",
    "LogProbabilityOfFeasibility": "analytic probability of feasibility",
    "qLogExpectedLessViolation": "expected reduction of the total violation",
    "UpperConfidenceBound": "UCB, believing the points in flight",
}


def acquisition_name(acq: AcquisitionFunction) -> str:
    """The operator's name of ``acq`` (:data:`ACQUISITION_NAMES`, a subclass by its BoTorch class's)."""
    for cls in type(acq).__mro__:
        if cls.__name__ in ACQUISITION_NAMES:
            return ACQUISITION_NAMES[cls.__name__]
    return type(acq).__name__


def starting_at(
    point: Tensor,
    acq_function: AcquisitionFunction,
    bounds: Tensor,
    q: int,
    num_restarts: int,
    raw_samples: int,
    **kwargs: Any,
) -> Tensor:
    """BoTorch's initial conditions (``gen_batch_initial_conditions``), the last restart's first point moved to
    ``point`` (``d``, unit cube, clipped to ``bounds``): an ``ic_generator`` for ``optimize_acqf``."""
    initial = gen_batch_initial_conditions(acq_function, bounds, q, num_restarts, raw_samples, **kwargs).clone()
    initial[-1, 0] = point.to(initial).clamp(bounds[0], bounds[1])
    return initial


class AcquisitionOptimizer:
    """Maximizes an acquisition function over a box of the unit cube with the planner's effort options.

    Args:
        options: the planner's options (read, never copied: ``num_restarts``, ``raw_samples``, ``maxiter``,
            ``ftol``).
        space: the planner's variables.
        n_objectives: the number of objectives (the default number of restarts depends on it).

    Raises:
        PlannerError: ``raw_samples`` is below the number of restarts (``planner.options.raw_samples: ...``).
    """

    def __init__(self, options: BoTorchOptions, space: Space, n_objectives: int) -> None:
        self.options = options
        self.space = space
        #: Restarts: the option, or 2 for one objective in one or two variables and 4 otherwise (measured on the
        #: benchmark pages).
        self.num_restarts = options.num_restarts or (2 if space.d <= 2 and n_objectives == 1 else 4)
        if options.raw_samples < self.num_restarts:
            raise PlannerError(
                f"planner.options.raw_samples: must be >= num_restarts ({self.num_restarts}), got {options.raw_samples}"
            )

    def optimize(
        self,
        acq: AcquisitionFunction,
        bounds: Tensor,
        q: int,
        *,
        start: Tensor | None = None,
        more: int = 1,
        front: bool = False,
    ) -> Tensor:
        """``q`` points maximizing ``acq`` inside ``bounds`` (``2 x d``, unit cube), ``q x d`` (not snapped).

        ``start`` (``d``, unit cube): one restart starts there (not for categorical variables, whose combinations
        are enumerated). ``more`` multiplies the restarts and raw samples (a recovery step's). ``front``: random
        starts are joined by perturbations of the observations on the Pareto front (several objectives,
        :data:`~planners._multiobjective.FRONT_STARTS`).

        Raises:
            CandidateGenerationError: a candidate or an acquisition value is NaN (see :func:`check_finite`).
        """
        combos = categorical_combinations(self.space)
        free = len(self.space.cont_dims) + len(self.space.discrete_dims)
        effort: dict[str, Any] = {
            "num_restarts": more * self.num_restarts,
            "raw_samples": more * self.options.raw_samples,
            "options": {"maxiter": self.options.maxiter, "ftol": self.options.ftol, "factr": None},
            "retry_on_optimization_warning": False,
        }
        if front:
            effort["options"].update(FRONT_STARTS)
        if combos is not None and free > 0:
            candidates, values = optimize_acqf_mixed(acq, bounds, q, fixed_features_list=combos, **effort)
        else:
            if start is not None:
                effort["ic_generator"] = partial(starting_at, start)
            candidates, values = optimize_acqf(acq, bounds=bounds, q=q, **effort)
        check_finite(candidates, values)
        return candidates
