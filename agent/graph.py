"""The loop as a LangGraph graph: propose -> review -> dispatch -> ingest -> decide.

Graph state holds small things only (the iteration, the ids of the current proposals, the last verdict); the
proposals, documents and observations live in the :class:`~agent.store.SessionStore`. Every node is safe to
re-run after a crash: it looks in the store before doing anything twice.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, TypedDict

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import END, START, StateGraph
from langgraph.types import interrupt

from agent.store import SessionStore
from closedloop.errors import PointsExhaustedError, SafetyError
from closedloop.records import (
    Decision,
    Observation,
    ObservationStatus,
    Proposal,
    ProposalStatus,
    Verdict,
)
from closedloop.spec import ReviewPolicy, SessionSpec
from instruments.ingest import observation_from_documents
from instruments.protocols import Executes, RunRecord
from planners import KnowsPosition


class LoopState(TypedDict, total=False):
    """What the graph checkpoints: small values only."""

    iteration: int
    proposal_ids: list[str]
    verdict: str
    outcome: str


class Suggests(Protocol):
    """A gest-api generator, as the loop uses it."""

    def suggest(self, num_points: int | None) -> list[dict[str, Any]]: ...

    def ingest(self, results: list[dict[str, Any]]) -> None: ...


@dataclass
class LoopContext:
    """Everything the nodes need that is not graph state: built anew in every process.

    Attributes:
        spec: the session spec.
        store: the session store.
        planner: the gest-api generator proposing points.
        executor: runs proposals.
        on_observation: called after each stored observation (progress bars, dashboards).
        issued: proposal id -> the planner's ``_id``, for points the current planner instance made.
        stop_requested: set by an operator to end the session after the current step.
    """

    spec: SessionSpec
    store: SessionStore
    planner: Suggests
    executor: Executes
    on_observation: Callable[[Observation], None] = lambda observation: None
    issued: dict[str, int] = field(default_factory=dict)
    stop_requested: bool = False


def proposal_setpoints(spec: SessionSpec, point: dict[str, Any]) -> dict[str, float | str]:
    """A planner's point as setpoints: every variable (numbers as floats) and every constant."""
    setpoints: dict[str, float | str] = {}
    for name, variable in spec.variables.items():
        value = point[name]
        setpoints[name] = str(value) if variable.categorical else float(value)
    for name, constant in spec.constants.items():
        setpoints[name] = point.get(name, constant.value)
    return setpoints


def review_payload(proposals: list[Proposal], iteration: int) -> dict[str, Any]:
    """What an operator is shown at a checkpoint (JSON-ready)."""
    return {
        "kind": "review",
        "iteration": iteration,
        "proposals": [p.model_dump(mode="json") for p in proposals],
        "reason": "",
        "choices": [v.value for v in Verdict],
    }


def points_payload(iteration: int, reason: str) -> dict[str, Any]:
    """What an operator is shown when the planner has no points left to give (JSON-ready)."""
    return {
        "kind": "points",
        "iteration": iteration,
        "proposals": [],
        "reason": reason,
        "choices": [Verdict.APPROVE.value, Verdict.STOP.value],
    }


def build_graph(ctx: LoopContext, checkpointer: BaseCheckpointSaver) -> Any:
    """Compile the loop graph over ``ctx`` with ``checkpointer`` persisting its state."""
    spec, store = ctx.spec, ctx.store

    def remaining() -> int:
        return spec.budget.experiments - store.count_observations(ObservationStatus.OK)

    def planner_proposals(iteration: int, count: int) -> list[Proposal]:
        if isinstance(ctx.planner, KnowsPosition):
            where = getattr(ctx.executor, "positions", dict)()
            numeric = {k: float(v) for k, v in where.items() if isinstance(v, int | float) and k in spec.variables}
            if numeric:
                ctx.planner.set_position(numeric)
        proposals = []
        for point in ctx.planner.suggest(count):
            planner_id = point.get("_id")
            proposal = Proposal(
                iteration=iteration,
                setpoints=proposal_setpoints(spec, point),
                planner_id=int(planner_id) if planner_id is not None else None,
            )
            if planner_id is not None:
                ctx.issued[proposal.id] = int(planner_id)
            proposals.append(proposal)
        return proposals

    def propose(state: LoopState) -> LoopState:
        iteration = state.get("iteration", 0)
        waiting = [
            p
            for p in store.proposals(iteration=iteration)
            if p.status in (ProposalStatus.PROPOSED, ProposalStatus.APPROVED)
        ]
        if not waiting:
            count = max(1, min(spec.planner.batch_size, remaining()))
            # points an operator queued go first, then the planner's own
            queued = store.queued_points()[:count]
            waiting = [Proposal(iteration=iteration, setpoints=point, origin="operator") for _, point in queued]
            if len(waiting) < count:
                try:
                    waiting += planner_proposals(iteration, count - len(waiting))
                except PointsExhaustedError as exc:
                    if not waiting:
                        # hold until an operator queues points (closedloop add) and says go on, or says stop
                        answer = Decision.model_validate(interrupt(points_payload(iteration, str(exc))))
                        store.log("decision", f"{answer.verdict.value} while waiting for points, by {answer.by}")
                        return {"iteration": iteration, "proposal_ids": [], "verdict": answer.verdict.value}
            store.add_proposals(waiting, taken={seq: p.id for (seq, _), p in zip(queued, waiting, strict=False)})
            from_queue = f", {len(queued)} queued by an operator" if queued else ""
            store.log("propose", f"iteration {iteration}: {len(waiting)} proposal(s){from_queue}")
        return {"iteration": iteration, "proposal_ids": [p.id for p in waiting]}

    def review(state: LoopState) -> LoopState:
        ids = state["proposal_ids"]
        if spec.review.policy == ReviewPolicy.NEVER:
            decision = Decision(verdict=Verdict.APPROVE, proposal_ids=ids, by="policy")
        else:
            answer = interrupt(review_payload(store.proposals(ids=ids), state["iteration"]))
            decision = Decision.model_validate(answer)
            decision = decision.model_copy(update={"proposal_ids": decision.proposal_ids or ids})
        store.add_decision(state["iteration"], decision)
        store.log("decision", f"{decision.verdict.value} {len(decision.proposal_ids)} by {decision.by}")
        if decision.verdict == Verdict.APPROVE:
            store.set_status(ids, ProposalStatus.APPROVED)
        elif decision.verdict == Verdict.REJECT:
            # Rejected points stay pending in the planner, which steers it away from them.
            store.set_status(ids, ProposalStatus.REJECTED)
        return {"verdict": decision.verdict.value}

    def dispatch(state: LoopState) -> LoopState:
        for proposal in store.proposals(ids=state["proposal_ids"]):
            if store.has_run(proposal.id) or store.observation(proposal.id) is not None:
                continue  # already ran: never move twice for one proposal
            try:
                record = ctx.executor.run(proposal)
            except SafetyError as exc:
                store.log("safety", f"{proposal.id}: {exc}")
                record = RunRecord(error=f"refused by the safety gate: {exc}")
            store.add_run(proposal.id, record.documents, record.error, record.seconds)
        return {}

    def ingest(state: LoopState) -> LoopState:
        for proposal in store.proposals(ids=state["proposal_ids"]):
            if store.observation(proposal.id) is not None:
                continue
            stored = store.run(proposal.id)
            documents, error = stored if stored is not None else ([], "the run was lost")
            observation = observation_from_documents(spec, proposal, documents, error)
            store.add_observation(observation)
            if not observation.ok:
                store.log("failure", f"{proposal.id}: {observation.error}")
            result = observation.as_result()
            if proposal.id in ctx.issued:
                result["_id"] = ctx.issued.pop(proposal.id)
            ctx.planner.ingest([result])
            ctx.on_observation(observation)
        return {}

    def decide(state: LoopState) -> LoopState:
        if state.get("verdict") == Verdict.STOP.value or ctx.stop_requested:
            return {"outcome": "stopped"}
        if remaining() <= 0:
            return {"outcome": "finished"}
        failed = store.count_observations(ObservationStatus.FAILED)
        if failed >= max(5, spec.budget.experiments):
            return {"outcome": "failed"}
        return {"iteration": state["iteration"] + 1, "proposal_ids": []}

    def after_propose(state: LoopState) -> str:
        if state.get("proposal_ids"):
            return "review"
        # no proposal: the operator was asked for points; stop, or look for them again
        return "decide" if state.get("verdict") == Verdict.STOP.value else "propose"

    def after_review(state: LoopState) -> str:
        verdict = state.get("verdict")
        if verdict == Verdict.APPROVE.value:
            return "dispatch"
        return "decide"

    def after_decide(state: LoopState) -> str:
        return END if state.get("outcome") else "propose"

    builder = StateGraph(LoopState)
    builder.add_node("propose", propose)
    builder.add_node("review", review)
    builder.add_node("dispatch", dispatch)
    builder.add_node("ingest", ingest)
    builder.add_node("decide", decide)
    builder.add_edge(START, "propose")
    builder.add_conditional_edges("propose", after_propose, ["review", "decide", "propose"])
    builder.add_conditional_edges("review", after_review, ["dispatch", "decide"])
    builder.add_edge("dispatch", "ingest")
    builder.add_edge("ingest", "decide")
    builder.add_conditional_edges("decide", after_decide, ["propose", END])
    return builder.compile(checkpointer=checkpointer)
