"""The loop as a LangGraph graph: propose -> review -> dispatch -> ingest -> decide.

Graph state holds small things only (the iteration, the ids of the current proposals, the last verdict); the
proposals, documents and observations live in the :class:`~agent.store.SessionStore`. Every node is safe to
re-run after a crash: it looks in the store before doing anything twice, and a node that asks an operator
(``interrupt()``) does nothing with side effects before asking, but for the review's question, written to the audit
log once (keyed by its checkpoint): when the node runs again, on the answer or after a kill, it asks for the same
reason, whatever the runs that ended while it waited (ingested meanwhile, :meth:`Session.collect_ended
<agent.session.Session.collect_ended>`) would make the review policy say now.

At most once on the hardware: dispatch stores the intent to run a proposal before anything moves. A proposal
whose intent is stored but whose run is not is one the process died during; it is never run again by itself but
recorded as ``interrupted`` with whatever documents reached its ``runs/<id>.jsonl``.
"""

from __future__ import annotations

import json
import math
from typing import Any, TypedDict

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import END, START, StateGraph
from langgraph.types import interrupt

from agent.loop.context import LoopContext, proposal_setpoints
from agent.loop.rebuild import HIGH_WATER, SeenPoints, ended_run
from agent.loop.recovery import recover_run
from agent.loop.review import checkpoint_id, checkpoint_info, policy_asks, read_answer, shown_predictions
from agent.provenance.lineage import note_proposals, record_predictions
from agent.store import RunFile
from closedloop.errors import PlannerError, PointsExhaustedError, SafetyError
from closedloop.records import (
    Decision,
    ObservationStatus,
    Proposal,
    ProposalStatus,
    Verdict,
)
from instruments.ingest import observation_from_documents
from instruments.safety import check_edit, gate
from planners import Explains, KnowsPosition, LimitsInFlight
from planners.foreign import makes_one_at_a_time

INTERRUPTED = "interrupted: the session process ended while this run may have been moving; not run again by itself"
PLANNER_ATTEMPTS = 3
ANSWERED_ROUNDS = 50


class LoopState(TypedDict, total=False):
    """What the graph checkpoints: small values only."""

    iteration: int
    proposal_ids: list[str]
    verdict: str
    outcome: str
    in_flight: list[str]
    held: list[str]
    observed: int


def build_graph(ctx: LoopContext, checkpointer: BaseCheckpointSaver) -> Any:
    """Compile the loop graph over ``ctx`` with ``checkpointer`` persisting its state."""
    spec, store = ctx.spec, ctx.store
    # a point proposed before in this session is never proposed again, but for an operator's (queued, edited, or
    # listed for the manual planner: a list may name a reference point twice on purpose), and a re-measurement a
    # generator that makes one point at a time asks for (see SeenPoints)
    one_at_a_time = bool(getattr(ctx.planner, "one_at_a_time", False)) or makes_one_at_a_time(ctx.planner)
    seen = SeenPoints(spec, store, allow_repeats=spec.planner.name == "manual", remeasure=one_at_a_time)

    def planner_why(point: Any, planner_id: Any) -> str:
        """Why the planner proposed ``point`` (initial design, model, ...), for the operator; ``planner`` when it
        does not say (:class:`~planners.Explains`, or a ``_why`` in the point)."""
        if isinstance(ctx.planner, Explains) and isinstance(planner_id, int):
            reason = ctx.planner.why(planner_id)
            if reason:
                return reason
        return str(point.get("_why", "planner")) if isinstance(point, dict) else "planner"

    def remaining() -> int:
        return ctx.budget() - store.count_observations(ObservationStatus.OK)

    def hold(kind: str, iteration: int, reason: str, proposals: list[Proposal] | None = None) -> Decision:
        """Ask an operator (a LangGraph interrupt, durable across kills) and return the first decision."""
        shown = proposals or []
        info = checkpoint_info(
            spec, kind, iteration, shown, ctx.positions(), ctx.predictions(shown), ctx.tally, reason, reach=ctx.reach
        )
        return read_answer(interrupt(info), [p.id for p in shown] or [""], info["checkpoint"])[0]

    def planner_proposals(iteration: int, count: int) -> list[Proposal]:
        if isinstance(ctx.planner, KnowsPosition):
            where = ctx.planner_position()
            if where:
                ctx.planner.set_position(where)
        attempts, answered = 0, 0
        while attempts < PLANNER_ATTEMPTS:
            proposals, batch, told = [], {}, False
            for point in ctx.planner.suggest(count):
                planner_id = point.get("_id") if isinstance(point, dict) else None
                try:
                    setpoints = proposal_setpoints(spec, point)
                    seen.check(setpoints, batch)
                except PlannerError as exc:
                    # refused before it is stored: logged, and told to the planner as a failed point (a repeat of a
                    # point measured already: as that measurement, and nothing moves for it again)
                    measured = seen.measured(exc)
                    store.log("refused", f"iteration {iteration}: {exc}{'; told its result' if measured else ''}")
                    bad = {k: v for k, v in point.items() if k != "_id"} if isinstance(point, dict) else {}
                    bad.update(measured or {name: math.nan for name in spec.outputs})
                    told = told or measured is not None
                    if planner_id is not None:
                        bad["_id"] = planner_id
                    ctx.planner.ingest([bad])
                    continue
                why = planner_why(point, planner_id)
                proposal = Proposal(
                    iteration=iteration,
                    setpoints=setpoints,
                    planner_id=int(planner_id) if planner_id is not None else None,
                    why=why,
                )
                if planner_id is not None:
                    ctx.issued[proposal.id] = int(planner_id)
                proposals.append(proposal)
            if proposals:
                return proposals
            # a round whose points were all answered from the store is not a failed attempt (a simplex method may
            # ask for points it had measured several times over), up to a limit
            answered += told
            attempts += 1 if not told or answered > ANSWERED_ROUNDS else 0
        raise PlannerError(f"the planner gave no usable point in {PLANNER_ATTEMPTS} attempts")

    def planner_room() -> int | None:
        """How many points the planner can give now (None: no limit); see ``LimitsInFlight``."""
        return ctx.planner.room if isinstance(ctx.planner, LimitsInFlight) else None

    def proposals_wanted(in_flight: int) -> int:
        """How many to propose: enough for every free instrument (a batch each), and, pipelining, one more to
        start the moment an instrument is free; never more than the budget left after the runs in flight."""
        per_round = len(ctx.lanes.usable() or ctx.lanes.lanes) * max(1, spec.planner.batch_size)
        room = per_round if in_flight == 0 else per_round + (1 if spec.pipeline else 0) - in_flight
        return min(room, remaining() - in_flight)

    def propose(state: LoopState) -> LoopState:
        iteration = state.get("iteration", 0)
        waiting = [
            p
            for p in store.proposals(iteration=iteration)
            if p.status in (ProposalStatus.PROPOSED, ProposalStatus.APPROVED)
        ]
        if waiting:
            return {"iteration": iteration, "proposal_ids": [p.id for p in waiting]}
        count = proposals_wanted(len(state.get("in_flight", [])))
        if count <= 0:
            return {"iteration": iteration, "proposal_ids": []}  # the budget is in flight: wait for the runs
        # points an operator queued go first, then the planner's own
        queued = store.queued_points(limit=count)
        waiting = [Proposal(iteration=iteration, setpoints=p, origin="operator", why="operator") for _, p in queued]
        room = planner_room()
        if not waiting and room == 0 and state.get("in_flight"):
            return {"iteration": iteration, "proposal_ids": []}  # it wants a result first: wait for a run to end
        if len(waiting) < count and (room != 0 or not waiting):
            try:
                if room == 0:
                    raise PlannerError("the planner waits for the result of a point that is no longer in flight")
                wanted = count - len(waiting) if room is None else min(room, count - len(waiting))
                waiting += planner_proposals(iteration, wanted)
            except PointsExhaustedError as exc:
                if not waiting:
                    # hold until an operator queues points (closedloop add) and says go on, or says stop
                    answer = hold("points", iteration, str(exc))
                    store.log("decision", f"{answer.verdict.value} while waiting for points, by {answer.by}")
                    return {"iteration": iteration, "proposal_ids": [], "verdict": answer.verdict.value}
            except Exception as exc:  # the planner failed: the session holds for an operator, it does not die
                if not waiting:
                    reason = f"the planner failed: {type(exc).__name__}: {exc}"
                    ctx.emit("failure", {"iteration": iteration, "reason": reason})
                    answer = hold("failures", iteration, reason)
                    store.log("decision", f"{answer.verdict.value} after a planner failure, by {answer.by}")
                    return {"iteration": iteration, "proposal_ids": [], "verdict": answer.verdict.value}
        store.add_proposals(waiting, taken={seq: p.id for (seq, _), p in zip(queued, waiting, strict=False)})
        note_proposals(ctx, waiting)
        from_queue = f", {len(queued)} queued by an operator" if queued else ""
        store.log("propose", f"iteration {iteration}: {len(waiting)} proposal(s){from_queue}")
        for proposal in waiting:
            ctx.emit("proposal", proposal.model_dump(mode="json"))
        return {"iteration": iteration, "proposal_ids": [p.id for p in waiting]}

    def review(state: LoopState) -> LoopState:
        iteration, ids = state["iteration"], state["proposal_ids"]
        proposals = store.proposals(ids=ids)
        current = ctx.positions()
        key = checkpoint_id("review", iteration, proposals)
        question = store.logged(f"question-{key}")
        if question is not None:
            # asked before: this node runs again on its answer, or after a kill. It asks the same question (runs that
            # ended while it waited were ingested meanwhile, and may change what the policy or the model says now),
            # and refits no model for it
            asked = json.loads(question)
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
        return apply_decisions(iteration, proposals, decisions, current)

    def apply_decisions(
        iteration: int, proposals: list[Proposal], decisions: list[Decision], current: dict[str, Any]
    ) -> LoopState:
        by_id = {p.id: p for p in proposals}
        released: list[str] = []
        verdict = Verdict.REJECT.value
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
                edited = edited_proposal(proposal, decision, current)
                if edited is not None:
                    released.append(edited.id)
            elif store.proposals(ids=[pid])[0].status != ProposalStatus.REJECTED:
                store.set_status([pid], ProposalStatus.REJECTED)
                ctx.tell_rejected(proposal)
        if released:
            verdict = Verdict.APPROVE.value
        return {"verdict": verdict, "proposal_ids": released}

    def edited_proposal(proposal: Proposal, decision: Decision, current: dict[str, Any]) -> Proposal | None:
        """The operator's setpoints as a new proposal (checked again); the planner's own point is rejected."""
        try:
            setpoints = check_edit(spec, decision.setpoints or {}, current, ctx.executor)
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

    def dispatch(state: LoopState) -> LoopState:
        in_flight = list(state.get("in_flight", []))
        held: list[str] = []
        for proposal in store.proposals(ids=state["proposal_ids"]):
            if store.has_run(proposal.id) or store.observation(proposal.id) is not None:
                continue  # already ran: never move twice for one proposal
            if store.was_dispatched(proposal.id):
                # the process died while this run may have been moving: ingest records what its documents show
                in_flight.append(proposal.id)
                continue
            if ctx.requests.stop:
                continue  # an operator asked to stop: nothing more moves
            # with every instrument busy, wait for one: the next run starts the moment the last one ends
            lane = ctx.lanes.wait_free() if not store.meta("pause_requested", False) else None
            if ctx.requests.stop:
                continue
            if lane is None or store.meta("pause_requested", False):
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
            md: dict[str, Any] = {"decision_ids": decision_ids(proposal.id)}
            if len(ctx.lanes) > 1:
                md["instrument"] = lane.name
            ctx.lanes.start(lane, checked, md, sink)
            in_flight.append(proposal.id)
        return {"in_flight": in_flight, "held": held}

    def decision_ids(proposal_id: str) -> list[str]:
        """The decisions that released a proposal's run (an edit's: those on the proposal it edited)."""
        return [d.id for _, d in store.decisions_for(proposal_id.removesuffix("-edit"))]

    def ready_for_more(running: int, in_flight: int) -> bool:
        """Whether the loop may go on to propose: nothing runs, or (pipelining) an instrument will want one and the
        planner can give one (one that wants a result first waits for a run to end)."""
        usable = len(ctx.lanes.usable())
        if running == 0 or not usable:
            return True
        if planner_room() == 0 and running >= in_flight:
            return False
        capacity = usable * max(1, spec.planner.batch_size) + 1
        return spec.pipeline and running < capacity and remaining() - running > 0

    def ingest(state: LoopState) -> LoopState:
        in_flight = state.get("in_flight", [])
        if in_flight:
            # a planner that makes one point at a time holds any idle instrument until a run ends: say so in status
            planner_waits = planner_room() == 0
            if planner_waits:
                store.set_meta(planner_waits=True)
            try:
                ctx.lanes.wait(lambda: ready_for_more(len(ctx.lanes.running()), len(in_flight)))
            finally:
                if planner_waits:
                    store.set_meta(planner_waits=False)
        left = collect(in_flight)
        if not ctx.lanes.usable():  # every instrument stopped answering: end, resumable
            raise ctx.lanes.gone()
        # a high-water mark beside the store: a store older than the checkpoints is refused on resume
        return {"in_flight": left, HIGH_WATER: store.count_observations()}

    def collect(in_flight: list[str]) -> list[str]:
        """Ingest every run of ``in_flight`` that is over; returns those still running."""
        live = set(ctx.lanes.running())
        left = []
        for proposal in store.proposals(ids=in_flight):
            if proposal.id in live:
                left.append(proposal.id)
            elif store.observation(proposal.id) is None:
                observe(proposal)
        return left

    def collect_ended() -> None:
        """Ingest the runs that ended while the loop waits for an operator's review. Called between the waits for
        an answer, with the loop held at its interrupt (no node runs meanwhile): the operator, ``status`` and the
        web page see the result of a run that ended during the review, and the planner has it."""
        live = set(ctx.lanes.running())
        collect([pid for pid in store.unobserved_runs() if pid not in live])

    def collect_dispatched() -> None:
        """Ingest every run the store says was started and that has no observation, none running in this process:
        on resume, whatever the checkpoints know of them."""
        live = set(ctx.lanes.running())
        collect([pid for pid in store.unobserved_dispatches() if pid not in live])

    ctx.collect_ended = collect_ended
    ctx.collect_dispatched = collect_dispatched

    def observe(proposal: Proposal) -> None:
        """Turn a proposal's stored run into its observation and tell the planner."""
        stored = store.run_with_status(proposal.id)
        if stored is None:
            if not store.was_dispatched(proposal.id):
                return  # never moved
            # the process died (or its instrument stopped answering) while this run may have been moving: the
            # instrument may still have it (a queueserver manager that ran on), or its file hold the whole run
            documents, reason, recovered = recover_run(ctx.lanes, ctx.runs, proposal.id, INTERRUPTED)
            ended = ended_run(ctx.runs / f"{proposal.id}.jsonl") if recovered != "done" else None
            if ended is not None:
                documents, reason, recovered = ended, None, "done"
            store.add_run(proposal.id, documents, reason, 0.0, status=recovered)
            kind = "recovered" if recovered == "done" else "interrupted"
            store.log(
                kind,
                f"{proposal.id}: {reason or 'the run ended while the session was down'}",
                key=f"{kind}-{proposal.id}",
            )
            stored = store.run_with_status(proposal.id)
            assert stored is not None
        documents, error, status = stored
        observation = observation_from_documents(spec, proposal, documents, error)
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

    def consecutive_failures() -> int:
        policy = spec.failures
        since = int(store.meta("failures_acknowledged", 0))
        recent = store.recent_statuses(min(policy.max_consecutive, store.count_observations() - since))
        run = 0
        for status in recent:
            if status != ObservationStatus.FAILED.value:
                break
            run += 1
        return run

    def decide(state: LoopState) -> LoopState:
        iteration = state.get("iteration", 0)
        in_flight = state.get("in_flight", [])
        stopping = state.get("verdict") == Verdict.STOP.value or ctx.requests.stop
        if in_flight and (
            stopping
            or remaining() <= 0
            or consecutive_failures() >= spec.failures.max_consecutive
            or store.meta("pause_requested", False)
        ):
            # the session ends or holds for an operator: the runs in flight finish and are ingested first
            ctx.lanes.wait_idle()
            in_flight = collect(in_flight)
        if stopping:
            return {"outcome": "stopped", "in_flight": in_flight}
        if remaining() <= 0:
            return {"outcome": "finished", "in_flight": in_flight}
        failures = consecutive_failures()
        if failures >= spec.failures.max_consecutive:
            reason = f"{failures} failed runs in a row (failures.max_consecutive: {spec.failures.max_consecutive})"
            ctx.emit("failure", {"iteration": iteration, "reason": reason})
            if spec.failures.then == "stop":
                store.log("failure", f"stopping: {reason}", key=f"failure-stop-{iteration}")
                return {"outcome": "stopped", "in_flight": in_flight}
            answer = hold("failures", iteration, reason)
            store.set_meta(failures_acknowledged=store.count_observations())
            store.log("decision", f"{answer.verdict.value} after {reason}, by {answer.by}", key=f"fail-{iteration}")
            if answer.verdict == Verdict.STOP:
                return {"outcome": "stopped", "in_flight": in_flight}
        if store.meta("pause_requested", False):
            answer = hold("paused", iteration, f"paused by {store.meta('pause_requested')}")
            store.set_meta(pause_requested=False)
            store.log("resume", f"{answer.verdict.value} after a pause, by {answer.by}", key=f"pause-{iteration}")
            ctx.emit("resumed", {"by": answer.by})
            if answer.verdict == Verdict.STOP:
                return {"outcome": "stopped", "in_flight": in_flight}
        # proposals approved but held by a pause go to dispatch; otherwise the planner proposes
        held = state.get("held", [])
        return {"iteration": iteration + 1, "proposal_ids": held, "held": [], "verdict": "", "in_flight": in_flight}

    def after_propose(state: LoopState) -> str:
        if state.get("proposal_ids"):
            return "review"
        # no proposal: the operator was asked for points (stop, or look for them again), or the budget left is in
        # flight (ingest waits for those runs)
        if state.get("verdict") == Verdict.STOP.value:
            return "decide"
        return "ingest" if state.get("in_flight") else "propose"

    def after_review(state: LoopState) -> str:
        return "dispatch" if state.get("verdict") == Verdict.APPROVE.value else "decide"

    def after_decide(state: LoopState) -> str:
        if state.get("outcome"):
            return END
        return "dispatch" if state.get("proposal_ids") else "propose"

    builder = StateGraph(LoopState)
    builder.add_node("propose", propose)
    builder.add_node("review", review)
    builder.add_node("dispatch", dispatch)
    builder.add_node("ingest", ingest)
    builder.add_node("decide", decide)
    builder.add_edge(START, "propose")
    builder.add_conditional_edges("propose", after_propose, ["review", "decide", "propose", "ingest"])
    builder.add_conditional_edges("review", after_review, ["dispatch", "decide"])
    builder.add_edge("dispatch", "ingest")
    builder.add_edge("ingest", "decide")
    builder.add_conditional_edges("decide", after_decide, ["propose", "dispatch", END])
    return builder.compile(checkpointer=checkpointer)
