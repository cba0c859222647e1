"""Movement: a travel-cost penalty for the acquisition function and the ``max_travel`` box around the position.

Distances are per variable, in each variable's own units; categorical variables have no distance and take
no part. The penalty is a ``torch.nn.Module`` for BoTorch's ``PenalizedAcquisitionFunction``, like BoTorch's
own ``L1Penalty``, but weighted per variable and summed over the points of a batch.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from closedloop.errors import PlannerError
from planners._space import Space, as_float


def per_variable(option: str, value: Any, space: Space, default: float) -> Tensor | None:
    """``value`` (a number for every variable, or ``{variable: number}``) as a ``d`` tensor, or None.

    Categorical variables and variables a dict leaves out get ``default``.

    Raises:
        PlannerError: a value is not a finite number >= 0, a name is not a variable, or a name is categorical.
    """
    if value is None:
        return None
    names = [v.name for v in space.variables]
    out = torch.full((space.d,), default, dtype=torch.float64)
    if isinstance(value, dict):
        items = list(value.items())
    else:
        items = [(v.name, value) for v in space.variables if v.kind != "categorical"]
    for name, raw in items:
        if name not in names:
            raise PlannerError(f"option {option}: '{name}' is not a variable; variables: {', '.join(names)}")
        j = names.index(name)
        if space.variables[j].kind == "categorical":
            raise PlannerError(f"option {option}: categorical variable '{name}' has no distance")
        number = as_float(raw)
        if number is None or not math.isfinite(number) or number < 0:
            raise PlannerError(f"option {option} must be a finite number >= 0, got {raw!r} for '{name}'")
        out[j] = number
    return out


class TravelPenalty(torch.nn.Module):
    """Weighted L1 distance of each point from the current position, summed over the batch.

    ``penalty(X) = sum_q sum_j cost_j * |x_qj - p_j|`` in real units, computed in the unit cube.

    Args:
        position: ``d`` current position in the unit cube.
        weights: ``d`` cost per unit-cube distance (``cost_j * (hi_j - lo_j)``).
    """

    def __init__(self, position: Tensor, weights: Tensor) -> None:
        super().__init__()
        self.position = position
        self.weights = weights

    def forward(self, X: Tensor) -> Tensor:
        """``X: batch x q x d`` -> ``batch``."""
        return ((X - self.position).abs() * self.weights).sum(dim=-1).sum(dim=-1)


def unit_box(space: Space, position: Tensor, max_travel: Tensor) -> Tensor:
    """The ``2 x d`` unit-cube box within ``max_travel`` of ``position`` (real domain), inside the bounds.

    Categorical and one-value discrete columns keep the whole ``[0, 1]``.

    Raises:
        PlannerError: the box does not meet the bounds (the position is further than ``max_travel`` outside).
    """
    lo = torch.maximum(space.lo, position - max_travel)
    hi = torch.minimum(space.hi, position + max_travel)
    outside = [space.variables[j].name for j in range(space.d) if j not in space.cat_dims and lo[j] > hi[j]]
    if outside:
        raise PlannerError(
            f"the current position is further than max_travel outside the bounds of {', '.join(outside)}",
            hint="move the instrument into the search bounds or raise max_travel",
        )
    box = torch.stack([(lo - space.lo) / space.span, (hi - space.lo) / space.span]).clamp(0.0, 1.0)
    for j in range(space.d):
        if j in space.cat_dims or space.hi[j] == space.lo[j]:
            box[0, j], box[1, j] = 0.0, 1.0
    return box
