"""A space-filling baseline: scrambled Sobol points scaled to the bounds."""

from __future__ import annotations

from typing import Any

import torch
from gest_api.vocs import VOCS
from torch import Tensor
from torch.quasirandom import SobolEngine

from planners._base import PlannerBase


def sobol_points(d: int, n: int, *, seed: int, skip: int = 0) -> Tensor:
    """Points ``skip .. skip + n - 1`` of the scrambled Sobol sequence for ``seed``: ``n x d``, unit cube."""
    engine = SobolEngine(dimension=d, scramble=True, seed=seed)
    if skip:
        engine.fast_forward(skip)
    return engine.draw(n, dtype=torch.float64)


class SobolPlanner(PlannerBase):
    """Scrambled Sobol points (``torch.quasirandom.SobolEngine``), blind to the data.

    Discrete and categorical variables get the allowed value their Sobol coordinate falls on. Constraints
    and several objectives are accepted and ignored for proposing (``best``, ``feasible`` and
    ``pareto_front`` still use them).

    The same seed gives the same sequence. Each call continues the sequence after every point the planner
    knows of (ingested or pending), so a planner rebuilt on resume from re-ingested observations carries on
    instead of repeating its first points.

    Args:
        vocs: the problem (see :class:`~planners.PlannerBase`).
        seed: scrambling seed; ``None`` draws one.
    """

    supports_constraints = True
    supports_multi_objective = True
    supports_discrete = True

    def __init__(self, vocs: VOCS, *, seed: int | None = None, **options: Any) -> None:
        super().__init__(vocs, seed=seed, **options)

    def _propose(self, n: int) -> Tensor:
        return sobol_points(self.dim, n, seed=self.seed, skip=self.n_known)
