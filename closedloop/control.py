"""The operator's control protocol: the messages a control client and a running session exchange.

Every message is JSON on the wire, validated by the pydantic models here, and carries the protocol version ``v``.

- A **request** (client to session) has a ``type`` (the discriminator of :data:`Request`), a correlation ``id``
  that its reply echoes, ``by`` (the operator's name) and ``via`` (``terminal``, ``channel`` or ``web``); the
  requests are defined in :mod:`closedloop.requests` and re-exported here. Parse one from the wire with
  :func:`parse_request`; it raises :class:`~closedloop.errors.SpecError` with one line naming the field, never
  anything else.
- A **reply** (:class:`Reply`) answers exactly one request: ``ok`` with a ``result``, or an ``error`` and a
  ``code`` saying what kind of refusal it is (:data:`ReplyCode`).
- An **event** (:class:`Event`) is published to every subscriber; ``seq`` numbers them so a subscriber can drop a
  repeat and see a gap.
- :class:`CheckpointInfo` is what an operator sees at a checkpoint, at the terminal and through the channel alike
  (:mod:`closedloop.checkpoint`).

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

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from closedloop.checkpoint import CheckpointInfo as CheckpointInfo  # re-exported: part of the protocol
from closedloop.checkpoint import Prediction as Prediction
from closedloop.checkpoint import ProposalInfo as ProposalInfo
from closedloop.checkpoint import VariableInfo as VariableInfo
from closedloop.errors import RefusedError, SpecError
from closedloop.requests import MAX_EXPERIMENTS as MAX_EXPERIMENTS  # re-exported: the requests are the protocol's
from closedloop.requests import PROTOCOL_VERSION as PROTOCOL_VERSION
from closedloop.requests import REQUEST_TYPES as REQUEST_TYPES
from closedloop.requests import AddRequest as AddRequest
from closedloop.requests import AnswerRequest as AnswerRequest
from closedloop.requests import BeliefRequest as BeliefRequest
from closedloop.requests import BudgetRequest as BudgetRequest
from closedloop.requests import CheckpointRequest as CheckpointRequest
from closedloop.requests import Line as Line
from closedloop.requests import PauseRequest as PauseRequest
from closedloop.requests import ProposalVerdict as ProposalVerdict
from closedloop.requests import RefusalRequest as RefusalRequest
from closedloop.requests import Request as Request
from closedloop.requests import ResumeRequest as ResumeRequest
from closedloop.requests import StatusRequest as StatusRequest
from closedloop.requests import StopRequest as StopRequest
from closedloop.requests import Via as Via
from closedloop.requests import operator_name as operator_name
from closedloop.requests import printable as printable
from closedloop.requests import validate_request as validate_request

MAX_MESSAGE_BYTES = 64 * 1024
"""The largest request a session accepts; a larger one gets an error reply."""

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


# Parsing ---------------------------------------------------------------------------------------------------------
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


def parse_request(raw: bytes) -> Request:
    """Parse a request from the wire (:func:`decode`, then :func:`validate_request`).

    Raises:
        SpecError: one line naming the problem.
    """
    return validate_request(decode(raw))


def encode(message: BaseModel) -> bytes:
    """A message as JSON bytes for the wire."""
    return message.model_dump_json().encode()
