"""What an executor takes: the problem, its instrument, the plan and the run metadata, not the whole session spec.

The agent builds one :class:`ExecutorArgs` per instrument from a validated session spec (:func:`executor_args`);
an executor, and the helpers it calls (making and checking the devices, the plan, the derived run timeout, the
suspenders), read only these. The budget, the planner, the review policy, the store and the session folder are the
agent's, and no executor sees them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from closedloop.instrument import InstrumentSpec, SuspenderSpec
from closedloop.plan import PlanSpec
from closedloop.problem import ConstantSpec, ConstraintSpec, ObjectiveSpec, VariableSpec
from closedloop.spec import SessionSpec


@dataclass(frozen=True)
class Problem:
    """The optimization problem as the instrument sees it: what it moves and what each run must measure.

    Attributes:
        variables: variable name -> its spec (bounds, hard limits, device, read-back, largest step).
        objectives: objective name -> its spec (the event field or reducer it reads).
        constraints: output name -> its outcome constraint.
        constants: name -> a setting held fixed (moved when it names a ``device``).
    """

    variables: Mapping[str, VariableSpec]
    objectives: Mapping[str, ObjectiveSpec]
    constraints: Mapping[str, ConstraintSpec] = field(default_factory=dict)
    constants: Mapping[str, ConstantSpec] = field(default_factory=dict)

    @classmethod
    def of(cls, spec: SessionSpec) -> Problem:
        """The problem a session spec states."""
        return cls(spec.variables, spec.objectives, spec.constraints, spec.constants)

    def device_of(self, variable: str) -> str:
        """The device name that moves ``variable``."""
        return self.variables[variable].device or variable

    def readback_of(self, variable: str) -> str:
        """The event field holding ``variable``'s read-back position."""
        return self.variables[variable].readback or self.device_of(variable)

    def field_of(self, output: str) -> str:
        """The event field an objective or constraint reads.

        Raises:
            KeyError: ``output`` is neither an objective nor a constraint.
        """
        spec = self.objectives.get(output) or self.constraints.get(output)
        if spec is None:
            raise KeyError(output)
        return spec.field or output

    @property
    def outputs(self) -> list[str]:
        """Objective names, then constraint names: what each run must measure."""
        return list(self.objectives) + list(self.constraints)


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
        problem=Problem.of(spec),
        instrument=instrument,
        plan=spec.plan,
        session_id=session_id,
        metadata=dict(spec.metadata),
        seed=seed,
        suspenders=tuple(spec.suspenders),
    )
