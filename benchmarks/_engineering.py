"""Constrained problems from the literature's standard families, as BoTorch's test functions define them.

Each is mapped onto the unit cube from the function's bounds (variables ``x1 .. xd`` in ``[0, 1]``), minimizes the
function's objective, and has one ``LESS_THAN 0`` constraint ``c_i`` per BoTorch constraint, its negated slack
(BoTorch calls a point feasible when every slack is ``>= 0``). The regret before the first feasible point is that of
the function's ``_worst_feasible_value``. Between them they cover small, thin and disconnected feasible regions,
optima on a constraint's boundary and inside the feasible region, and 2 to 6 variables:

- ``spring``: the tension/compression spring (``TensionCompressionString``, Coello Coello 2002), 3 variables, 4
  constraints, f* = 0.012681; the feasible region is a thin sliver (the wire diameter within a few hundredths of
  the range) and the constraint outputs span many orders of magnitude.
- ``welded_beam``: the welded beam (``WeldedBeamSO``, Coello Coello 2002), 4 variables, 6 constraints,
  f* = 1.728226; the feasible region is a small corner (weld thickness and bar width near their lower bounds).
- ``gramacy``: Gramacy et al. 2016's toy problem (``ConstrainedGramacy``): minimize ``x1 + x2`` on the unit square
  under a sinusoidal and a disk constraint, 2 variables, 2 constraints; the feasible region is disconnected and
  the optimum lies on the sinusoidal constraint's boundary. Published f* = 0.5998 (to four digits); here
  0.5997880520 at (0.195123, 0.404665), refined with SLSQP from it and 200 random starts.
- ``pressure_vessel``: the pressure vessel (Coello Coello 2002) in its continuous form, 4 variables, 4
  constraints, f* = 5885.3327 at (0.77817, 0.38465, 40.3196, 200), with two constraints active. BoTorch's
  ``PressureVessel`` rounds the shell and head thicknesses to multiples of 0.0625 in the objective only, not in the
  constraints, which lets points reach 5634 (below any published optimum); here neither is rounded, as in the
  continuous form whose optimum is published (and checked with SLSQP from 300 random starts).
- ``hartmann6_ball``: Hartmann6 inside the unit ball (``ConstrainedHartmann``, Letham et al. 2019), 6 variables,
  1 constraint ``|x| <= 1``; about 8 % of the cube is feasible, and the optimum (f* = -3.32237, at norm 0.946) lies
  inside it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from gest_api.vocs import VOCS

from benchmarks._problem import Problem


@dataclass(frozen=True)
class _Source:
    """A BoTorch constrained test function: its class, its keyword arguments, and the optimum when BoTorch's
    ``optimal_value`` is not the one to score against (rounded, or of another form)."""

    cls: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    optimum: float | None = None


#: name -> the BoTorch test function it is built from.
ENGINEERING = {
    "spring": _Source("TensionCompressionString"),
    "welded_beam": _Source("WeldedBeamSO"),
    "gramacy": _Source("ConstrainedGramacy", optimum=0.5997880520),
    "pressure_vessel": _Source("PressureVessel", optimum=5885.332773),
    "hartmann6_ball": _Source("ConstrainedHartmann", {"dim": 6}),
}


def _continuous_pressure_vessel(X: Any) -> Any:
    """The pressure vessel's cost with the thicknesses as given (BoTorch's rounds them; see the module's text)."""
    x1, x2, x3, x4 = X.unbind(-1)
    return 0.6224 * x1 * x3 * x4 + 1.7781 * x2 * x3**2 + 3.1661 * x1**2 * x4 + 19.84 * x1**2 * x3


def _truth(function: Any, objective: Callable[[Any], Any]) -> Callable[[dict[str, float]], dict[str, float]]:
    import torch

    bounds = function.bounds.to(torch.float64)
    names = [f"x{i}" for i in range(1, function.dim + 1)]

    def truth(p: dict[str, float]) -> dict[str, float]:
        U = torch.tensor([[p[n] for n in names]], dtype=torch.float64)
        X = bounds[0] + U * (bounds[1] - bounds[0])
        outputs = {"f": float(objective(X)[0])}
        for i, value in enumerate((-function.evaluate_slack_true(X))[0].tolist(), start=1):
            outputs[f"c{i}"] = float(value)
        return outputs

    return truth


def engineering_problem(name: str) -> Problem:
    """The problem ``name`` of :data:`ENGINEERING` (imports torch and BoTorch)."""
    from botorch.test_functions import synthetic

    source = ENGINEERING[name]
    function = getattr(synthetic, source.cls)(**source.kwargs)
    objective = _continuous_pressure_vessel if name == "pressure_vessel" else function.evaluate_true
    variables = {f"x{i}": [0.0, 1.0] for i in range(1, function.dim + 1)}
    constraints = {f"c{i}": ["LESS_THAN", 0.0] for i in range(1, function.num_constraints + 1)}
    optimum = float(function.optimal_value) if source.optimum is None else source.optimum
    worst = float(function._worst_feasible_value)
    return Problem(
        name=name,
        vocs=VOCS(variables=variables, objectives={"f": "MINIMIZE"}, constraints=constraints),
        truth=_truth(function, objective),
        optimum=optimum,
        hit_tolerance=0.01 * abs(optimum),
        worst=worst - optimum,
    )
