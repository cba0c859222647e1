"""The ``dispatch`` node: each released proposal through the safety gate to a free instrument, at most once.

The intent to run is stored (and the run file opened) before anything moves. A proposal already run, or one whose
intent is stored but whose run is not (the process died while it may have been moving), is never run again here:
``ingest`` records what its documents show. A stop request moves nothing more; a pause holds the approved
proposals back until it ends.
"""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime

from agent.loop.context import LoopContext
from agent.loop.state import LoopState
from agent.store import RunFile
from closedloop.errors import SafetyError
from instruments.safety import gate


def dispatch(state: LoopState, runtime: Runtime[LoopContext]) -> LoopState:
    """Start every released proposal on a free instrument; returns the runs in flight and those a pause holds."""
    ctx = runtime.context
    spec, store = ctx.spec, ctx.store
    in_flight = list(state.get("in_flight", []))
    held: list[str] = []
    for proposal in store.proposals(ids=state["proposal_ids"]):
        if store.has_run(proposal.id) or store.observation(proposal.id) is not None:
            continue  # already ran: never move twice for one proposal
        if store.was_dispatched(proposal.id):
            in_flight.append(proposal.id)  # the process died while it may have been moving: ingest records it
            continue
        if ctx.requests.stop:
            continue  # an operator asked to stop: nothing more moves
        # with every instrument busy, wait for one: the next run starts the moment the last one ends
        lane = ctx.lanes.wait_free() if not ctx.requests.pause else None
        if ctx.requests.stop:
            continue
        if lane is None or ctx.requests.pause:
            held.append(proposal.id)  # paused: approved, not started; it runs after the pause
            continue
        try:
            setpoints = gate(spec, dict(proposal.setpoints), lane.executor)
        except SafetyError as exc:
            store.log("safety", f"{proposal.id}: {exc}")
            store.add_run(proposal.id, [], f"refused by the safety gate: {exc}", 0.0, status="refused")
            in_flight.append(proposal.id)
            continue
        checked = proposal.model_copy(update={"setpoints": setpoints})
        sink = RunFile(ctx.runs / f"{proposal.id}.jsonl").open()  # the file exists before anything moves
        store.mark_dispatched(proposal.id, setpoints)
        md: dict[str, Any] = {"decision_ids": decision_ids(ctx, proposal.id)}
        if len(ctx.lanes) > 1:
            md["instrument"] = lane.name
        ctx.lanes.start(lane, checked, md, sink)
        in_flight.append(proposal.id)
    return {"in_flight": in_flight, "held": held}


def decision_ids(ctx: LoopContext, proposal_id: str) -> list[str]:
    """The decisions that released a proposal's run (an edit's: those on the proposal it edited)."""
    return [d.id for _, d in ctx.store.decisions_for(proposal_id.removesuffix("-edit"))]
