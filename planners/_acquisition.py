"""Pieces the BoTorch planner hands to BoTorch's acquisition functions: outcome constraints as callables,
the hypervolume reference point, the categorical combinations ``optimize_acqf_mixed`` enumerates, and UCB on a GP
that believes its own mean at the points in flight.

Model outputs are laid out as ``[objective_1 .. objective_m, constraint_1 .. constraint_k]``: objectives
signed so that larger is better, constraint outputs as measured.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from functools import partial
from typing import Any

import torch
from botorch.acquisition import UpperConfidenceBound
from botorch.models.model import Model
from gest_api.vocs import VOCS, BoundsConstraint, GreaterThanConstraint, LessThanConstraint
from torch import Tensor

from closedloop.errors import PlannerError
from planners._space import Space, as_float

#: Enumerate every combination of categories with ``optimize_acqf_mixed`` up to this many; relax and round above.
MAX_ENUMERATED = 16


def _above(Z: Tensor, col: int, value: float) -> Tensor:
    return Z[..., col] - value


def _below(Z: Tensor, col: int, value: float) -> Tensor:
    return value - Z[..., col]


def first_output(Z: Tensor, X: Tensor | None = None) -> Tensor:
    """The first model output of samples ``Z: ... x q x outputs`` (the objective under constraints)."""
    return Z[..., 0]


def outcome_constraints(vocs: VOCS, first_col: int) -> list[Callable[[Tensor], Tensor]]:
    """BoTorch outcome constraints (feasible when ``<= 0``) for the VOCS constraints, in VOCS order.

    Constraint ``i`` reads model output ``first_col + i``. ``BOUNDS`` gives two callables (low and high side).
    """
    out: list[Callable[[Tensor], Tensor]] = []
    for i, spec in enumerate(vocs.constraints.values()):
        col = first_col + i
        if isinstance(spec, LessThanConstraint):
            out.append(partial(_above, col=col, value=float(spec.value)))
        elif isinstance(spec, GreaterThanConstraint):
            out.append(partial(_below, col=col, value=float(spec.value)))
        elif isinstance(spec, BoundsConstraint):
            low, high = (float(b) for b in spec.range)
            out.append(partial(_below, col=col, value=low))
            out.append(partial(_above, col=col, value=high))
    return out


def constraint_bounds(vocs: VOCS, first_col: int) -> dict[int, tuple[float | None, float | None]]:
    """The VOCS constraints as ``{model output: (low, high)}``, as BoTorch's analytic constrained EI takes them."""
    out: dict[int, tuple[float | None, float | None]] = {}
    for i, spec in enumerate(vocs.constraints.values()):
        if isinstance(spec, LessThanConstraint):
            out[first_col + i] = (None, float(spec.value))
        elif isinstance(spec, GreaterThanConstraint):
            out[first_col + i] = (float(spec.value), None)
        elif isinstance(spec, BoundsConstraint):
            low, high = (float(b) for b in spec.range)
            out[first_col + i] = (low, high)
    return out


def parse_reference_point(value: Any, objectives: list[str], signs: list[float]) -> Tensor | None:
    """The ``reference_point`` option (``{objective: value}`` in each objective's units) in maximization space.

    Raises:
        PlannerError: fewer than two objectives, objectives missing or unknown, or a value not a finite number.
    """
    if value is None:
        return None
    if len(objectives) < 2:
        raise PlannerError("option reference_point needs two or more objectives")
    if not isinstance(value, dict) or set(value) != set(objectives):
        got = ", ".join(map(str, value)) if isinstance(value, dict) else type(value).__name__
        raise PlannerError(
            f"option reference_point must give a value for each objective ({', '.join(objectives)}); got {got}"
        )
    ref = []
    for name, sign in zip(objectives, signs, strict=True):
        number = as_float(value[name])
        if number is None or not math.isfinite(number):
            raise PlannerError(f"option reference_point: '{name}' must be a finite number, got {value[name]!r}")
        ref.append(sign * number)
    return torch.tensor(ref, dtype=torch.float64)


def infer_reference_point(Y: Tensor) -> Tensor:
    """The nadir of ``Y: n x m`` (maximization space) less 10% of each objective's observed range.

    An objective with no spread steps back by 10% of its magnitude (or 0.1 when it is zero).
    """
    low = Y.min(dim=0).values
    span = Y.max(dim=0).values - low
    span = torch.where(span > 0, span, low.abs().clamp_min(1.0))
    return low - 0.1 * span


def categorical_combinations(space: Space) -> list[dict[int, float]] | None:
    """Every combination of categories as ``{column: unit value}`` (``fixed_features_list``), or None.

    None when there are no categorical variables or more than :data:`MAX_ENUMERATED` combinations.
    """
    if not space.cat_dims:
        return None
    choices = [space.category_units(j).tolist() for j in space.cat_dims]
    if math.prod(len(c) for c in choices) > MAX_ENUMERATED:
        return None
    return [dict(zip(space.cat_dims, combo, strict=True)) for combo in itertools.product(*choices)]


def believed_ucb(model: Model, X_pending: Tensor, beta: float) -> UpperConfidenceBound:
    """UCB (``mean + sqrt(beta) * std``) on ``model`` conditioned on its own posterior mean at ``X_pending: p x d``
    (GP-BUCB, Desautels, Krause and Burdick, JMLR 2014).

    Told its own mean, the GP keeps its mean everywhere and loses its uncertainty around the points in flight, so
    the new point goes where the model is still high and unsure, not onto a point in flight, and the points in
    flight take no credit for what they may find (as in qLogNEI with ``X_pending``, which sends the new point away
    from a peak the points in flight are already on). One objective, one output.
    """
    with torch.no_grad():
        mean = model.posterior(X_pending).mean  # type: ignore[attr-defined]
    believed = model.condition_on_observations(X_pending, mean)
    return UpperConfidenceBound(believed, beta=beta)
