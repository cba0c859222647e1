"""The baselines: uniform random points, a factorial grid, and an operator's list."""

from __future__ import annotations

import json

import pytest
import yaml
from gest_api.vocs import VOCS

from closedloop.errors import PlannerError
from planners import GridPlanner, ManualPlanner, RandomPlanner

VOCS_2D = VOCS(variables={"a": [-1.0, 1.0], "b": [0.0, 10.0]}, objectives={"f": "MINIMIZE"}, constants={"e": 9.5})


def xy(points: list[dict]) -> list[tuple[float, float]]:
    return [(p["a"], p["b"]) for p in points]


def measured(points: list[dict], foreign: bool = False) -> list[dict]:
    """Results with an objective; without ``_id`` when ``foreign`` (as the agent re-ingests on resume)."""
    return [{k: v for k, v in p.items() if not (foreign and k == "_id")} | {"f": p["a"] + p["b"]} for p in points]


# -- random ----------------------------------------------------------------------------------------------------


def test_random_counts_bounds_and_seed():
    planner = RandomPlanner(VOCS_2D, seed=5)
    points = planner.suggest(50)
    assert len(points) == 50 and len(set(xy(points))) == 50
    assert all(-1.0 <= a <= 1.0 and 0.0 <= b <= 10.0 for a, b in xy(points))
    assert all(p["e"] == 9.5 for p in points)
    assert xy(RandomPlanner(VOCS_2D, seed=5).suggest(50)) == xy(points)
    assert xy(RandomPlanner(VOCS_2D, seed=6).suggest(50)) != xy(points)


def test_random_rebuilt_from_its_observations_carries_on():
    original = RandomPlanner(VOCS_2D, seed=5)
    done = measured(original.suggest(4))
    original.ingest(done)
    rebuilt = RandomPlanner(VOCS_2D, seed=5)
    rebuilt.ingest(measured(done, foreign=True))
    assert xy(rebuilt.suggest(2)) == xy(original.suggest(2))
    assert not set(xy(rebuilt.pending)) & set(xy(done))


# -- grid ------------------------------------------------------------------------------------------------------


def test_grid_in_order_walks_every_point_then_is_exhausted():
    planner = GridPlanner(VOCS_2D, seed=0, points_per_dim=3, shuffle=False)
    points = planner.suggest(4) + planner.suggest(5)
    assert xy(points) == [(a, b) for a in (-1.0, 0.0, 1.0) for b in (0.0, 5.0, 10.0)]
    assert planner.remaining == 0
    planner.ingest(measured(points[:3]))
    with pytest.raises(ValueError, match="exhausted: 0 of its 9 points left, asked for 1"):
        planner.suggest(1)


def test_grid_shuffle_is_seeded_and_complete():
    points = GridPlanner(VOCS_2D, seed=1, points_per_dim={"a": 2, "b": 4}).suggest(8)
    expected = sorted((a, b) for a in (-1.0, 1.0) for b in (0.0, 10 / 3, 20 / 3, 10.0))
    assert [v for p in sorted(xy(points)) for v in p] == pytest.approx([v for p in expected for v in p])
    assert xy(GridPlanner(VOCS_2D, seed=1, points_per_dim={"a": 2, "b": 4}).suggest(8)) == xy(points)
    assert xy(GridPlanner(VOCS_2D, seed=2, points_per_dim={"a": 2, "b": 4}).suggest(8)) != xy(points)
    with pytest.raises(ValueError, match="1 of its 8 points left, asked for 2"):
        planner = GridPlanner(VOCS_2D, seed=1, points_per_dim={"a": 2, "b": 4})
        planner.suggest(7)
        planner.suggest(2)


def test_grid_skips_what_was_measured_or_failed():
    original = GridPlanner(VOCS_2D, seed=3, points_per_dim=3)
    done = measured(original.suggest(4))
    done[0]["f"] = None  # failed, still done
    original.ingest(done)
    rebuilt = GridPlanner(VOCS_2D, seed=3, points_per_dim=3)
    rebuilt.ingest(measured(done, foreign=True) + [{"a": 0.123, "b": 1.0, "f": 1.0}])  # off the grid: no slot
    assert rebuilt.remaining == 5
    assert xy(rebuilt.suggest(5)) == xy(original.suggest(5))
    assert original.remaining == 0


def test_grid_midpoint_and_option_checks():
    assert xy(GridPlanner(VOCS_2D, seed=0, points_per_dim={"a": 1, "b": 1}).suggest(1)) == [(0.0, 5.0)]
    with pytest.raises(PlannerError, match="^planner.options.points_per_dim: unknown variables c$"):
        GridPlanner(VOCS_2D, seed=0, points_per_dim={"c": 3})
    with pytest.raises(PlannerError, match="^planner.options.points_per_dim: must be >= 1 for 'b', got {'b': 0}$"):
        GridPlanner(VOCS_2D, seed=0, points_per_dim={"b": 0})
    with pytest.raises(PlannerError, match="^planner.options.points_per_dim: the grid has 4000000 points"):
        GridPlanner(VOCS_2D, seed=0, points_per_dim=2000)


# -- manual ----------------------------------------------------------------------------------------------------

PLAN = [{"a": 0.3, "b": 7.1}, {"a": -1.0, "b": 0.0}, {"a": 1.0, "b": 10.0}]


def test_manual_suggests_the_list_in_order_with_exact_values():
    planner = ManualPlanner(VOCS_2D, points=PLAN)
    first = planner.suggest(2)
    assert xy(first) == [(0.3, 7.1), (-1.0, 0.0)]  # exactly what was typed
    assert [p["_id"] for p in first] == [0, 1] and first[0]["e"] == 9.5
    assert xy(planner.suggest(1)) == [(1.0, 10.0)]
    planner.ingest(measured(first))
    assert planner.n_observed == 2 and len(planner.pending) == 1


def test_manual_suggesting_more_than_queued_raises_and_keeps_the_queue():
    planner = ManualPlanner(VOCS_2D, points=PLAN)
    with pytest.raises(ValueError, match="3 queued point\\(s\\) left, asked for 4"):
        planner.suggest(4)
    assert len(planner.queued) == 3
    planner.add([{"a": 0.0, "b": 1.0}])
    assert len(planner.suggest(4)) == 4
    with pytest.raises(ValueError, match="0 queued"):
        planner.suggest(1)


@pytest.mark.parametrize(
    ("point", "message"),
    [
        ({"a": 1.5, "b": 1.0}, "'a' = 1.5 is outside its bounds \\[-1.0, 1.0\\]"),
        ({"a": 0.0, "b": -0.1}, "'b' = -0.1 is outside"),
        ({"a": 0.0}, "no value for variable 'b'"),
        ({"a": 0.0, "b": "x"}, "'b' is 'x', not a number"),
        ({"a": 0.0, "b": 1.0, "c": 2.0}, "unknown variables: c"),
        ({"a": 0.0, "b": 1.0, "e": 8.0}, "constant 'e'"),
    ],
)
def test_manual_add_refuses_bad_points_and_queues_none(point, message):
    planner = ManualPlanner(VOCS_2D, points=PLAN[:1])
    with pytest.raises(PlannerError, match=message):
        planner.add([{"a": 0.5, "b": 0.5}, point])
    assert planner.queued == [{"a": 0.3, "b": 7.1}]


def test_manual_from_csv_yaml_and_json(tmp_path):
    (tmp_path / "plan.csv").write_text("b,a\n7.1,0.3\n0,-1\n", encoding="utf-8")
    (tmp_path / "plan.yaml").write_text(yaml.safe_dump(PLAN), encoding="utf-8")
    (tmp_path / "plan.json").write_text(json.dumps(PLAN), encoding="utf-8")
    assert xy(ManualPlanner(VOCS_2D, file=str(tmp_path / "plan.csv")).suggest(2)) == xy(PLAN[:2])
    assert xy(ManualPlanner(VOCS_2D, file=tmp_path / "plan.yaml").suggest(3)) == xy(PLAN)
    both = ManualPlanner(VOCS_2D, points=PLAN[2:], file=str(tmp_path / "plan.json"))
    assert xy(both.suggest(4)) == xy(PLAN[2:] + PLAN)
    (tmp_path / "bad.csv").write_text("a,b\n2.0,1.0\n", encoding="utf-8")
    with pytest.raises(PlannerError, match="'a' = 2.0 is outside"):
        ManualPlanner(VOCS_2D, file=str(tmp_path / "bad.csv"))
    with pytest.raises(PlannerError, match="cannot read"):
        ManualPlanner(VOCS_2D, file=str(tmp_path / "missing.yaml"))


def test_manual_rebuilt_from_its_observations_does_not_repeat_them():
    original = ManualPlanner(VOCS_2D, points=PLAN)
    done = measured(original.suggest(2))
    original.ingest(done)
    rebuilt = ManualPlanner(VOCS_2D, points=PLAN)
    rebuilt.ingest(measured(done, foreign=True))
    assert xy(rebuilt.suggest(1)) == xy(original.suggest(1)) == [(1.0, 10.0)]
