"""The benchmark problems: a gest-api VOCS, the true (noiseless) outputs, the noise model and the known optimum.

Five classic problems, built on :mod:`simulators.physics` where it has the function:

- ``branin``: 2-D, minimize, f* = 0.397887 (three global minima).
- ``hartmann6``: 6-D unit cube, minimize, f* = -3.32237.
- ``beamline``: the simulated beamline's analytic flux, 2-D, maximize, f* = 1020 counts, measured with the
  simulator's noise model (additive Gaussian, sd 10 counts). Regret is scored on the noiseless flux.
- ``branin_disk``: Branin (minimize) subject to the outcome constraint ``c = (x1 - 2.5)^2 + (x2 - 7.5)^2 - 20
  <= 0`` (a disk of radius sqrt(20) around the centre of the box). All three unconstrained minima lie outside
  the disk. The feasible optimum is on its boundary, f* = 0.9394760454 at (3.0101968, 3.0570619): found on a
  3001 x 3001 grid (best feasible 0.94204) and refined with SLSQP from there and from four other starts (the
  other local minimum is 8.0646 at (-1.837, 8.592)). :func:`feasible_optimum` repeats the computation.
- ``branin_currin``: two objectives on the unit square, both minimized (BoTorch's BraninCurrin), reference point
  (18, 6). The hypervolume bound is the larger of BoTorch's published 59.36011874867746 (NSGA-II) and the
  hypervolume of the Pareto set of a 1001 x 1001 grid (:func:`grid_hypervolume`).

Eight problems of one character, a narrow peak or ridge over a flat, noisy background (:func:`peak_problem`): most of
the space reads only noise, as in aligning an instrument whose signal is a small spot. Each is a Gaussian bump of
height 1000 counts on a background of 20, measured with additive Gaussian noise; f* = 1020, maximize, on the box
``[-1.5, 1.5]^d``, centre off the middle of the box and off the Sobol design's lattice:

- ``spot2``: 2-D round spot, width (sd) 0.15, noise sd 10 (1 % of the peak).
- ``spot2_noisy``: the same spot, noise sd 50 (5 %).
- ``spot2_narrow``: 2-D round spot, width 0.1, noise sd 10.
- ``ridge3``: 3-D narrow tilted ridge, width 0.1 across it and 0.8 along it, noise sd 20.
- ``spot4``: 4-D elongated spot, widths 0.2 to 0.4, noise sd 20.
- ``spot6``: 6-D spot, width 0.5, noise sd 20.
- ``spot5``: 5-D round spot, width 0.45, noise sd 20.
- ``spot6_tilted``: 6-D elongated spot, widths 0.35 to 0.6 along tilted axes, noise sd 10.

Five constrained problems from the literature's standard families, ``spring``, ``welded_beam``, ``gramacy``,
``pressure_vessel`` and ``hartmann6_ball``, BoTorch's test functions on the unit cube (:mod:`benchmarks._engineering`).

Four multi-objective problems, ``zdt1``, ``zdt2`` (two objectives, convex and concave fronts), ``dtlz2`` and
``vehicle_safety`` (three objectives), BoTorch's test functions with their published reference points and largest
hypervolumes (:mod:`benchmarks._multiobjective`).

"Within 1 %" of the optimum means a true value within ``hit_tolerance = 0.01 * |f*|`` of f*, or, when f* is
zero, within 1 % of the range of f over the domain; for the multi-objective problems, a hypervolume of at least
99 % of the bound.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from gest_api.vocs import VOCS

from benchmarks._engineering import ENGINEERING, engineering_problem
from benchmarks._multiobjective import MULTI_OBJECTIVE, multi_objective_problem
from benchmarks._problem import Problem, hypervolume_2d
from simulators.physics import (
    BEAMLINE_BOUNDS,
    BEAMLINE_OPTIMUM,
    BRANIN_BOUNDS,
    BRANIN_OPTIMUM,
    HARTMANN6_BOUNDS,
    HARTMANN6_OPTIMUM,
    beamline_flux,
    branin,
    hartmann6,
)

#: Feasible optimum of ``branin_disk`` (see the module docstring).
DISK_OPTIMUM_POINT = {"x1": 3.0101967558974234, "x2": 3.0570618651311654}
DISK_OPTIMUM_VALUE = 0.9394760454485489
DISK_RADIUS_SQ = 20.0

BRANIN_CURRIN_REF = (18.0, 6.0)
BRANIN_CURRIN_MAX_HV = 59.36011874867746


@dataclass
class Replay:
    """One planner's session on a problem with no instrument: the harness's loop, shared by every benchmark script.

    :meth:`play` proposes, evaluates (with the problem's seeded noise) and ingests. The lists fill as the session
    goes, so a session cut short by an exception keeps what it did.

    Attributes:
        points: the variables of each experiment, in the order they ran.
        truths: the noiseless outputs there (what the regret is scored on).
        seconds: the wall-clock seconds of each ``suggest`` call.
    """

    problem: Problem
    seed: int
    points: list[dict[str, float]] = field(default_factory=list)
    truths: list[dict[str, float]] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)

    def play(self, planner: Any, experiments: int, lanes: int = 0) -> Replay:
        """Run ``experiments`` experiments proposed by ``planner`` (a closedloop planner or a peer's adapter).

        ``lanes`` replays the loop's schedule with that many instruments pipelined (``agent/loop/graph.py``): it keeps
        ``lanes`` runs in flight and one proposal ready, so each proposal after the first is made with the last
        ``lanes`` points pending and their results unknown. ``lanes = 0`` is ``pipeline: false``: propose, run and
        ingest strictly in turn, one point per ``suggest``.

        Raises:
            RuntimeError: ``suggest(n)`` returned other than ``n`` points.
        """
        rng = self.problem.noise_stream(self.seed)
        in_flight: deque[dict[str, Any]] = deque()
        proposed = 0
        while proposed < experiments or in_flight:
            wanted = min((lanes + 1 if lanes else 1) - len(in_flight), experiments - proposed)
            if wanted > 0:
                in_flight.extend(self._suggest(planner, wanted))
                proposed += wanted
            # the oldest run ends; the ready one starts in its place
            planner.ingest([self._run(in_flight.popleft(), rng)])
        return self

    def play_batches(self, planner: Any, experiments: int, size: int) -> Replay:
        """Run ``experiments`` experiments in synchronous batches of ``size``: propose ``size`` points, run them all,
        ingest them all, then propose the next batch (the last may be smaller). Nothing is pending at a ``suggest``.

        Raises:
            RuntimeError: ``suggest(n)`` returned other than ``n`` points.
        """
        rng = self.problem.noise_stream(self.seed)
        while len(self.points) < experiments:
            points = self._suggest(planner, min(size, experiments - len(self.points)))
            planner.ingest([self._run(point, rng) for point in points])
        return self

    def _suggest(self, planner: Any, n: int) -> list[dict[str, Any]]:
        """``planner.suggest(n)``, timed into :attr:`seconds`."""
        started = time.perf_counter()
        points = planner.suggest(n)
        self.seconds.append(time.perf_counter() - started)
        if len(points) != n:
            raise RuntimeError(f"suggest({n}) returned {len(points)} points")
        return list(points)

    def _run(self, point: dict[str, Any], rng: np.random.Generator) -> dict[str, Any]:
        """Evaluate ``point`` (recorded), returning it with its noisy outputs, ready to ingest."""
        x = {name: float(point[name]) for name in self.problem.vocs.variable_names}
        self.points.append(x)
        self.truths.append(self.problem.truth(x))
        return {**point, **self.problem.evaluate(x, rng)}

    @property
    def regret(self) -> list[float]:
        """:meth:`Problem.regret_curve` of the experiments so far."""
        return self.problem.regret_curve(self.truths)


# -- the functions ---------------------------------------------------------------------------------------------


def _branin_truth(p: dict[str, float]) -> dict[str, float]:
    return {"f": branin(p["x1"], p["x2"])}


def _hartmann6_truth(p: dict[str, float]) -> dict[str, float]:
    return {"f": hartmann6(*(p[f"x{i}"] for i in range(1, 7)))}


def _beamline_truth(p: dict[str, float]) -> dict[str, float]:
    return {"flux": beamline_flux(p["pitch1"], p["pitch2"])}


def disk_constraint(x1: float, x2: float) -> float:
    """The ``branin_disk`` constraint value; feasible when <= 0."""
    return (x1 - 2.5) ** 2 + (x2 - 7.5) ** 2 - DISK_RADIUS_SQ


def _branin_disk_truth(p: dict[str, float]) -> dict[str, float]:
    return {"f": branin(p["x1"], p["x2"]), "c": disk_constraint(p["x1"], p["x2"])}


def currin(x1: float, x2: float) -> float:
    """The Currin function on the unit square (the second BraninCurrin objective)."""
    factor = 1.0 if x2 <= 0.0 else 1.0 - math.exp(-1.0 / (2.0 * x2))
    numerator = 2300 * x1**3 + 1900 * x1**2 + 2092 * x1 + 60
    denominator = 100 * x1**3 + 500 * x1**2 + 4 * x1 + 20
    return factor * numerator / denominator


def _branin_currin_truth(p: dict[str, float]) -> dict[str, float]:
    return {"f1": branin(15.0 * p["x1"] - 5.0, 15.0 * p["x2"]), "f2": currin(p["x1"], p["x2"])}


def grid_hypervolume(n: int = 1001) -> float:
    """Hypervolume of the Pareto set of BraninCurrin on an ``n x n`` grid (a lower bound of the true one)."""
    g = np.linspace(0.0, 1.0, n)
    x1, x2 = np.meshgrid(g, g)
    a = 15.0 * x1 - 5.0
    b, c, t = 5.1 / (4 * math.pi**2), 5 / math.pi, 1 / (8 * math.pi)
    f1 = (15.0 * x2 - b * a**2 + c * a - 6) ** 2 + 10 * (1 - t) * np.cos(a) + 10
    with np.errstate(divide="ignore"):
        factor = np.where(x2 > 0, 1.0 - np.exp(-1.0 / (2.0 * np.where(x2 > 0, x2, 1.0))), 1.0)
    f2 = factor * (2300 * x1**3 + 1900 * x1**2 + 2092 * x1 + 60) / (100 * x1**3 + 500 * x1**2 + 4 * x1 + 20)
    return hypervolume_2d(np.stack([f1.ravel(), f2.ravel()], axis=1).tolist(), BRANIN_CURRIN_REF)


def feasible_optimum(n: int = 1501) -> tuple[dict[str, float], float]:
    """Recompute the ``branin_disk`` feasible optimum: the best point of an ``n x n`` grid, refined by SLSQP."""
    from scipy.optimize import minimize  # type: ignore[import-untyped]

    lo, hi = np.array([-5.0, 0.0]), np.array([10.0, 15.0])
    g1, g2 = np.meshgrid(np.linspace(lo[0], hi[0], n), np.linspace(lo[1], hi[1], n))
    f = np.vectorize(branin)(g1, g2)
    f[(g1 - 2.5) ** 2 + (g2 - 7.5) ** 2 - DISK_RADIUS_SQ > 0] = np.inf
    i = int(np.argmin(f))
    result = minimize(
        lambda x: branin(x[0], x[1]),
        [g1.flat[i], g2.flat[i]],
        method="SLSQP",
        bounds=list(zip(lo, hi, strict=True)),
        constraints=[{"type": "ineq", "fun": lambda x: -disk_constraint(x[0], x[1])}],
        options={"ftol": 1e-14, "maxiter": 500},
    )
    return {"x1": float(result.x[0]), "x2": float(result.x[1])}, float(result.fun)


# -- the catalogue ---------------------------------------------------------------------------------------------


def _tolerance(optimum: float, value_range: float) -> float:
    return 0.01 * abs(optimum) if optimum != 0.0 else 0.01 * value_range


def _vocs(bounds: dict[str, tuple[float, float]], objectives: dict[str, str], **constraints: list[Any]) -> VOCS:
    return VOCS(variables={k: list(v) for k, v in bounds.items()}, objectives=objectives, constraints=constraints)


#: The narrow-peak problems: (name, centre, widths along the axes of the bump, axis of a ridge or None, noise sd).
PEAKS: tuple[tuple[str, tuple[float, ...], tuple[float, ...], tuple[float, ...] | None, float], ...] = (
    ("spot2", (0.47, -0.81), (0.15, 0.15), None, 10.0),
    ("spot2_noisy", (0.47, -0.81), (0.15, 0.15), None, 50.0),
    ("spot2_narrow", (-0.63, 0.38), (0.1, 0.1), None, 10.0),
    ("ridge3", (0.21, -0.34, 0.52), (0.8, 0.1, 0.1), (1.0, 0.6, -0.4), 20.0),
    ("spot4", (0.33, -0.52, 0.71, -0.18), (0.4, 0.3, 0.25, 0.2), (0.5, 0.5, -0.5, 0.5), 20.0),
    ("spot6", (0.31, -0.47, 0.62, -0.23, 0.12, -0.71), (0.5,) * 6, None, 20.0),
    # made after noise_prior adaptive took BoTorch's prior from 5 variables, to check that switch off spot6
    ("spot5", (-0.41, 0.55, 0.19, -0.66, 0.36), (0.45,) * 5, None, 20.0),
    (
        "spot6_tilted",
        (0.52, 0.14, -0.38, -0.61, 0.27, 0.05),
        (0.6, 0.5, 0.45, 0.4, 0.35, 0.35),
        (1.0, 1.0, 0.0, -1.0, 0.0, 1.0),
        10.0,
    ),
)
PEAK_HEIGHT, PEAK_BACKGROUND, PEAK_HALF_WIDTH = 1000.0, 20.0, 1.5


def _rotation(axis: tuple[float, ...] | None, d: int) -> np.ndarray:
    """An orthonormal ``d x d`` basis whose first row is ``axis`` (normalized); the identity when None."""
    if axis is None:
        return np.eye(d)
    a = np.asarray(axis, dtype=float) / np.linalg.norm(axis)
    # Householder reflection taking e_1 to a: its rows are orthonormal and the first is a
    e = np.zeros(d)
    e[0] = 1.0
    v = e - a
    if np.linalg.norm(v) < 1e-12:
        return np.eye(d)
    return np.eye(d) - 2.0 * np.outer(v, v) / (v @ v)


def peak_value(x: Sequence[float], centre: Sequence[float], widths: Sequence[float], basis: np.ndarray) -> float:
    """``background + height * exp(-|B (x - c)|^2 / 2)`` with the offset scaled by ``widths`` along basis ``B``."""
    z = basis @ (np.asarray(x, dtype=float) - np.asarray(centre, dtype=float)) / np.asarray(widths, dtype=float)
    return PEAK_BACKGROUND + PEAK_HEIGHT * math.exp(-0.5 * float(z @ z))


def peak_problem(
    name: str, centre: tuple[float, ...], widths: tuple[float, ...], axis: tuple[float, ...] | None, noise: float
) -> Problem:
    """A narrow peak (or, with a long first width, a ridge along ``axis``) over a flat background."""
    d = len(centre)
    names = [f"x{i}" for i in range(1, d + 1)]
    basis = _rotation(axis, d)

    def truth(p: dict[str, float]) -> dict[str, float]:
        return {"f": peak_value([p[n] for n in names], centre, widths, basis)}

    optimum = PEAK_BACKGROUND + PEAK_HEIGHT
    return Problem(
        name=name,
        vocs=_vocs({n: (-PEAK_HALF_WIDTH, PEAK_HALF_WIDTH) for n in names}, {"f": "MAXIMIZE"}),
        truth=truth,
        optimum=optimum,
        hit_tolerance=_tolerance(optimum, PEAK_HEIGHT),
        worst=PEAK_HEIGHT,
        noise=noise,
        extra={"centre": dict(zip(names, centre, strict=True)), "widths": widths},
    )


def build_problems() -> dict[str, Problem]:
    """Every benchmark problem by name."""
    problems = [
        Problem(
            name="branin",
            vocs=_vocs(BRANIN_BOUNDS, {"f": "MINIMIZE"}),
            truth=_branin_truth,
            optimum=BRANIN_OPTIMUM.value,
            hit_tolerance=_tolerance(BRANIN_OPTIMUM.value, 308.1),
            worst=308.1,
        ),
        Problem(
            name="hartmann6",
            vocs=_vocs(HARTMANN6_BOUNDS, {"f": "MINIMIZE"}),
            truth=_hartmann6_truth,
            optimum=HARTMANN6_OPTIMUM.value,
            hit_tolerance=_tolerance(HARTMANN6_OPTIMUM.value, 3.32237),
            worst=3.32237,
        ),
        Problem(
            name="beamline",
            vocs=_vocs(BEAMLINE_BOUNDS, {"flux": "MAXIMIZE"}),
            truth=_beamline_truth,
            optimum=BEAMLINE_OPTIMUM.value,
            hit_tolerance=_tolerance(BEAMLINE_OPTIMUM.value, 1000.0),
            worst=1000.0,
            noise=10.0,
        ),
        Problem(
            name="branin_disk",
            vocs=_vocs(BRANIN_BOUNDS, {"f": "MINIMIZE"}, c=["LESS_THAN", 0.0]),
            truth=_branin_disk_truth,
            optimum=DISK_OPTIMUM_VALUE,
            hit_tolerance=_tolerance(DISK_OPTIMUM_VALUE, 200.0),
            # the worst feasible Branin value inside the disk is 111.5; 200 marks "no feasible point yet"
            worst=200.0 - DISK_OPTIMUM_VALUE,
        ),
        Problem(
            name="branin_currin",
            vocs=_vocs({"x1": (0.0, 1.0), "x2": (0.0, 1.0)}, {"f1": "MINIMIZE", "f2": "MINIMIZE"}),
            truth=_branin_currin_truth,
            optimum=None,
            ref_point=BRANIN_CURRIN_REF,
            max_hv=BRANIN_CURRIN_MAX_HV,
            hit_tolerance=0.01 * BRANIN_CURRIN_MAX_HV,
            worst=BRANIN_CURRIN_MAX_HV,
        ),
    ]
    problems += [peak_problem(*peak) for peak in PEAKS]

    problems += [engineering_problem(name) for name in ENGINEERING]
    problems += [multi_objective_problem(name) for name in MULTI_OBJECTIVE]
    return {p.name: p for p in problems}


PROBLEMS: dict[str, Problem] = build_problems()
