"""What a campaign is: its planners, problems, seeds and budget, and the tasks it splits into.

A campaign is checked whole before anything starts (:func:`check`): every planner resolves (a registered name, an
import path of a gest-api generator, or a peer), every problem resolves (:mod:`benchmarks.campaign.problems`), and
the numbers are sane. What is wrong raises :class:`CampaignError` naming the option, which the command prints on one
line before exiting 2.
"""

from __future__ import annotations

import hashlib
import json
import re

from pydantic import BaseModel, ConfigDict, Field

from benchmarks._peers import PEER_NAMES
from benchmarks.campaign.errors import CampaignError
from benchmarks.planners import PlannerSpec, parse_planner_specs
from closedloop.errors import PlannerError
from planners.registry import planner_class


class Task(BaseModel):
    """One (planner, problem, seed) run: the unit the scheduler hands to a worker.

    Attributes:
        planner: the planner entry as written (``botorch``, ``botorch[raw_samples=512]``, ``pkg.mod:Gen``, ``ax``).
        problem: the problem as written (a bundled name, ``pkg.mod:attr``, or a session file's path).
        seed: the seed of the planner and of the problem's measurement noise.
        experiments: experiments in all, the initial design included.
        initial: the initial space-filling points every contender starts from.
        batch: points per ``suggest`` (1: one at a time, every result ingested before the next proposal).
    """

    model_config = ConfigDict(frozen=True)

    planner: str
    problem: str
    seed: int
    experiments: int
    initial: int
    batch: int

    @property
    def key(self) -> str:
        """A name unique within the campaign, safe as a file name and as a Dask key."""
        readable = re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{self.problem}-{self.planner}-s{self.seed}")[:80]
        digest = hashlib.sha256(self.model_dump_json().encode()).hexdigest()[:10]
        return f"{readable}-{digest}"


class CampaignSpec(BaseModel):
    """A campaign as given on the command line; two campaigns are the same when these fields are.

    Attributes:
        planners: planner entries, in the order given.
        problems: problem references, in the order given.
        seeds: seeds ``0 .. seeds-1``.
        experiments: experiments per run, the initial design included.
        initial: initial Sobol points of every contender.
        batch: points per ``suggest``.
        problem_set: the version of the bundled problem set (:data:`benchmarks.campaign.problems.PROBLEM_SET`).
    """

    model_config = ConfigDict(frozen=True)

    planners: list[str] = Field(min_length=1)
    problems: list[str] = Field(min_length=1)
    seeds: int = Field(ge=1)
    experiments: int = Field(ge=1)
    initial: int = Field(ge=1)
    batch: int = Field(ge=1)
    problem_set: str

    def tasks(self) -> list[Task]:
        """Every task, problem by problem, seed by seed, the planners taking turns within a seed."""
        return [
            Task(planner=p, problem=q, seed=s, experiments=self.experiments, initial=self.initial, batch=self.batch)
            for q in self.problems
            for s in range(self.seeds)
            for p in self.planners
        ]

    def fingerprint(self) -> str:
        """A digest of the campaign's definition (what ``--out`` must hold for ``--resume``)."""
        return hashlib.sha256(json.dumps(self.model_dump(), sort_keys=True).encode()).hexdigest()[:16]


def planner_specs(text: str) -> list[PlannerSpec]:
    """Parse and resolve ``--planners``: each entry a peer, a registered planner or an importable generator.

    Raises:
        CampaignError: an entry is malformed or names no planner.
    """
    try:
        specs = parse_planner_specs(text)
    except ValueError as exc:
        raise CampaignError(f"--planners: {exc}") from None
    for spec in specs:
        if spec.name in PEER_NAMES:
            continue
        try:
            planner_class(spec.name)
        except PlannerError as exc:
            raise CampaignError(f"--planners: {str(exc).splitlines()[0]}") from None
    return specs


def check(spec: CampaignSpec) -> None:
    """Everything a campaign needs resolves, or :class:`CampaignError` says what does not.

    Raises:
        CampaignError: a planner or problem does not resolve, or the initial design exceeds the experiments.
    """
    from benchmarks.campaign.problems import resolve  # torch and the problems load here

    planner_specs(",".join(spec.planners))
    for problem in spec.problems:
        resolve(problem)
    if spec.initial > spec.experiments:
        raise CampaignError(f"--initial: {spec.initial} initial points exceed --experiments {spec.experiments}")
