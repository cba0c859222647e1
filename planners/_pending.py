"""``pending: auto``: how a proposal allows for the points in flight, chosen from the data for each proposal.

The two ways measured (``docs/benchmarks/pipelining.md``): ``joint`` (qLogNEI over the new point and the points in
flight) and ``believe`` (GP-BUCB: UCB on the GP told its own mean at the points in flight). With four instruments
``believe`` brought the beamline's broad peak inside the spread of the sequential loop (24 seeds, median regret
0.231 against 0.656 with ``joint``), and lost on the narrow spot (``spot2``: 12 against 3.97), on Branin and in
Hartmann6's six dimensions; with two instruments ``joint`` already stayed inside the spread on both.

``auto`` believes only where that trade-off was won: one objective without constraints, one point asked for, at
least :data:`BELIEVE_IN_FLIGHT` points in flight, fewer than :data:`~planners.gp.fitting.HIGH_DIMENSIONAL`
variables, a peak that the Sobol design's own readings show (:func:`~planners.gp.reading.stands_out` among the first
``n_initial`` readings), and a broad one: the GP's posterior mean above half its height, measured from the readings'
median, over at least :data:`BROAD_SHARE` of the space (:func:`broad_share`). The design finds a peak that covers
much of the space; on ``spot2`` a reading stood out only after the design (at the 8th and the 18th reading on seeds 0
and 1, four instruments), and then the GP fitted to a flank reading took the spot for a broad peak (share 0.09 to
0.17), which is where ``believe`` settles on the flank. A round Gaussian peak of width ``sigma`` (in the unit
square) is above half its height over ``2 pi ln 2 sigma^2``: about 1 % of the square for ``spot2`` (``sigma``
0.05); measured on the beamline's sessions, 6 to 30 %. Everything else is ``joint``.
"""

from __future__ import annotations

from typing import Literal

import torch
from botorch.models.model import Model
from torch import Tensor

from planners.gp.fitting import HIGH_DIMENSIONAL
from planners.gp.reading import stands_out
from planners.sobol import sobol_points

#: ``auto`` believes with at least this many points in flight (four instruments: three in flight and one ready).
BELIEVE_IN_FLIGHT = 3
#: ``auto`` believes when the posterior mean is above half the peak's height over at least this share of the space.
BROAD_SHARE = 0.04
#: Sobol points the share is measured on.
SHARE_POINTS = 1024


def broad_share(model: Model, X: Tensor, Y: Tensor) -> float:
    """The share of the unit cube where the GP's posterior mean of the objective (first output) lies above half-way
    from the readings' median to its highest value at an observed point: how broad the peak found is.

    Args:
        model: the fitted GP, objective first. X: ``n x d`` ok observations (unit cube). Y: ``n x m`` readings,
            the objective first, larger is better.
    """
    U = torch.from_numpy(sobol_points(X.shape[-1], SHARE_POINTS, seed=0)).to(X)
    with torch.no_grad():
        top = model.posterior(X).mean[..., 0].max()  # type: ignore[attr-defined]
        mean = model.posterior(U).mean[..., 0]  # type: ignore[attr-defined]
    half = Y[:, 0].median() + 0.5 * (top - Y[:, 0].median())
    return float((mean > half).double().mean())


def choose_pending(model: Model, X: Tensor, Y: Tensor, in_flight: int, design: int) -> Literal["joint", "believe"]:
    """``auto``'s choice for one proposal of one objective without constraints (see the module docstring).

    Args:
        model: the fitted GP. X: ``n x d`` ok observations (unit cube), in the order ingested. Y: ``n x 1`` the
            objective there, larger is better. in_flight: points in flight (pending runs; failed points are not
            counted). design: the Sobol design's size (``n_initial``).
    """
    if in_flight < BELIEVE_IN_FLIGHT or X.shape[-1] >= HIGH_DIMENSIONAL or not stands_out(Y[:design, 0]):
        return "joint"
    return "believe" if broad_share(model, X, Y) >= BROAD_SHARE else "joint"
