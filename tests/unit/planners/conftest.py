"""Fixtures for the planner tests: small problems and every registered planner."""

from __future__ import annotations

import warnings
from collections.abc import Callable

import pytest
from gest_api.vocs import VOCS

from closedloop.spec import registered_planners

# torch 2.13 deprecates ``torch.jit.script``, which linear_operator (under gpytorch, BoTorch) uses at import.
# Import it once here, the warning named and ignored, so ``filterwarnings = error`` does not fail collection.
# The lasting fix is a named ignore in pyproject's filterwarnings.
with warnings.catch_warnings():
    warnings.filterwarnings(
        "ignore", message=r".*torch\.jit\.script.* is deprecated", category=DeprecationWarning
    )
    import planners  # noqa: F401


@pytest.fixture
def vocs() -> VOCS:
    """A 2-D maximization with a constant, the shape of the beamline problem."""
    return VOCS(
        variables={"x1": [-1.5, 1.5], "x2": [0.0, 5.0]},
        objectives={"f": "MAXIMIZE"},
        constants={"energy": 9.5},
    )


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
