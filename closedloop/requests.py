"""The requests a control client sends a running session (part of the control protocol, :mod:`closedloop.control`,
which re-exports every name here), and how a decoded one is validated (:func:`validate_request`).

Each request has a ``type`` (the discriminator of :data:`Request`), a correlation ``id`` that its reply echoes, ``by``
(the operator's name) and ``via`` (``terminal``, ``channel`` or ``web``); text meant for people holds no control
characters.
"""

from __future__ import annotations

import getpass
import re
from typing import Annotated, Any, Final, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, model_validator
from pydantic_core import ErrorDetails

from closedloop.errors import SpecError
from closedloop.problem import Value
from closedloop.records import new_id

PROTOCOL_VERSION: Final = 1
"""The version every message carries in ``v``; a message of another version is refused."""

MAX_EXPERIMENTS: Final = 2**31 - 1
"""The largest budget a request may set: the same cap as a session file's ``budget.experiments``."""

_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
"""Control characters (C0, DEL, C1) and the bidirectional overrides that reorder what a terminal shows."""

Via = Literal["terminal", "channel", "web"]
"""Where an operator's request came from."""

_WIRE = ConfigDict(extra="forbid", allow_inf_nan=False)


def operator_name() -> str:
    """The OS user running this process: who a request is from when no name is given."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (some containers)
        return "operator"


def printable(text: str) -> str:
    """``text`` with each control character (and bidirectional override) written as a Python escape (``\\x1b``),
    for a terminal: what an operator or a store sent is shown, never obeyed."""
    return _UNPRINTABLE.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)


def _no_control(text: str) -> str:
    found = _UNPRINTABLE.search(text)
    if found:
        raise ValueError(f"holds a control character ({printable(found.group())}) at position {found.start()}")
    return text


Line = Annotated[str, AfterValidator(_no_control)]
"""Text for people (a name, a reason): no control characters."""


class _Request(BaseModel):
    model_config = _WIRE

    v: Literal[1] = PROTOCOL_VERSION
    id: str = Field(default_factory=lambda: new_id("r"), min_length=1, max_length=64)
    by: Line = Field(default_factory=operator_name, min_length=1, max_length=64)
    via: Via = "channel"


class StatusRequest(_Request):
    """Ask for the session's status."""

    type: Literal["status"] = "status"


class CheckpointRequest(_Request):
    """Ask for the question waiting at the current checkpoint, if any."""

    type: Literal["checkpoint"] = "checkpoint"


class ProposalVerdict(BaseModel):
    """An operator's verdict on one proposal of a checkpoint.

    Attributes:
        proposal_id: the proposal it answers.
        verdict: ``approve``, ``reject``, or ``edit`` (run ``setpoints`` instead of what was proposed).
        setpoints: the edited setpoints (``edit`` only): variable name -> value; variables not named keep the
            proposed value.
        reason: why, for the audit trail (and, for a rejection, for the planner's record).
    """

    model_config = _WIRE

    proposal_id: str = Field(min_length=1, max_length=64)
    verdict: Literal["approve", "reject", "edit"]
    setpoints: dict[str, Value] | None = None
    reason: Line = Field(default="", max_length=2000)

    @model_validator(mode="after")
    def _setpoints_for_edit(self) -> ProposalVerdict:
        if self.verdict == "edit" and not self.setpoints:
            raise ValueError("an edit needs setpoints")
        if self.verdict != "edit" and self.setpoints is not None:
            raise ValueError(f"setpoints are given only with an edit, not with {self.verdict}")
        return self


class AnswerRequest(_Request):
    """Answer a checkpoint: a verdict per proposal, or stop.

    Attributes:
        checkpoint: the id of the checkpoint answered, so that an answer to a question already answered (or no
            longer asked) is detected rather than applied to the next one.
        answers: one verdict per proposal (empty for a checkpoint without proposals: carry on).
        stop: end the session instead (``answers`` must then be empty).
        reason: why, for the audit trail (mainly with ``stop``).
    """

    type: Literal["answer"] = "answer"
    checkpoint: str = Field(min_length=1, max_length=64)
    answers: list[ProposalVerdict] = Field(default_factory=list, max_length=1000)
    stop: bool = False
    reason: Line = Field(default="", max_length=2000)

    @model_validator(mode="after")
    def _stop_or_verdicts(self) -> AnswerRequest:
        if self.stop and self.answers:
            raise ValueError("give verdicts or stop, not both")
        ids = [a.proposal_id for a in self.answers]
        if len(set(ids)) != len(ids):
            raise ValueError("a proposal is answered twice")
        return self


class PauseRequest(_Request):
    """Hold after the current run; the motors stay where they are."""

    type: Literal["pause"] = "pause"
    reason: Line = Field(default="", max_length=2000)


class ResumeRequest(_Request):
    """Carry on after a pause."""

    type: Literal["resume"] = "resume"
    reason: Line = Field(default="", max_length=2000)


class StopRequest(_Request):
    """End the session after the current run, or (``abort``) abort the run now."""

    type: Literal["stop"] = "stop"
    abort: bool = False
    reason: Line = Field(default="", max_length=2000)


class AddRequest(_Request):
    """Queue points to be measured next, before the planner's own (checked by the session)."""

    type: Literal["add"] = "add"
    points: list[dict[str, Value]] = Field(min_length=1, max_length=1000)


class BudgetRequest(_Request):
    """Change the number of successful experiments the session runs."""

    type: Literal["budget"] = "budget"
    experiments: int = Field(ge=1, le=MAX_EXPERIMENTS)
    reason: Line = Field(default="", max_length=2000)


class BeliefRequest(_Request):
    """Ask for the model's belief along one variable through the best point so far (for the operator's page).

    Attributes:
        variable: the numeric variable to vary; every other variable stays at the best point's value.
    """

    type: Literal["belief"] = "belief"
    variable: str = Field(min_length=1, max_length=200)


class RefusalRequest(_Request):
    """Tell the session of an attempt refused before it could reach it (at the web page: a request with no access
    token or a wrong one), for its audit trail: it is recorded as ``refused``, by ``by`` via ``via``; nothing else
    happens.

    Attributes:
        what: what was attempted (``POST /api/request``, or how many such requests since the last report).
        why: why it was refused (``wrong access token``).
    """

    type: Literal["refusal"] = "refusal"
    what: Line = Field(min_length=1, max_length=200)
    why: Line = Field(min_length=1, max_length=200)


Request = Annotated[
    StatusRequest
    | CheckpointRequest
    | AnswerRequest
    | PauseRequest
    | ResumeRequest
    | StopRequest
    | AddRequest
    | BudgetRequest
    | BeliefRequest
    | RefusalRequest,
    Field(discriminator="type"),
]
"""Any request, told apart by its ``type``."""

REQUEST_TYPES: tuple[str, ...] = (
    "status",
    "checkpoint",
    "answer",
    "pause",
    "resume",
    "stop",
    "add",
    "budget",
    "belief",
    "refusal",
)
_REQUESTS: TypeAdapter[Request] = TypeAdapter(Request)


# Validating ----------------------------------------------------------------------------------------------------
def _describe(error: ErrorDetails) -> str:
    loc = error["loc"]
    path = ".".join(str(part) for part in loc) or "(message)"
    if error["type"] == "extra_forbidden":
        return f"{path}: unknown key"
    if error["type"] == "missing":
        return f"{path}: required but missing"
    return f"{path}: {str(error['msg']).removeprefix('Value error, ')}"


def validate_request(data: Any) -> Request:
    """Validate a decoded message as a request.

    Raises:
        SpecError: one line naming the problem: not an object, the wrong version, an unknown type, a missing
            correlation id or operator name, or the first bad field (``answer.answers.0.verdict: ...``).
    """
    if not isinstance(data, dict):
        raise SpecError(f"message: a request is a JSON object, got {type(data).__name__}")
    if data.get("v") != PROTOCOL_VERSION:
        raise SpecError(f"v: protocol version {data.get('v')!r} is not spoken here (this session speaks 1)")
    kind = data.get("type")
    if kind not in REQUEST_TYPES:
        raise SpecError(f"type: unknown request {kind!r} (one of {', '.join(REQUEST_TYPES)})")
    for key, what in (("id", "a correlation id"), ("by", "the operator's name")):
        if key not in data:
            raise SpecError(f"{kind}.{key}: required but missing (every request carries {what})")
    _refuse_control(data, kind)
    try:
        return _REQUESTS.validate_python(data)
    except ValidationError as exc:
        raise SpecError("; ".join(_describe(error) for error in exc.errors()[:3])) from None
    except RecursionError:
        raise SpecError("message: nested too deeply") from None


def _refuse_control(data: Any, path: str, depth: int = 0) -> None:
    """Raise SpecError naming the first key or string under ``data`` that holds a control character."""
    if depth > 32:
        raise SpecError("message: nested too deeply")
    items = data.items() if isinstance(data, dict) else enumerate(data) if isinstance(data, list) else ()
    for key, value in items:
        where = f"{path}.{printable(str(key))}"
        try:
            if isinstance(key, str):
                _no_control(key)
            if isinstance(value, str):
                _no_control(value)
        except ValueError as exc:
            raise SpecError(f"{where}: {exc}") from None
        _refuse_control(value, where, depth + 1)
