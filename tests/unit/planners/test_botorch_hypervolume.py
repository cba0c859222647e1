"""BoTorchPlanner's default for several objectives: which hypervolume improvement it takes, and a guard on its
seeded proposals (a change that moves them must update the numbers here knowingly, and re-run the benchmark table in
docs/benchmarks/multi-objective.md)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from gest_api.vocs import VOCS

from planners import BoTorchPlanner

ZDT = VOCS(
    variables={"x1": [0.0, 1.0], "x2": [0.0, 1.0], "x3": [0.0, 1.0]},
    objectives={"f1": "MINIMIZE", "f2": "MINIMIZE"},
)
REFERENCE = {"f1": 11.0, "f2": 11.0}


def zdt1(point: dict, noise: float = 0.0, rng: np.random.Generator | None = None) -> dict:
    """ZDT1 in three variables (convex front f2 = 1 - sqrt(f1)), with optional Gaussian noise on both objectives."""
    g = 1.0 + 9.0 * (point["x2"] + point["x3"]) / 2.0
    f1, f2 = point["x1"], g * (1.0 - math.sqrt(point["x1"] / g))
    if noise and rng is not None:
        f1, f2 = f1 + rng.normal(0.0, noise), f2 + rng.normal(0.0, noise)
    return dict(point, f1=f1, f2=f2)


def run(planner: BoTorchPlanner, proposals: int, noise: float = 0.0) -> list[dict]:
    """The planner's design, then ``proposals`` model-based points one at a time; every point it proposed."""
    rng = np.random.default_rng(0)
    points = planner.suggest(planner.n_initial)
    planner.ingest([zdt1(p, noise, rng) for p in points])
    for _ in range(proposals):
        (point,) = planner.suggest(1)
        points.append(point)
        planner.ingest([zdt1(point, noise, rng)])
    return points


def test_a_front_measured_without_noise_is_improved_on_as_it_is():
    planner = BoTorchPlanner(ZDT, seed=3, n_initial=6, num_restarts=2, raw_samples=32, reference_point=REFERENCE)
    points = run(planner, 1)
    assert planner.why(points[-1]["_id"]) == "model (qLogEHVI)"


def test_a_noisy_front_the_asked_for_noisy_acquisition_and_points_in_flight_take_qlognehvi():
    # with no prior on the noise the GP fits it honestly (the low prior's fit interpolates so few points)
    noisy = BoTorchPlanner(
        ZDT, seed=3, n_initial=6, num_restarts=2, raw_samples=32, reference_point=REFERENCE, noise_prior="flat"
    )
    points = run(noisy, 1, noise=1.0)
    assert noisy.why(points[-1]["_id"]) == "model (qLogNEHVI)"

    asked = BoTorchPlanner(
        ZDT, seed=3, n_initial=6, num_restarts=2, raw_samples=32, reference_point=REFERENCE, acquisition="qlognei"
    )
    points = run(asked, 1)
    assert asked.why(points[-1]["_id"]) == "model (qLogNEHVI)"

    in_flight = BoTorchPlanner(ZDT, seed=3, n_initial=6, num_restarts=2, raw_samples=32, reference_point=REFERENCE)
    in_flight.ingest([zdt1(p) for p in in_flight.suggest(6)])
    first, second = in_flight.suggest(1), in_flight.suggest(1)  # the first still in flight at the second
    assert in_flight.why(first[0]["_id"]) == "model (qLogEHVI)"
    assert in_flight.why(second[0]["_id"]) == "model (qLogNEHVI)"


#: The default planner's first five model-based proposals on 3-variable ZDT1 (seed 0, six design points): the two
#: ends of the front, then points along it.
SEEDED = [
    [1.0, 0.046871, 0.04741],
    [0.0, 0.0, 0.0],
    [1.0, 0.0, 0.0],
    [0.468442, 0.0, 0.0],
    [0.225418, 0.0, 0.0],
]


def test_the_default_planners_seeded_proposals_on_two_objectives_do_not_move():
    planner = BoTorchPlanner(ZDT, seed=0, n_initial=6, reference_point=REFERENCE)
    points = run(planner, 5)
    got = [p[v] for p in points[6:] for v in ZDT.variable_names]
    assert got == pytest.approx([x for row in SEEDED for x in row], abs=1e-3)
