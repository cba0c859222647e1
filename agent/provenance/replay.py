"""``closedloop replay BUNDLE``: rebuild the planner from a bundle and re-derive every proposal it made from the data it
had when it made it, then compare.

The live planner's life is replayed call for call from the lineage (:mod:`agent.provenance.lineage`): each build
(the session's start, and each resume, which rebuilt it from the store as :func:`agent.loop.rebuild.replay_into_planner`
does) is built again with its recorded seed and the devices' recorded limits, told what the store held then, and
then, before each batch, told the observations and rejections it had been told by then, in the store's order, and
the position it had been told; its ``suggest`` must give the recorded points. A point matches when every numeric
variable is within :data:`TOLERANCE` of its search range of the recorded value, and every categorical one is equal.

Points an operator queued or edited are counted as the operator's, not replayed. A generator that is not one of
closedloop's own planners (a foreign gest-api generator) cannot be rebuilt from data, and is said so.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent.loop.rebuild import replay_into_planner
from agent.provenance.bundle import bundle_store
from agent.provenance.lineage import BUILDS, innermost
from agent.provenance.warmstart import ingest_prior
from agent.store.sql import SqlStore
from closedloop.errors import ClosedLoopError, SessionError
from closedloop.records import Observation, ObservationStatus, Proposal, ProposalStatus
from closedloop.spec import SessionSpec

#: How close a replayed value must be to the recorded one, as a share of the variable's search range.
TOLERANCE = 1e-6


class NotReplayable(SessionError):
    """The bundle's planner cannot be replayed (a foreign generator, or no lineage recorded)."""


@dataclass
class Batch:
    """One ``suggest`` call of the live planner: its build, what it had been told, the points it gave."""

    build: int
    observations: int
    rejected: list[str]
    position: dict[str, float] | None
    proposals: list[Proposal] = field(default_factory=list)


@dataclass
class _Cut:
    """The store as a planner build saw it (for :func:`~agent.loop.rebuild.replay_into_planner`)."""

    made: list[Proposal]
    seen: list[Observation]

    def proposals(self) -> list[Proposal]:
        return self.made

    def observations(self) -> list[Observation]:
        return self.seen


def batches(store: SqlStore) -> tuple[list[Batch], int]:
    """The live planner's batches in order, and how many proposals were an operator's.

    Raises:
        NotReplayable: a planner's proposal has no lineage (a session from before lineage was kept).
    """
    lineage = store.lineage()
    found: dict[str, Batch] = {}
    operator = 0
    for proposal in store.proposals():
        if proposal.origin != "planner":
            operator += 1
            continue
        record = lineage.get(proposal.id, {}).get("proposed")
        if record is None:
            raise NotReplayable(f"proposal {proposal.id} has no lineage (a session from an older closedloop)")
        batch = found.setdefault(
            record["batch"],
            Batch(record["build"], record["observations"], list(record["rejected"]), record.get("position")),
        )
        batch.proposals.append(proposal)
    return list(found.values()), operator


def _device_limits(store: SqlStore) -> dict[str, tuple[float, float]]:
    reach = store.meta("reach") or {}
    return {
        name: (float(entry["device_limits"][0]), float(entry["device_limits"][1]))
        for name, entry in reach.items()
        if entry.get("device_limits") is not None
    }


def _build(spec: SessionSpec, store: SqlStore, build: dict[str, Any]) -> Any:
    """A planner as the build ``build`` made it (its seed, the devices' limits), told what the store held then."""
    from agent.loop import build_planner

    seed = build.get("planner", {}).get("seed")
    planner = build_planner(
        spec.model_copy(update={"seed": seed if seed is not None else spec.seed}), _device_limits(store)
    )
    if not type(innermost(planner)).__module__.startswith("planners."):
        raise NotReplayable(
            f"planner {spec.planner.name}: a foreign gest-api generator cannot be replayed "
            "(it is not rebuilt from data)"
        )
    ingest_prior(store, planner)
    return planner


def _result(spec: SessionSpec, observation: Observation) -> dict[str, Any]:
    """What the live planner was told of an observation (an interrupted or aborted run: its point, failed)."""
    if observation.status in (ObservationStatus.INTERRUPTED, ObservationStatus.ABORTED):
        return {**observation.setpoints, **{name: math.nan for name in spec.outputs}}
    return observation.as_result()


def _differences(spec: SessionSpec, recorded: dict[str, Any], replayed: dict[str, Any]) -> dict[str, float]:
    """Per variable that differs beyond :data:`TOLERANCE`: by how much (a share of its range; 1 for a category)."""
    out: dict[str, float] = {}
    for name, variable in spec.variables.items():
        a, b = recorded.get(name), replayed.get(name)
        if variable.categorical or isinstance(a, str) or isinstance(b, str):
            if str(a) != str(b):
                out[name] = 1.0
            continue
        numbers = [float(v) for v in variable.values or [0.0]] if variable.bounds is None else list(variable.bounds)
        span = float(max(numbers)) - float(min(numbers)) or 1.0
        share = abs(float(a) - float(b)) / span  # type: ignore[arg-type]
        if not share <= TOLERANCE:
            out[name] = share
    return out


def replay_store(spec: SessionSpec, store: SqlStore) -> dict[str, Any]:
    """Replay the planner of the session in ``store`` (see the module's docstring).

    Returns:
        ``{"proposals": N, "reproduced": M, "operator": K, "tolerance": TOLERANCE, "mismatches": [...]}``, N the
        planner's proposals, each mismatch ``{"proposal", "why", "recorded", "replayed", "differences"}``.

    Raises:
        NotReplayable: the planner is foreign, or the session kept no lineage.
    """
    todo, operator = batches(store)
    builds = list(store.meta(BUILDS) or [])
    proposals = store.proposals()
    observations = store.observations()
    by_id = {p.id: p for p in proposals}
    planner: Any = None
    current, told, rejected, issued = -1, 0, set(), {}
    reproduced, mismatches = 0, []
    for batch in todo:
        if batch.build != current:
            build = builds[batch.build]
            planner = _build(spec, store, build)
            gone = set(build["rejected"])
            made = [
                p.model_copy(update={"status": ProposalStatus.REJECTED if p.id in gone else ProposalStatus.PROPOSED})
                for p in proposals[: build["proposals"]]
            ]
            issued = replay_into_planner(spec, _Cut(made, observations[: build["observations"]]), planner)  # type: ignore[arg-type]
            current, told, rejected = batch.build, build["observations"], gone
        for observation in observations[told : batch.observations]:
            result = _result(spec, observation)
            if observation.proposal_id in issued:
                result["_id"] = issued.pop(observation.proposal_id)
            planner.ingest([result])
        told = max(told, batch.observations)
        for pid in batch.rejected:
            if pid not in rejected:
                rejected.add(pid)
                result = {**by_id[pid].setpoints, **{name: math.nan for name in spec.outputs}}
                if pid in issued:
                    result["_id"] = issued.pop(pid)
                planner.ingest([result])
        if batch.position and callable(getattr(planner, "set_position", None)):
            planner.set_position(batch.position)
        points = planner.suggest(len(batch.proposals))
        for proposal, point in zip(batch.proposals, points, strict=True):
            if point.get("_id") is not None:
                issued[proposal.id] = int(point["_id"])
            replayed = {name: point.get(name) for name in spec.variables}
            differences = _differences(spec, dict(proposal.setpoints), replayed)
            if differences:
                recorded = {name: proposal.setpoints.get(name) for name in spec.variables}
                mismatches.append(
                    {
                        "proposal": proposal.id,
                        "why": proposal.why,
                        "recorded": recorded,
                        "replayed": replayed,
                        "differences": differences,
                    }
                )
            else:
                reproduced += 1
        predict = getattr(planner, "predict", None)
        if callable(predict):  # the live review asked for predictions: the same calls, the same state after
            with contextlib.suppress(Exception):
                predict([dict(p.setpoints) for p in batch.proposals])
    if planner is not None and callable(getattr(planner, "finalize", None)):
        planner.finalize()
    total = sum(len(batch.proposals) for batch in todo)
    return {
        "proposals": total,
        "reproduced": reproduced,
        "operator": operator,
        "tolerance": TOLERANCE,
        "mismatches": mismatches,
    }


def replay_bundle(path: Path) -> dict[str, Any]:
    """Check a bundle and replay its planner (:func:`replay_store`).

    Raises:
        BundleError: the bundle is refused.
        NotReplayable: its planner cannot be replayed.
        ClosedLoopError: the planner failed while replaying.
    """
    with bundle_store(path) as (spec, store, _):
        try:
            return replay_store(spec, store)
        except ClosedLoopError:
            raise
        except Exception as exc:  # the planner itself failed: say which, in one line
            raise SessionError(f"replay: the planner failed: {type(exc).__name__}: {exc}") from None
