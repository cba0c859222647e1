"""The search for feasibility on a small feasible region: the welded beam's seed 5, a seed that traced the default
search's choice, stays a guard that the default finds a feasible point there and says it is searching.

One seed is not a comparison: on the CPU where it was traced the probability of feasibility found no feasible point
in 30 proposals and the default search found one at the 6th; with the tests' portable math (``tests/__init__.py``)
they take 7 and 13. The comparison over seeds is on ``docs/benchmarks/constrained.md``."""

from __future__ import annotations

import pytest

from benchmarks._problems import PROBLEMS
from planners import BoTorchPlanner

#: Proposals after the 10 design points within which the default search must find a feasible point on
#: ``welded_beam`` seed 5 (13 with the tests' portable math).
WITHIN = 16
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
