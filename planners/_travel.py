"""Movement: a travel-cost penalty for the acquisition function, the ``max_travel`` box around the position, and
:class:`Travelling`, the part of the BoTorch planner that knows where the instrument is.

Distances are per variable, in each variable's own units; categorical variables have no distance and take
no part. The penalty is a ``torch.nn.Module`` for BoTorch's ``PenalizedAcquisitionFunction``, like BoTorch's
own ``L1Penalty``, but weighted per variable and summed over the points of a batch.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from botorch.acquisition import AcquisitionFunction
from botorch.acquisition.penalized import PenalizedAcquisitionFunction
from torch import Tensor

from closedloop.errors import PlannerError
from planners._base import PlannerBase
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


def travel_box(space: Space, position: Tensor, max_travel: Tensor) -> Tensor:
    """The ``2 x d`` real-domain box within ``max_travel`` of ``position``, intersected with the bounds."""
    lo, hi = torch.from_numpy(space.lo), torch.from_numpy(space.hi)
    return torch.stack([torch.maximum(lo, position - max_travel), torch.minimum(hi, position + max_travel)])


def unit_box(space: Space, position: Tensor, max_travel: Tensor) -> Tensor:
    """The ``2 x d`` unit-cube box within ``max_travel`` of ``position`` (real domain), inside the bounds.

    Categorical and one-value discrete columns keep the whole ``[0, 1]``.

    Raises:
        PlannerError: the box does not meet the bounds (the position is further than ``max_travel`` outside).
    """
    lo, hi = travel_box(space, position, max_travel)
    outside = [space.variables[j].name for j in range(space.d) if j not in space.cat_dims and lo[j] > hi[j]]
    if outside:
        raise PlannerError(
            f"the current position is further than max_travel outside the bounds of {', '.join(outside)}",
            hint="move the instrument into the search bounds or raise max_travel",
        )
    low, span = torch.from_numpy(space.lo), torch.from_numpy(space.span)
    box = torch.stack([(lo - low) / span, (hi - low) / span]).clamp(0.0, 1.0)
    for j in range(space.d):
        if j in space.cat_dims or space.hi[j] == space.lo[j]:
            box[0, j], box[1, j] = 0.0, 1.0
    return box


class Travelling(PlannerBase):
    """The movement half of :class:`~planners.BoTorchPlanner`: the current position, the ``max_travel`` box around
    it and the travel-cost penalty (see its docstring)."""

    travel_cost: Tensor | None
    max_travel: Tensor | None
    _position: Tensor | None
    _position_at: int

    def set_position(self, position: dict[str, float]) -> None:
        """Tell the planner where the instrument is: a value for every non-categorical variable.

        Other keys (constants, outputs, ``_id``) are ignored. Holds until the next ingest.

        Raises:
            ValueError: a non-categorical variable is missing or not a finite number.
        """
        x = torch.zeros(self.dim, dtype=torch.float64)
        for j, var in enumerate(self.space.variables):
            if var.kind == "categorical":
                continue
            value = self.space.parse(j, position.get(var.name))
            if value is None:
                raise PlannerError(f"set_position: variable '{var.name}' is {position.get(var.name)!r}")
            x[j] = value
        self._position = x
        self._position_at = len(self._records)

    @property
    def position(self) -> dict[str, float] | None:
        """The current position (non-categorical variables), or None when not known."""
        x = self._current_position()
        if x is None:
            return None
        return {v.name: float(x[j]) for j, v in enumerate(self.space.variables) if v.kind != "categorical"}

    def _current_position(self) -> Tensor | None:
        if self._position is not None and self._position_at >= len(self._records):
            return self._position
        if self._records:
            return torch.tensor(self._records[-1].x, dtype=torch.float64)
        return self._position

    def _travel_box(self) -> Tensor | None:
        """The ``2 x d`` unit-cube box ``max_travel`` allows, or None."""
        position = self._current_position()
        if self.max_travel is None or position is None:
            return None
        return unit_box(self.space, position, self.max_travel)

    def _proposal_box(self) -> np.ndarray | None:
        position = self._current_position()
        if self.max_travel is None or position is None:
            return None
        return travel_box(self.space, position, self.max_travel).numpy()

    def _penalized(self, acq: AcquisitionFunction) -> AcquisitionFunction:
        position = self._current_position()
        if self.travel_cost is None or position is None or not bool((self.travel_cost > 0).any()):
            return acq
        weights = self.travel_cost * torch.from_numpy(self.space.span)
        weights[self.space.cat_dims] = 0.0
        pos_unit = torch.from_numpy(self.to_unit(position.reshape(1, -1).numpy())).reshape(-1)
        return PenalizedAcquisitionFunction(acq, TravelPenalty(pos_unit, weights), regularization_parameter=1.0)
