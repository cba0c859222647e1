"""``pending: auto`` (planners/_pending.py): believe the GP at the points in flight only with three or more of them,
on a broad peak, in few variables; qLogNEI over the new point and those in flight otherwise."""

from __future__ import annotations

import math

import numpy as np
import pytest
from gest_api.vocs import VOCS

from planners import BoTorchPlanner
from planners._pending import BELIEVE_IN_FLIGHT, BROAD_SHARE
from planners.sobol import sobol_points

BELIEVED = "model (UCB, believing the points in flight)"


def peak_data(d: int, width: float, seed: int = 0) -> tuple[VOCS, list[dict]]:
    """Ten Sobol points on ``[-1.5, 1.5]^d``, then six within one width of a peak of 1000 counts over 20 (noise 10)."""
    names = [f"x{i}" for i in range(d)]
    vocs = VOCS(variables={n: [-1.5, 1.5] for n in names}, objectives={"f": "MAXIMIZE"})
    rng = np.random.default_rng(seed)
    centre = np.full(d, 0.4)
    X = list(-1.5 + 3 * sobol_points(d, 10, seed=seed)) + [centre + rng.uniform(-width, width, d) for _ in range(6)]

    def flux(p: np.ndarray) -> float:
        return 20.0 + 1000.0 * math.exp(-float(((p - centre) ** 2).sum()) / (2 * width**2)) + float(rng.normal(0, 10))

    return vocs, [{**dict(zip(names, map(float, p), strict=True)), "f": flux(p)} for p in X]


def whys(vocs: VOCS, data: list[dict], count: int) -> list[str]:
    """Why each of ``count`` proposals was made, asked for one at a time with the ones before it in flight."""
    planner = BoTorchPlanner(vocs, seed=0, n_initial=10, pending="auto", num_restarts=2, raw_samples=64)
    planner.ingest(data)
    return [planner.why(planner.suggest(1)[0]["_id"]) for _ in range(count)]


@pytest.mark.slow
def test_a_broad_peak_is_believed_from_three_points_in_flight_on() -> None:
    got = whys(*peak_data(2, 0.5), count=BELIEVE_IN_FLIGHT + 2)
    # nothing, one and two in flight: qLogNEI; three and four: UCB on the believing GP
    assert got[:BELIEVE_IN_FLIGHT] == ["model (qLogNEI)"] * BELIEVE_IN_FLIGHT
    assert got[BELIEVE_IN_FLIGHT:] == [BELIEVED] * 2


@pytest.mark.slow
def test_a_narrow_spot_and_six_variables_keep_joint() -> None:
    assert BELIEVED not in whys(*peak_data(2, 0.15), count=BELIEVE_IN_FLIGHT + 2)  # spot2's width
    assert BELIEVED not in whys(*peak_data(6, 0.5), count=BELIEVE_IN_FLIGHT + 1)


def test_the_share_separates_the_measured_peaks() -> None:
    # a round peak of width sigma (unit square) is above half its height over 2 pi ln 2 sigma^2 of the square
    assert 2 * math.pi * math.log(2) * (0.15 / 3) ** 2 < BROAD_SHARE < 2 * math.pi * math.log(2) * (0.5 / 3) ** 2
