"""Other libraries' optimizers behind the one interface the harness drives: ``suggest(n)`` and ``ingest(results)``.

- ``xopt``: Xopt's ``ExpectedImprovementGenerator`` (one objective, with or without constraints) or its
  ``MOBOGenerator`` (two objectives, the problem's reference point), every option at Xopt's default. Xopt's
  generators need data before they propose, so the adapter gives the first ``n_initial`` points itself from
  the same seeded scrambled Sobol sequence as our planners (:func:`planners.sobol.sobol_points`). Xopt takes no
  seed: the torch RNG is seeded from (seed, number of points) around each call, and restored afterwards.
- ``ax``: Ax's ``Client`` (``ax.api``) with the default ``"fast"`` generation strategy, seeded with
  ``random_seed`` and ``initialization_random_seed``. The only change from Ax's defaults is the initial
  design: ``initialization_budget = n_initial`` and ``initialize_with_center = False``, so that Ax, like every
  other contender, starts from ``n_initial`` Sobol points. Minimization is written ``-f``; constraints become
  outcome constraints; for two objectives, the reference point is given as objective thresholds.

:func:`build_peer` raises :class:`PeerUnavailable` when the library is not installed and ``ValueError`` when it
cannot take the problem, so the harness can report "skipped" or "unsupported" instead of failing.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import torch

from benchmarks._problems import Problem
from planners.sobol import sobol_points

PEER_NAMES = ("xopt", "ax")


class PeerUnavailable(ImportError):
    """The peer's library is not installed."""


def build_peer(name: str, problem: Problem, *, seed: int, n_initial: int, **options: Any) -> Any:
    """Build the peer ``name`` ("xopt" or "ax") for ``problem``.

    Raises:
        PeerUnavailable: the library does not import.
        ValueError: the peer cannot take the problem, or options were given (peers run at their defaults).
    """
    if options:
        raise ValueError(f"{name} runs at its defaults; got options {', '.join(sorted(options))}")
    if name == "xopt":
        return XoptPeer(problem, seed=seed, n_initial=n_initial)
    if name == "ax":
        return AxPeer(problem, seed=seed, n_initial=n_initial)
    raise ValueError(f"unknown peer '{name}'")


def _constraint_strings(problem: Problem) -> list[str]:
    strings = []
    for name, spec in problem.vocs.constraints.items():
        kind = type(spec).__name__
        if kind == "LessThanConstraint":
            strings.append(f"{name} <= {spec.value}")
        elif kind == "GreaterThanConstraint":
            strings.append(f"{name} >= {spec.value}")
        else:
            raise ValueError(f"constraint '{name}' is {kind}; only LESS_THAN and GREATER_THAN are mapped")
    return strings


class XoptPeer:
    """Xopt 3's expected-improvement (or MOBO) generator with a seeded Sobol start."""

    def __init__(self, problem: Problem, *, seed: int, n_initial: int) -> None:
        try:
            from xopt.generators.bayesian.expected_improvement import ExpectedImprovementGenerator
            from xopt.generators.bayesian.mobo import MOBOGenerator
        except ImportError as exc:
            raise PeerUnavailable(f"xopt is not installed ({exc})") from exc
        logging.getLogger("xopt").setLevel(logging.WARNING)
        self.problem = problem
        self.seed = seed
        self.n_initial = n_initial
        self.variables = list(problem.vocs.variable_names)
        self.bounds = torch.tensor(problem.vocs.bounds, dtype=torch.float64).T
        self._n = 0
        if problem.multi_objective:
            assert problem.ref_point is not None
            reference = dict(zip(problem.objective_names, problem.ref_point, strict=True))
            self.generator = MOBOGenerator(vocs=problem.vocs, reference_point=reference)
        else:
            self.generator = ExpectedImprovementGenerator(vocs=problem.vocs)

    def suggest(self, n: int) -> list[dict[str, Any]]:
        if self._n < self.n_initial:
            k = min(n, self.n_initial - self._n)
            U = torch.from_numpy(sobol_points(len(self.variables), k, seed=self.seed, skip=self._n))
            X = self.bounds[0] + U * (self.bounds[1] - self.bounds[0])
            points = [dict(zip(self.variables, row, strict=True)) for row in X.tolist()]
            self._n += k
            return points + (self.suggest(n - k) if n > k else [])
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed * 100_003 + self._n)
            points = self.generator.suggest(n)
        self._n += n
        return [{name: float(p[name]) for name in self.variables} for p in points]

    def ingest(self, results: list[dict[str, Any]]) -> None:
        rows = [{k: (math.nan if v is None else v) for k, v in r.items() if k != "_id"} for r in results]
        self.generator.ingest(rows)


class AxPeer:
    """Ax's ``Client`` at its defaults, with ``n_initial`` Sobol points (no centre point) to start."""

    def __init__(self, problem: Problem, *, seed: int, n_initial: int) -> None:
        try:
            from ax.api.client import Client
            from ax.api.configs import RangeParameterConfig
        except ImportError as exc:
            raise PeerUnavailable(f"ax-platform is not installed ({exc})") from exc
        for logger_name in ("ax", "ax.api.client", "ax.generation_strategy"):
            logging.getLogger(logger_name).setLevel(logging.WARNING)
        self.problem = problem
        self.variables = list(problem.vocs.variable_names)
        self.client = Client(random_seed=seed)
        self.client.configure_experiment(
            parameters=[
                RangeParameterConfig(name=name, bounds=(float(lo), float(hi)), parameter_type="float")
                for name, (lo, hi) in zip(self.variables, problem.vocs.bounds, strict=True)
            ],
            name=f"bench-{problem.name}-{seed}",
        )
        terms = [name if up else f"-{name}" for name, up in zip(problem.objective_names, problem.maximize, strict=True)]
        constraints = _constraint_strings(problem)
        if problem.multi_objective:
            assert problem.ref_point is not None
            for name, up, ref in zip(problem.objective_names, problem.maximize, problem.ref_point, strict=True):
                constraints.append(f"{name} {'>=' if up else '<='} {ref}")
        self.client.configure_optimization(objective=", ".join(terms), outcome_constraints=constraints or None)
        self.client.configure_generation_strategy(
            initialization_budget=n_initial,
            initialization_random_seed=seed,
            initialize_with_center=False,
        )
        self._trial_of: dict[int, int] = {}
        self._next = 0
        self.outputs = list(problem.objective_names) + list(problem.vocs.constraint_names)

    def suggest(self, n: int) -> list[dict[str, Any]]:
        trials = self.client.get_next_trials(max_trials=n)
        points = []
        for trial, parameters in trials.items():
            self._trial_of[self._next] = trial
            points.append({**{name: float(parameters[name]) for name in self.variables}, "_id": self._next})
            self._next += 1
        return points

    def ingest(self, results: list[dict[str, Any]]) -> None:
        for result in results:
            trial = self._trial_of.pop(int(result["_id"]))
            values = {name: result.get(name) for name in self.outputs}
            if any(v is None or not math.isfinite(float(v)) for v in values.values()):
                self.client.mark_trial_failed(trial)
            else:
                self.client.complete_trial(trial, raw_data={k: float(v) for k, v in values.items() if v is not None})
