"""The BoTorch planner's space-filling points (:class:`SobolDesign`): a seeded scrambled Sobol sequence inside a box
of the unit cube, snapped to the allowed values, and the replacement of a proposal that repeats another."""

from __future__ import annotations

import torch
from torch import Tensor

from planners._points import distinct
from planners._space import Space
from planners.sobol import sobol_points


class SobolDesign:
    """Sobol points of the planner's space, a function of ``seed`` and how far into the sequence they start.

    Args:
        space: the planner's variables (discrete and categorical columns are snapped).
        seed: the planner's seed (the scramble).
    """

    def __init__(self, space: Space, seed: int) -> None:
        self.space = space
        self.seed = seed

    def points(self, n: int, skip: int, box: Tensor | None) -> Tensor:
        """``n`` Sobol points (``n x d``, unit cube) from ``skip`` on, inside ``box`` (``2 x d``), snapped."""
        U = torch.from_numpy(sobol_points(self.space.d, n, seed=self.seed, skip=skip))
        if box is not None:
            U = box[0] + U * (box[1] - box[0])
        return self.snap(U, box)

    def snap(self, U: Tensor, box: Tensor | None) -> Tensor:
        """:meth:`Space.snap_unit <planners._space.Space.snap_unit>` on tensors."""
        return torch.from_numpy(self.space.snap_unit(U.detach().numpy(), None if box is None else box.numpy()))

    def distinct(
        self, candidates: Tensor, avoid: Tensor, exact: Tensor | None, box: Tensor | None, skip: int
    ) -> Tensor:
        """``candidates`` (``q x d``) with each that repeats another replaced by a fresh Sobol point inside ``box``
        (from ``skip`` on): see :func:`~planners._points.distinct`; ``avoid`` are the points in flight and failed,
        ``exact`` the observations when rounding can land on them."""
        spare = self.points(max(32, 4 * len(candidates)), skip, box).numpy()
        ex = None if exact is None else exact.numpy()
        return torch.from_numpy(distinct(candidates.numpy(), avoid.numpy(), ex, spare))
