"""Constrained design problems from the engineering literature, as BoTorch's test functions define them.

Each is mapped onto the unit cube from the function's bounds (variables ``x1 .. xd`` in ``[0, 1]``), minimizes the
function's objective, and has one ``LESS_THAN 0`` constraint ``c_i`` per BoTorch constraint, its negated slack
(BoTorch calls a point feasible when every slack is ``>= 0``). The optimum is BoTorch's ``optimal_value``; the regret
before the first feasible point is that of its ``_worst_feasible_value``.

- ``spring``: the tension/compression spring (``TensionCompressionString``), 3 variables, 4 constraints; the
  feasible region is a thin sliver (the wire diameter within a few hundredths of the range) and the constraint
  outputs span many orders of magnitude.
- ``welded_beam``: the welded beam (``WeldedBeamSO``), 4 variables, 6 constraints.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gest_api.vocs import VOCS

from benchmarks._problem import Problem

#: name -> the BoTorch test function's class name.
ENGINEERING = {"spring": "TensionCompressionString", "welded_beam": "WeldedBeamSO"}


def _truth(function: Any) -> Callable[[dict[str, float]], dict[str, float]]:
    import torch

    bounds = torch.tensor(function._bounds, dtype=torch.float64).T
    names = [f"x{i}" for i in range(1, function.dim + 1)]

    def truth(p: dict[str, float]) -> dict[str, float]:
        U = torch.tensor([[p[n] for n in names]], dtype=torch.float64)
        X = bounds[0] + U * (bounds[1] - bounds[0])
        outputs = {"f": float(function.evaluate_true(X)[0])}
        for i, value in enumerate((-function.evaluate_slack_true(X))[0].tolist(), start=1):
            outputs[f"c{i}"] = float(value)
        return outputs

    return truth


def engineering_problem(name: str) -> Problem:
    """The problem ``name`` of :data:`ENGINEERING` (imports torch and BoTorch)."""
    from botorch.test_functions import synthetic

    function = getattr(synthetic, ENGINEERING[name])()
    variables = {f"x{i}": [0.0, 1.0] for i in range(1, function.dim + 1)}
    constraints = {f"c{i}": ["LESS_THAN", 0.0] for i in range(1, function.num_constraints + 1)}
    optimum = float(function.optimal_value)
    worst = float(function._worst_feasible_value)
    return Problem(
        name=name,
        vocs=VOCS(variables=variables, objectives={"f": "MINIMIZE"}, constraints=constraints),
        truth=_truth(function),
        optimum=optimum,
        hit_tolerance=0.01 * abs(optimum),
        worst=worst - optimum,
    )
