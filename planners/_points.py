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


#: With one objective, on data a GP fits as noiseless, a proposal within :data:`SAME_POINT` of an observation after
#: this many such proposals in a row is a stall (:func:`stalls`): the model refines one point by less than it could
#: tell apart.
REFINEMENTS = 2
#: Why a Sobol point replaced a stalled model proposal; the model proposes again after it.
STALLED = "Sobol: the model's third point in a row within 0.1 % of one measured (a stall, not a refinement)"


def stalls(candidate: np.ndarray, observed: np.ndarray, refinements: int = REFINEMENTS) -> bool:
    """Whether ``candidate: d`` (unit cube) lies within :data:`SAME_POINT` of a row of ``observed: n x d`` (in the
    order measured) while the last ``refinements`` observations each lay within it of an earlier one.

    On noiseless data the analytic constrained LogEI can close in on a local optimum on a constraint's boundary
    by steps of 1e-7 for a dozen experiments (``gramacy``, seed 3: 16 experiments at f = 0.75 before the global
    optimum at 0.5998 was found; docs/benchmarks/constrained.md). Not with several objectives: on ``zdt2`` (seeds
    0-4) it sent 3 Sobol points and lost hypervolume on the two seeds where it did.
    """
    if len(observed) <= refinements or not bool(near_any(candidate[None], observed)[0]):
        return False
    n = len(observed)
    return all(bool(near_any(observed[i : i + 1], observed[:i])[0]) for i in range(n - refinements, n))


def distinct(candidates: np.ndarray, avoid: np.ndarray, exact: np.ndarray | None, spare: np.ndarray) -> np.ndarray:
    """``candidates: q x d`` (unit cube) with each that repeats another replaced by the next ``spare`` point that
    does not.

    A repeat lies within :data:`SAME_POINT` of a row of ``avoid`` (pending and failed points) or of an earlier
    candidate, or exactly (to 1e-9) on a row of ``exact`` (the observations, given when rounding discrete and
    categorical variables can land on them). With the spares used up, a repeat is kept rather than fail.
    """
    out: list[np.ndarray] = []
    used = 0
    for row in candidates:
        while used < len(spare) and _repeats(row, np.concatenate([avoid, *[r[None] for r in out]]), exact):
            row = spare[used]
            used += 1
        out.append(row)
    return np.stack(out) if out else candidates


def _repeats(row: np.ndarray, avoid: np.ndarray, exact: np.ndarray | None) -> bool:
    if len(avoid) and bool(near_any(row[None], avoid)[0]):
        return True
    return exact is not None and len(exact) > 0 and bool((np.abs(exact - row).max(axis=-1) <= 1e-9).any())
