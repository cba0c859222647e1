"""The problems a campaign runs on: the bundled standard set, a user's own problem, or a user's session file.

- A bundled problem by name (:data:`benchmarks._problems.PROBLEMS`); the set is versioned (:data:`PROBLEM_SET`)
  so that two groups' results can be compared: a problem's definition never changes under one version.
- ``package.module:attr``: a :class:`benchmarks._problem.Problem`, or a callable returning one.
- A session file (``.yaml``/``.yml``): the session runs for real, headless, on its own instrument (a simulator,
  typically), with the campaign's planner, seed and experiments in place of its own; what its store records is the
  result. Its optimum is unknown, so such a problem has values and best-so-far but no regret.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

from benchmarks._problem import Problem
from benchmarks.campaign.errors import CampaignError

PROBLEM_SET = "2026.12"
"""The bundled problem set's version: bumped whenever a bundled problem's definition changes."""

HARD = {
    "branin": "three global minima: a planner that settles on one is still scored right",
    "hartmann6": "six dimensions, one sharp global basin among local ones",
    "beamline": "the simulated beamline's flux under its own measurement noise",
    "branin_disk": "the unconstrained minima are all infeasible; the optimum sits on the constraint",
    "branin_currin": "two objectives: the whole front, not one point, is scored",
    "spot2": "a small spot over a flat noisy background: most of the box reads only noise",
    "spot2_noisy": "the same spot under five times the noise",
    "spot2_narrow": "a narrower spot: a coarse design can miss it entirely",
    "ridge3": "a thin tilted ridge in three dimensions",
    "spot4": "an elongated spot in four dimensions",
    "spot5": "a round spot in five dimensions",
    "spot6": "a broad spot in six dimensions",
    "spot6_tilted": "an elongated spot along tilted axes in six dimensions",
    "spring": "a thin feasible sliver; constraint outputs span orders of magnitude",
    "welded_beam": "six constraints, a small feasible region, the optimum on its boundary",
}
"""What makes each bundled problem hard, for the problem set's page."""


@dataclass(frozen=True)
class SessionProblem:
    """A user's session file as a campaign problem (run for real by :mod:`benchmarks.campaign.sessions`)."""

    name: str
    path: Path


def bundled() -> dict[str, Problem]:
    """The bundled problems by name."""
    from benchmarks._problems import PROBLEMS

    return PROBLEMS


@cache
def resolve(ref: str) -> Problem | SessionProblem:
    """The problem a ``--problems`` entry stands for.

    Raises:
        CampaignError: the name is not bundled, the import path does not give a ``Problem``, or the session file
            is missing or invalid.
    """
    if ref.endswith((".yaml", ".yml")):
        return _session_problem(ref)
    if ":" in ref:
        return _imported(ref)
    problems = bundled()
    if ref not in problems:
        raise CampaignError(
            f"--problems: unknown problem {ref!r}; bundled: {', '.join(problems)} "
            "(or package.module:attr, or a session file)"
        )
    return problems[ref]


def _imported(ref: str) -> Problem:
    from closedloop.spec import resolve_import_path

    try:
        found = resolve_import_path(ref)
    except ValueError as exc:
        raise CampaignError(f"--problems: {exc}") from None
    problem = found() if callable(found) and not isinstance(found, Problem) else found
    if not isinstance(problem, Problem):
        raise CampaignError(f"--problems: {ref} gives {type(problem).__name__}, not a benchmarks Problem")
    return problem


def _session_problem(ref: str) -> SessionProblem:
    from closedloop.errors import SpecError
    from closedloop.spec import load_spec

    path = Path(ref).expanduser().resolve()
    if not path.is_file():
        raise CampaignError(f"--problems: no session file {ref}")
    try:
        spec = load_spec(path)
    except SpecError as exc:
        raise CampaignError(f"--problems: {ref}: {str(exc).splitlines()[0]}") from None
    return SessionProblem(name=spec.name or path.stem, path=path)
