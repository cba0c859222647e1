"""The operator's control protocol: the messages a control client and a running session exchange.

Every message is JSON on the wire, validated by the pydantic models here, and carries the protocol version ``v``.

- A **request** (client to session) has a ``type`` (the discriminator of :data:`Request`), a correlation ``id``
  that its reply echoes, ``by`` (the operator's name) and ``via`` (``terminal``, ``channel`` or ``web``). Parse one
  from the wire with :func:`parse_request`; it raises :class:`~closedloop.errors.SpecError` with one line naming
  the field, never anything else.
- A **reply** (:class:`Reply`) answers exactly one request: ``ok`` with a ``result``, or an ``error`` and a
  ``code`` saying what kind of refusal it is (:data:`ReplyCode`).
- An **event** (:class:`Event`) is published to every subscriber; ``seq`` numbers them so a subscriber can drop a
  repeat and see a gap.
- :class:`CheckpointInfo` is what an operator sees at a checkpoint, at the terminal and through the channel alike.

What each request's ``result`` holds when it succeeds (the session's handler fills it in):

==============  ================================================================================================
``status``      the fields of ``closedloop status --json`` (``state``, ``experiments``, ``budget``, ...)
``checkpoint``  ``{"checkpoint": CheckpointInfo as JSON, or None when nothing waits}``
``answer``      ``{"checkpoint": id, "verdicts": {proposal_id: verdict}, "stop": bool}``
``pause``       ``{"state": ...}``; ``resume``, ``stop``, ``budget`` and ``add`` likewise report what changed
``belief``      ``{"belief": the model's mean and sd along the variable through the best point, or None, "why"}``
==============  ================================================================================================
"""

from __future__ import annotations

import getpass
import json
import re
from typing import Annotated, Any, Final, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, model_validator
from pydantic_core import ErrorDetails

from closedloop.errors import RefusedError, SpecError
from closedloop.records import new_id

PROTOCOL_VERSION: Final = 1
"""The version every message carries in ``v``; a message of another version is refused."""

MAX_MESSAGE_BYTES = 64 * 1024
"""The largest request a session accepts; a larger one gets an error reply."""

MAX_EXPERIMENTS: Final = 2**31 - 1
"""The largest budget a request may set: the same cap as a session file's ``budget.experiments``."""

_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
"""Control characters (C0, DEL, C1) and the bidirectional overrides that reorder what a terminal shows."""

Via = Literal["terminal", "channel", "web"]
"""Where an operator's request came from."""

Value = float | str

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

ReplyCode = Literal["invalid", "refused", "late", "internal"]
"""Why a request was not done: ``invalid`` a malformed request or a value the session refuses (a setpoint over a
hard limit); ``refused`` not possible now (no checkpoint waits, the session is finishing); ``late`` the checkpoint
was answered already; ``internal`` the session's handler failed (the session keeps running)."""


class Reply(BaseModel):
    """The answer to one request.

    Attributes:
        id: the request's correlation id ("" when the request was too malformed to carry one).
        ok: whether the request was done.
        result: what it did or reported (see the module docstring).
        error: why not, in one line.
        code: the kind of refusal, when ``ok`` is false.
    """

    model_config = ConfigDict(extra="forbid")

    v: Literal[1] = PROTOCOL_VERSION
    id: str
    ok: bool
    result: dict[str, Any] = Field(default_factory=dict)
    error: str | None = None
    code: ReplyCode | None = None


EventKind = Literal[
    "proposal",
    "checkpoint",
    "decision",
    "run_started",
    "run_finished",
    "observation",
    "best",
    "paused",
    "resumed",
    "stopped",
    "failure",
    "finished",
]


class Event(BaseModel):
    """Something that happened in a session, published to every subscriber.

    Attributes:
        seq: 1, 2, 3 ... within one session process (a subscriber drops a seq it has seen).
        time: when, seconds since the epoch.
        kind: what happened.
        data: the details (a proposal's id and setpoints, an observation's values, who decided what ...).
    """

    model_config = ConfigDict(extra="forbid")

    v: Literal[1] = PROTOCOL_VERSION
    seq: int = Field(ge=1)
    time: float
    kind: EventKind
    data: dict[str, Any] = Field(default_factory=dict)


class LateAnswerError(RefusedError):
    """A checkpoint was answered already (the first answer wins); a session's handler raises it for the second.

    Args:
        checkpoint: the checkpoint's id.
        answered_by: who answered it first.
    """

    def __init__(self, checkpoint: str, answered_by: str) -> None:
        super().__init__(f"too late: checkpoint {checkpoint} was answered already by {answered_by}")
        self.checkpoint = checkpoint
        self.answered_by = answered_by


# What an operator sees at a checkpoint ---------------------------------------------------------------------------
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


# Parsing ---------------------------------------------------------------------------------------------------------
def _describe(error: ErrorDetails) -> str:
    loc = error["loc"]
    path = ".".join(str(part) for part in loc) or "(message)"
    if error["type"] == "extra_forbidden":
        return f"{path}: unknown key"
    if error["type"] == "missing":
        return f"{path}: required but missing"
    return f"{path}: {str(error['msg']).removeprefix('Value error, ')}"


def request_id(data: Any) -> str:
    """The correlation id of a decoded message, or "" when it has none a reply could echo."""
    if isinstance(data, dict) and isinstance(data.get("id"), str) and 0 < len(data["id"]) <= 64:
        return data["id"]
    return ""


def decode(raw: bytes) -> Any:
    """Decode a message's bytes as JSON.

    Raises:
        SpecError: the message is over :data:`MAX_MESSAGE_BYTES`, not UTF-8, or not JSON.
    """
    if len(raw) > MAX_MESSAGE_BYTES:
        raise SpecError(f"message: {len(raw)} bytes, over the limit of {MAX_MESSAGE_BYTES} bytes")
    try:
        return json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise SpecError("message: not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise SpecError(f"message: not JSON ({exc.msg} at character {exc.pos})") from None
    except RecursionError:
        raise SpecError("message: nested too deeply") from None


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


def parse_request(raw: bytes) -> Request:
    """Parse a request from the wire (:func:`decode`, then :func:`validate_request`).

    Raises:
        SpecError: one line naming the problem.
    """
    return validate_request(decode(raw))


def encode(message: BaseModel) -> bytes:
    """A message as JSON bytes for the wire."""
    return message.model_dump_json().encode()
