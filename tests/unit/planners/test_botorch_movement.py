"""Movement: max_travel keeps proposals in a box around the current position; travel_cost keeps them close."""

from __future__ import annotations

import pytest
from gest_api.vocs import VOCS
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from planners import BoTorchPlanner, KnowsPosition, SobolPlanner

VOCS_2D = VOCS(variables={"x1": [-1.5, 1.5], "x2": [0.0, 5.0]}, objectives={"f": "MAXIMIZE"}, constants={"e": 9.5})
FAST = {"num_restarts": 2, "raw_samples": 32, "n_initial": 4, "maxiter": 50}
MAX_TRAVEL = {"x1": 0.2, "x2": 0.5}


def evaluate(points: list[dict]) -> list[dict]:
    """Peak at (1.2, 4.5), far from where the movement tests start."""
    return [dict(p, f=-((p["x1"] - 1.2) ** 2) - 0.5 * (p["x2"] - 4.5) ** 2) for p in points]


def within(point: dict, position: dict, max_travel: dict) -> bool:
    return all(abs(point[v] - position[v]) <= max_travel[v] + 1e-12 for v in max_travel)


def test_knows_position_protocol():
    assert isinstance(BoTorchPlanner(VOCS_2D, seed=0), KnowsPosition)
    assert not isinstance(SobolPlanner(VOCS_2D, seed=0), KnowsPosition)


def test_position_is_the_last_ingested_point_unless_set():
    planner = BoTorchPlanner(VOCS_2D, seed=0)
    assert planner.position is None
    planner.ingest(evaluate([{"x1": 0.1, "x2": 1.0}, {"x1": -0.4, "x2": 2.0}]))
    assert planner.position == {"x1": -0.4, "x2": 2.0}
    planner.set_position({"x1": 1.0, "x2": 3.0, "e": 9.5})
    assert planner.position == {"x1": 1.0, "x2": 3.0}
    planner.ingest(evaluate([{"x1": 0.5, "x2": 0.5}]))  # the instrument measured there since
    assert planner.position == {"x1": 0.5, "x2": 0.5}
    with pytest.raises(ValueError, match="x2"):
        planner.set_position({"x1": 0.0})


@settings(max_examples=4, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 100),
    x1=st.floats(-1.5, 1.5),
    x2=st.floats(0.0, 5.0),
    q=st.sampled_from([1, 2]),
)
def test_max_travel_keeps_every_proposal_in_the_box(seed, x1, x2, q):
    planner = BoTorchPlanner(VOCS_2D, seed=seed, max_travel=MAX_TRAVEL, **FAST)
    position = {"x1": x1, "x2": x2}
    planner.set_position(position)
    design = planner.suggest(4)  # the Sobol design keeps to the box too
    assert all(within(p, position, MAX_TRAVEL) for p in design)
    planner.ingest(evaluate(design))
    planner.set_position(position)
    points = planner.suggest(q)
    for p in points:
        assert within(p, position, MAX_TRAVEL)
        assert -1.5 <= p["x1"] <= 1.5 and 0.0 <= p["x2"] <= 5.0


def test_max_travel_box_is_clipped_to_the_bounds():
    planner = BoTorchPlanner(VOCS_2D, seed=0, max_travel=1.0, **FAST)
    planner.set_position({"x1": 1.5, "x2": 0.0})
    points = planner.suggest(4)
    assert all(0.5 <= p["x1"] <= 1.5 and 0.0 <= p["x2"] <= 1.0 for p in points)


def test_position_too_far_outside_is_refused():
    planner = BoTorchPlanner(VOCS_2D, seed=0, max_travel=0.1)
    planner.set_position({"x1": 3.0, "x2": 1.0})
    with pytest.raises(ValueError, match="x1"):
        planner.suggest(1)


def distance_after(seed: int, travel_cost: float | None) -> float:
    planner = BoTorchPlanner(VOCS_2D, seed=seed, travel_cost=travel_cost, **FAST)
    planner.ingest(evaluate(planner.suggest(4)))
    start = {"x1": -1.0, "x2": 1.0}
    planner.set_position(start)
    (point,) = planner.suggest(1)
    return abs(point["x1"] - start["x1"]) + abs(point["x2"] - start["x2"])


def test_travel_cost_keeps_proposals_closer():
    free = [distance_after(seed, None) for seed in (0, 1)]
    costly = [distance_after(seed, 20.0) for seed in (0, 1)]
    assert all(c < f for c, f in zip(costly, free, strict=True)), (costly, free)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"travel_cost": -1.0}, "travel_cost"),
        ({"max_travel": {"x3": 1.0}}, "x3"),
        ({"max_travel": float("nan")}, "max_travel"),
    ],
)
def test_bad_movement_options_are_refused(options, message):
    with pytest.raises(ValueError, match=message):
        BoTorchPlanner(VOCS_2D, seed=0, **options)
