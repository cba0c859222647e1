"""What an executor takes: the problem, its instrument, the plan and the run metadata, not the whole session spec.

The agent builds one :class:`ExecutorArgs` per instrument from a validated session spec (:func:`executor_args`);
an executor, and the helpers it calls (making and checking the devices, the plan, the derived run timeout, the
suspenders), read only these; the problem's part is a :class:`~closedloop.problem.Problem` (re-exported here).
The budget, the planner, the review policy, the store and the session folder are the agent's, and no executor
sees them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from closedloop.instrument import InstrumentSpec, SuspenderSpec
from closedloop.plan import PlanSpec
from closedloop.problem import Problem as Problem  # re-exported: the problem is an executor argument
from closedloop.spec import SessionSpec


@dataclass(frozen=True)
class ExecutorArgs:
    """Everything one instrument's executor uses.

    Attributes:
        problem: the variables, objectives, constraints and constants.
        instrument: this instrument's section (its devices or queueserver, timeouts, retries).
        plan: the plan that carries out each proposal.
        session_id: goes into every start document.
        metadata: keys merged into every run's start document (the session's ``metadata``).
        seed: the seed a simulated instrument's factory gets (each instrument after the first its own).
        suspenders: signals that hold a run while they are below a floor (in-process RunEngines only).
    """

    problem: Problem
    instrument: InstrumentSpec
    plan: PlanSpec
    session_id: str
    metadata: Mapping[str, Any] = field(default_factory=dict)
    seed: int | None = None
    suspenders: tuple[SuspenderSpec, ...] = ()


def executor_args(spec: SessionSpec, session_id: str, index: int = 0) -> ExecutorArgs:
    """What the executor of the spec's instrument ``index`` (in :meth:`SessionSpec.lanes`' order) takes.

    Among several instruments, each after the first gets the seed plus its index (simulated copies of one
    instrument then have noise of their own).

    Raises:
        IndexError: the spec has no instrument ``index``.
    """
    _, instrument = spec.lanes()[index]
    seed = (spec.seed + index) % 2**32 if spec.seed is not None and index else spec.seed
    return ExecutorArgs(
        problem=spec.problem(),
        instrument=instrument,
        plan=spec.plan,
        session_id=session_id,
        metadata=dict(spec.metadata),
        seed=seed,
        suspenders=tuple(spec.suspenders),
    )
