"""The ``review`` node: the review policy decides, or an operator does at an interrupt; decisions are applied.

The question is written to the audit log once per checkpoint, as first asked: when the node runs again (on the
answer, or after a kill) it asks the same question, whatever the runs that ended while it waited would make the
policy or the model say now, and refits no model for it. An edit is checked again (:func:`instruments.safety.
check_edit`) and becomes a new proposal; the planner's own point is then rejected and told to the planner.
"""

from __future__ import annotations

import json
from typing import Any

from langgraph.runtime import Runtime
from langgraph.types import interrupt

from agent.loop.context import LoopContext
from agent.loop.review import checkpoint_id, checkpoint_info, policy_asks, read_answer, shown_predictions
from agent.loop.state import LoopState
from agent.provenance.lineage import note_proposals, record_predictions
from closedloop.errors import SafetyError
from closedloop.records import Decision, ObservationStatus, Proposal, ProposalStatus, Verdict
from instruments.safety import check_edit


def review(state: LoopState, runtime: Runtime[LoopContext]) -> LoopState:
    """Approve by policy, or ask an operator; returns the released proposals and the verdict."""
    ctx = runtime.context
    spec, store = ctx.spec, ctx.store
    iteration, ids = state["iteration"], state["proposal_ids"]
    proposals = store.proposals(ids=ids)
    current = ctx.positions()
    key = checkpoint_id("review", iteration, proposals)
    question = store.logged(f"question-{key}")
    if question is not None:
        asked = json.loads(question)  # asked before: the same question again
        why, predictions = asked["reason"], shown_predictions(asked["proposals"])
    else:
        predictions = ctx.predictions(proposals)
        record_predictions(store, proposals, predictions)
        last = ctx.tally.last_observation
        why = policy_asks(
            spec,
            iteration,
            proposals,
            current,
            predictions,
            last is not None and last.status == ObservationStatus.FAILED,
            store.count_proposals() - len(proposals),
        )
    if why is None:
        decisions = [
            Decision(verdict=Verdict.APPROVE, proposal_ids=[p.id], by="policy", via="policy", checkpoint=key)
            for p in proposals
        ]
    else:
        predicts = callable(getattr(ctx.planner, "predict", None))
        info = checkpoint_info(
            spec, "review", iteration, proposals, current, predictions, ctx.tally, why, predicts, reach=ctx.reach
        )
        # what is asked, with the model's prediction, for the audit trail (once per checkpoint, as first asked)
        asked = {"checkpoint": key, "reason": why, "proposals": info["proposals"]}
        store.log("question", json.dumps(asked, default=str), key=f"question-{key}")
        decisions = read_answer(interrupt(info), ids, key)
    return apply_decisions(ctx, iteration, proposals, decisions, current)


def after_review(state: LoopState) -> str:
    """``dispatch`` what was released, else ``decide``."""
    return "dispatch" if state.get("verdict") == Verdict.APPROVE.value else "decide"


def apply_decisions(
    ctx: LoopContext, iteration: int, proposals: list[Proposal], decisions: list[Decision], current: dict[str, Any]
) -> LoopState:
    """Store each decision once, and release, edit or reject its proposal; a stop ends the review at once."""
    store = ctx.store
    by_id = {p.id: p for p in proposals}
    released: list[str] = []
    for decision in decisions:
        pid = decision.proposal_ids[0]
        if store.add_decision(iteration, decision, key=f"{decision.checkpoint}:{pid}"):
            store.log("decision", f"{decision.verdict.value} {pid} by {decision.by} via {decision.via}")
            ctx.emit("decision", decision.model_dump(mode="json"))
        if decision.verdict == Verdict.STOP:
            return {"verdict": Verdict.STOP.value, "proposal_ids": []}
        proposal = by_id[pid]
        if decision.verdict == Verdict.APPROVE:
            store.set_status([pid], ProposalStatus.APPROVED)
            released.append(pid)
        elif decision.verdict == Verdict.EDIT:
            edited = edited_proposal(ctx, proposal, decision, current)
            if edited is not None:
                released.append(edited.id)
        elif store.proposals(ids=[pid])[0].status != ProposalStatus.REJECTED:
            store.set_status([pid], ProposalStatus.REJECTED)
            ctx.tell_rejected(proposal)
    verdict = Verdict.APPROVE.value if released else Verdict.REJECT.value
    return {"verdict": verdict, "proposal_ids": released}


def edited_proposal(
    ctx: LoopContext, proposal: Proposal, decision: Decision, current: dict[str, Any]
) -> Proposal | None:
    """The operator's setpoints as a new proposal (checked again); the planner's own point is rejected."""
    store = ctx.store
    try:
        setpoints = check_edit(ctx.spec, decision.setpoints or {}, current, ctx.executor)
    except SafetyError as exc:
        store.log("safety", f"edit of {proposal.id} refused: {exc}", key=f"edit-refused-{proposal.id}")
        setpoints = None
    if store.proposals(ids=[proposal.id])[0].status != ProposalStatus.REJECTED:
        store.set_status([proposal.id], ProposalStatus.REJECTED)
        ctx.tell_rejected(proposal)
    if setpoints is None:
        return None
    edited = Proposal(
        id=f"{proposal.id}-edit",
        iteration=proposal.iteration,
        setpoints=setpoints,
        origin="operator",
        why=f"edited {proposal.id}",
        status=ProposalStatus.APPROVED,
    )
    store.add_proposals([edited])  # the same id on a re-run: stored once
    note_proposals(ctx, [edited])
    return edited
