"""How much the loop asks for and when it may ask again: the pipelining capacity policy, in one place.

With ``pipeline: true`` the loop keeps every usable instrument busy (a batch each) and one proposal more ready to
start the moment an instrument is free; without it, it proposes, runs and ingests in turn. Never more than the
budget left after the runs in flight. A planner that limits what it has out (:class:`~planners.LimitsInFlight`,
``room == 0``) makes the loop wait for a run to end first.
"""

from __future__ import annotations

from agent.loop.context import LoopContext
from closedloop.records import ObservationStatus
from planners import LimitsInFlight


def remaining(ctx: LoopContext) -> int:
    """Successful experiments still to run under the budget in force."""
    return ctx.budget() - ctx.store.count_observations(ObservationStatus.OK)


def planner_room(ctx: LoopContext) -> int | None:
    """How many points the planner can give now (None: no limit); see ``LimitsInFlight``."""
    return ctx.planner.room if isinstance(ctx.planner, LimitsInFlight) else None


def proposals_wanted(ctx: LoopContext, in_flight: int) -> int:
    """How many to propose: enough for every free instrument (a batch each), and, pipelining, one more to start
    the moment an instrument is free; never more than the budget left after the runs in flight."""
    spec = ctx.spec
    per_round = len(ctx.lanes.usable() or ctx.lanes.lanes) * max(1, spec.planner.batch_size)
    room = per_round if in_flight == 0 else per_round + (1 if spec.pipeline else 0) - in_flight
    return min(room, remaining(ctx) - in_flight)


def ready_for_more(ctx: LoopContext, running: int, in_flight: int) -> bool:
    """Whether the loop may go on to propose: nothing runs, or (pipelining) an instrument will want one and the
    planner can give one (one that wants a result first waits for a run to end)."""
    usable = len(ctx.lanes.usable())
    if running == 0 or not usable:
        return True
    if planner_room(ctx) == 0 and running >= in_flight:
        return False
    capacity = usable * max(1, ctx.spec.planner.batch_size) + 1
    return ctx.spec.pipeline and running < capacity and remaining(ctx) - running > 0
