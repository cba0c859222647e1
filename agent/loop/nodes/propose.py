"""The ``propose`` node: points an operator queued first, then the planner's own, each checked and stored.

A planner's point that is not a valid set of setpoints, or that was proposed before in this session (see
:class:`~agent.loop.rebuild.SeenPoints`), is refused before it is stored and told to the planner as a failed point
(or, for a repeat, as the measurement already made). A planner that fails holds the session for an operator; one
that has no points left holds it until an operator queues some.
"""

from __future__ import annotations

import math
from typing import Any

from langgraph.runtime import Runtime

from agent.loop.capacity import planner_room, proposals_wanted
from agent.loop.context import LoopContext, proposal_setpoints
from agent.loop.review import hold
from agent.loop.state import LoopState
from agent.provenance.lineage import note_proposals
from closedloop.errors import PlannerError, PointsExhaustedError
from closedloop.records import Proposal, ProposalStatus, Verdict
from planners import Explains, KnowsPosition

PLANNER_ATTEMPTS = 3
"""Rounds of ``suggest`` that gave no usable point before the planner is said to have failed."""
ANSWERED_ROUNDS = 50
"""Rounds answered from the store (repeats of measured points) allowed before they count as failed attempts."""


def propose(state: LoopState, runtime: Runtime[LoopContext]) -> LoopState:
    """Propose the next points (or return those waiting for review at this iteration)."""
    ctx = runtime.context
    store = ctx.store
    iteration = state.get("iteration", 0)
    open_ = (ProposalStatus.PROPOSED, ProposalStatus.APPROVED)
    waiting = [p for p in store.proposals(iteration=iteration) if p.status in open_]
    if waiting:
        return {"iteration": iteration, "proposal_ids": [p.id for p in waiting]}
    count = proposals_wanted(ctx, len(state.get("in_flight", [])))
    if count <= 0:
        return {"iteration": iteration, "proposal_ids": []}  # the budget is in flight: wait for the runs
    # points an operator queued go first, then the planner's own
    queued = store.queued_points(limit=count)
    waiting = [Proposal(iteration=iteration, setpoints=p, origin="operator", why="operator") for _, p in queued]
    room = planner_room(ctx)
    if not waiting and room == 0 and state.get("in_flight"):
        return {"iteration": iteration, "proposal_ids": []}  # it wants a result first: wait for a run to end
    if len(waiting) < count and (room != 0 or not waiting):
        try:
            if room == 0:
                raise PlannerError("the planner waits for the result of a point that is no longer in flight")
            wanted = count - len(waiting) if room is None else min(room, count - len(waiting))
            waiting += planner_proposals(ctx, iteration, wanted)
        except PointsExhaustedError as exc:
            if not waiting:
                # hold until an operator queues points (closedloop add) and says go on, or says stop
                answer = hold(ctx, "points", iteration, str(exc))
                store.log("decision", f"{answer.verdict.value} while waiting for points, by {answer.by}")
                return {"iteration": iteration, "proposal_ids": [], "verdict": answer.verdict.value}
        except Exception as exc:  # the planner failed: the session holds for an operator, it does not die
            if not waiting:
                reason = f"the planner failed: {type(exc).__name__}: {exc}"
                ctx.emit("failure", {"iteration": iteration, "reason": reason})
                answer = hold(ctx, "failures", iteration, reason)
                store.log("decision", f"{answer.verdict.value} after a planner failure, by {answer.by}")
                return {"iteration": iteration, "proposal_ids": [], "verdict": answer.verdict.value}
    store.add_proposals(waiting, taken={seq: p.id for (seq, _), p in zip(queued, waiting, strict=False)})
    note_proposals(ctx, waiting)
    from_queue = f", {len(queued)} queued by an operator" if queued else ""
    store.log("propose", f"iteration {iteration}: {len(waiting)} proposal(s){from_queue}")
    for proposal in waiting:
        ctx.emit("proposal", proposal.model_dump(mode="json"))
    return {"iteration": iteration, "proposal_ids": [p.id for p in waiting]}


def after_propose(state: LoopState) -> str:
    """``review`` the proposals; with none, ``decide`` on a stop, ``ingest`` while runs are in flight (the budget
    left is in flight), else ``propose`` again (the operator was asked for points)."""
    if state.get("proposal_ids"):
        return "review"
    if state.get("verdict") == Verdict.STOP.value:
        return "decide"
    return "ingest" if state.get("in_flight") else "propose"


def planner_proposals(ctx: LoopContext, iteration: int, count: int) -> list[Proposal]:
    """Up to ``count`` of the planner's points as proposals, each checked; refused points are told to the planner.

    Raises:
        PlannerError: no usable point in :data:`PLANNER_ATTEMPTS` rounds.
    """
    spec, store = ctx.spec, ctx.store
    if isinstance(ctx.planner, KnowsPosition):
        where = ctx.planner_position()
        if where:
            ctx.planner.set_position(where)
    attempts, answered = 0, 0
    while attempts < PLANNER_ATTEMPTS:
        proposals, told = [], False
        batch: dict[tuple[Any, ...], int] = {}  # the keys of this batch's points (see SeenPoints.check)
        for point in ctx.suggest(count):
            planner_id = point.get("_id") if isinstance(point, dict) else None
            try:
                setpoints = proposal_setpoints(spec, point)
                ctx.seen.check(setpoints, batch)
            except PlannerError as exc:
                # refused before it is stored: logged, and told to the planner as a failed point (a repeat of a
                # point measured already: as that measurement, and nothing moves for it again)
                measured = ctx.seen.measured(exc)
                store.log("refused", f"iteration {iteration}: {exc}{'; told its result' if measured else ''}")
                bad = {k: v for k, v in point.items() if k != "_id"} if isinstance(point, dict) else {}
                bad.update(measured or {name: math.nan for name in spec.outputs})
                told = told or measured is not None
                if planner_id is not None:
                    bad["_id"] = planner_id
                ctx.planner.ingest([bad])
                continue
            proposal = Proposal(
                iteration=iteration,
                setpoints=setpoints,
                planner_id=int(planner_id) if planner_id is not None else None,
                why=planner_why(ctx, point, planner_id),
            )
            if planner_id is not None:
                ctx.issued[proposal.id] = int(planner_id)
            proposals.append(proposal)
        if proposals:
            return proposals
        # a round whose points were all answered from the store is not a failed attempt (a simplex method may ask
        # for points it had measured several times over), up to a limit
        answered += told
        attempts += 1 if not told or answered > ANSWERED_ROUNDS else 0
    raise PlannerError(f"the planner gave no usable point in {PLANNER_ATTEMPTS} attempts")


def planner_why(ctx: LoopContext, point: Any, planner_id: Any) -> str:
    """Why the planner proposed ``point`` (initial design, model, ...), for the operator; ``planner`` when it does
    not say (:class:`~planners.Explains`, or a ``_why`` in the point)."""
    if isinstance(ctx.planner, Explains) and isinstance(planner_id, int):
        reason = ctx.planner.why(planner_id)
        if reason:
            return reason
    return str(point.get("_why", "planner")) if isinstance(point, dict) else "planner"


__all__ = ["after_propose", "planner_proposals", "propose"]
