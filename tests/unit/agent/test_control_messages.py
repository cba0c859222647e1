"""The control protocol's messages: every request round-trips, and anything else is refused with one line naming
the problem (never another exception)."""

from __future__ import annotations

import json
import unicodedata
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from closedloop.control import (
    MAX_MESSAGE_BYTES,
    REQUEST_TYPES,
    AddRequest,
    AnswerRequest,
    BeliefRequest,
    BudgetRequest,
    CheckpointInfo,
    CheckpointRequest,
    Event,
    LateAnswerError,
    PauseRequest,
    ProposalVerdict,
    RefusalRequest,
    Reply,
    ResumeRequest,
    StatusRequest,
    StopRequest,
    encode,
    parse_request,
    printable,
    request_id,
    validate_request,
)
from closedloop.errors import SessionError, SpecError

EXAMPLES = [
    StatusRequest(by="ada"),
    CheckpointRequest(by="ada", via="terminal"),
    AnswerRequest(
        by="ada",
        checkpoint="c-1",
        answers=[
            ProposalVerdict(proposal_id="p-1", verdict="approve"),
            ProposalVerdict(proposal_id="p-2", verdict="reject", reason="too close to the edge"),
            ProposalVerdict(proposal_id="p-3", verdict="edit", setpoints={"pitch1": 0.25, "crystal": "Si111"}),
        ],
    ),
    AnswerRequest(by="ada", checkpoint="c-1", stop=True, reason="beam lost"),
    PauseRequest(by="ada", reason="refill"),
    ResumeRequest(by="ada"),
    StopRequest(by="ada", abort=True, reason="vacuum"),
    AddRequest(by="ada", points=[{"pitch1": 0.1, "pitch2": -0.2}]),
    BudgetRequest(by="ada", experiments=30),
    BeliefRequest(by="ada", variable="pitch1"),
    RefusalRequest(by="nobody", via="web", what="GET /api/status", why="wrong access token"),
]


def wire(**fields: Any) -> bytes:
    return json.dumps({"v": 1, "id": "r-1", "by": "ada", **fields}).encode()


def refusal(raw: bytes) -> str:
    with pytest.raises(SpecError) as info:
        parse_request(raw)
    message = str(info.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize("request_", EXAMPLES, ids=lambda r: r.type)
def test_every_request_round_trips_through_the_wire(request_) -> None:
    parsed = parse_request(encode(request_))
    assert type(parsed) is type(request_)
    assert parsed == request_


def test_every_request_type_is_in_the_union() -> None:
    assert sorted({r.type for r in EXAMPLES}) == sorted(REQUEST_TYPES)


def test_a_request_defaults_to_the_os_user_and_a_fresh_id() -> None:
    one, two = StatusRequest(), StatusRequest()
    assert one.by and one.by == two.by
    assert one.id != two.id


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"{not json", "message: not JSON"),
        (b"\xff\xfe", "message: not UTF-8"),
        (b"[1, 2]", "a request is a JSON object, got list"),
        (wire(type="status", v=2), "v: protocol version 2 is not spoken here"),
        (json.dumps({"type": "status", "id": "r", "by": "a"}).encode(), "v: protocol version None"),
        (wire(type="launch"), "type: unknown request 'launch'"),
        (json.dumps({"v": 1, "type": "status", "by": "a"}).encode(), "status.id: required but missing"),
        (json.dumps({"v": 1, "type": "status", "id": "r"}).encode(), "status.by: required but missing"),
        (wire(type="budget", experiments=0), "budget.experiments: Input should be greater than or equal to 1"),
        (
            wire(type="budget", experiments=10**40),
            "budget.experiments: Input should be less than or equal to 2147483647",
        ),
        (wire(type="stop", by="ev\x1b[2Jil"), "stop.by: holds a control character (\\x1b) at position 2"),
        (wire(type="pause", reason="ok\u202egnp.exe"), "pause.reason: holds a control character (\\u202e)"),
        (wire(type="add", points=[{"x\x07": 1.0}]), "add.points.0.x\\x07: holds a control character (\\x07)"),
        (
            wire(
                type="answer",
                checkpoint="c",
                answers=[{"proposal_id": "p", "verdict": "edit", "setpoints": {"m": "a\x9b"}}],
            ),
            "answer.answers.0.setpoints.m: holds a control character (\\x9b)",
        ),
        (wire(type="status", colour="red"), "status.colour: unknown key"),
        (wire(type="status", via="telepathy"), "status.via:"),
        (wire(type="answer", checkpoint="c", answers=[{"proposal_id": "p", "verdict": "maybe"}]), "verdict"),
        (
            wire(type="answer", checkpoint="c", answers=[{"proposal_id": "p", "verdict": "edit"}]),
            "answer.answers.0: an edit needs setpoints",
        ),
        (
            wire(type="answer", checkpoint="c", answers=[{"proposal_id": "p", "verdict": "approve", "setpoints": {}}]),
            "setpoints are given only with an edit",
        ),
        (
            wire(type="answer", checkpoint="c", stop=True, answers=[{"proposal_id": "p", "verdict": "approve"}]),
            "give verdicts or stop, not both",
        ),
        (
            wire(type="answer", checkpoint="c", answers=[{"proposal_id": "p", "verdict": "approve"}] * 2),
            "a proposal is answered twice",
        ),
        (b'{"v": 1, "id": "r", "by": "a", "type": "add", "points": [{"x": NaN}]}', "add.points.0.x"),
        (wire(type="add", points=[]), "add.points: List should have at least 1 item"),
        (b"1" * (MAX_MESSAGE_BYTES + 1), f"over the limit of {MAX_MESSAGE_BYTES} bytes"),
        (b"[" * 100_000 + b"]" * 100_000, "over the limit"),
        (b"[" * 5000 + b"]" * 5000, "message:"),
    ],
)
def test_bad_messages_are_refused_naming_the_problem(raw: bytes, expected: str) -> None:
    assert expected in refusal(raw)


@given(st.text(max_size=20), st.characters(categories=["Cc"]), st.text(max_size=20))
def test_a_name_or_reason_with_any_control_character_is_refused_in_one_line(left: str, cc: str, right: str) -> None:
    text = left + cc + right
    message = refusal(wire(type="stop", by="ada", reason=text))
    assert message.startswith("stop.reason: holds a control character") and printable(message) == message
    with pytest.raises(ValidationError, match="control character"):
        StopRequest(by=text or cc)


@given(st.text(max_size=50))
def test_printable_leaves_no_control_character_and_changes_nothing_else(text: str) -> None:
    shown = printable(text)
    assert not any(unicodedata.category(c) == "Cc" for c in shown)
    if not any(unicodedata.category(c) == "Cc" or "\u202a" <= c <= "\u202e" or "\u2066" <= c <= "\u2069" for c in text):
        assert shown == text


def test_the_reply_to_a_bad_request_can_still_echo_its_id() -> None:
    assert request_id(json.loads(wire(type="launch"))) == "r-1"
    assert request_id({"id": 7}) == ""
    assert request_id([1]) == ""


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=6,
)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_any_bytes_either_parse_or_are_refused_with_a_spec_error(raw: bytes) -> None:
    try:
        parse_request(raw)
    except SpecError as exc:
        assert str(exc) and "\n" not in str(exc)


@settings(max_examples=100, deadline=None)
@given(
    st.sampled_from(REQUEST_TYPES + ("nope",)),
    st.dictionaries(
        st.sampled_from(
            ["v", "id", "by", "via", "checkpoint", "answers", "stop", "abort", "points", "experiments", "reason"]
        ),
        json_values,
        max_size=6,
    ),
)
def test_any_json_request_shape_either_validates_or_is_refused_with_a_spec_error(kind: str, fields: dict) -> None:
    data = {"v": 1, "id": "r", "by": "a", "type": kind, **fields}
    try:
        request = validate_request(data)
    except SpecError as exc:
        assert str(exc) and "\n" not in str(exc)
    else:
        assert request.type == kind
        assert parse_request(encode(request)) == request


def test_a_reply_and_an_event_round_trip() -> None:
    reply = Reply(id="r-1", ok=False, error="too late", code="late", result={"answered_by": "bob"})
    assert Reply.model_validate_json(encode(reply)) == reply
    event = Event(seq=3, time=1.5, kind="observation", data={"proposal_id": "p-1", "values": {"flux": 3.0}})
    assert Event.model_validate_json(encode(event)) == event
    with pytest.raises(ValidationError):
        Event(seq=1, time=0.0, kind="exploded")


def test_a_late_answer_names_who_answered_first() -> None:
    exc = LateAnswerError("c-1", "alice")
    assert isinstance(exc, SessionError)
    assert str(exc) == "too late: checkpoint c-1 was answered already by alice"
    assert exc.answered_by == "alice"


def test_checkpoint_info_round_trips() -> None:
    info = CheckpointInfo.model_validate(
        {
            "checkpoint": "c-1",
            "kind": "review",
            "iteration": 2,
            "proposals": [
                {
                    "id": "p-1",
                    "setpoints": {"pitch1": 0.3},
                    "why": "model",
                    "current": {"pitch1": None},
                    "prediction": {"flux": {"mean": 900.0, "std": 12.0}},
                    "acquisition": -1.5,
                }
            ],
            "variables": {"pitch1": {"units": "mrad", "bounds": [-1.5, 1.5], "hard_limits": [-2, 2]}},
            "objectives": {"flux": "maximize"},
        }
    )
    assert CheckpointInfo.model_validate_json(info.model_dump_json()) == info
    assert info.proposals[0].prediction is not None and info.proposals[0].prediction["flux"].std == 12.0
    with pytest.raises(ValidationError):
        CheckpointInfo.model_validate({"checkpoint": "c", "kind": "review", "iteration": 0, "surprise": 1})
