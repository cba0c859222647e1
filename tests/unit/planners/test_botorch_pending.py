"""``pending``: how a proposal allows for the points still in flight (pipelining, several instruments).

``joint`` (the default) is qLogNEI over the new point and the points in flight. With points in flight around a
peak found, each new point earns little that they do not already promise, and qLogNEI sends it to the unexplored
edge of the space. ``believe`` (GP-BUCB) tells the GP its own mean at the points in flight and proposes by UCB, so
the new point goes where the model is still high and unsure: next to them, not onto them.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from gest_api.vocs import VOCS

import planners._acquisition as acquisition
import planners._choice as choice
from planners import BoTorchPlanner
from planners.sobol import sobol_points

VOCS_2D = VOCS(variables={"x": [-1.5, 1.5], "y": [-1.5, 1.5]}, objectives={"f": "MAXIMIZE"})
PEAK = np.array([0.4, -0.3])


def flux(p: np.ndarray) -> float:
    """A broad peak, as the simulated beamline's: 1000 counts over a background of 20, width 0.5."""
    return 20.0 + 1000.0 * math.exp(-float(((p - PEAK) ** 2).sum()) / (2 * 0.5**2))


def found_peak(seed: int) -> list[dict]:
    """Eight Sobol points, then four within 0.4 of the peak along each axis; noise sd 10."""
    rng = np.random.default_rng(seed)
    X = list(-1.5 + 3 * sobol_points(2, 8, seed=seed)) + [PEAK + rng.uniform(-0.4, 0.4, 2) for _ in range(4)]
    return [{"x": float(p[0]), "y": float(p[1]), "f": flux(p) + float(rng.normal(0, 10))} for p in X]


def one_at_a_time(rule: str, seed: int, data: list[dict], count: int = 4) -> list[dict]:
    """``count`` proposals asked for one at a time, each made with the ones before it in flight."""
    planner = BoTorchPlanner(VOCS_2D, seed=seed, n_initial=8, pending=rule)
    planner.ingest(data)
    return [planner.suggest(1)[0] for _ in range(count)]


@pytest.mark.slow
def test_believe_keeps_the_points_in_flight_on_the_peak_where_joint_sends_them_to_the_edge() -> None:
    far = {"joint": 0, "believe": 0}
    for seed in range(8):
        for rule in far:
            # the first proposal has nothing in flight (the same for both); each later one has those before it
            later = one_at_a_time(rule, seed, found_peak(seed))[1:]
            far[rule] += sum(math.dist((p["x"], p["y"]), PEAK) > 1.0 for p in later)
    # measured: 7 of 24 proposals more than 1.0 from the peak with joint, 1 with believe
    assert far["joint"] >= 5 and far["believe"] * 3 <= far["joint"], far


@pytest.fixture
def acquisitions(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The name of the acquisition function behind each model-based proposal."""
    made: list[str] = []

    class UCB(acquisition.UpperConfidenceBound):
        def __init__(self, *args, **kwargs):
            made.append("UCB")
            super().__init__(*args, **kwargs)

    class QLogNEI(choice.qLogNoisyExpectedImprovement):
        def __init__(self, *args, **kwargs):
            made.append("qLogNEI")
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(acquisition, "UpperConfidenceBound", UCB)
    monkeypatch.setattr(choice, "qLogNoisyExpectedImprovement", QLogNEI)
    return made


def test_believe_waits_for_a_reading_that_stands_out_and_for_points_in_flight(acquisitions: list[str]) -> None:
    rng = np.random.default_rng(0)
    background = [{"x": float(p[0]), "y": float(p[1]), "f": 20.0 + float(rng.normal(0, 10))}
                  for p in -1.5 + 3 * sobol_points(2, 12, seed=0)]  # fmt: skip
    one_at_a_time("believe", 0, background, count=2)
    assert acquisitions == ["qLogNEI", "qLogNEI"]  # only noise so far: as joint
    acquisitions.clear()
    planner = BoTorchPlanner(VOCS_2D, seed=0, n_initial=8, pending="believe")
    planner.ingest(found_peak(0))
    points = [planner.suggest(1)[0] for _ in range(3)]
    assert acquisitions == ["qLogNEI", "UCB", "UCB"]  # nothing in flight for the first
    assert [planner.why(p["_id"]) for p in points] == ["model (qLogNEI)"] + [
        "model (UCB, believing the points in flight)"
    ] * 2


def test_pending_is_checked_by_name() -> None:
    with pytest.raises(ValueError, match="planner.options.pending"):
        BoTorchPlanner(VOCS_2D, pending="hope")
    with pytest.raises(ValueError, match="planner.options.ucb_beta"):
        BoTorchPlanner(VOCS_2D, ucb_beta=0.0)
