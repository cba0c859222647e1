"""The ``decide`` node: end the loop (budget spent, stop asked, too many failures) or hold it, or go on.

When the session ends or holds for an operator, the runs in flight finish and are ingested first. Too many failed
runs in a row stop the session or hold it for an operator (``failures.then``); a pause request holds it at a
checkpoint until an operator resumes or stops it. Proposals approved but held back by a pause go to ``dispatch``
next; otherwise the planner proposes.
"""

from __future__ import annotations

from langgraph.graph import END
from langgraph.runtime import Runtime

from agent.loop.capacity import remaining
from agent.loop.context import LoopContext
from agent.loop.nodes.ingest import collect
from agent.loop.review import hold
from agent.loop.state import LoopState
from closedloop.records import ObservationStatus, Verdict


def decide(state: LoopState, runtime: Runtime[LoopContext]) -> LoopState:
    """The loop's outcome, or the next iteration."""
    ctx = runtime.context
    spec, store = ctx.spec, ctx.store
    iteration = state.get("iteration", 0)
    in_flight = state.get("in_flight", [])
    stopping = state.get("verdict") == Verdict.STOP.value or ctx.requests.stop
    if in_flight and (
        stopping
        or remaining(ctx) <= 0
        or consecutive_failures(ctx) >= spec.failures.max_consecutive
        or ctx.requests.pause
    ):
        # the session ends or holds for an operator: the runs in flight finish and are ingested first
        ctx.lanes.wait_idle()
        in_flight = collect(ctx, in_flight)
    if stopping:
        return {"outcome": "stopped", "in_flight": in_flight}
    if remaining(ctx) <= 0:
        return {"outcome": "finished", "in_flight": in_flight}
    failures = consecutive_failures(ctx)
    if failures >= spec.failures.max_consecutive:
        reason = f"{failures} failed runs in a row (failures.max_consecutive: {spec.failures.max_consecutive})"
        ctx.emit("failure", {"iteration": iteration, "reason": reason})
        if spec.failures.then == "stop":
            store.log("failure", f"stopping: {reason}", key=f"failure-stop-{iteration}")
            return {"outcome": "stopped", "in_flight": in_flight}
        answer = hold(ctx, "failures", iteration, reason)
        store.set_meta(failures_acknowledged=store.count_observations())
        store.log("decision", f"{answer.verdict.value} after {reason}, by {answer.by}", key=f"fail-{iteration}")
        if answer.verdict == Verdict.STOP:
            return {"outcome": "stopped", "in_flight": in_flight}
    if ctx.requests.pause:
        answer = hold(ctx, "paused", iteration, f"paused by {ctx.requests.pause}")
        ctx.requests.clear_pause()
        store.log("resume", f"{answer.verdict.value} after a pause, by {answer.by}", key=f"pause-{iteration}")
        ctx.emit("resumed", {"by": answer.by})
        if answer.verdict == Verdict.STOP:
            return {"outcome": "stopped", "in_flight": in_flight}
    # proposals approved but held by a pause go to dispatch; otherwise the planner proposes
    held = state.get("held", [])
    return {"iteration": iteration + 1, "proposal_ids": held, "held": [], "verdict": "", "in_flight": in_flight}


def after_decide(state: LoopState) -> str:
    """``END`` once there is an outcome; else ``dispatch`` held proposals, or ``propose``."""
    if state.get("outcome"):
        return END
    return "dispatch" if state.get("proposal_ids") else "propose"


def consecutive_failures(ctx: LoopContext) -> int:
    """Failed runs in a row at the end of the store, since an operator last acknowledged failures."""
    store = ctx.store
    since = int(store.meta("failures_acknowledged", 0))
    recent = store.recent_statuses(min(ctx.spec.failures.max_consecutive, store.count_observations() - since))
    run = 0
    for status in recent:
        if status != ObservationStatus.FAILED.value:
            break
        run += 1
    return run
