"""A space-filling baseline: scrambled Sobol points scaled to the bounds.

numpy and scipy only (``scipy.stats.qmc``): building and running this planner never imports torch.
"""

from __future__ import annotations

import warnings
from typing import Any, ClassVar

import numpy as np
from gest_api.vocs import VOCS

from planners._base import PlannerBase
from planners.options import SobolOptions


def sobol_points(d: int, n: int, *, seed: int, skip: int = 0) -> np.ndarray:
    """Points ``skip .. skip + n - 1`` of the scrambled Sobol sequence for ``seed``: ``n x d``, unit cube, float64.

    The same ``(d, seed)`` gives the same sequence; asking for it in pieces gives the same points as at once.
    """
    from scipy.stats import qmc  # type: ignore[import-untyped]  # about a second to import: only when drawing

    engine = qmc.Sobol(d, scramble=True, seed=np.random.default_rng(seed))
    if skip:
        engine.fast_forward(skip)
    with warnings.catch_warnings():
        # scipy warns that n not a power of 2 loses the balance property; the sequence is used in pieces by design
        warnings.filterwarnings("ignore", message="The balance properties of Sobol", category=UserWarning)
        return engine.random(n).astype(np.float64)


class SobolPlanner(PlannerBase):
    """Scrambled Sobol points (``scipy.stats.qmc.Sobol``), blind to the data.

    Discrete and categorical variables get the allowed value their Sobol coordinate falls on. Constraints
    and several objectives are accepted and ignored for proposing (``best``, ``feasible`` and
    ``pareto_front`` still use them).

    The same seed gives the same sequence. Each call continues the sequence after every point the planner
    knows of (ingested, failed or pending), so a planner rebuilt on resume from re-ingested observations carries
    on instead of repeating its first points, and a rejected point is never proposed again.

    Args:
        vocs: the problem (see :class:`~planners.PlannerBase`).
        seed: scrambling seed; ``None`` draws one.
    """

    supports_constraints = True
    supports_multi_objective = True
    supports_discrete = True
    options_model: ClassVar[type[SobolOptions]] = SobolOptions

    def __init__(self, vocs: VOCS, *, seed: int | None = None, **options: Any) -> None:
        super().__init__(vocs, seed=seed, **options)

    def _propose(self, n: int) -> np.ndarray:
        self._explain(["Sobol"] * n)
        return sobol_points(self.dim, n, seed=self.seed, skip=self.n_known)
