"""The VOCS check every planner makes when it is built: what its ``supports_*`` flags exclude is refused, with a
message naming it."""

from __future__ import annotations

from typing import Any

from gest_api.vocs import (
    VOCS,
    BoundsConstraint,
    DiscreteVariable,
    GreaterThanConstraint,
    LessThanConstraint,
    MaximizeObjective,
    MinimizeObjective,
)

from closedloop.errors import PlannerError
from planners._space import build_variables


def check_vocs(planner: Any, vocs: VOCS) -> None:
    """Refuse ``vocs`` where the flags of ``planner`` (a planner class: ``supports_discrete``,
    ``supports_constraints``, ``supports_multi_objective``) exclude it.

    Raises:
        PlannerError: not a VOCS, no variable, a discrete variable, a constraint or several objectives the planner
            does not support, a constraint or objective of a kind none supports (the message names it).
    """
    name = planner.__name__
    if not isinstance(vocs, VOCS):
        raise PlannerError(f"{name} needs a gest-api VOCS, got {type(vocs).__name__}")
    if not vocs.variables:
        raise PlannerError(f"{name} needs at least one variable")
    for var, spec in vocs.variables.items():
        if isinstance(spec, DiscreteVariable) and not planner.supports_discrete:
            raise PlannerError(
                f"{name} supports continuous variables only; variable '{var}' is {type(spec).__name__}",
                hint="choose a planner that supports discrete variables, e.g. botorch or sobol",
            )
    try:
        build_variables(vocs)
    except PlannerError as exc:
        raise PlannerError(f"{name}: {exc}") from None
    if vocs.constraints and not planner.supports_constraints:
        raise PlannerError(
            f"{name} does not support constraints; got {', '.join(vocs.constraints)}",
            hint="remove the constraints or choose a planner that supports them",
        )
    for con, cspec in vocs.constraints.items():
        if not isinstance(cspec, LessThanConstraint | GreaterThanConstraint | BoundsConstraint):
            raise PlannerError(f"{name} does not support constraint '{con}' of type {type(cspec).__name__}")
    if not vocs.objectives or (len(vocs.objectives) > 1 and not planner.supports_multi_objective):
        raise PlannerError(
            f"{name} supports exactly one objective; got {len(vocs.objectives)}"
            + (f" ({', '.join(vocs.objectives)})" if vocs.objectives else ""),
            hint="choose a planner that supports multiple objectives" if vocs.objectives else None,
        )
    for obj, spec in vocs.objectives.items():
        if not isinstance(spec, MaximizeObjective | MinimizeObjective):
            raise PlannerError(
                f"{name} supports MAXIMIZE or MINIMIZE objectives; objective '{obj}' is {type(spec).__name__}"
            )
