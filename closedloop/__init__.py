"""closedloop's shared vocabulary: the session spec, the records of the loop, and the error types."""

from closedloop.changes import SpecChanges, spec_changes, spec_fingerprint
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
    FailureSpec,
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
    "FailureSpec",
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
    "SpecChanges",
    "SpecError",
    "VariableSpec",
    "Verdict",
    "load_spec",
    "new_id",
    "resolve_import_path",
    "spec_changes",
    "spec_fingerprint",
    "spec_from_dict",
]
