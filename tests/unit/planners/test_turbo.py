"""TuRBO: the trust region grows, shrinks, restarts and replays; and on Hartmann6 it beats Sobol."""

from __future__ import annotations

import math
import statistics

import pytest
import torch
from gest_api.vocs import VOCS

from closedloop.errors import PlannerError
from planners import SobolPlanner, TurboPlanner
from planners.turbo import LENGTH_INIT, LENGTH_MAX, failure_tolerance, replay_trust_region


def bowl(point: dict) -> float:
    """Largest (0) at x = 0.3 in every variable named ``x...``."""
    return -sum((v - 0.3) ** 2 for k, v in point.items() if k.startswith("x"))


def vocs_for(d: int) -> VOCS:
    return VOCS(variables={f"x{i}": [-1.0, 1.0] for i in range(d)}, objectives={"f": "MAXIMIZE"})


def drive(planner: TurboPlanner, steps: int, n: int = 1) -> list[dict]:
    """Suggest ``n`` points and ingest them, ``steps`` times; return the results."""
    results = []
    for _ in range(steps):
        results += [dict(p, f=bowl(p)) for p in planner.suggest(n)]
        planner.ingest(results[-n:])
    return results


def test_failure_tolerance_is_the_papers():
    assert failure_tolerance(2, 1) == 4
    assert failure_tolerance(6, 1) == 6
    assert failure_tolerance(10, 4) == 3


def test_region_expands_after_successes_and_shrinks_after_failures():
    design = [0.0, 1.0, 2.0, 3.0, 4.0]
    state = replay_trust_region(design + [5.0, 6.0], dim=2, n_initial=5)
    assert (state.length, state.successes) == (LENGTH_INIT, 2)
    state = replay_trust_region(design + [5.0, 6.0, 7.0], dim=2, n_initial=5)
    assert (state.length, state.successes, state.best_value) == (LENGTH_MAX, 0, 7.0)
    grown = design + [5.0, 6.0, 7.0]
    state = replay_trust_region(grown + [7.0, 1.0, 7.001], dim=2, n_initial=5)  # 7.001 is within 1e-3 * |7|
    assert (state.length, state.failures) == (LENGTH_MAX, 3)
    state = replay_trust_region(grown + [7.0, 1.0, 7.001, 0.0], dim=2, n_initial=5)
    assert (state.length, state.failures) == (LENGTH_MAX / 2, 0)
    # Batches of two: one improving point makes the batch a success.
    state = replay_trust_region(design + [0.0, 5.0, 6.0, 0.0, 0.0, 7.0], dim=2, n_initial=5, batch_size=2)
    assert state.length == LENGTH_MAX


def test_planner_replays_its_ingests():
    planner = TurboPlanner(vocs_for(2), seed=0, n_initial=5)
    worse = [{"x0": 0.1 * i - 0.9, "x1": 0.5, "f": -10.0 - i} for i in range(4)]
    planner.ingest([{"x0": 0.3, "x1": 0.3, "f": 0.0}] + [dict(p, f=-5.0) for p in worse])
    assert planner.trust_region.length == LENGTH_INIT
    planner.ingest(worse)  # four failures in a row in 2-D
    assert planner.trust_region.length == LENGTH_INIT / 2
    assert planner.trust_region.failures == 0


def test_region_holds_the_best_point_and_every_proposal():
    planner = TurboPlanner(vocs_for(3), seed=1, n_initial=5)
    drive(planner, 2, n=4)
    first = planner.suggest(2)
    second = planner.suggest(2)  # with the first two pending
    region = planner.last_region
    assert region is not None
    best = torch.from_numpy(planner.to_unit([[planner.best[f"x{i}"] for i in range(3)]]))
    assert bool(((region[0] <= best) & (best <= region[1])).all())
    for point in first + second:
        assert all(-1.0 <= point[f"x{i}"] <= 1.0 for i in range(3))
    U = torch.from_numpy(planner.to_unit([[p[f"x{i}"] for i in range(3)] for p in second]))
    assert bool(((region[0] - 1e-12 <= U) & (U <= region[1] + 1e-12)).all())
    assert second[0] != second[1]


def test_qlognei_proposes_inside_the_region():
    planner = TurboPlanner(vocs_for(2), seed=2, n_initial=5, acquisition="qlognei", num_restarts=2, raw_samples=16)
    drive(planner, 1, n=6)
    points = planner.suggest(2)
    region = planner.last_region
    assert region is not None
    U = torch.from_numpy(planner.to_unit([[p["x0"], p["x1"]] for p in points]))
    assert bool(((region[0] - 1e-9 <= U) & (U <= region[1] + 1e-9)).all())


def test_collapsed_region_restarts_with_a_fresh_sobol_design():
    planner = TurboPlanner(vocs_for(2), seed=3, n_initial=5)
    planner.ingest([{"x0": 0.3, "x1": 0.3, "f": 0.0}] + [{"x0": -0.5, "x1": 0.5, "f": -1.0}] * 4)
    # 0.8 halves below 0.5**7 after seven rounds of four failures.
    planner.ingest([{"x0": 0.31, "x1": 0.3, "f": -1.0}] * 27)
    assert planner.trust_region.restarts == 0
    planner.ingest([{"x0": 0.31, "x1": 0.3, "f": -1.0}])
    state = planner.trust_region
    assert (state.restarts, state.length, state.run_start, state.best_value) == (1, LENGTH_INIT, 33, None)
    fresh = planner.suggest(4)
    assert planner.last_region is None  # a design, not the trust region
    first_run = SobolPlanner(vocs_for(2), seed=3)
    first_run.ingest([{"x0": 0.0, "x1": 0.0, "f": 0.0}] * 33)
    assert [(p["x0"], p["x1"]) for p in fresh] != [(p["x0"], p["x1"]) for p in first_run.suggest(4)]
    assert max(abs(p["x0"] - 0.3) + abs(p["x1"] - 0.3) for p in fresh) > 0.5  # not the old, collapsed region
    # The new run fits and centres on its own data only.
    planner.ingest([dict(p, f=-2.0 - i) for i, p in enumerate(fresh)] + [dict(planner.suggest(1)[0], f=-3.0)])
    assert planner.trust_region.best_value == -2.0


def test_rebuilt_from_replay_proposes_the_same_point():
    original = TurboPlanner(vocs_for(3), seed=4, n_initial=5)
    results: list[dict] = []
    for n in (5, 1, 1, 1):
        done = [dict(p, f=bowl(p)) for p in original.suggest(n)]
        if not results:
            done[1]["f"] = None  # a failed point is replayed too
        original.ingest(done)
        results += done
    rebuilt = TurboPlanner(vocs_for(3), seed=4, n_initial=5)
    rebuilt.ingest([{k: v for k, v in r.items() if k != "_id"} for r in results])  # as the agent does on resume
    assert rebuilt.trust_region == original.trust_region
    a, b = original.suggest(1)[0], rebuilt.suggest(1)[0]
    assert [a[f"x{i}"] for i in range(3)] == [b[f"x{i}"] for i in range(3)]


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"constraints": {"c": ["LESS_THAN", 0.0]}}, "constraint"),
        ({"objectives": {"f": "MAXIMIZE", "g": "MINIMIZE"}}, "objective"),
        ({"variables": {"x0": [-1.0, 1.0], "mode": {"a", "b"}}}, "mode"),
        ({"variables": {"x0": [-1.0, 1.0], "n": {1, 2, 3}}}, "'n'"),
    ],
)
def test_refuses_what_it_cannot_do(fields, named):
    vocs = VOCS(**({"variables": {"x0": [-1.0, 1.0]}, "objectives": {"f": "MAXIMIZE"}} | fields))
    with pytest.raises(PlannerError, match=named):
        TurboPlanner(vocs, seed=0)


@pytest.mark.parametrize("option", [{"acquisition": "ei"}, {"n_initial": 1}, {"batch_size": 0}])
def test_bad_options_are_refused(option):
    with pytest.raises(PlannerError, match=next(iter(option))):
        TurboPlanner(vocs_for(2), seed=0, **option)


# -- does it work? ---------------------------------------------------------------------------------------------

_A = [[10, 3, 17, 3.5, 1.7, 8], [0.05, 10, 17, 0.1, 8, 14], [3, 3.5, 1.7, 10, 17, 8], [17, 8, 0.05, 10, 0.1, 14]]
_P = [
    [1312, 1696, 5569, 124, 8283, 5886],
    [2329, 4135, 8307, 3736, 1004, 9991],
    [2348, 1451, 3522, 2883, 3047, 6650],
    [4047, 8828, 8732, 5743, 1091, 381],
]
_ALPHA = [1.0, 1.2, 3.0, 3.2]
HARTMANN6_MIN = -3.32237


def hartmann6(x: list[float]) -> float:
    """The Hartmann 6-D function on the unit cube; minimum -3.32237."""
    return -sum(
        a * math.exp(-sum(_A[i][j] * (x[j] - _P[i][j] * 1e-4) ** 2 for j in range(6))) for i, a in enumerate(_ALPHA)
    )


HARTMANN6 = VOCS(variables={f"x{i}": [0.0, 1.0] for i in range(6)}, objectives={"f": "MINIMIZE"})


def best_found(planner, budget: int) -> float:
    for _ in range(budget):
        (point,) = planner.suggest(1)
        planner.ingest([dict(point, f=hartmann6([point[f"x{i}"] for i in range(6)]))])
    return planner.best["f"]


@pytest.mark.slow
def test_turbo_beats_sobol_on_hartmann6():
    seeds, budget = [0, 1, 2], 12 + 20
    turbo = [best_found(TurboPlanner(HARTMANN6, seed=s, n_initial=12), budget) for s in seeds]
    sobol = [best_found(SobolPlanner(HARTMANN6, seed=s), budget) for s in seeds]
    print(f"best of {budget}: turbo {[round(v, 3) for v in turbo]}, sobol {[round(v, 3) for v in sobol]}")
    assert statistics.median(turbo) < statistics.median(sobol) - 0.5
    assert statistics.median(turbo) < 0.8 * HARTMANN6_MIN
