"""Fixtures for the planner tests: small problems and every registered planner."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from gest_api.vocs import VOCS

from closedloop.spec import registered_planners


@pytest.fixture
def vocs() -> VOCS:
    """A 2-D maximization with a constant, the shape of the beamline problem."""
    return VOCS(
        variables={"x1": [-1.5, 1.5], "x2": [0.0, 5.0]},
        objectives={"f": "MAXIMIZE"},
        constants={"energy": 9.5},
    )


#: Options a registered planner needs to run through the conformance suite at all, by name (a manual planner
#: suggests only the points it was given: 30 points inside the bounds of :func:`vocs`).
PLANNER_OPTIONS: dict[str, dict] = {
    "manual": {
        "points": [{"x1": x1, "x2": x2} for x1 in (-1.5, -0.9, -0.3, 0.3, 0.9, 1.5) for x2 in (0, 1, 2.5, 4, 5)]
    },
}

#: Planners whose points do not depend on the seed (a manual planner suggests the operator's points in order).
SEED_FREE = {"manual"}


@pytest.fixture(params=registered_planners())
def planner_name(request: pytest.FixtureRequest) -> str:
    """The name of each planner registered in ``closedloop.planners``."""
    return request.param


def smooth(point: dict) -> float:
    """A smooth 2-D test function with its peak (10) at (0.3, 2.0), for the variables of :func:`vocs`."""
    return 10.0 - (point["x1"] - 0.3) ** 2 - 0.5 * (point["x2"] - 2.0) ** 2


@pytest.fixture
def evaluate() -> Callable[[list[dict]], list[dict]]:
    """Returns a function that adds the objective ``f`` (:func:`smooth`) to each point."""

    def _evaluate(points: list[dict]) -> list[dict]:
        return [dict(p, f=smooth(p)) for p in points]

    return _evaluate


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Run torch on one thread for each planner test, then restore the thread count.

    The problems here are tiny (n <= 25, d = 2): a second thread gains nothing, and when other jobs share the
    two cores, torch's spinning worker threads made the statistical test 5-8x slower (20 s alone, 110-170 s
    shared).
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
