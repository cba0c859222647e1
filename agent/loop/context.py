"""What the loop's nodes share besides graph state: the session's parts, operators' requests, and the check that
turns a planner's point into setpoints before anything is stored.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Protocol

from agent.loop.lanes import Lanes
from agent.loop.rebuild import SeenPoints
from agent.store import SqlStore
from agent.views import Tally
from closedloop.errors import PlannerError
from closedloop.records import Observation, Proposal
from closedloop.spec import SessionSpec
from instruments.protocols import Executes
from planners.foreign import makes_one_at_a_time


class Suggests(Protocol):
    """A gest-api generator, as the loop uses it."""

    def suggest(self, num_points: int | None) -> list[dict[str, Any]]: ...

    def ingest(self, results: list[dict[str, Any]]) -> None: ...


@dataclass
class Requests:
    """What operators asked of the running loop: the one path a stop or a pause takes from an operator to the nodes.

    Set from any thread (:class:`~agent.operator.Operations`) and read by the nodes between runs. A pause is kept in
    the store as well, so that a session killed while pausing holds at its pause on resume; a stop is this process's
    only (``closedloop resume`` of a stopped session is the wish to carry on), and logged in the audit trail.

    Attributes:
        store: the session store a pause is kept in (None: in memory only, for tests of the nodes).
        stop: an operator asked to stop after the current run.
        stop_reason: why, as the operator said it.
    """

    store: SqlStore | None = None
    stop: bool = False
    stop_reason: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)
    _pause: str | bool = False

    def ask_stop(self, reason: str) -> None:
        """Stop after the current run."""
        with self.lock:
            self.stop, self.stop_reason = True, reason

    def ask_pause(self, by: str) -> None:
        """Hold after the current run, until an operator resumes or stops (durable across a kill)."""
        if self.store is not None:
            self.store.set_meta(pause_requested=by)
        self._pause = by

    def clear_pause(self) -> None:
        """The pause held and was answered, or was withdrawn before it held."""
        if self.store is not None:
            self.store.set_meta(pause_requested=False)
        self._pause = False

    @property
    def pause(self) -> str | bool:
        """Who asked for a pause not yet answered, or False."""
        return self.store.meta("pause_requested", False) if self.store is not None else self._pause


@dataclass
class LoopContext:
    """Everything the nodes need that is not graph state: built anew in every process.

    Attributes:
        spec: the session spec.
        store: the session store.
        planner: the gest-api generator proposing points.
        lanes: the instruments that run proposals, each in a thread of its own.
        runs: the folder of ``<proposal id>.jsonl`` document files.
        tally: running counts (experiments, failures, best so far).
        on_observation: called after each stored observation (progress bars).
        emit: called with an event kind and its data (the control channel's event stream).
        issued: proposal id -> the planner's ``_id``, for points the current planner instance made.
        requests: what operators asked (stop after the current run).
        reach: each variable's hard, device and in-force limits (:func:`closedloop.reach.reach_summary`), for operators.
        build: which build of the session's planner this process made (lineage: :mod:`agent.provenance.lineage`).
    """

    spec: SessionSpec
    store: SqlStore
    planner: Suggests
    lanes: Lanes
    runs: Path
    tally: Tally
    on_observation: Callable[[Observation], None] = lambda observation: None
    emit: Callable[[str, dict[str, Any]], object] = lambda kind, data: None
    issued: dict[str, int] = field(default_factory=dict)
    requests: Requests = field(default_factory=Requests)
    reach: dict[str, Any] = field(default_factory=dict)
    build: int = 0

    @cached_property
    def seen(self) -> SeenPoints:
        """The points proposed before in this session: never proposed again, but for an operator's (queued, edited,
        or listed for the manual planner: a list may name a reference point twice on purpose), and a re-measurement
        a generator that makes one point at a time asks for (see :class:`~agent.loop.rebuild.SeenPoints`)."""
        one_at_a_time = bool(getattr(self.planner, "one_at_a_time", False)) or makes_one_at_a_time(self.planner)
        manual = self.spec.planner.name == "manual"
        return SeenPoints(self.spec, self.store, allow_repeats=manual, remeasure=one_at_a_time)

    def __post_init__(self) -> None:
        if self.requests.store is None:
            self.requests.store = self.store

    def budget(self) -> int:
        """The budget in force (an operator may have changed it)."""
        return int(self.store.meta("budget", self.spec.budget.experiments))

    @property
    def executor(self) -> Executes:
        """The first instrument's executor."""
        return self.lanes.first

    def positions(self) -> dict[str, Any]:
        """Where each variable's device will be when the next proposal starts, as far as the executors can say."""
        return self.lanes.next_positions()

    def planner_position(self) -> dict[str, float]:
        """Where the instrument will be, for the planner's ``set_position``: a number for every numeric variable.

        A variable the executors cannot read back keeps the planner's own idea of it (its last position); when the
        planner has none either, the result is empty and the planner carries on from its last point.
        """
        numeric = [name for name, v in self.spec.variables.items() if not v.categorical]
        where = {k: float(v) for k, v in self.positions().items() if k in numeric and _is_number(v)}
        missing = [name for name in numeric if name not in where]
        if missing:
            known = getattr(self.planner, "position", None) or {}
            where.update({name: float(known[name]) for name in missing if _is_number(known.get(name))})
        return where if all(name in where for name in numeric) else {}

    def predictions(self, proposals: list[Proposal]) -> list[dict[str, Any] | None]:
        """The planner's prediction for each proposal, or None for planners that do not predict."""
        predict = getattr(self.planner, "predict", None)
        if not callable(predict) or not proposals:
            return [None] * len(proposals)
        try:
            return list(predict([dict(p.setpoints) for p in proposals]))
        except Exception:  # a prediction is for people only: never let it stop the loop
            return [None] * len(proposals)

    def suggest(self, count: int) -> list[dict[str, Any]]:
        """``planner.suggest(count)``; the numerical failures it recovered from meanwhile (a planner's
        ``diagnostics`` ``recoveries`` and ``recovered_by``) are added to the store's ``planner_recoveries``, which
        ``closedloop status`` shows. Counted as differences, so a planner rebuilt on resume adds to the session's."""
        before = _recoveries(self.planner)
        points = self.planner.suggest(count)
        after = _recoveries(self.planner)
        if after != before:
            stored = self.store.meta("planner_recoveries") or {}
            self.store.set_meta(
                planner_recoveries={
                    part: {
                        key: int(stored.get(part, {}).get(key, 0)) + after[part][key] - before[part].get(key, 0)
                        for key in set(stored.get(part, {})) | set(after[part])
                    }
                    for part in RECOVERY_PARTS
                }
            )
        return points

    def tell_rejected(self, proposal: Proposal) -> None:
        """Tell the planner a point will not be measured: as a failed result (see ``planners``' policy)."""
        result: dict[str, Any] = dict(proposal.setpoints)
        result.update({name: math.nan for name in self.spec.outputs})
        if proposal.id in self.issued:
            result["_id"] = self.issued.pop(proposal.id)
        self.planner.ingest([result])


#: The parts of a planner's ``diagnostics`` that count numerical failures: by kind, and by the step that recovered.
RECOVERY_PARTS = ("recoveries", "recovered_by")


def _recoveries(planner: Any) -> dict[str, dict[str, int]]:
    """The counters of :data:`RECOVERY_PARTS` in ``diagnostics`` of ``planner`` or of the planner it wraps (a warm
    start's ``planner``), empty for a planner that keeps none."""
    diagnostics = getattr(planner, "diagnostics", None)
    while not isinstance(diagnostics, dict) and (planner := getattr(planner, "planner", None)) is not None:
        diagnostics = getattr(planner, "diagnostics", None)
    diagnostics = diagnostics if isinstance(diagnostics, dict) else {}
    return {part: {str(k): int(v) for k, v in (diagnostics.get(part) or {}).items()} for part in RECOVERY_PARTS}


def proposal_setpoints(spec: SessionSpec, point: dict[str, Any]) -> dict[str, float | str]:
    """A planner's point as setpoints: every variable and every constant.

    Raises:
        PlannerError: a variable is missing, not a finite number, or not an allowed category.
    """
    setpoints: dict[str, float | str] = {}
    for name, variable in spec.variables.items():
        if name not in point:
            raise PlannerError(f"the planner's point has no value for '{name}'")
        value = point[name]
        if variable.categorical:
            if value not in (variable.values or []):
                raise PlannerError(f"the planner's point has {name}={value!r}, not one of {variable.values}")
            setpoints[name] = str(value)
            continue
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise PlannerError(f"the planner's point has {name}={value!r}, not a number") from None
        if isinstance(value, bool) or not math.isfinite(number):
            raise PlannerError(f"the planner's point has {name}={value!r}, not a finite number")
        setpoints[name] = number
    for name, constant in spec.constants.items():
        setpoints[name] = constant.value
    return setpoints


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
