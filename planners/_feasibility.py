"""Searching for feasibility while no observation is feasible: the constraints on a log scale, and what to seek.

Constraint outputs of engineering problems span many orders of magnitude (the spring problem's first constraint
reads 1 over most of the space and -25,000 at a few points). A GP on them as measured, even standardized, is
dominated by the few extreme readings and sees the rest as flat, so its probability of feasibility is nearly 0
everywhere but where it has already looked. Here each constraint becomes its *violation* ``g`` (``<= 0`` when it
holds: ``c - value`` for ``LESS_THAN``, ``value - c`` for ``GREATER_THAN``, the distance outside the range for
``BOUNDS``), put on BoTorch's bilog scale (``sign(g) log(1 + |g|)``, :class:`~botorch.models.transforms.outcome.Bilog`,
as SCBO does): the sign, hence feasibility, is kept, and the extremes are compressed.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import torch
from botorch.acquisition import AcquisitionFunction
from botorch.acquisition.logei import qLogExpectedImprovement, qLogProbabilityOfFeasibility
from botorch.acquisition.objective import GenericMCObjective
from botorch.models.model import Model
from botorch.models.transforms.outcome import Bilog
from botorch.sampling.base import MCSampler
from gest_api.vocs import VOCS, BoundsConstraint, GreaterThanConstraint, LessThanConstraint
from torch import Tensor

from planners.options import FeasibilitySearch

#: Tukey's far-out fences, in interquartile ranges outside the quartiles: a constraint output with a reading beyond
#: them is heavy-tailed (:func:`model_constraints`).
FAR_OUT = 3.0
#: The fewest design readings that set the fences: quartiles of fewer say little, and with a design of 3 a smooth
#: output's later readings fell beyond them (:func:`model_constraints` leaves the output as measured then).
FENCE_READINGS = 8


def violations(vocs: VOCS, C: Tensor) -> Tensor:
    """The violation of each VOCS constraint, ``n x k``, from the constraint outputs as measured ``C: n x k``:
    positive where it is violated, ``<= 0`` where it holds (in the outputs' own units)."""
    columns = []
    for i, spec in enumerate(vocs.constraints.values()):
        c = C[:, i]
        if isinstance(spec, LessThanConstraint):
            columns.append(c - float(spec.value))
        elif isinstance(spec, GreaterThanConstraint):
            columns.append(float(spec.value) - c)
        elif isinstance(spec, BoundsConstraint):
            low, high = (float(b) for b in spec.range)
            columns.append(torch.maximum(low - c, c - high))
    return torch.stack(columns, dim=-1) if columns else C[:, :0]


def log_violations(vocs: VOCS, C: Tensor) -> Tensor:
    """:func:`violations` on BoTorch's bilog scale, ``n x k``: ``<= 0`` exactly where the constraint holds."""
    G, _ = Bilog()(violations(vocs, C))
    return G


def model_constraints(vocs: VOCS, C: Tensor, n_design: int) -> Tensor:
    """The constraint outputs ``C: n x k`` as the GP sees them, ``n x k``: a heavy-tailed one compressed around its
    bound, the others as measured.

    The first ``n_design`` readings (the design's, spread over the space, so a sample of what the output reads there)
    set Tukey's far-out fences, :data:`FAR_OUT` interquartile ranges outside their quartiles; an output with any
    reading beyond them is heavy-tailed. Then every reading ``c`` becomes ``b + s sign(c - b) log(1 + |c - b| / s)``,
    ``b`` its bound (``LESS_THAN`` or ``GREATER_THAN``) and ``s`` the design readings' median distance from it:
    monotone and ``b`` kept, so every point's feasibility and the acquisition's constraint are unchanged, while a
    few extreme readings no longer flatten the rest (on the spring problem a GP of its outputs as measured ended
    three times farther from the optimum; see ``docs/benchmarks/constrained.md``). ``s`` makes it independent of
    the output's units. The fences are the design's because the model's own points crowd at the bound once it has
    found the optimum's region: quartiles of all the readings would shrink around the bound and make any output
    look heavy-tailed. An output stays as measured when fewer than :data:`FENCE_READINGS` of its design readings
    are in; so do ``BOUNDS`` outputs and NaN readings.
    """
    out = C.clone()
    for i, spec in enumerate(vocs.constraints.values()):
        if not isinstance(spec, LessThanConstraint | GreaterThanConstraint):
            continue
        g = C[:, i] - float(spec.value)
        design = g[:n_design]
        if int((~design.isnan()).sum()) < FENCE_READINGS:
            continue
        q1, q3 = torch.nanquantile(design, torch.tensor([0.25, 0.75], dtype=g.dtype))
        far = (g > q3 + FAR_OUT * (q3 - q1)) | (g < q1 - FAR_OUT * (q3 - q1))  # any reading, the design's fences
        s = float(design.abs().nanmedian())
        if bool(far.any()) and s > 0:
            out[:, i] = float(spec.value) + s * torch.sign(g) * torch.log1p(g.abs() / s)
    return out


def _holds(Z: Tensor, col: int) -> Tensor:
    return Z[..., col]


def violation_constraints(k: int) -> list[Callable[[Tensor], Tensor]]:
    """BoTorch outcome constraints (feasible when ``<= 0``) on a model of ``k`` log violations."""
    return [partial(_holds, col=i) for i in range(k)]


def total_violation(G: Tensor) -> Tensor:
    """The total violation of log violations ``G: ... x k``: the sum of their positive parts, ``...`` (0 exactly
    where every constraint holds)."""
    return G.clamp_min(0.0).sum(dim=-1)


def least_violation(G: Tensor) -> float:
    """The least total violation observed among the points whose every constraint was measured; where none was,
    among all, a missing output (its reducer could not compute it) counted as no violation."""
    complete = ~G.isnan().any(dim=-1)
    if bool(complete.any()):
        return float(total_violation(G[complete]).min())
    return float(total_violation(G.nan_to_num(nan=0.0)).min())


def _less_violation(Z: Tensor, X: Tensor | None = None) -> Tensor:
    return -total_violation(Z)


class qLogExpectedLessViolation(qLogExpectedImprovement):
    """``qLogExpectedImprovement`` of the negated :func:`total_violation` of a GP of ``k`` log violations, over the
    least total violation observed (``G: n x k``, the log violations as observed).

    A point sure to be feasible improves on the least violation by all of it, so this rewards the probability of
    feasibility as ``qLogProbabilityOfFeasibility`` does; but where no point is likely to be feasible it still
    rewards coming closer, where the probability of feasibility is tiny everywhere and its maximum is where the GP is
    least sure, not nearest the feasible region.
    """

    def __init__(
        self, model: Model, G: Tensor, sampler: MCSampler | None = None, X_pending: Tensor | None = None
    ) -> None:
        super().__init__(
            model,
            best_f=-least_violation(G),
            sampler=sampler,
            objective=GenericMCObjective(_less_violation),
            X_pending=X_pending,
        )


def violation_acquisition(
    model: Model, G: Tensor, search: FeasibilitySearch, sampler: MCSampler, X_pending: Tensor | None
) -> AcquisitionFunction:
    """The acquisition function of the search for feasibility ``search`` on ``model``, a GP of the log violations
    ``G: n x k``: :class:`qLogExpectedLessViolation` (``violation``) or ``qLogProbabilityOfFeasibility`` of every
    constraint (``log-probability``)."""
    if search == "violation":
        return qLogExpectedLessViolation(model, G, sampler=sampler, X_pending=X_pending)
    return qLogProbabilityOfFeasibility(model, violation_constraints(G.shape[-1]), sampler=sampler, X_pending=X_pending)
