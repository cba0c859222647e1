"""The records that flow through the loop: proposals, observations and review decisions.

Every record is stored as JSON and read back on resume, so a record holds finite numbers only: a NaN or an
infinity is refused when the record is built (pydantic would write it as ``null`` and then fail to read it back).
"""

from __future__ import annotations

import math
import time
import uuid
from enum import Enum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

_RECORD = ConfigDict(extra="forbid", allow_inf_nan=False)


def _finite_values(value: Any) -> Any:
    """Refuse a NaN or infinite float among a mapping's values, naming its key (bools are not numbers)."""
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(item, bool):
                raise ValueError(f"{key}: {item!r} is not a number")
            if isinstance(item, float | int) and not math.isfinite(item):
                raise ValueError(f"{key}: {item!r} is not a finite number")
    return value


def new_id(prefix: str) -> str:
    """Return a short unique id such as ``p-1a2b3c4d5e6f``."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


class ProposalStatus(str, Enum):
    """Where a proposal is in its life."""

    PROPOSED = "proposed"
    APPROVED = "approved"
    REJECTED = "rejected"
    OBSERVED = "observed"
    REFUSED = "refused"  # stopped by the safety gate before anything moved


class Proposal(BaseModel):
    """One experiment the planner suggests: a setpoint for every variable.

    Attributes:
        id: the agent's id, carried into the run's start document.
        iteration: the loop iteration that made it.
        setpoints: variable name -> value asked for.
        planner_id: the planner's own integer ``_id`` for the point, if it gave one.
        origin: ``planner``, or ``operator`` for a point an operator queued (``closedloop add``) or edited.
        why: why this point, for the operator (``initial design``, ``model``, ``operator``, ``edited p-...``).
        status: where the proposal is in its life.
    """

    model_config = _RECORD

    id: str = Field(default_factory=lambda: new_id("p"))
    iteration: int = Field(ge=0)
    setpoints: dict[str, float | str]
    planner_id: int | None = None
    origin: Literal["planner", "operator"] = "planner"
    why: str = ""
    status: ProposalStatus = ProposalStatus.PROPOSED
    created: float = Field(default_factory=time.time)

    _finite_setpoints = field_validator("setpoints", mode="before")(_finite_values)


class ObservationStatus(str, Enum):
    """How a run ended, as the documents tell it."""

    OK = "ok"
    FAILED = "failed"
    INTERRUPTED = "interrupted"  # the session process died while the run may have been moving: never re-run by itself
    ABORTED = "aborted"  # an operator aborted the run: not a failed measurement


class MissingValue(BaseModel):
    """Why an output has no value in a run, and what the run says of it all the same.

    A reducer that cannot give a number from the data (a peak whose top or half height is beyond the end of a
    scan, a flat profile) leaves its output missing. When the data bound the value (the width is at least the
    part of the peak that was scanned; the peak lies beyond the scan's end) the bound is kept: a censored value.

    Attributes:
        reason: why there is no value, in the reducer's words.
        at_least: the value is at least this, when the data say so.
        at_most: the value is at most this, when the data say so.
    """

    model_config = _RECORD

    reason: str
    at_least: float | None = None
    at_most: float | None = None

    def describe(self) -> str:
        """One line for people: the reason, then the bound if any (``... does not fall to half ... (>= 0.82)``)."""
        bound = [f">= {self.at_least:g}"] if self.at_least is not None else []
        bound += [f"<= {self.at_most:g}"] if self.at_most is not None else []
        return f"{self.reason} ({' and '.join(bound)})" if bound else self.reason


class Observation(BaseModel):
    """What one run measured, taken from its documents.

    An objective that could not be measured fails the run. A constraint output that could not be computed (its
    reducer could not give a number from the data) does not: the run is ``ok``, the output is left out of
    ``values`` and named in ``missing`` with why, and the planner is told it is missing (see :meth:`as_result`).
    Such a point is never counted feasible, as its constraint is not known to hold.

    Attributes:
        proposal_id: the proposal the run carried out.
        status: ``ok`` or ``failed``.
        setpoints: what was asked for.
        readbacks: what the instrument read back, variable name -> value.
        values: objective (and other output) name -> measured value, finite numbers only (a reading that is
            not one is left out, and the run is failed, or the output named in ``missing``).
        missing: output name -> why it has no value in this run (and a bound on it when the data give one).
        run_uid: the Bluesky run's uid, when a run started.
        error: why the run failed, when it did.
        duration: seconds from run start to run stop.
        tiled: the run's entry in Tiled, when the session writes runs to a Tiled server.
    """

    model_config = _RECORD

    proposal_id: str
    status: ObservationStatus
    setpoints: dict[str, float | str]
    readbacks: dict[str, float | str] = Field(default_factory=dict)
    values: dict[str, float] = Field(default_factory=dict)
    missing: dict[str, MissingValue] = Field(default_factory=dict)
    run_uid: str | None = None
    error: str | None = None
    duration: float = 0.0
    tiled: str | None = None

    _finite_numbers = field_validator("setpoints", "readbacks", "values", mode="before")(_finite_values)

    @property
    def ok(self) -> bool:
        """True when the run succeeded and every value is a finite number."""
        return self.status == ObservationStatus.OK and all(math.isfinite(v) for v in self.values.values())

    def as_result(self) -> dict[str, Any]:
        """The observation as a gest-api result: read-back inputs and outputs.

        A failed run gives no outputs (every one missing, so a planner records a failed point); an ok run gives
        its values and NaN for each output in :attr:`missing` (a NaN in that output's column only, as a gest-api
        generator such as Xopt's reads a value that is not there).
        """
        point: dict[str, Any] = dict(self.setpoints)
        point.update(self.readbacks)
        if self.ok:
            point.update(self.values)
            point.update(dict.fromkeys(self.missing, math.nan))
        return point


class Verdict(str, Enum):
    """An operator's answer at a review checkpoint."""

    APPROVE = "approve"
    REJECT = "reject"
    EDIT = "edit"
    STOP = "stop"


class Decision(BaseModel):
    """An answer at a checkpoint, for every proposal it names.

    Attributes:
        verdict: approve, reject, edit (measure ``setpoints`` instead) or stop.
        proposal_ids: the proposals it answers (empty means all shown).
        setpoints: for ``edit``: the setpoints to measure instead (checked against the limits before use).
        by: who answered (an operator's name, ``policy``, ``--yes``, ``timeout``).
        via: where the answer came from (``terminal``, ``channel``, ``web``, ``policy``).
        reason: why, for the audit log.
        checkpoint: the id of the checkpoint it answers (empty: whichever is pending).
        id: the decision's own id; the start document of the run it releases names it.
    """

    model_config = _RECORD

    verdict: Verdict
    proposal_ids: list[str] = Field(default_factory=list)
    setpoints: dict[str, float | str] | None = None
    by: str = "operator"
    via: str = "terminal"
    reason: str = ""
    checkpoint: str = ""
    id: str = Field(default_factory=lambda: new_id("d"))
    at: float = Field(default_factory=time.time)
