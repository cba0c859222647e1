"""Review checkpoints: when the policy asks an operator, what the operator is shown (a :class:`Checkpoint`), and how
answers are read.

The question is built from the store and the session's running tally, never from graph state, so a session killed
at a checkpoint asks the same question after resume. Answers come as one :class:`~closedloop.records.Decision`
for the whole batch or one per proposal.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from langgraph.types import interrupt

from agent.views import Tally
from closedloop.records import Decision, Proposal, Verdict
from closedloop.spec import ReviewPolicy, SessionSpec

if TYPE_CHECKING:
    from agent.loop.context import LoopContext


@dataclass
class Checkpoint:
    """The loop is holding for a human: what it shows them (see :func:`checkpoint_info`).

    Attributes:
        info: the question, JSON-ready: its ``checkpoint`` id, ``kind`` (``review``, ``points``, ``paused``,
            ``failures``), ``iteration``, ``reason``, ``proposals`` with predictions, the variables' limits, the
            last and best values.
    """

    info: dict[str, Any]

    @property
    def kind(self) -> str:
        """``review``, ``points``, ``paused`` or ``failures``."""
        return str(self.info["kind"])

    @property
    def id(self) -> str:
        """The checkpoint's id (a late answer to an earlier one is recognised by it)."""
        return str(self.info["checkpoint"])

    @property
    def iteration(self) -> int:
        """The loop iteration it holds in."""
        return int(self.info["iteration"])

    @property
    def proposals(self) -> list[dict[str, Any]]:
        """The proposals to review (empty unless ``kind`` is ``review``)."""
        return list(self.info["proposals"])

    @property
    def reason(self) -> str:
        """Why the loop holds."""
        return str(self.info.get("reason", ""))


def checkpoint_id(kind: str, iteration: int, proposals: Sequence[Proposal] = ()) -> str:
    """A checkpoint's id: the same question always has the same id, so a late second answer is recognised."""
    tail = f"-{proposals[0].id}" if proposals else ""
    return f"{kind}-{iteration}{tail}"


def _move(current: Mapping[str, Any], name: str, value: Any) -> float | None:
    here = current.get(name)
    if isinstance(here, int | float) and isinstance(value, int | float) and not isinstance(value, bool):
        return abs(float(value) - float(here))
    return None


def policy_asks(
    spec: SessionSpec,
    iteration: int,
    proposals: Sequence[Proposal],
    current: Mapping[str, Any],
    predictions: Sequence[Mapping[str, Any] | None],
    last_failed: bool,
    asked_so_far: int,
) -> str | None:
    """Why the review policy holds these proposals for an operator, or None when it lets them run.

    Args:
        spec: the session spec (its ``review`` section).
        iteration: the loop iteration (``every`` counts these from 0).
        proposals: the proposals to review.
        current: where each variable's device is now (for ``risky.step``).
        predictions: per proposal, objective -> ``{"mean", "std"}`` (None when the planner does not predict).
        last_failed: the previous run failed (for ``after_failure``).
        asked_so_far: proposals made before these (for ``first``).
    """
    review = spec.review
    if review.policy == ReviewPolicy.ALWAYS:
        return "policy: always"
    if review.policy == ReviewPolicy.NEVER:
        return None
    if review.first is not None and asked_so_far < review.first:
        return f"one of the first {review.first} proposals"
    if review.every is not None and iteration % review.every == 0:
        return f"every {review.every} iterations"
    if review.after_failure and last_failed:
        return "the last run failed"
    risky = review.risky
    if risky is None:
        return None
    for proposal, prediction in zip(proposals, predictions, strict=True):
        for name, value in proposal.setpoints.items():
            variable = spec.variables.get(name)
            if variable is None or variable.categorical:
                continue
            move = _move(current, name, value)
            if risky.step is not None and move is not None and move > risky.step:
                return f"{name} moves {move:.4g} (more than {risky.step:g})"
            low, high = variable.limits
            if risky.margin is not None and min(float(value) - low, high - float(value)) < risky.margin:
                return f"{name}={float(value):.4g} is within {risky.margin:g} of a hard limit"
        for objective, guess in (prediction or {}).items():
            std = guess.get("std") if isinstance(guess, Mapping) else None
            if risky.std is not None and isinstance(std, float) and std > risky.std:
                return f"predicted {objective} std {std:.4g} (more than {risky.std:g})"
    return None


def checkpoint_info(
    spec: SessionSpec,
    kind: str,
    iteration: int,
    proposals: Sequence[Proposal],
    current: Mapping[str, Any],
    predictions: Sequence[Mapping[str, Any] | None],
    tally: Tally,
    reason: str = "",
    predicts: bool = False,
    reach: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """What an operator is shown at a checkpoint (JSON-ready; the same at the terminal and through the channel).

    ``predicts`` says the planner has a model that predicts: its points without a prediction yet are its initial
    design, those with one the model's choice. ``reach`` is :func:`closedloop.reach.reach_summary`'s, for the devices'
    own limits.
    """
    shown = []
    for proposal, prediction in zip(proposals, predictions, strict=True):
        guess: dict[str, Any] = {}
        acquisition = (prediction or {}).get("acquisition")
        for objective, value in (prediction or {}).items():
            if isinstance(value, Mapping) and "mean" in value:
                guess[objective] = {"mean": float(value["mean"]), "std": float(value.get("std", 0.0))}
                acquisition = value.get("acquisition", acquisition)
        shown.append(
            {
                "id": proposal.id,
                "setpoints": dict(proposal.setpoints),
                "origin": proposal.origin,
                "why": _why(proposal, bool(guess), predicts),
                "current": {name: current.get(name) for name in spec.variables},
                "prediction": guess or None,
                "acquisition": acquisition if isinstance(acquisition, float) else None,
            }
        )
    choices = {
        "review": [v.value for v in Verdict],
        "points": [Verdict.APPROVE.value, Verdict.STOP.value],
    }.get(kind, [Verdict.APPROVE.value, Verdict.STOP.value])
    return {
        "checkpoint": checkpoint_id(kind, iteration, proposals),
        "kind": kind,
        "iteration": iteration,
        "reason": reason,
        "proposals": shown,
        **variables_info(spec, reach),
        "last": tally.last,
        "best": tally.best,
        "choices": choices,
    }


def shown_predictions(shown: Sequence[Mapping[str, Any]]) -> list[dict[str, Any] | None]:
    """The predictions, as :func:`checkpoint_info` takes them, of the proposals it showed (a stored question's)."""
    out: list[dict[str, Any] | None] = []
    for proposal in shown:
        guess: dict[str, Any] = dict(proposal.get("prediction") or {})
        if proposal.get("acquisition") is not None:
            guess["acquisition"] = proposal["acquisition"]
        out.append(guess or None)
    return out


def variables_info(spec: SessionSpec, reach: Mapping[str, Mapping[str, Any]] | None = None) -> dict[str, Any]:
    """What an operator needs to judge a point: each variable's units, search range, allowed values, hard limits,
    largest step and its device's own limits (from ``reach``, :func:`closedloop.reach.reach_summary`'s) (``variables``),
    and each objective's direction (``objectives``); JSON-ready."""
    return {
        "variables": {
            name: {
                "units": v.units,
                "bounds": list(v.bounds) if v.bounds is not None else None,
                "values": list(v.values) if v.values is not None else None,
                "hard_limits": list(v.limits) if not v.categorical else None,
                "max_step": v.max_step,
                "device_limits": (reach or {}).get(name, {}).get("device_limits"),
            }
            for name, v in spec.variables.items()
        },
        "objectives": {name: o.direction.value for name, o in spec.objectives.items()},
    }


def _why(proposal: Proposal, predicted: bool, predicts: bool) -> str:
    if proposal.why and proposal.why != "planner":
        return proposal.why  # an operator's point or edit, or what the planner said
    if predicted:
        return "model"
    return "initial design" if predicts else "planner"


def read_answer(answer: Any, ids: Sequence[str], checkpoint: str) -> list[Decision]:
    """The decisions in a checkpoint's answer, one per proposal, in the order shown.

    The answer is a decision (JSON) for the whole batch, or ``{"decisions": [...]}`` with one per proposal; a
    decision without proposal ids covers every proposal no other decision names. A stop anywhere stops them all.
    """
    raw = answer["decisions"] if isinstance(answer, dict) and "decisions" in answer else [answer]
    decisions = [Decision.model_validate(item) for item in raw]
    stop = next((d for d in decisions if d.verdict == Verdict.STOP), None)
    if stop is not None:
        return [stop.model_copy(update={"proposal_ids": list(ids), "checkpoint": checkpoint})]
    named = {pid: d for d in decisions for pid in d.proposal_ids if pid in ids}
    default = next((d for d in decisions if not d.proposal_ids), None)
    out = []
    for pid in ids:
        decision = named.get(pid) or default
        if decision is None:
            decision = Decision(verdict=Verdict.REJECT, by="closedloop", via="policy", reason="no answer given")
        out.append(decision.model_copy(update={"proposal_ids": [pid], "checkpoint": checkpoint}))
    return out


def hold(ctx: LoopContext, kind: str, iteration: int, reason: str, proposals: list[Proposal] | None = None) -> Decision:
    """Ask an operator (a LangGraph interrupt, durable across kills) and return the first decision.

    Call it only from a node, and only before the node does anything with side effects: the node runs again from its
    top when the answer comes.
    """
    shown = proposals or []
    info = checkpoint_info(
        ctx.spec, kind, iteration, shown, ctx.positions(), ctx.predictions(shown), ctx.tally, reason, reach=ctx.reach
    )
    return read_answer(interrupt(info), [p.id for p in shown] or [""], info["checkpoint"])[0]
