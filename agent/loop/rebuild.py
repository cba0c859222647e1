"""What a session resumed in a new process takes from its store, whatever happened to its checkpoints.

The store (and the run files in ``runs/``) is the truth; LangGraph's checkpoints only say where in the loop the
process was. On resume:

- the planner is told of every proposal ever made (:func:`replay_into_planner`): each of its points given back
  (:class:`~planners.RestoresPending`), then each observation and each rejected point as a failed one, so that a
  rebuilt planner continues its sequence instead of giving one of them again;
- checkpoints that are missing, emptied or behind the store are recognised (:func:`checkpoint_gap`), so that the
  loop restarts from the store (at :func:`start_iteration`) and says so, instead of going on from an older step;
- checkpoints that are ahead of the store (a store restored from an older copy) refuse the resume
  (:func:`check_high_water`);
- a run the store says was started whose documents file holds the whole run is ingested from that file
  (:func:`ended_run`); one cut short is recorded interrupted.

:class:`SeenPoints` is the loop's backstop for generators that cannot be rebuilt exactly (foreign ones): a point
identical to one already proposed in the session is refused, unless an operator asked for it; the planner is told it
as a failed point, or, when that point was measured, as that measurement.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Final

from agent.store import SqlStore, read_run_file
from closedloop.errors import PlannerError, SessionError
from closedloop.records import ProposalStatus
from closedloop.spec import SessionSpec
from planners import RestoresPending

HIGH_WATER: Final = "observed"
"""The graph-state key holding how many observations the store held at that step (see :func:`check_high_water`)."""


def replay_into_planner(spec: SessionSpec, store: SqlStore, planner: Any) -> dict[str, int]:
    """Tell a rebuilt planner of every proposal the session made, as the live planner was told.

    A planner that takes points back (:class:`~planners.RestoresPending`) is first given back every point it made,
    as pending (what it asked for, in order of birth), and then told each result under the point's new ``_id``, as
    the live planner was: every observation (a failed, interrupted or aborted one with no outputs), and every
    rejected point as a failed one; its points still out stay pending. Any other planner is told the results as
    points it did not make. An operator's points are points it did not make, as they were live.

    Returns:
        proposal id -> the planner's new ``_id``, for each point still out.
    """
    proposals = store.proposals()
    given: dict[str, int] = {}
    if isinstance(planner, RestoresPending):
        own = [p for p in proposals if p.origin == "planner"]
        ids = planner.restore_pending([dict(p.setpoints) for p in own]) if own else []
        given = {proposal.id: int(point_id) for proposal, point_id in zip(own, ids, strict=True)}
    results = []
    for observation in store.observations():
        result = observation.as_result()
        if observation.proposal_id in given:
            result["_id"] = given.pop(observation.proposal_id)
        results.append(result)
    for proposal in proposals:
        if proposal.status == ProposalStatus.REJECTED:
            result = dict(proposal.setpoints)
            result.update({name: math.nan for name in spec.outputs})
            if proposal.id in given:
                result["_id"] = given.pop(proposal.id)
            results.append(result)
    if results:
        planner.ingest(results)
    return given


def checkpoint_gap(values: dict[str, Any], store: SqlStore) -> str | None:
    """Why the last checkpoint cannot be where the loop goes on from, or None when it can.

    A checkpoint is behind the store when it holds no state while the store holds proposals (the database was
    lost, emptied, or its ``-wal`` file was), when its iteration is below the store's last (it lost its last
    commits), or when a run the store says was started and not observed is not among the proposals it knows of.
    """
    if not store.count_proposals():
        return None
    if not values:
        return "it holds no state (missing, emptied, or its -wal file lost)"
    iteration, last = int(values.get("iteration", 0)), store.max_iteration()
    if iteration < last:
        return f"it is at iteration {iteration}, the store at {last} (it lost its last commits)"
    known = {*values.get("in_flight", []), *values.get("proposal_ids", []), *values.get("held", [])}
    unknown = [pid for pid in store.unobserved_dispatches() if pid not in known]
    if unknown:
        return f"it does not know of the run of {unknown[0]}, which the store says was started"
    return None


def check_high_water(values: dict[str, Any], store: SqlStore, where: str) -> None:
    """Refuse a store older than the checkpoints: they recorded more observations than it holds.

    Raises:
        SessionError: the store holds fewer observations than the checkpoints recorded (restored from an older
            copy, or rolled back); names both.
    """
    recorded = int(values.get(HIGH_WATER, 0) or 0)
    held = store.count_observations()
    if held < recorded:
        raise SessionError(
            f"{store.location}: holds {held} observations but {where} recorded {recorded} "
            "(restored from an older copy, or rolled back?)",
            "restore the newest copy of the store",
        )


def ended_run(path: Path) -> list[tuple[str, dict[str, Any]]] | None:
    """The documents of a run file that holds one whole run (one start document, then its stop document), or None
    when the run was cut short (no stop, or a retry's next attempt begun)."""
    documents = read_run_file(path)
    starts = [doc for name, doc in documents if name == "start"]
    if len(starts) != 1 or not documents or documents[-1][0] != "stop":
        return None
    return documents if documents[-1][1].get("run_start") == starts[0].get("uid") else None


class RepeatedPoint(PlannerError):
    """A planner's point identical to one already proposed in the session (``of``: that proposal's id), or to
    another point of its batch (``of`` None)."""

    def __init__(self, message: str, of: str | None) -> None:
        super().__init__(message)
        self.of = of


class SeenPoints:
    """The setpoints of every proposal made in a session, read from the store as it grows.

    Args:
        spec: says which setpoints are variables (constants are the same in every point).
        store: the session store.
        allow_repeats: refuse nothing (the planner's points are an operator's list).
        remeasure: let a point measured ok be measured again (a generator that makes one point at a time, told
            each result before its next point, asks for one on purpose: a simplex method re-measures a vertex).
    """

    def __init__(
        self, spec: SessionSpec, store: SqlStore, allow_repeats: bool = False, remeasure: bool = False
    ) -> None:
        self.names = list(spec.variables)
        self.store = store
        self.allow_repeats = allow_repeats
        self.remeasure = remeasure
        self._read = 0
        self._seen: dict[tuple[Any, ...], str] = {}

    def key(self, setpoints: dict[str, Any]) -> tuple[Any, ...]:
        """The point's identity: each variable's value (a number to 12 significant digits)."""
        return tuple(_rounded(setpoints.get(name)) for name in self.names)

    def _refresh(self) -> None:
        made = self.store.proposals_from(self._read)
        self._read += len(made)
        for proposal in made:
            self._seen.setdefault(self.key(proposal.setpoints), proposal.id)

    def check(self, setpoints: dict[str, Any], batch: dict[tuple[Any, ...], int]) -> None:
        """Refuse a planner's point identical to one proposed before in the session or earlier in ``batch`` (keys
        of the batch's points so far, updated here).

        Raises:
            PlannerError: the point repeats one; names the proposal it repeats.
        """
        if self.allow_repeats:
            return
        self._refresh()
        key = self.key(setpoints)
        if key in self._seen and not (self.remeasure and self._measured_ok(self._seen[key])):
            earlier = self._seen[key]
            raise RepeatedPoint(f"the planner's point repeats {earlier}, already proposed in this session", earlier)
        if key in batch:
            raise RepeatedPoint("the planner's point repeats another point of the same batch", None)
        batch[key] = len(batch)

    def _measured_ok(self, proposal_id: str) -> bool:
        observation = self.store.observation(proposal_id)
        return observation is not None and observation.ok

    def measured(self, refusal: Exception) -> dict[str, Any] | None:
        """For a refused repeat of a point measured already (an ok observation): its measured outputs, which the
        planner is told instead of a failure (a simplex method, say, asks for its start point's value); else None."""
        if not isinstance(refusal, RepeatedPoint) or refusal.of is None:
            return None
        observation = self.store.observation(refusal.of)
        return dict(observation.values) if observation is not None and observation.ok else None


def _rounded(value: Any) -> Any:
    if isinstance(value, float):
        return float(f"{value:.12g}")
    return value


def start_iteration(store: SqlStore) -> int:
    """Where a loop with no checkpoint to go on from starts: the store's last iteration while one of its proposals
    is still open (proposed or approved), else the next one (0 in an empty store)."""
    if store.count_proposals() == 0:
        return 0
    last = store.max_iteration()
    open_ = [
        p for p in store.proposals(iteration=last) if p.status in (ProposalStatus.PROPOSED, ProposalStatus.APPROVED)
    ]
    return last if open_ else last + 1
