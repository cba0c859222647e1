"""Seeded sessions of every shipped planner, whose proposals must not move: the scenarios and how to play them.

Each scenario builds a planner with a fixed seed on a small fixed problem and plays a few rounds: ask for points,
measure them with a fixed function (noise drawn from a seeded generator in the order measured), ingest them (some
held back, some failed, some foreign). What it records, the proposals (every variable of every point, in order),
the reason given for each and the BoTorch planner's counters, is stored in ``data/seeded_proposals.json`` and
compared by ``test_seeded_proposals.py``. A refactor must leave it as it is, bit for bit up to float noise; a change
that means to move proposals regenerates the file on purpose (:mod:`tests.unit.planners.regenerate_seeded`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from gest_api.vocs import VOCS

from planners.registry import load_planner

GOLDEN = Path(__file__).parent / "data" / "seeded_proposals.json"
REGENERATE = "python -m tests.unit.planners.regenerate_seeded"

VOCS_2D = VOCS(variables={"x1": [-1.5, 1.5], "x2": [0.0, 5.0]}, objectives={"f": "MAXIMIZE"})
VOCS_CONSTRAINED = VOCS(
    variables={"x1": [0.0, 1.0], "x2": [0.0, 1.0]},
    objectives={"f": "MAXIMIZE"},
    constraints={"c": ["LESS_THAN", 0.05]},
)
VOCS_TWO = VOCS(variables={"x1": [0.0, 1.0], "x2": [0.0, 1.0]}, objectives={"f": "MINIMIZE", "g": "MINIMIZE"})
VOCS_MIXED = VOCS(
    variables={"x1": [-1.5, 1.5], "n": {0, 1, 2, 3, 4}, "mode": {"a", "b"}},
    objectives={"f": "MAXIMIZE"},
)
VOCS_3D = VOCS(variables={f"x{i}": [0.0, 1.0] for i in range(1, 4)}, objectives={"f": "MINIMIZE"})

#: Options that keep the BoTorch scenarios quick (the optimizer's effort; nothing that chooses the acquisition).
QUICK = {"raw_samples": 32, "num_restarts": 2, "mc_samples": 64}


def smooth(p: dict[str, Any]) -> float:
    """A smooth 2-D peak (10 at x1 = 0.3, x2 = 2.0)."""
    return 10.0 - (p["x1"] - 0.3) ** 2 - 0.5 * (p["x2"] - 2.0) ** 2


def narrow(p: dict[str, Any]) -> float:
    """A narrow peak (1000 counts over 20) at (0.4, 3.1), width 0.25: noise dominates until it is found."""
    return 20.0 + 1000.0 * math.exp(-((p["x1"] - 0.4) ** 2 + (p["x2"] - 3.1) ** 2) / (2 * 0.25**2))


def constrained(p: dict[str, Any]) -> dict[str, float]:
    """Maximize x1 + x2 inside a disc around (0.2, 0.3)."""
    return {"f": p["x1"] + p["x2"], "c": (p["x1"] - 0.2) ** 2 + (p["x2"] - 0.3) ** 2}


def two(p: dict[str, Any]) -> dict[str, float]:
    """Two competing objectives (a convex Pareto front)."""
    return {"f": p["x1"] ** 2 + 0.3 * p["x2"], "g": (1 - p["x1"]) ** 2 + 0.3 * (1 - p["x2"])}


def mixed(p: dict[str, Any]) -> float:
    return 5.0 - (p["x1"] - 0.5) ** 2 - 0.3 * (p["n"] - 2.5) ** 2 + (0.5 if p["mode"] == "b" else 0.0)


def bowl(p: dict[str, Any]) -> float:
    return sum((p[f"x{i}"] - 0.3 - 0.1 * i) ** 2 for i in range(1, 4))


@dataclass(frozen=True)
class Scenario:
    """A seeded session: planner ``name`` with ``options`` on ``vocs``, ``rounds`` of asking for ``q`` points.

    ``measure`` gives a point's outputs (objectives and constraints) without noise; ``noise`` is the standard
    deviation added to the first objective. Each round asks ``q`` points and ingests all but the last ``hold``
    (held back: in flight until the next round); every ``fail_every``-th point measured is ingested as failed.
    ``foreign`` points (a seeded uniform sample) are ingested first, without ``_id``. ``position``: told to the
    planner before every round (``set_position``), at the last point measured shifted by this much in ``x1``.
    """

    name: str
    vocs: VOCS
    measure: Callable[[dict[str, Any]], dict[str, float]]
    options: dict[str, Any] = field(default_factory=dict)
    seed: int = 3
    rounds: int = 6
    q: int = 1
    hold: int = 0
    noise: float = 0.0
    fail_every: int = 0
    foreign: int = 0
    position: float | None = None


def _single(f: Callable[[dict[str, Any]], float]) -> Callable[[dict[str, Any]], dict[str, float]]:
    return lambda p: {"f": f(p)}


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in [
        Scenario("botorch-default", VOCS_2D, _single(smooth), {"n_initial": 4, **QUICK}, rounds=8),
        Scenario(
            "botorch-noisy-scheduled",
            VOCS_2D,
            _single(narrow),
            {"n_initial": 4, "always_refit_below": 10, "refit_growth": 1.3, "max_fit_points": 12, **QUICK},
            rounds=5,
            noise=10.0,
            foreign=10,
        ),
        Scenario("botorch-noise-fill", VOCS_2D, _single(narrow), {"n_initial": 3, **QUICK}, rounds=5, noise=10.0),
        Scenario("botorch-large", VOCS_2D, _single(smooth), {"max_model_points": 10, **QUICK}, rounds=3, foreign=14),
        Scenario(
            "botorch-constrained", VOCS_CONSTRAINED, constrained, {"n_initial": 3, **QUICK}, rounds=10, fail_every=5
        ),
        Scenario("botorch-two-objective", VOCS_TWO, two, {"n_initial": 3, **QUICK}, rounds=6),
        Scenario("botorch-batch-pending", VOCS_2D, _single(smooth), {"n_initial": 4, **QUICK}, rounds=4, q=2, hold=1),
        Scenario(
            "botorch-believe",
            VOCS_2D,
            _single(narrow),
            {"n_initial": 6, "pending": "believe", **QUICK},
            rounds=4,
            hold=1,
            noise=5.0,
            foreign=12,
        ),
        Scenario(
            "botorch-travel-discrete",
            VOCS_MIXED,
            _single(mixed),
            {"n_initial": 3, "max_travel": {"x1": 0.8}, "travel_cost": 0.5, "acquisition": "logei", **QUICK},
            rounds=5,
            position=0.1,
        ),
        Scenario("turbo", VOCS_3D, _single(bowl), {"n_initial": 4, "batch_size": 2}, rounds=4, q=2, fail_every=7),
        Scenario("turbo-qlognei", VOCS_3D, _single(bowl), {"n_initial": 4, "acquisition": "qlognei"}, rounds=6),
        Scenario("sobol", VOCS_2D, _single(smooth), rounds=3, q=3, hold=1, fail_every=4),
        Scenario("random", VOCS_2D, _single(smooth), rounds=3, q=3, hold=1, fail_every=4),
        Scenario("grid", VOCS_2D, _single(smooth), {"points_per_dim": 4}, rounds=3, q=3, hold=1, fail_every=4),
    ]
}


def _planner_name(scenario: Scenario) -> str:
    return scenario.name.split("-")[0]


def _foreign_points(scenario: Scenario, rng: np.random.Generator) -> list[dict[str, Any]]:
    points = []
    for _ in range(scenario.foreign):
        point: dict[str, Any] = {}
        for name, var in scenario.vocs.variables.items():
            domain = getattr(var, "domain", None)
            if domain is not None:
                point[name] = float(rng.uniform(domain[0], domain[1]))
            else:
                point[name] = sorted(var.values)[int(rng.integers(len(var.values)))]  # type: ignore[attr-defined]
        points.append(point)
    return points


def play(scenario: Scenario) -> dict[str, Any]:
    """Play ``scenario`` once (torch on one thread) and return what the golden file stores of it."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _play(scenario)
    finally:
        torch.set_num_threads(threads)


def _play(scenario: Scenario) -> dict[str, Any]:
    rng = np.random.default_rng(scenario.seed)
    planner = load_planner(_planner_name(scenario), scenario.vocs, seed=scenario.seed, **scenario.options)
    names = list(scenario.vocs.variable_names)
    measured = 0

    def results(points: list[dict[str, Any]]) -> list[dict[str, Any]]:
        nonlocal measured
        out = []
        for point in points:
            measured += 1
            outputs = dict(scenario.measure(point))
            outputs["f"] += float(rng.normal(0.0, scenario.noise)) if scenario.noise else 0.0
            if scenario.fail_every and measured % scenario.fail_every == 0:
                outputs = dict.fromkeys(outputs)
            out.append(dict(point, **outputs))
        return out

    if scenario.foreign:
        planner.ingest(results(_foreign_points(scenario, rng)))
    rounds: list[list[list[float]]] = []
    why: list[str | None] = []
    held: list[dict[str, Any]] = []
    last: dict[str, Any] | None = None
    for _ in range(scenario.rounds):
        if scenario.position is not None and last is not None:
            planner.set_position({**last, "x1": last["x1"] + scenario.position})
        points = planner.suggest(scenario.q)
        rounds.append([[float(p[v]) if not isinstance(p[v], str) else p[v] for v in names] for p in points])
        why.extend(planner.why(p["_id"]) for p in points)
        ingest = held + points[: len(points) - scenario.hold]
        held = points[len(points) - scenario.hold :]
        if ingest:
            planner.ingest(results(ingest))
            last = ingest[-1]
    out: dict[str, Any] = {"variables": names, "rounds": rounds, "why": why}
    if hasattr(planner, "diagnostics") and _planner_name(scenario) == "botorch":
        out["diagnostics"] = planner.diagnostics
    return out
