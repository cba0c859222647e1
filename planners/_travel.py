"""Movement: a travel-cost penalty for the acquisition function, the ``max_travel`` box around the position, and
:class:`Movement`, the object the BoTorch planner composes that knows where the instrument is.

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
from planners._space import Space, as_float
from planners.options import PerVariable


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


class Movement:
    """Where the instrument is, and what that allows: the ``max_travel`` box around it and the travel-cost penalty.

    The *current position* is the later of the last :meth:`set_position` and the last point measured
    (:meth:`measured_at`: the instrument is where it last measured); before either there is none, and neither
    option acts. ``travel_cost`` subtracts ``sum_j cost_j * |x_j - position_j|`` (summed over the points of a
    batch) from the acquisition value (:meth:`penalized`); as the acquisition values are logarithms, a cost ``c``
    means each unit of travel must multiply the expected improvement by ``e**c`` to pay for itself. ``max_travel``
    keeps every proposal, design points included, inside the box ``position +- max_travel`` intersected with the
    bounds; in a batch, *each* point is within ``max_travel`` of the current position. Categorical variables take
    no part.

    Args:
        space: the planner's variables.
        travel_cost: the option as given (a number, ``{variable: cost}`` or None; see :func:`per_variable`).
        max_travel: the option as given (a number, ``{variable: distance}`` or None).

    Raises:
        PlannerError: an option's value is not a finite number >= 0 or names no variable (see :func:`per_variable`).
    """

    def __init__(self, space: Space, travel_cost: PerVariable, max_travel: PerVariable) -> None:
        self.space = space
        #: ``d`` cost per unit of distance, or None.
        self.travel_cost = per_variable("travel_cost", travel_cost, space, default=0.0)
        #: ``d`` largest move, or None.
        self.max_travel = per_variable("max_travel", max_travel, space, default=float("inf"))
        self._position: Tensor | None = None

    def set_position(self, position: dict[str, float]) -> None:
        """The instrument is at ``position``: a value for every non-categorical variable (other keys ignored).

        Raises:
            ValueError: a non-categorical variable is missing or not a finite number.
        """
        x = torch.zeros(self.space.d, dtype=torch.float64)
        for j, var in enumerate(self.space.variables):
            if var.kind == "categorical":
                continue
            value = self.space.parse(j, position.get(var.name))
            if value is None:
                raise PlannerError(f"set_position: variable '{var.name}' is {position.get(var.name)!r}")
            x[j] = value
        self._position = x

    def measured_at(self, x: tuple[float, ...]) -> None:
        """The instrument measured at ``x`` (real domain, categorical: the index), so it is there now."""
        self._position = torch.tensor(x, dtype=torch.float64)

    @property
    def current(self) -> Tensor | None:
        """The current position, ``d`` in the real domain, or None when not known."""
        return self._position

    @property
    def position(self) -> dict[str, float] | None:
        """The current position (non-categorical variables), or None when not known."""
        x = self._position
        if x is None:
            return None
        return {v.name: float(x[j]) for j, v in enumerate(self.space.variables) if v.kind != "categorical"}

    def unit_box(self) -> Tensor | None:
        """The ``2 x d`` unit-cube box ``max_travel`` allows, or None."""
        if self.max_travel is None or self._position is None:
            return None
        return unit_box(self.space, self._position, self.max_travel)

    def proposal_box(self) -> np.ndarray | None:
        """The ``2 x d`` real-domain box ``max_travel`` allows, or None."""
        if self.max_travel is None or self._position is None:
            return None
        return travel_box(self.space, self._position, self.max_travel).numpy()

    def penalized(self, acq: AcquisitionFunction) -> AcquisitionFunction:
        """``acq`` less the travel cost from the current position (``acq`` itself without a cost or a position)."""
        position = self._position
        if self.travel_cost is None or position is None or not bool((self.travel_cost > 0).any()):
            return acq
        weights = self.travel_cost * torch.from_numpy(self.space.span)
        weights[self.space.cat_dims] = 0.0
        pos_unit = torch.from_numpy(self.space.to_unit(position.reshape(1, -1).numpy())).reshape(-1)
        return PenalizedAcquisitionFunction(acq, TravelPenalty(pos_unit, weights), regularization_parameter=1.0)
