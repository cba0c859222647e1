"""Comparing points: when two are the same point, and which of several are not dominated. numpy only."""

from __future__ import annotations

import numpy as np

#: Two points closer than this fraction of every variable's range are the same point (a batch's points, a pending
#: point, a failed point): planners that keep their points distinct (``botorch``, ``turbo``) use it.
SAME_POINT = 1e-3


def non_dominated(Y: np.ndarray) -> np.ndarray:
    """Which rows of ``Y: n x m`` (larger is better) no other row dominates: a boolean ``n`` array."""
    keep = np.ones(len(Y), dtype=bool)
    for i in range(len(Y)):
        others = np.delete(Y, i, axis=0)
        keep[i] = not bool(((others >= Y[i]).all(axis=1) & (others > Y[i]).any(axis=1)).any())
    return keep


def near_any(U: np.ndarray, taken: np.ndarray, tolerance: float = SAME_POINT) -> np.ndarray:
    """Which rows of ``U: n x d`` lie within ``tolerance`` (sup norm, unit cube) of a row of ``taken: k x d``."""
    if len(U) == 0 or len(taken) == 0:
        return np.zeros(len(U), dtype=bool)
    return (np.abs(U[:, None, :] - taken[None, :, :]).max(axis=-1) <= tolerance).any(axis=-1)
