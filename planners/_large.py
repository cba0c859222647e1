"""Large data: which observations a proposal's GP is conditioned on once they pass ``max_model_points``.

An exact GP conditioned on ``n`` observations costs ``O(n^3)`` time and ``O(n^2)`` memory to condition, ``O(n^2)``
per posterior evaluation, and qLogNEI's baseline pruning draws joint samples over every observed point. Up to
``max_model_points`` ok observations nothing changes: the GP is conditioned on all of them. Above, it is conditioned
on a subset of that many (:func:`model_subset`): half the points nearest the incumbents (where improvement is sought),
half a seeded random sample of the rest (so that the GP still knows what the explored space looks like and does
not take a region it dropped for an unexplored one); with several objectives, each objective's worst observation
too, so that the inferred hypervolume reference point does not move. The hyperparameters are fitted as before (on
the fitting schedule, to at most ``max_fit_points`` observations); only the conditioning and the acquisition's baseline
(``X_baseline``) use the subset.
"""

from __future__ import annotations

import torch
from botorch.utils.multi_objective.pareto import is_non_dominated
from gest_api.vocs import VOCS
from torch import Tensor

from planners._acquisition import outcome_constraints


def violations(vocs: VOCS, C: Tensor) -> Tensor:
    """How far each observation is from feasible, ``n``: the sum of its constraints' violations (0 when feasible).

    ``C: n x k`` are the constraint outputs as measured, in VOCS order.
    """
    total = torch.zeros(C.shape[0], dtype=C.dtype)
    for constraint in outcome_constraints(vocs, first_col=0):
        total = total + constraint(C).clamp_min(0.0)
    return total


def incumbents(Y: Tensor, violation: Tensor) -> Tensor:
    """Indices of the incumbents among ``Y: n x m`` (larger is better) with ``violation: n``.

    Among the observations of least violation (the feasible ones when any is): the best one for one objective, the
    non-dominated ones for several.
    """
    candidates = torch.nonzero(violation <= violation.min()).reshape(-1)
    if Y.shape[1] == 1:
        return candidates[Y[candidates, 0].argmax()].reshape(1)
    return candidates[is_non_dominated(Y[candidates])]


def model_subset(X: Tensor, Y: Tensor, violation: Tensor, max_points: int, seed: int) -> Tensor | None:
    """The observations to condition the GP on, as sorted indices (the order ingested), or None for all of them.

    None when ``n <= max_points``. Otherwise ``max_points`` indices: the ``max_points // 2`` observations nearest
    (Euclidean, unit cube) to any of the :func:`incumbents`, incumbents included (all of them when there are more,
    up to ``max_points``); with several objectives, the worst observation in each (so that a hypervolume reference
    point inferred from the nadir is the one all the data give); then a random sample of the rest drawn with
    ``seed``. A function of the data and the seed alone, so a planner rebuilt from the same data
    conditions on the same subset.

    Args:
        X: ``n x d`` ok observations in the unit cube. Y: ``n x m`` objectives, larger is better.
        violation: ``n``, see :func:`violations`. max_points: the most observations to keep. seed: for the sample.
    """
    n = X.shape[0]
    if n <= max_points:
        return None
    best = incumbents(Y, violation)
    worst = Y.argmin(dim=0) if Y.shape[1] > 1 else best[:0]
    near = min(max(len(best), max_points // 2), max_points - len(worst))
    distance = torch.full((n,), float("inf"), dtype=X.dtype)
    for chunk in best.split(256):  # n x 256 distances at a time, whatever the size of the front
        distance = torch.minimum(distance, torch.cdist(X, X[chunk]).min(dim=-1).values)
    chosen = torch.zeros(n, dtype=torch.bool)
    chosen[torch.argsort(distance, stable=True)[:near]] = True
    chosen[worst] = True
    rest = torch.nonzero(~chosen).reshape(-1)
    generator = torch.Generator().manual_seed(seed)
    chosen[rest[torch.randperm(len(rest), generator=generator)[: max_points - int(chosen.sum())]]] = True
    return torch.nonzero(chosen).reshape(-1)
