"""Requests from what an operator types: a command's flags, or answers to prompts at a terminal.

:func:`build` makes any request from plain values and checks it as a session would; :func:`answer_at_terminal`
shows a checkpoint and asks for a verdict per proposal; :func:`answer_from_flags` makes the same answer from
``review``'s ``--approve``, ``--reject``, ``--edit`` and ``--stop``. The session's own terminal and ``closedloop
review`` ask alike.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.text import Text

from agent.views import checkpoint_table, point
from closedloop.control import (
    AnswerRequest,
    BudgetRequest,
    CheckpointInfo,
    ProposalInfo,
    Request,
    Via,
    operator_name,
    validate_request,
)
from closedloop.errors import ClosedLoopError, SpecError
from closedloop.records import new_id

console = Console(highlight=False)
err = Console(stderr=True, highlight=False)


def build(kind: str, by: str | None, via: Via = "channel", **fields: Any) -> Request:
    """A request of ``kind`` from the command line's values, checked as the session would check it.

    Args:
        kind: the request's type (``status``, ``answer``, ``add`` ...).
        by: the operator's name (None: the OS user).
        via: where it comes from.
        **fields: the request's own fields.

    Raises:
        SpecError: a value is out of range; the message names the field (``budget.experiments: ...``).
    """
    header = {"v": 1, "id": new_id("r"), "type": kind, "by": by or operator_name(), "via": via}
    return validate_request({**header, **fields})


def unchecked_budget(by: str | None, experiments: int, reason: str = "", via: Via = "channel") -> Request:
    """A budget request made without its checks, for the session to refuse (and record) one refused here."""
    return BudgetRequest.model_construct(
        id=new_id("r"), by=by or operator_name(), via=via, experiments=experiments, reason=reason
    )


def _value(text: str) -> float | str:
    try:
        return float(text)
    except ValueError:
        return text


def parse_edits(words: list[str], info: CheckpointInfo) -> dict[str, dict[str, float | str]]:
    """``["[ID:]NAME=VALUE", ...]`` as ``{proposal id: {name: value}}``; the id may be left out for one proposal.

    Raises:
        SpecError: a word is malformed, or names a proposal or variable the checkpoint does not hold.
    """
    ids = [p.id for p in info.proposals]
    edits: dict[str, dict[str, float | str]] = {}
    for word in words:
        left, sep, value = word.partition("=")
        proposal_id, colon, name = left.rpartition(":")
        name, value = name.strip(), value.strip()
        if not sep or not name or not value:
            raise SpecError(f"--edit: {word!r} is not [ID:]NAME=VALUE")
        if not ids:
            raise SpecError(f"--edit: no proposal waits at this checkpoint ({info.kind}): nothing to edit")
        if not colon:
            if len(ids) != 1:
                raise SpecError(f"--edit: the checkpoint holds {len(ids)} proposals; write ID:NAME=VALUE ({word!r})")
            proposal_id = ids[0]
        if proposal_id not in ids:
            raise SpecError(f"--edit: no proposal {proposal_id} at this checkpoint (it holds {', '.join(ids)})")
        if info.variables and name not in info.variables:
            raise SpecError(f"--edit.{name}: not a variable of this session (one of {', '.join(info.variables)})")
        edits.setdefault(proposal_id, {})[name] = _value(value)
    return edits


def answer_from_flags(
    info: CheckpointInfo,
    by: str | None,
    approve: bool,
    reject: str | None,
    edit: list[str],
    stop: bool,
    reason: str,
    via: Via = "channel",
) -> Request:
    """The answer the non-interactive flags of ``review`` give at this checkpoint.

    ``--stop`` stops; otherwise each proposal gets its ``--edit`` if it has one, else ``--approve`` or
    ``--reject REASON``. A checkpoint without proposals is carried on with ``--approve``.

    Raises:
        SpecError: the flags contradict each other or leave a proposal unanswered.
    """
    if stop:
        if approve or reject is not None or edit:
            raise SpecError("--stop: give it alone, without --approve, --reject or --edit")
        return build("answer", by, via, checkpoint=info.checkpoint, stop=True, reason=reason)
    if approve and reject is not None:
        raise SpecError("--approve and --reject: give one of them")
    edits = parse_edits(edit, info)
    answers = []
    for proposal in info.proposals:
        if proposal.id in edits:
            setpoints = {**proposal.setpoints, **edits[proposal.id]}
            answers.append({"proposal_id": proposal.id, "verdict": "edit", "setpoints": setpoints, "reason": reason})
        elif approve or reject is not None:
            verdict = "approve" if approve else "reject"
            answers.append({"proposal_id": proposal.id, "verdict": verdict, "reason": reject or reason})
        else:
            raise SpecError(f"review: proposal {proposal.id} is not answered; add --approve or --reject REASON")
    return build("answer", by, via, checkpoint=info.checkpoint, answers=answers, reason=reason)


def _ask(prompt: str) -> str:
    try:
        return console.input(Text(prompt, style="bold")).strip()
    except EOFError:
        raise ClosedLoopError("no answer given; nothing was sent") from None


def _ask_proposal(proposal: ProposalInfo, info: CheckpointInfo) -> dict[str, Any] | None:
    """One proposal's verdict from the terminal; None for stop."""
    while True:
        answer = _ask(f"{proposal.id}: approve, reject, edit or stop? [a/r/e/s] ").lower()
        if answer in ("a", "approve"):
            return {"proposal_id": proposal.id, "verdict": "approve"}
        if answer in ("r", "reject"):
            return {"proposal_id": proposal.id, "verdict": "reject", "reason": _ask("why? ")}
        if answer in ("s", "stop"):
            return None
        if answer in ("e", "edit"):
            words = _ask("new setpoints, NAME=VALUE ...: ").split()
            try:
                edits = parse_edits([f"{proposal.id}:{w}" for w in words], info) if words else {}
            except SpecError as exc:
                err.print(Text(str(exc)))
                continue
            if edits:
                setpoints = {**proposal.setpoints, **edits[proposal.id]}
                return {"proposal_id": proposal.id, "verdict": "edit", "setpoints": setpoints}
        console.print(Text("please answer a (approve), r (reject), e (edit) or s (stop)"))


def answer_at_terminal(info: CheckpointInfo, by: str | None, via: Via = "channel") -> Request:
    """Show the checkpoint and ask for a verdict per proposal (or carry on / stop when it holds none).

    The session's own terminal asks the same way (``via="terminal"``).

    Raises:
        SessionError: the input ended before an answer was complete (nothing is sent).
    """
    console.print(checkpoint_table(info))
    if not info.proposals:
        while True:
            answer = _ask(f"{info.reason or info.kind}: carry on or stop? [c/s] ").lower()
            if answer in ("c", "carry on", "continue", "a", "approve"):
                return build("answer", by, via, checkpoint=info.checkpoint)
            if answer in ("s", "stop"):
                return build("answer", by, via, checkpoint=info.checkpoint, stop=True)
    answers = []
    for proposal in info.proposals:
        verdict = _ask_proposal(proposal, info)
        if verdict is None:
            return build("answer", by, via, checkpoint=info.checkpoint, stop=True)
        answers.append(verdict)
    return build("answer", by, via, checkpoint=info.checkpoint, answers=answers)


_DONE = {"approve": "approved", "reject": "rejected", "edit": "edited"}


def describe_answer(request: AnswerRequest, info: CheckpointInfo | None = None) -> str:
    """An answer in words, as ``review`` reports it once the session took it: ``p-1a2b approved``, ``p-1a2b edited
    to pitch1=0.3 mrad  pitch2=-0.5 mrad (why)``, ``stopping the session``, ``carrying on``; the setpoints with the
    units ``info`` gives."""
    if request.stop:
        return "stopping the session" + (f" ({request.reason})" if request.reason else "")
    units = {name: v.units or None for name, v in (info.variables if info is not None else {}).items()}
    said = []
    for a in request.answers:
        text = f"{a.proposal_id} {_DONE.get(a.verdict, a.verdict)}"
        if a.verdict == "edit" and a.setpoints:
            text += f" to {point(a.setpoints, units)}"
        said.append(text + (f" ({a.reason})" if a.reason else ""))
    return "; ".join(said) or "carrying on"
