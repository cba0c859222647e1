"""The gest-api planner contract, run over every planner registered in ``closedloop.planners``."""

from __future__ import annotations

import math

import numpy as np
import pytest
from gest_api.vocs import VOCS

from closedloop.errors import PlannerError
from closedloop.plugins import planner_entry_points
from planners import load_planner as _load_planner
from tests.unit.planners.conftest import PLANNER_OPTIONS, SEED_FREE

SEED = 7
#: Options that keep the model-based planners quick on the feature checks.
FAST_OPTIONS = {"botorch": {"num_restarts": 2, "raw_samples": 32, "maxiter": 30}}


def load_planner(name, *args, **kwargs):
    """:func:`planners.load_planner` with the options the planner needs for this suite (conftest)."""
    return _load_planner(name, *args, **PLANNER_OPTIONS.get(name, {}), **kwargs)


def warm(planner, evaluate, n: int = 6) -> None:
    """Give the planner ``n`` observations of its own points."""
    planner.ingest(evaluate(planner.suggest(n)))


@pytest.mark.parametrize("n", [1, 3])
def test_right_count_inside_bounds_with_constants(planner_name, vocs, n, evaluate):
    planner = load_planner(planner_name, vocs, seed=SEED)
    for _ in range(2):  # cold, then with data
        points = planner.suggest(n)
        assert len(points) == n
        for point in points:
            assert set(point) == {"x1", "x2", "energy", "_id"}
            assert -1.5 <= point["x1"] <= 1.5
            assert 0.0 <= point["x2"] <= 5.0
            assert point["energy"] == 9.5
        planner.ingest(evaluate(points))
        warm(planner, evaluate)


def test_ids_are_unique_integers_and_echoed(planner_name, vocs, evaluate):
    planner = load_planner(planner_name, vocs, seed=SEED)
    assert planner.returns_id is True
    first = planner.suggest(3)
    second = planner.suggest(2)
    ids = [p["_id"] for p in first + second]
    assert all(type(i) is int for i in ids)
    assert len(set(ids)) == len(ids)
    assert {p["_id"] for p in planner.pending} == set(ids)
    planner.ingest(evaluate(first))
    assert {p["_id"] for p in planner.pending} == {p["_id"] for p in second}
    assert planner.n_observed == 3
    later = planner.suggest(2)
    assert not {p["_id"] for p in later} & set(ids)


def test_ingest_takes_numpy_scalars(planner_name, vocs, evaluate):
    planner = load_planner(planner_name, vocs, seed=SEED)
    results = [
        {
            "x1": np.float64(p["x1"]),
            "x2": np.float32(p["x2"]),
            "f": np.float64(p["f"]),
            "_id": np.int64(p["_id"]),
        }
        for p in evaluate(planner.suggest(3))
    ]
    planner.ingest(results)
    assert planner.n_observed == 3
    assert planner.pending == []


def test_ingest_foreign_points(planner_name, vocs, evaluate):
    planner = load_planner(planner_name, vocs, seed=SEED)
    foreign = [{"x1": x1, "x2": x2} for x1, x2 in [(-1.0, 1.0), (0.2, 2.2), (1.2, 4.0), (0.5, 0.5)]]
    planner.ingest(evaluate(foreign))
    assert planner.n_observed == 4
    assert planner.best is not None and planner.best["x1"] == 0.2
    assert "_id" not in planner.best
    assert len(planner.suggest(2)) == 2


@pytest.mark.parametrize("failed", [math.nan, None, "missing", np.float64("nan")])
def test_ingest_failed_points(planner_name, vocs, failed, evaluate):
    planner = load_planner(planner_name, vocs, seed=SEED)
    points = planner.suggest(6)
    results = evaluate(points)
    for result in results[:2]:
        if failed == "missing":
            del result["f"]
        else:
            result["f"] = failed
    planner.ingest(results)
    assert planner.pending == []
    assert planner.n_observed == 4
    assert planner.n_failed == 2
    assert math.isfinite(planner.best["f"])
    points = planner.suggest(2)
    assert len(points) == 2


def test_only_failed_points_still_suggests(planner_name, vocs):
    planner = load_planner(planner_name, vocs, seed=SEED)
    planner.ingest([dict(p, f=math.nan) for p in planner.suggest(6)])
    assert planner.best is None
    assert len(planner.suggest(1)) == 1


@pytest.mark.parametrize("bad_id", [99, -1, 2.5, "abc"])
def test_unknown_id_is_refused(planner_name, vocs, bad_id, evaluate):
    planner = load_planner(planner_name, vocs, seed=SEED)
    points = evaluate(planner.suggest(2))
    with pytest.raises(ValueError, match="_id"):
        planner.ingest([points[0], dict(points[1], _id=bad_id)])
    assert planner.n_observed == 0  # nothing recorded from a bad batch
    assert len(planner.pending) == 2


@pytest.mark.parametrize("n", [0, -1])
def test_bad_num_points_is_refused(planner_name, vocs, n):
    planner = load_planner(planner_name, vocs, seed=SEED)
    with pytest.raises(ValueError):
        planner.suggest(n)


def test_same_seed_same_points(planner_name, vocs, evaluate):
    a = load_planner(planner_name, vocs, seed=SEED)
    b = load_planner(planner_name, vocs, seed=SEED)
    assert a.suggest(3) == b.suggest(3)  # cold
    data = [{"x1": x1, "x2": x2} for x1, x2 in [(-1.0, 1.0), (0.2, 2.2), (1.2, 4.0), (0.5, 0.5), (-0.3, 3.1)]]
    a.ingest(evaluate(data) + evaluate(a.pending)[:1])
    b.ingest(evaluate(data) + evaluate(b.pending)[:1])
    assert a.suggest(1) == b.suggest(1)
    assert a.suggest(2) == b.suggest(2)


def test_different_seeds_differ(planner_name, vocs):
    if planner_name in SEED_FREE:
        pytest.skip(f"{planner_name} does not use the seed")
    a = load_planner(planner_name, vocs, seed=1)
    b = load_planner(planner_name, vocs, seed=2)
    assert a.suggest(3) != b.suggest(3)


def test_finalize_twice(planner_name, vocs, evaluate):
    planner = load_planner(planner_name, vocs, seed=SEED)
    warm(planner, evaluate, 2)
    planner.finalize()
    planner.finalize()


def test_vocs_as_keyword(planner_name, vocs):
    planner = load_planner(planner_name, vocs=vocs, seed=SEED)
    assert len(planner.suggest(1)) == 1


def planner_class(name: str) -> type:
    """The class registered under ``name``."""
    return planner_entry_points()[name].load()


#: Each optional feature: the support flag that decides it, a VOCS using it, what a refusal must name, and
#: an evaluation giving every output that VOCS asks for.
FEATURES = {
    "constraints": (
        "supports_constraints",
        {"constraints": {"c1": ["LESS_THAN", 0.0]}},
        "constraint",
        lambda p: {"f": -(p["x1"] ** 2), "c1": p["x1"] - 0.5},
    ),
    "multi_objective": (
        "supports_multi_objective",
        {"objectives": {"f": "MAXIMIZE", "g": "MINIMIZE"}},
        "objective",
        lambda p: {"f": -(p["x1"] ** 2), "g": (p["x1"] - 1.0) ** 2},
    ),
    "discrete": (
        "supports_discrete",
        {"variables": {"x1": [-1.5, 1.5], "mode": {"a", "b"}, "n": {1, 4}}},
        "mode",
        lambda p: {"f": -(p["x1"] ** 2) + (p["mode"] == "a") + 0.1 * p["n"]},
    ),
}


@pytest.mark.parametrize("feature", sorted(FEATURES))
def test_optional_feature_accepted_or_refused_by_its_flag(planner_name, feature):
    flag, extra, named, outputs = FEATURES[feature]
    fields = {"variables": {"x1": [-1.5, 1.5], "x2": [0.0, 5.0]}, "objectives": {"f": "MAXIMIZE"}} | extra
    vocs = VOCS(**fields)
    if not getattr(planner_class(planner_name), flag, False):
        with pytest.raises(PlannerError, match=named):
            load_planner(planner_name, vocs, seed=SEED)
        return
    planner = load_planner(planner_name, vocs, seed=SEED, **FAST_OPTIONS.get(planner_name, {}))
    for n in (6, 1):  # cold, then with data
        points = planner.suggest(n)
        for point in points:
            assert -1.5 <= point["x1"] <= 1.5
            if "mode" in point:
                assert point["mode"] in {"a", "b"} and point["n"] in {1, 4}
        planner.ingest([dict(p, **outputs(p)) for p in points])


def test_explore_objective_is_refused(planner_name):
    vocs = VOCS(variables={"x1": [-1.5, 1.5]}, objectives={"f": "EXPLORE"})
    with pytest.raises(PlannerError, match="ExploreObjective"):
        load_planner(planner_name, vocs, seed=SEED)


def test_constants_of_any_type_are_passed_through(planner_name, evaluate):
    constants = {"energy": 9.5, "mode": "fly", "repeats": 3}
    vocs = VOCS(variables={"x1": [-1.5, 1.5], "x2": [0.0, 5.0]}, objectives={"f": "MAXIMIZE"}, constants=constants)
    planner = load_planner(planner_name, vocs, seed=SEED)
    for _ in range(2):  # cold, then with data
        points = planner.suggest(3)
        assert all({k: p[k] for k in constants} == constants for p in points)
        assert all(type(p["repeats"]) is int for p in points)
        planner.ingest(evaluate(points + planner.suggest(3)))


def test_minimize(planner_name, evaluate):
    vocs = VOCS(variables={"x1": [-1.5, 1.5], "x2": [0.0, 5.0]}, objectives={"f": "MINIMIZE"})
    planner = load_planner(planner_name, vocs, seed=SEED)
    points = evaluate(planner.suggest(6))
    planner.ingest(points)
    assert planner.best["f"] == min(p["f"] for p in points)
    assert len(planner.suggest(1)) == 1


def test_a_failed_point_is_not_proposed_again_live_or_rebuilt(planner_name, vocs, evaluate):
    """The agent tells a planner about a rejected (or aborted) point by ingesting it as failed: every output NaN,
    with its ``_id`` live, without it on resume. Neither planner proposes it again."""
    live = load_planner(planner_name, vocs, seed=SEED)
    done = evaluate(live.suggest(6))
    live.ingest(done)
    batch = live.suggest(2)
    rejected = batch[0]
    live.ingest([{**rejected, "f": math.nan}, *evaluate(batch[1:])])
    rebuilt = load_planner(planner_name, vocs, seed=SEED)
    rebuilt.ingest([{k: v for k, v in r.items() if k != "_id"} for r in done])
    rebuilt.ingest([{"x1": rejected["x1"], "x2": rejected["x2"], "energy": 9.5, "f": math.nan}])
    rebuilt.ingest([{k: v for k, v in r.items() if k != "_id"} for r in evaluate(batch[1:])])
    for planner in (live, rebuilt):
        assert planner.n_failed == 1
        for point in planner.suggest(4):
            same = abs(point["x1"] - rejected["x1"]) <= 3e-3 and abs(point["x2"] - rejected["x2"]) <= 5e-3
            assert not same, f"{planner_name} proposed the rejected point {rejected} again: {point}"
