"""Multi-objective test problems from the literature, as BoTorch's test functions define them.

Every objective is minimized, in the function's own units, over the function's own bounds (variables ``x1 .. xd``).
The reference point and the largest hypervolume are BoTorch's published ones (``ref_point`` and ``_max_hv``); the
regret is the hypervolume gap ``max_hv - hypervolume`` of the noiseless outputs (:meth:`Problem.regret_curve
<benchmarks._problem.Problem.regret_curve>`), and a hit is a hypervolume of at least 99 % of ``max_hv``.

- ``zdt1``: ZDT1 (Zitzler, Deb and Thiele 2000) in 4 variables, two objectives, convex front
  ``f2 = 1 - sqrt(f1)``; reference point (11, 11), ``max_hv = 120 + 2/3``.
- ``zdt2``: ZDT2 in 4 variables, two objectives, concave front ``f2 = 1 - f1^2``; reference point (11, 11),
  ``max_hv = 120 + 1/3``.
- ``dtlz2``: DTLZ2 (Deb, Thiele, Laumanns and Zitzler 2005) in 4 variables, three objectives, concave front (the
  positive octant of the unit sphere); reference point (1.1, 1.1, 1.1), ``max_hv = 1.1^3 - pi/6``.
- ``vehicle_safety``: the vehicle crash-worthiness design (Tanabe and Ishibuchi 2020), 5 variables in
  ``[1, 3]``, three objectives (mass, acceleration, toe-board intrusion); BoTorch's reference point (1.1 times the
  nadir of the published approximate front) and ``max_hv`` from that front.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gest_api.vocs import VOCS

from benchmarks._problem import Problem

#: name -> (BoTorch test function class, its constructor arguments).
MULTI_OBJECTIVE: dict[str, tuple[str, dict[str, int]]] = {
    "zdt1": ("ZDT1", {"dim": 4}),
    "zdt2": ("ZDT2", {"dim": 4}),
    "dtlz2": ("DTLZ2", {"dim": 4, "num_objectives": 3}),
    "vehicle_safety": ("VehicleSafety", {}),
}


def _truth(function: Any) -> Callable[[dict[str, float]], dict[str, float]]:
    import torch

    names = [f"x{i}" for i in range(1, function.dim + 1)]
    objectives = [f"f{i}" for i in range(1, function.num_objectives + 1)]

    def truth(p: dict[str, float]) -> dict[str, float]:
        X = torch.tensor([[p[n] for n in names]], dtype=torch.float64)
        return dict(zip(objectives, function.evaluate_true(X)[0].tolist(), strict=True))

    return truth


def multi_objective_problem(name: str) -> Problem:
    """The problem ``name`` of :data:`MULTI_OBJECTIVE` (imports torch and BoTorch)."""
    from botorch.test_functions import multi_objective

    cls, kwargs = MULTI_OBJECTIVE[name]
    function = getattr(multi_objective, cls)(**kwargs)
    variables = {f"x{i}": [float(lo), float(hi)] for i, (lo, hi) in enumerate(function._bounds, start=1)}
    objectives = {f"f{i}": "MINIMIZE" for i in range(1, function.num_objectives + 1)}
    max_hv = float(function._max_hv)
    return Problem(
        name=name,
        vocs=VOCS(variables=variables, objectives=objectives),
        truth=_truth(function),
        optimum=None,
        ref_point=tuple(float(r) for r in function._ref_point),
        max_hv=max_hv,
        hit_tolerance=0.01 * max_hv,
        worst=max_hv,
    )
