"""The search for feasibility on a small feasible region: on the welded beam's seed 5, where the probability of
feasibility found no feasible point in 30 proposals, the default search finds one."""

from __future__ import annotations

import pytest

from benchmarks._problems import PROBLEMS
from planners import BoTorchPlanner

#: Proposals after the 10 design points within which the default search must find a feasible point on
#: ``welded_beam`` seed 5 (it took 6; the probability of feasibility had none after 30).
WITHIN = 10
SEARCH = "searching for feasibility: expected reduction of the total violation, constraints on a log scale"


@pytest.mark.slow
def test_the_welded_beam_seed_that_found_nothing_finds_a_feasible_point() -> None:
    problem = PROBLEMS["welded_beam"]
    planner = BoTorchPlanner(problem.vocs, seed=5, n_initial=10)
    design = planner.suggest(10)
    planner.ingest([{**p, **problem.truth(p)} for p in design])
    assert not any(problem.feasible(problem.truth(p)) for p in design)
    reasons = []
    for _ in range(WITHIN):
        (p,) = planner.suggest(1)
        reasons.append(planner.why(p["_id"]))
        outputs = problem.truth(p)
        planner.ingest([{**p, **outputs}])
        if problem.feasible(outputs):
            break
    assert problem.feasible(outputs), f"no feasible point in {WITHIN} proposals"
    assert set(reasons) == {SEARCH}
