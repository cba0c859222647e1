"""closedloop's shared vocabulary: the session spec, the records of the loop, and the error types."""

from closedloop.errors import (
    ClosedLoopError,
    InstrumentError,
    PlannerError,
    PointsExhaustedError,
    SafetyError,
    SessionError,
    SpecError,
)
from closedloop.problem import ConstantSpec, ConstraintSpec, Direction, ObjectiveSpec, VariableSpec
from closedloop.records import (
    Decision,
    Observation,
    ObservationStatus,
    Proposal,
    ProposalStatus,
    Verdict,
    new_id,
)
from closedloop.spec import (
    BudgetSpec,
    InstrumentSpec,
    PlannerSpec,
    ReviewPolicy,
    ReviewSpec,
    SessionSpec,
    load_spec,
    resolve_import_path,
    spec_from_dict,
)

__all__ = [
    "BudgetSpec",
    "ClosedLoopError",
    "ConstantSpec",
    "ConstraintSpec",
    "Decision",
    "Direction",
    "InstrumentError",
    "InstrumentSpec",
    "ObjectiveSpec",
    "Observation",
    "ObservationStatus",
    "PlannerError",
    "PointsExhaustedError",
    "PlannerSpec",
    "Proposal",
    "ProposalStatus",
    "ReviewPolicy",
    "ReviewSpec",
    "SafetyError",
    "SessionError",
    "SessionSpec",
    "SpecError",
    "VariableSpec",
    "Verdict",
    "load_spec",
    "new_id",
    "resolve_import_path",
    "spec_from_dict",
]
