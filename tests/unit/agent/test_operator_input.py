"""Answers built from review's flags: a verdict per proposal, edits merged into the proposed setpoints, and every
contradiction refused in one line before anything is sent."""

from __future__ import annotations

import re

import pytest

from agent.operator.input import answer_from_flags, build, parse_edits
from closedloop.control import AnswerRequest, CheckpointInfo
from closedloop.errors import SpecError

INFO = CheckpointInfo.model_validate(
    {
        "checkpoint": "c-2",
        "kind": "review",
        "iteration": 1,
        "proposals": [
            {"id": "p-1", "setpoints": {"x": 0.1, "crystal": "Si111"}},
            {"id": "p-2", "setpoints": {"x": 0.2, "crystal": "Si311"}},
        ],
        "variables": {"x": {"bounds": [0, 1]}, "crystal": {"values": ["Si111", "Si311"]}},
    }
)


def answer(**flags) -> AnswerRequest:
    values = {"approve": False, "reject": None, "edit": [], "stop": False, "reason": ""} | flags
    request = answer_from_flags(INFO, "ada", **values)
    assert isinstance(request, AnswerRequest)
    return request


def test_edits_are_merged_into_the_proposal_and_the_rest_take_the_default() -> None:
    request = answer(edit=["p-2:x=0.5", "p-2:crystal=Si111"], approve=True, reason="closer")
    assert [(a.proposal_id, a.verdict, a.setpoints, a.reason) for a in request.answers] == [
        ("p-1", "approve", None, "closer"),
        ("p-2", "edit", {"x": 0.5, "crystal": "Si111"}, "closer"),
    ]
    assert (request.by, request.via, request.checkpoint) == ("ada", "channel", "c-2")


def test_reject_carries_its_reason_and_stop_stands_alone() -> None:
    assert {a.reason for a in answer(reject="too hot").answers} == {"too hot"}
    stop = answer(stop=True, reason="beam dump")
    assert stop.stop and stop.answers == [] and stop.reason == "beam dump"


@pytest.mark.parametrize(
    ("flags", "words"),
    [
        ({"stop": True, "approve": True}, "--stop: give it alone"),
        ({"approve": True, "reject": "no"}, "give one of them"),
        ({"edit": ["x=0.5"]}, "holds 2 proposals; write ID:NAME=VALUE"),
        ({"edit": ["p-9:x=0.5"], "approve": True}, "no proposal p-9 at this checkpoint"),
        ({"edit": ["p-1:y=0.5"], "approve": True}, "--edit.y: not a variable of this session (one of x, crystal)"),
        ({"edit": ["p-1:x"], "approve": True}, "is not [ID:]NAME=VALUE"),
        ({"edit": ["p-1:x=0.5"]}, "proposal p-2 is not answered"),
        ({}, "proposal p-1 is not answered"),
    ],
)
def test_contradictions_are_refused_naming_the_flag(flags: dict, words: str) -> None:
    with pytest.raises(SpecError, match=re.escape(words)):
        answer(**flags)


def test_a_checkpoint_without_proposals_is_carried_on_with_approve() -> None:
    info = CheckpointInfo(checkpoint="c-3", kind="failures", iteration=4)
    request = answer_from_flags(info, None, approve=True, reject=None, edit=[], stop=False, reason="")
    assert isinstance(request, AnswerRequest) and request.answers == [] and not request.stop
    assert request.by  # the OS user when no name is given


def test_one_proposal_needs_no_id_and_values_keep_their_type() -> None:
    info = INFO.model_copy(update={"proposals": INFO.proposals[:1]})
    assert parse_edits(["x=1e-3", "crystal=Si311"], info) == {"p-1": {"x": 0.001, "crystal": "Si311"}}


def test_build_checks_a_request_as_the_session_would() -> None:
    assert build("budget", "ada", experiments=5).experiments == 5
    assert build("status", None, via="terminal").via == "terminal"
    with pytest.raises(SpecError, match="budget.experiments"):
        build("budget", "ada", experiments=0)
    with pytest.raises(SpecError, match="status.by"):
        build("status", "x" * 65)
