"""What an operator can do to a running session, in one place: the terminal, the ZeroMQ control channel and a
web page all call these, and none of them holds rules of its own.

The session process's driver waits at a checkpoint for the first answer from any of them (:meth:`next_answer`);
requests that change the loop (pause, stop, budget) take effect between runs, and an abort reaches the executor
at once. Every operation is recorded in the audit log with who asked and from where.
"""

from __future__ import annotations

import datetime
import queue
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from agent.views import action, point, units_of
from closedloop.control import (
    MAX_EXPERIMENTS,
    AddRequest,
    AnswerRequest,
    BeliefRequest,
    BudgetRequest,
    CheckpointRequest,
    LateAnswerError,
    PauseRequest,
    RefusalRequest,
    Request,
    ResumeRequest,
    StatusRequest,
    StopRequest,
)
from closedloop.errors import ClosedLoopError, RefusedError, SafetyError, SpecError
from closedloop.reach import Limits, in_force
from closedloop.records import Decision, Verdict
from instruments.safety import check_edit, check_setpoints

if TYPE_CHECKING:
    from agent.loop import Checkpoint
    from agent.session import Session


class Operations:
    """The operations on one running session (thread-safe).

    Args:
        session: the open session this process drives.
        emit: publishes an event (kind, data) to whoever watches (the control channel).
    """

    def __init__(self, session: Session, emit: Callable[[str, dict[str, Any]], object] | None = None) -> None:
        self.session = session
        self.emit = emit or (lambda kind, data: None)
        self._lock = threading.Lock()
        self._pending: Checkpoint | None = None
        self._answered: dict[str, str] = {}
        self._answers: queue.Queue[tuple[str, list[Decision]]] = queue.Queue()
        self._model = threading.Lock()  # held while the planner answers a belief request: the loop waits for it

    # the driver's side ---------------------------------------------------------------------------------------
    def holding(self, checkpoint: Checkpoint | None) -> None:
        """The driver holds at ``checkpoint`` (or runs again, with None: once no belief request uses the planner).

        The store's meta ``waiting`` records the checkpoint held and since when (:func:`agent.views.summary`); the
        same checkpoint held again (after a resume) keeps its ``since``."""
        with self._model, self._lock:
            self._pending = checkpoint
        if checkpoint is not None:
            self._record_waiting(checkpoint)
            self.emit("checkpoint", checkpoint.info)
            if checkpoint.kind == "paused":
                self.emit("paused", {"reason": checkpoint.reason})

    def _record_waiting(self, checkpoint: Checkpoint) -> None:
        """Record what is held, and since when (kept after it: status reads it only in a waiting or paused state)."""
        store = self.session.store
        held = store.meta("waiting") or {}
        since = held.get("since") if held.get("checkpoint") == checkpoint.id else None
        store.set_meta(
            waiting={
                "checkpoint": checkpoint.id,
                "kind": checkpoint.kind,
                "proposals": [p["id"] for p in checkpoint.proposals],
                "since": since or datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
            }
        )

    def next_answer(self, timeout: float | None) -> list[Decision] | None:
        """The first answer to the pending checkpoint, or None when ``timeout`` seconds pass without one."""
        while True:
            try:
                checkpoint, decisions = self._answers.get(timeout=timeout)
            except queue.Empty:
                return None
            with self._lock:
                if self._pending is not None and checkpoint == self._pending.id:
                    return decisions

    # the control channel -------------------------------------------------------------------------------------
    def recorded(self, request: Request) -> dict[str, Any]:
        """:meth:`handle`, and a request the session refuses recorded in the audit log as refused, with who, via
        and why (then raised again): what the control channel calls."""
        try:
            return self.handle(request)
        except ClosedLoopError as exc:
            self.refused(request.type, attempt(request, self._units()), request.by, request.via, str(exc))
            raise

    def refused(self, kind: str, what: str, by: str, via: str, why: str) -> None:
        """Record a refused request in the audit log (``refused``: what was asked, by whom, from where, why not)."""
        if kind in ("status", "checkpoint"):
            return
        self.session.store.log("refused", action(what, by, via, why))

    def _units(self) -> dict[str, str | None]:
        return units_of(self.session.spec)

    def handle(self, request: Request) -> dict[str, Any]:
        """Carry out one request from the control channel (called in the channel's thread; quick)."""
        by, via = request.by, request.via
        if isinstance(request, StatusRequest):
            return self.status()
        if isinstance(request, CheckpointRequest):
            return {"checkpoint": self.checkpoint(), "state": self.status()["state"]}
        if isinstance(request, AnswerRequest):
            return self.answer(request.checkpoint, self._decisions(request))
        if isinstance(request, PauseRequest):
            return self.pause(by, via)
        if isinstance(request, ResumeRequest):
            return self.resume(by, via)
        if isinstance(request, StopRequest):
            return self.stop(by, via, abort=request.abort, reason=request.reason)
        if isinstance(request, AddRequest):
            return self.add(request.points, by, via)
        if isinstance(request, BudgetRequest):
            return self.budget(request.experiments, by, via)
        if isinstance(request, BeliefRequest):
            return self.belief(request.variable)
        if isinstance(request, RefusalRequest):  # an attempt a transport refused (a wrong token): on record only
            self.refused(request.type, request.what, by, via, request.why)
            return {"recorded": True}
        raise SpecError(f"type: '{request.type}' is not a request this session serves")

    def _decisions(self, request: AnswerRequest) -> list[Decision]:
        """A channel answer as decisions: a stop, a verdict per proposal, or (none given) carry on."""

        def decision(**fields: Any) -> Decision:
            return Decision(by=request.by, via=request.via, checkpoint=request.checkpoint, **fields)

        if request.stop:
            return [decision(verdict=Verdict.STOP, reason=request.reason)]
        if not request.answers:
            return [decision(verdict=Verdict.APPROVE, reason=request.reason)]
        with self._lock:
            shown = {p["id"]: p for p in (self._pending.proposals if self._pending is not None else [])}
        decisions = []
        for answer in request.answers:
            setpoints = None
            if answer.verdict == "edit":
                # variables the edit does not name keep the proposed value
                setpoints = {**shown.get(answer.proposal_id, {}).get("setpoints", {}), **(answer.setpoints or {})}
            decisions.append(
                decision(
                    verdict=Verdict(answer.verdict),
                    proposal_ids=[answer.proposal_id],
                    setpoints=setpoints,
                    reason=answer.reason or request.reason,
                )
            )
        return decisions

    def status(self) -> dict[str, Any]:
        """The session's status from its running tally (what ``closedloop status --json`` prints)."""
        from agent.views import summary

        session = self.session
        info = summary(session.folder, session.spec, session.store, session.tally)
        with self._lock:
            pending = self._pending
        if pending is not None:
            info["state"] = "paused" if pending.kind == "paused" else "waiting"
            info["checkpoint"] = pending.id
        return info

    def belief(self, variable: str) -> dict[str, Any]:
        """The session planner's belief along ``variable`` through the best point
        (:func:`agent.views.belief_line`), asked only while the loop holds at a checkpoint (the planner is
        idle then, and its model fresh); otherwise ``{"belief": None, "why": ..., "busy": True}``.

        Raises:
            SpecError: ``variable`` is not a numeric variable of the session.
        """
        from agent.views import belief_line, numeric_variables

        session = self.session
        if variable not in numeric_variables(session.spec):
            return belief_line(session.spec, None, [], None, variable)  # (raises, naming the variable)
        with self._model:
            if self._pending is None:
                return {"belief": None, "why": "the planner is busy: asked again at the next checkpoint", "busy": True}
            observations = session.store.observations()
            return belief_line(session.spec, session.planner, observations, session.tally.best_observation, variable)

    # the operations ------------------------------------------------------------------------------------------
    def checkpoint(self) -> dict[str, Any] | None:
        """The question the session is waiting on, or None."""
        with self._lock:
            return None if self._pending is None else dict(self._pending.info)

    def answer(self, checkpoint: str, decisions: Sequence[Decision]) -> dict[str, Any]:
        """Answer a checkpoint; the first answer wins.

        Raises:
            SessionError: nothing is pending, the checkpoint is another one, or someone answered first.
            SafetyError: an edit's setpoints are outside the hard limits or further than max_step.
        """
        if not decisions:
            raise SpecError("answer: no decision given")
        with self._lock:
            pending = self._pending
            if checkpoint in self._answered:
                raise LateAnswerError(checkpoint, self._answered[checkpoint])
            if pending is None:
                raise RefusedError("the session is not waiting at a checkpoint")
            if checkpoint and checkpoint != pending.id:
                raise RefusedError(f"too late: checkpoint {checkpoint} is over; the session now waits at {pending.id}")
            ids = [p["id"] for p in pending.proposals]
            checked = [self._checked(pending, decision, ids) for decision in decisions]
            self._answered[pending.id] = checked[0].by
            self._answers.put((pending.id, checked))
        return {"checkpoint": pending.id, "accepted": [d.verdict.value for d in checked]}

    def _checked(self, pending: Checkpoint, decision: Decision, ids: list[str]) -> Decision:
        unknown = [pid for pid in decision.proposal_ids if pid not in ids]
        if unknown:
            raise SpecError(f"answer.proposal_ids: {unknown[0]} is not shown at checkpoint {pending.id}")
        if decision.verdict not in {Verdict(v) for v in pending.info.get("choices", [])}:
            raise SpecError(
                f"answer.verdict: '{decision.verdict.value}' is not a choice at a {pending.kind} checkpoint"
            )
        if decision.verdict == Verdict.EDIT:
            if len(decision.proposal_ids) != 1:
                raise SpecError("answer.proposal_ids: an edit names exactly one proposal")
            current = self.session.context.positions()
            try:
                setpoints = check_edit(self.session.spec, decision.setpoints or {}, current, self.session.executor)
            except SafetyError as exc:
                raise SafetyError(f"edit refused: {exc.args[0]}", "nothing was moved") from None
            decision = decision.model_copy(update={"setpoints": setpoints})
        return decision.model_copy(update={"checkpoint": pending.id})

    def approve_pending(self, by: str, via: str, reason: str = "") -> dict[str, Any]:
        """Approve whatever the session waits on (the resume of a pause, more points queued)."""
        with self._lock:
            pending = self._pending
        if pending is None:
            raise RefusedError("the session is not waiting at a checkpoint")
        return self.answer(pending.id, [Decision(verdict=Verdict.APPROVE, by=by, via=via, reason=reason)])

    def pause(self, by: str, via: str) -> dict[str, Any]:
        """Hold after the current run (motors stay where they are); durable across a kill."""
        self.session.context.requests.ask_pause(by)
        self.session.store.log("pause", action("pause requested: hold after the current run", by, via))
        return {"pausing": True}

    def resume(self, by: str, via: str) -> dict[str, Any]:
        """Carry on a paused session.

        Raises:
            SessionError: the session is not paused.
        """
        with self._lock:
            pending = self._pending
        requests = self.session.context.requests
        if requests.pause and (pending is None or pending.kind != "paused"):
            requests.clear_pause()  # asked to pause, not yet paused: never mind
            self.session.store.log("resume", action("pause withdrawn before it held", by, via))
            return {"resumed": True}
        if pending is None or pending.kind != "paused":
            raise RefusedError("the session is running, not paused")
        self.session.store.log("resume", action("carry on after the pause", by, via))
        self.answer(pending.id, [Decision(verdict=Verdict.APPROVE, by=by, via=via, reason="resume")])
        return {"resumed": True}

    def stop(self, by: str, via: str, abort: bool = False, reason: str = "") -> dict[str, Any]:
        """End the session after the current run; with ``abort``, abort the run in progress now."""
        self.session.context.requests.ask_stop(reason or f"stopped by {by}")
        what = "abort the current run now" if abort else "stop after the current run"
        self.session.store.log("stop", action(what, by, via, reason))
        if abort:
            self.session.lanes.abort(f"aborted by {by}: {reason}" if reason else f"aborted by {by}")
        with self._lock:
            pending = self._pending
        if pending is not None and pending.id not in self._answered:
            self.answer(pending.id, [Decision(verdict=Verdict.STOP, by=by, via=via, reason=reason)])
        return {"stopping": True, "abort": abort}

    def add(self, points: Sequence[Mapping[str, Any]], by: str, via: str) -> dict[str, Any]:
        """Queue points (checked against the limits first: one bad point and none is queued).

        Raises:
            SafetyError: a point is outside the limits or not an allowed value; the message names it.
        """
        checked = check_points(self.session.spec, points, in_force(self.session.context.reach))
        store = self.session.store
        store.queue_points(checked, by=by)
        store.log(
            "queue",
            action(
                f"{len(checked)} point(s) queued: " + "; ".join(point(p, self._units(), ", ") for p in checked), by, via
            ),
        )
        with self._lock:
            pending = self._pending
        if pending is not None and pending.kind == "points":
            self.answer(pending.id, [Decision(verdict=Verdict.APPROVE, by=by, via=via, reason="points queued")])
        return {"queued": checked, "waiting": store.count_queued()}

    def budget(self, experiments: int, by: str, via: str) -> dict[str, Any]:
        """Change the number of successful experiments the session runs to.

        Raises:
            SpecError: ``experiments`` is below 1 or over :data:`~closedloop.control.MAX_EXPERIMENTS`.
        """
        if not 1 <= experiments <= MAX_EXPERIMENTS:
            raise SpecError(f"budget.experiments: {experiments} must be from 1 to {MAX_EXPERIMENTS}")
        store = self.session.store
        old = store.meta("budget", self.session.spec.budget.experiments)
        store.set_meta(budget=experiments)
        store.log("budget", action(f"budget {old} -> {experiments} experiments", by, via))
        return {"budget": experiments, "was": old}


def check_points(
    spec: Any, points: Sequence[Mapping[str, Any]], limits: Mapping[str, Limits] | None = None
) -> list[dict[str, Any]]:
    """Check operator points against the session's limits (and, given ``limits``, the limits in force with the
    devices' own); one bad point and none is accepted.

    Raises:
        SpecError: a point is not a mapping. SafetyError: a value is outside the limits (the message names it).
    """
    if not points:
        raise SpecError("points: none given")
    checked = []
    for i, entry in enumerate(points):
        if not isinstance(entry, Mapping):
            raise SpecError(f"point {i + 1}: must be NAME: VALUE pairs, got {type(entry).__name__}")
        try:
            checked.append(check_setpoints(spec, entry, limits=limits))
        except SafetyError as exc:
            message = exc.args[0]  # without the gate's own hint: nothing moves when a point is queued
            raise SafetyError(
                f"point {i + 1}: {message}" if len(points) > 1 else message, "no point was queued"
            ) from None
    return checked


def attempt(request: Request, units: Mapping[str, str | None] | None = None) -> str:
    """What a request asked, in a few words, for the audit log of a refused one."""
    if isinstance(request, AnswerRequest):
        if request.stop:
            return f"stop at {request.checkpoint}"
        verdicts = [
            f"{a.verdict} {a.proposal_id}" + (f" to {point(a.setpoints, units, ', ')}" if a.setpoints else "")
            for a in request.answers
        ]
        return f"answer {request.checkpoint}: " + ("; ".join(verdicts) or "carry on")
    if isinstance(request, BudgetRequest):
        return f"budget {request.experiments} experiments"
    if isinstance(request, AddRequest):
        return f"{len(request.points)} point(s): " + "; ".join(point(p, units, ", ") for p in request.points)
    if isinstance(request, StopRequest):
        return "abort the current run" if request.abort else "stop after the current run"
    return str(request.type)
