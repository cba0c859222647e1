"""The ``ingest`` node: wait for the runs that must end first, then turn every ended run into its observation.

An observation is stored once (by proposal id) and told to the planner once; a run the process died during is
recovered from the instrument (a queueserver manager that ran on) or its run file, else recorded ``interrupted``,
never run again by itself. :func:`collect_ended` and :func:`collect_dispatched` ingest outside the node: during a
review's wait, and on resume.
"""

from __future__ import annotations

from langgraph.runtime import Runtime

from agent.loop.capacity import planner_room, ready_for_more
from agent.loop.context import LoopContext
from agent.loop.rebuild import ended_run
from agent.loop.recovery import recover_run
from agent.loop.state import LoopState
from closedloop.records import ObservationStatus, Proposal
from instruments.ingest import observation_from_documents

INTERRUPTED = "interrupted: the session process ended while this run may have been moving; not run again by itself"


def ingest(state: LoopState, runtime: Runtime[LoopContext]) -> LoopState:
    """Wait until the loop may propose again (:func:`~agent.loop.capacity.ready_for_more`), then ingest what ended."""
    ctx = runtime.context
    store = ctx.store
    in_flight = state.get("in_flight", [])
    if in_flight:
        # a planner that makes one point at a time holds any idle instrument until a run ends: say so in status
        planner_waits = planner_room(ctx) == 0
        if planner_waits:
            store.set_meta(planner_waits=True)
        try:
            ctx.lanes.wait(lambda: ready_for_more(ctx, len(ctx.lanes.running()), len(in_flight)))
        finally:
            if planner_waits:
                store.set_meta(planner_waits=False)
    left = collect(ctx, in_flight)
    if not ctx.lanes.usable():  # every instrument stopped answering: end, resumable
        raise ctx.lanes.gone()
    # a high-water mark beside the store (rebuild.HIGH_WATER): a store older than the checkpoints is refused on resume
    return {"in_flight": left, "observed": store.count_observations()}


def collect(ctx: LoopContext, in_flight: list[str]) -> list[str]:
    """Ingest every run of ``in_flight`` that is over; returns those still running."""
    live = set(ctx.lanes.running())
    left = []
    for proposal in ctx.store.proposals(ids=in_flight):
        if proposal.id in live:
            left.append(proposal.id)
        elif ctx.store.observation(proposal.id) is None:
            observe(ctx, proposal)
    return left


def collect_ended(ctx: LoopContext) -> None:
    """Ingest the runs that ended while the loop waits for an operator's review. Called between the waits for an
    answer, with the loop held at its interrupt (no node runs meanwhile): the operator, ``status`` and the web page
    see the result of a run that ended during the review, and the planner has it."""
    live = set(ctx.lanes.running())
    collect(ctx, [pid for pid in ctx.store.unobserved_runs() if pid not in live])


def collect_dispatched(ctx: LoopContext) -> None:
    """Ingest every run the store says was started and that has no observation, none running in this process: on
    resume, whatever the checkpoints know of them."""
    live = set(ctx.lanes.running())
    collect(ctx, [pid for pid in ctx.store.unobserved_dispatches() if pid not in live])


def observe(ctx: LoopContext, proposal: Proposal) -> None:
    """Turn a proposal's run into its observation and tell the planner: the documents its instrument's writer kept
    in memory, or, for a run that ended before this process started (a crash, a resume), the store's copy."""
    store = ctx.store
    stored = ctx.lanes.take_ended(proposal.id) or store.run_with_status(proposal.id)
    if stored is None:
        if not store.was_dispatched(proposal.id):
            return  # never moved
        _recover(ctx, proposal)
        stored = store.run_with_status(proposal.id)
        assert stored is not None
    documents, error, status = stored
    observation = observation_from_documents(ctx.spec, proposal, documents, error)
    if status == "interrupted":
        observation = observation.model_copy(update={"status": ObservationStatus.INTERRUPTED})
    elif status == "aborted":
        observation = observation.model_copy(
            update={"status": ObservationStatus.ABORTED, "error": error or "aborted by an operator"}
        )
    tiled = getattr(ctx.executor, "tiled", None)
    if tiled is not None and observation.run_uid:
        observation = observation.model_copy(update={"tiled": tiled.entry_url(observation.run_uid)})
    if not store.add_observation(observation):
        return
    if not observation.ok:
        store.log("failure", f"{proposal.id}: {observation.status.value}: {observation.error}")
    for name, gap in observation.missing.items() if observation.ok else ():
        store.log("missing", f"{proposal.id}: {name} missing: {gap.describe()}")
    if observation.status in (ObservationStatus.INTERRUPTED, ObservationStatus.ABORTED):
        ctx.tell_rejected(proposal)
    else:
        result = observation.as_result()
        if proposal.id in ctx.issued:
            result["_id"] = ctx.issued.pop(proposal.id)
        ctx.planner.ingest([result])
    best = ctx.tally.add(observation)
    ctx.emit("observation", observation.model_dump(mode="json"))
    if best:
        ctx.emit("best", {"proposal": proposal.id, "values": observation.values})
    ctx.on_observation(observation)


def _recover(ctx: LoopContext, proposal: Proposal) -> None:
    """Store the run of a proposal the process died during (or whose instrument stopped answering) while it may
    have been moving: the instrument may still have it (a queueserver manager that ran on), or its file hold the
    whole run; else it is recorded ``interrupted``."""
    documents, reason, recovered = recover_run(ctx.lanes, ctx.runs, proposal.id, INTERRUPTED)
    ended = ended_run(ctx.runs / f"{proposal.id}.jsonl") if recovered != "done" else None
    if ended is not None:
        documents, reason, recovered = ended, None, "done"
    ctx.store.add_run(proposal.id, documents, reason, 0.0, status=recovered)
    kind = "recovered" if recovered == "done" else "interrupted"
    ctx.store.log(
        kind, f"{proposal.id}: {reason or 'the run ended while the session was down'}", key=f"{kind}-{proposal.id}"
    )
