"""One benchmark problem: its VOCS, its true outputs, its optimum and how regret and hits are measured on it.

Its own module so that the catalogue (:mod:`benchmarks._problems`) and the problems built elsewhere
(:mod:`benchmarks._engineering`) both use it without importing each other.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from gest_api.vocs import VOCS


@dataclass(frozen=True)
class Problem:
    """One benchmark problem.

    Attributes:
        name: short name used on the command line and in the table.
        vocs: the gest-api problem every contender is given.
        truth: point (dict of variables) -> the noiseless outputs (objectives and constraints).
        optimum: the best feasible objective value (single objective); ``None`` for several objectives.
        noise: sd of the additive Gaussian noise on each objective as measured (constraints are noiseless).
        ref_point: for several objectives, the reference point (in the objectives' own units and senses).
        max_hv: for several objectives, the hypervolume bound the regret is measured against.
        hit_tolerance: how close to the optimum (or to ``max_hv``) counts as "within 1 %".
        worst: the regret recorded before the first feasible point (the worst feasible value's regret, or the
            whole bound for several objectives).
    """

    name: str
    vocs: VOCS
    truth: Callable[[dict[str, float]], dict[str, float]]
    optimum: float | None
    hit_tolerance: float
    worst: float
    noise: float = 0.0
    ref_point: tuple[float, ...] | None = None
    max_hv: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def dim(self) -> int:
        return len(self.vocs.variable_names)

    @property
    def objective_names(self) -> list[str]:
        return list(self.vocs.objective_names)

    @property
    def maximize(self) -> list[bool]:
        return [type(self.vocs.objectives[n]).__name__ == "MaximizeObjective" for n in self.objective_names]

    @property
    def multi_objective(self) -> bool:
        return len(self.objective_names) > 1

    def noise_stream(self, seed: int) -> np.random.Generator:
        """The measurement noise of one seed on this problem: the same stream for every contender."""
        return np.random.default_rng([seed, zlib.crc32(self.name.encode())])

    def evaluate(self, point: dict[str, Any], rng: np.random.Generator | None = None) -> dict[str, float]:
        """The outputs as measured: the true outputs plus noise on the objectives (when ``rng`` is given)."""
        outputs = self.truth({name: float(point[name]) for name in self.vocs.variable_names})
        if self.noise and rng is not None:
            for name in self.objective_names:
                outputs[name] += float(rng.normal(0.0, self.noise))
        return outputs

    def feasible(self, outputs: dict[str, float]) -> bool:
        """Whether noiseless outputs meet every constraint (``LESS_THAN``/``GREATER_THAN`` only)."""
        for name, spec in self.vocs.constraints.items():
            kind = type(spec).__name__
            if kind == "LessThanConstraint" and not outputs[name] <= spec.value:
                return False
            if kind == "GreaterThanConstraint" and not outputs[name] >= spec.value:
                return False
        return True

    def regret_curve(self, true_outputs: Sequence[dict[str, float]]) -> list[float]:
        """Simple regret after each evaluation, scored on the noiseless outputs of the points evaluated so far.

        Single objective: distance of the best feasible true value so far from the optimum. Several objectives:
        ``max_hv`` minus the hypervolume of the feasible true outputs so far.
        """
        curve: list[float] = []
        if self.multi_objective:
            assert self.max_hv is not None
            for n in range(1, len(true_outputs) + 1):
                curve.append(max(self.max_hv - (self.hypervolume(true_outputs[:n]) or 0.0), 0.0))
            return curve
        assert self.optimum is not None
        sign = 1.0 if self.maximize[0] else -1.0
        best = -math.inf
        name = self.objective_names[0]
        for outputs in true_outputs:
            if self.feasible(outputs):
                best = max(best, sign * outputs[name])
            curve.append(self.worst if best == -math.inf else max(sign * self.optimum - best, 0.0))
        return curve

    def hypervolume(self, true_outputs: Sequence[dict[str, float]]) -> float | None:
        """Hypervolume of the feasible true outputs up to :attr:`ref_point` (several objectives), else None."""
        if not self.multi_objective or self.ref_point is None:
            return None
        # as minimization: a maximized objective and its reference value change sign
        signs = [-1.0 if up else 1.0 for up in self.maximize]
        front = [[s * o[n] for s, n in zip(signs, self.objective_names, strict=True)] for o in true_outputs]
        front = [f for f, o in zip(front, true_outputs, strict=True) if self.feasible(o)]
        return hypervolume(front, [s * r for s, r in zip(signs, self.ref_point, strict=True)])


def hypervolume(points: Sequence[Sequence[float]], ref_point: Sequence[float]) -> float:
    """Hypervolume dominated by ``points`` (every objective minimized) up to ``ref_point``.

    Two objectives: :func:`hypervolume_2d`. Three or more: BoTorch's ``Hypervolume`` (imports torch).
    """
    if len(ref_point) == 2:
        return hypervolume_2d(points, ref_point)
    import torch
    from botorch.utils.multi_objective.hypervolume import Hypervolume
    from botorch.utils.multi_objective.pareto import is_non_dominated

    ref = torch.tensor(ref_point, dtype=torch.float64)
    Y = torch.tensor(points, dtype=torch.float64).reshape(-1, len(ref_point))
    Y = Y[(Y < ref).all(dim=-1)]
    if len(Y) == 0:
        return 0.0
    Y = Y[is_non_dominated(-Y)]  # BoTorch's are for maximization
    return float(Hypervolume(-ref).compute(-Y))


def hypervolume_2d(points: Sequence[Sequence[float]], ref_point: Sequence[float]) -> float:
    """Hypervolume dominated by ``points`` (two objectives, both minimized) up to ``ref_point``."""
    r1, r2 = ref_point
    inside = sorted((p[0], p[1]) for p in points if p[0] < r1 and p[1] < r2)
    volume, level = 0.0, r2
    for f1, f2 in inside:  # by f1 ascending; a point adds area only when it lowers the f2 level
        if f2 < level:
            volume += (r1 - f1) * (level - f2)
            level = f2
    return volume
