"""Analytic test problems behind the simulated instruments, with their known optima.

Pure functions of floats, so tests and benchmarks can score a result against the truth.
"""

from __future__ import annotations

import math
from typing import NamedTuple


class Optimum(NamedTuple):
    """Where a problem's best value is and what it is."""

    point: dict[str, float]
    value: float
    maximize: bool


def beamline_flux(pitch1: float, pitch2: float) -> float:
    """Flux of a beam focused by two mirrors through a slit, in counts.

    A smooth, slightly elongated and tilted peak (the two pitches couple through the focus), whose optimum is
    off the centre of the search box, on a constant background.
    """
    u = pitch1 - 0.35
    v = pitch2 + 0.6
    return 1000.0 * math.exp(-(u**2 + 0.6 * u * v + 1.4 * v**2) / (2 * 0.45**2)) + 20.0


def beam_width(pitch1: float, pitch2: float) -> float:
    """Width of the focused spot at the sample, in micrometres: narrowest away from the flux peak.

    Minimizing it while maximizing :func:`beamline_flux` is a two-objective problem with a real trade-off.
    """
    return 15.0 + 40.0 * ((pitch1 - 0.9) ** 2 + 0.5 * (pitch2 + 0.1) ** 2)


def mirror_heat(pitch1: float, pitch2: float) -> float:
    """Heat load on the first mirror, in watts: grows as the mirrors intercept more of the beam.

    With the constraint ``mirror_heat < 2.2`` the flux peak is infeasible and the best feasible flux lies on the
    constraint's boundary.
    """
    return 1.0 + 2.0 * (pitch1 + 1.5) / 3.0 + 0.5 * (pitch2 + 1.5) / 3.0


HEAT_LIMIT = 2.2

BEAMLINE_BOUNDS = {"pitch1": (-1.5, 1.5), "pitch2": (-1.5, 1.5)}
BEAMLINE_OPTIMUM = Optimum({"pitch1": 0.35, "pitch2": -0.6}, 1020.0, maximize=True)


def branin(x1: float, x2: float) -> float:
    """The Branin function on x1 in [-5, 10], x2 in [0, 15] (minimize)."""
    b = 5.1 / (4 * math.pi**2)
    c = 5 / math.pi
    t = 1 / (8 * math.pi)
    return (x2 - b * x1**2 + c * x1 - 6) ** 2 + 10 * (1 - t) * math.cos(x1) + 10


BRANIN_BOUNDS = {"x1": (-5.0, 10.0), "x2": (0.0, 15.0)}
BRANIN_OPTIMUM = Optimum({"x1": math.pi, "x2": 2.275}, 0.397887357729738, maximize=False)

_H6_ALPHA = (1.0, 1.2, 3.0, 3.2)
_H6_A = (
    (10, 3, 17, 3.5, 1.7, 8),
    (0.05, 10, 17, 0.1, 8, 14),
    (3, 3.5, 1.7, 10, 17, 8),
    (17, 8, 0.05, 10, 0.1, 14),
)
_H6_P = (
    (1312, 1696, 5569, 124, 8283, 5886),
    (2329, 4135, 8307, 3736, 1004, 9991),
    (2348, 1451, 3522, 2883, 3047, 6650),
    (4047, 8828, 8732, 5743, 1091, 381),
)


def hartmann6(x1: float, x2: float, x3: float, x4: float, x5: float, x6: float) -> float:
    """The six-dimensional Hartmann function on the unit cube (minimize)."""
    x = (x1, x2, x3, x4, x5, x6)
    total = 0.0
    for alpha, a_row, p_row in zip(_H6_ALPHA, _H6_A, _H6_P, strict=True):
        inner = sum(a * (xi - p * 1e-4) ** 2 for a, xi, p in zip(a_row, x, p_row, strict=True))
        total += alpha * math.exp(-inner)
    return -total


HARTMANN6_BOUNDS = {f"x{i}": (0.0, 1.0) for i in range(1, 7)}
HARTMANN6_OPTIMUM = Optimum(
    {"x1": 0.20169, "x2": 0.150011, "x3": 0.476874, "x4": 0.275332, "x5": 0.311652, "x6": 0.6573},
    -3.32237,
    maximize=False,
)
