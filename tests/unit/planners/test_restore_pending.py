"""A planner rebuilt on resume continues its sequence exactly: every registered planner, and the initial design.

The rebuilt planner is told what the agent tells it on resume (:func:`agent.loop.replay_into_planner`): every
point its earlier instance made, given back as pending, then each result under the point's new ``_id``.
"""

from __future__ import annotations

import pytest

from planners import RestoresPending, WarmStart
from planners import load_planner as _load_planner
from tests.unit.planners.conftest import PLANNER_OPTIONS

SEED = 11


def load_planner(name, *args, **kwargs):
    return _load_planner(name, *args, **PLANNER_OPTIONS.get(name, {}), **kwargs)


def foreign(points: list[dict]) -> list[dict]:
    return [{k: v for k, v in point.items() if k != "_id"} for point in points]


def xs(points: list[dict]) -> list[float]:
    return [point[name] for point in points for name in ("x1", "x2")]


def rebuilt_after(build, evaluate) -> tuple[list[dict], list[dict]]:
    """What a live planner gives after 2 measured and 2 still out, and what a rebuilt one gives there instead."""
    live = build()
    measured = evaluate(live.suggest(2))
    live.ingest(measured)
    out = live.suggest(2)  # the process dies with these still out
    expected = live.suggest(2)
    rebuilt = build()
    assert isinstance(rebuilt, RestoresPending)
    ids = rebuilt.restore_pending(foreign(measured + out))  # every point it made, given back
    assert len(set(ids)) == 4
    rebuilt.ingest([dict(result, _id=point_id) for result, point_id in zip(foreign(measured), ids, strict=False)])
    if hasattr(rebuilt, "pending"):
        assert {p["_id"] for p in rebuilt.pending} == set(ids[2:])
    return expected, rebuilt.suggest(2)


def test_a_rebuilt_planner_gives_what_the_live_one_would_have(planner_name, vocs, evaluate) -> None:
    expected, given = rebuilt_after(lambda: load_planner(planner_name, vocs, seed=SEED), evaluate)
    assert xs(given) == pytest.approx(xs(expected), abs=1e-12)


def test_a_rebuilt_initial_design_continues_it(vocs, evaluate) -> None:
    def build() -> WarmStart:
        return WarmStart(vocs, planner=load_planner("random", vocs, seed=SEED), initial=8, seed=SEED)

    expected, given = rebuilt_after(build, evaluate)
    assert xs(given) == pytest.approx(xs(expected), abs=1e-12)


def test_a_point_given_back_takes_its_result_under_its_new_id(vocs, evaluate) -> None:
    planner = load_planner("sobol", vocs, seed=SEED)
    out = foreign(load_planner("sobol", vocs, seed=SEED).suggest(1))
    (point_id,) = planner.restore_pending(out)
    planner.ingest([dict(evaluate(out)[0], _id=point_id)])
    assert planner.pending == [] and planner.n_observed == 1
    with pytest.raises(ValueError, match="no value for variable 'x2'"):
        planner.restore_pending([{"x1": 0.0}])
    assert planner.pending == []


def test_a_grid_point_read_back_off_the_grid_is_done(vocs) -> None:
    planner = load_planner("grid", vocs, seed=SEED, points_per_dim=2)
    points = planner.suggest(4)
    # the instrument read each back a little off the point asked for: still the grid point it was asked for
    planner.ingest([dict(p, x1=p["x1"] + 1e-3, f=1.0) for p in points])
    with pytest.raises(ValueError, match="exhausted"):
        planner.suggest(1)
