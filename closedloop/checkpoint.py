"""What an operator sees at a checkpoint, at the session's terminal, through the control channel and on the web
page alike: the proposals with their predictions and why each was made, the variables with their limits, and the
choices the operator has.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from closedloop.problem import Value


class Prediction(BaseModel):
    """The model's prediction of one objective at a proposed point."""

    model_config = ConfigDict(extra="forbid")

    mean: float
    std: float = Field(ge=0)


class ProposalInfo(BaseModel):
    """One proposal as an operator reviews it.

    Attributes:
        id: the proposal's id.
        setpoints: variable name -> value proposed.
        origin: ``planner`` or ``operator``.
        why: ``initial design`` (space filling), ``model`` or ``planner`` (the planner chose it), ``operator``
            (queued), ``edited p-...`` (an operator's edit of a proposal).
        current: variable name -> where the instrument is now (None when unknown).
        prediction: objective name -> predicted mean and standard deviation, or None when the planner cannot say.
        acquisition: the acquisition function's value at the point, when the planner gives one.
    """

    model_config = ConfigDict(extra="forbid")

    id: str
    setpoints: dict[str, Value]
    origin: Literal["planner", "operator"] = "planner"
    why: str = "model"
    current: dict[str, Value | None] = Field(default_factory=dict)
    prediction: dict[str, Prediction] | None = None
    acquisition: float | None = None


class VariableInfo(BaseModel):
    """What an operator needs to know of a variable to judge a move."""

    model_config = ConfigDict(extra="forbid")

    units: str = ""
    bounds: tuple[float, float] | None = None
    values: list[Value] | None = None
    hard_limits: tuple[float, float] | None = None
    max_step: float | None = None
    device_limits: tuple[float, float] | None = None
    """The moving device's own travel limits, read when it connected (None: none known); the gate holds setpoints
    within both these and ``hard_limits``, and the planner searches within both."""


class CheckpointInfo(BaseModel):
    """The question waiting at a checkpoint, as the terminal and every control client show it.

    Attributes:
        checkpoint: the checkpoint's id (an answer names it).
        kind: ``review`` (proposals to judge), ``points`` (the planner has none left: queue some or stop),
            ``paused`` (an operator paused the session) or ``failures`` (runs failed; carry on or stop).
        iteration: the loop iteration.
        reason: why the session asks, in a few words.
        proposals: the proposals to judge (``review``), in order.
        variables: variable name -> units, search range and limits.
        objectives: objective name -> ``maximize`` or ``minimize``.
        last: the last observation (``{"proposal_id", "values", "point", "ok"}``), if any.
        best: the best so far (``{"value", "objective", "point"}``), if any.
        choices: what the operator may answer here (``approve``, ``reject``, ``edit``, ``stop`` ...).
    """

    model_config = ConfigDict(extra="forbid")

    checkpoint: str
    kind: Literal["review", "points", "paused", "failures"]
    iteration: int = Field(ge=0)
    reason: str = ""
    proposals: list[ProposalInfo] = Field(default_factory=list)
    variables: dict[str, VariableInfo] = Field(default_factory=dict)
    objectives: dict[str, str] = Field(default_factory=dict)
    last: dict[str, Any] | None = None
    best: dict[str, Any] | None = None
    choices: list[str] = Field(default_factory=lambda: ["approve", "reject", "edit", "stop"])
