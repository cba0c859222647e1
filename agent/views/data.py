"""What a report draws, read from a session's store (SQLite, or PostgreSQL through an attached folder) and never
written: the spec, the observations in the order read, their proposals, the decisions and the audit trail.

The model's belief is the session's planner rebuilt from the recorded spec, as a resume rebuilds it (the planner
the spec names, searching the reach the session recorded, then the store's observations ingested in order), and
asked through its ``predict`` (:class:`planners.Predicts`); a planner without one has no model to show.
"""

from __future__ import annotations

import random
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent.views.audit import audit_trail
from agent.views.status import Tally, folder_spec, pareto_front, session_store, summarize_store
from closedloop.records import Observation, Proposal, ProposalStatus
from closedloop.spec import SessionSpec

#: The most ok observations the rebuilt planner is given for the belief (the best one always among them).
BELIEF_POINTS = 150
#: Points along each variable, and per side of the two-variable map.
LINE_POINTS, MAP_POINTS = 60, 30


@dataclass
class SessionData:
    """One session as read from its store.

    Attributes:
        folder: the session folder.
        spec: the session spec.
        status: what ``closedloop status --json`` reports.
        observations: every observation, in the order read.
        proposals: proposal id -> proposal (every stored proposal).
        pending: proposals not observed yet (proposed or approved), oldest first: the next proposal(s).
        trail: the audit trail, oldest first (:func:`agent.views.audit_trail`).
        tally: the counts and the best so far.
    """

    folder: Path
    spec: SessionSpec
    status: dict[str, Any]
    observations: list[Observation]
    proposals: dict[str, Proposal]
    pending: list[Proposal]
    trail: list[dict[str, Any]]
    tally: Tally
    reach: dict[str, Any] = field(default_factory=dict)

    @property
    def variables(self) -> list[str]:
        """The numeric variables (those a plot can put on an axis)."""
        return [name for name, v in self.spec.variables.items() if v.bounds is not None or _numeric(v.values)]

    def origin(self, observation: Observation) -> str:
        """How the observed point came about: ``planner``, ``operator`` (queued by one) or ``edited``."""
        proposal = self.proposals.get(observation.proposal_id)
        if proposal is None or proposal.origin == "planner":
            return "planner"
        return "edited" if proposal.why.startswith("edited") else "operator"

    def point(self, observation: Observation) -> dict[str, Any]:
        """Where the run was: its read-backs, or what was asked where there are none."""
        return {**observation.setpoints, **observation.readbacks}

    def bounds(self, name: str) -> tuple[float, float]:
        """A numeric variable's search range."""
        variable = self.spec.variables[name]
        if variable.bounds is not None:
            return float(variable.bounds[0]), float(variable.bounds[1])
        values = [float(v) for v in variable.values or []]
        return min(values), max(values)

    def front(self) -> list[Observation]:
        """The Pareto front of the ok, feasible observations."""
        return pareto_front(self.spec, [o for o in self.observations if o.ok and self.spec.feasible(o.values)])


def _numeric(values: list[Any] | None) -> bool:
    return bool(values) and all(isinstance(v, int | float) and not isinstance(v, bool) for v in values or [])


def load_session(folder: Path) -> SessionData:
    """Read the session in ``folder`` (running, stopped or finished).

    Raises:
        SessionError: the folder holds no session, or its store is damaged.
    """
    folder = Path(folder)
    store = session_store(folder)
    try:
        spec = folder_spec(folder, store)
        observations = store.observations()
        status = summarize_store(folder, spec, store)
        proposals = {p.id: p for p in store.proposals()}
        reach = dict(store.meta("reach") or {})
    finally:
        store.close()
    observed = {o.proposal_id for o in observations}
    waiting = (ProposalStatus.PROPOSED, ProposalStatus.APPROVED)
    pending = [p for p in proposals.values() if p.status in waiting and p.id not in observed]
    pending.sort(key=lambda p: p.created)
    tally = Tally.from_observations(spec, observations)
    return SessionData(folder, spec, status, observations, proposals, pending, audit_trail(folder), tally, reach)


@dataclass
class Belief:
    """The model's belief: posterior mean and standard deviation, per objective, along each numeric variable
    through the best point, and over the plane of the first two numeric variables.

    Attributes:
        through: the point the lines go through (the best observation's).
        lines: variable -> (its values, {objective: (means, stds)}).
        plane: for two or more numeric variables: (x values, y values, {objective: (means, stds)}, each
            ``len(y) x len(x)`` as nested lists); None otherwise.
        fitted_on: how many ok observations the rebuilt planner was given.
    """

    through: dict[str, Any]
    lines: dict[str, tuple[list[float], dict[str, tuple[list[float], list[float]]]]]
    plane: tuple[list[float], list[float], dict[str, tuple[list[list[float]], list[list[float]]]]] | None
    fitted_on: int


def belief(data: SessionData) -> Belief | str:
    """The model's belief (see :class:`Belief`), or why there is none to show (a sentence for the page).

    The planner is built from the recorded spec, searching the reach the session recorded, and given the ok
    observations in the order read: at most :data:`BELIEF_POINTS` of them (the best, then a seeded sample), so a
    long session is not refitted on every point.
    """
    from planners import Predicts

    best = data.tally.best_observation
    if best is None:
        return "no model: no ok, feasible observation yet"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            planner = _rebuilt_planner(data, best)
    except Exception as exc:  # a planner that cannot be built here (not installed, refuses the problem)
        return f"no model: the planner could not be rebuilt here ({type(exc).__name__}: {exc})"
    if not isinstance(planner, Predicts):
        return f"no model: the {data.spec.planner.name} planner has none to show"
    through = {name: value for name, value in data.point(best).items() if name in data.spec.variables}
    import torch  # imported already by a planner with a model

    threads = torch.get_num_threads()
    try:
        # the model is small: on a few loaded cores, torch's threads fight each other (one is several times faster)
        torch.set_num_threads(1)
        with warnings.catch_warnings():  # the libraries' numerical notes are not the reader's business here
            warnings.simplefilter("ignore")
            return _predicted(data, planner, through)
    except Exception as exc:  # too few observations for a model, or a numerical failure
        return f"no model: {exc}"
    finally:
        torch.set_num_threads(threads)


def _rebuilt_planner(data: SessionData, best: Observation) -> Any:
    """The session's planner as :func:`agent.loop.build_planner` makes it, without the wrappers that shape its
    proposals only (a warm-start design, a travel limit): what it predicts is the same, and building it this way
    imports neither Bluesky nor LangGraph."""
    from closedloop.reach import reachable_vocs
    from planners.registry import load_planner

    devices = {
        name: (float(entry["device_limits"][0]), float(entry["device_limits"][1]))
        for name, entry in data.reach.items()
        if entry.get("device_limits")
    }
    spec = data.spec
    planner = load_planner(
        spec.planner.name, reachable_vocs(spec, devices), default_seed=spec.seed, **spec.planner.options
    )
    ok = [o for o in data.observations if o.ok]
    if len(ok) > BELIEF_POINTS:
        others = [o for o in ok if o is not best]
        kept = {id(o) for o in random.Random(data.spec.seed or 0).sample(others, BELIEF_POINTS - 1)} | {id(best)}
        ok = [o for o in ok if id(o) in kept]
    planner.ingest([o.as_result() for o in ok])
    return planner


def _predicted(data: SessionData, model: Any, through: dict[str, Any]) -> Belief:
    objectives = list(data.spec.objectives)
    names = data.variables
    lines: dict[str, tuple[list[float], dict[str, tuple[list[float], list[float]]]]] = {}
    points: list[dict[str, Any]] = []
    for name in names:
        low, high = data.bounds(name)
        xs = [low + (high - low) * i / (LINE_POINTS - 1) for i in range(LINE_POINTS)]
        points += [{**through, name: x} for x in xs]
        lines[name] = (xs, {})
    grid: tuple[list[float], list[float]] | None = None
    if len(names) >= 2:
        (xl, xh), (yl, yh) = data.bounds(names[0]), data.bounds(names[1])
        gx = [xl + (xh - xl) * i / (MAP_POINTS - 1) for i in range(MAP_POINTS)]
        gy = [yl + (yh - yl) * i / (MAP_POINTS - 1) for i in range(MAP_POINTS)]
        grid = (gx, gy)
        points += [{**through, names[0]: x, names[1]: y} for y in gy for x in gx]
    predicted = model.predict(points)
    for k, name in enumerate(names):
        chunk = predicted[k * LINE_POINTS : (k + 1) * LINE_POINTS]
        for objective in objectives:
            lines[name][1][objective] = ([p[objective]["mean"] for p in chunk], [p[objective]["std"] for p in chunk])
    plane = None
    if grid is not None:
        rest = predicted[len(names) * LINE_POINTS :]
        maps: dict[str, tuple[list[list[float]], list[list[float]]]] = {}
        for objective in objectives:
            means = [p[objective]["mean"] for p in rest]
            stds = [p[objective]["std"] for p in rest]
            rows = range(0, len(means), MAP_POINTS)
            maps[objective] = ([means[i : i + MAP_POINTS] for i in rows], [stds[i : i + MAP_POINTS] for i in rows])
        plane = (grid[0], grid[1], maps)
    n = min(len([o for o in data.observations if o.ok]), BELIEF_POINTS)
    return Belief(through, lines, plane, n)
