"""Turning a run's documents into an :class:`~closedloop.records.Observation`.

The documents are the truth: positions are what the instrument read back, not what was asked, and a run that
stopped with ``abort`` or ``fail``, or with fewer events than the plan makes, is a failed observation.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from closedloop.records import Observation, ObservationStatus, Proposal
from closedloop.spec import SessionSpec

Document = tuple[str, dict[str, Any]]
EXPECTED_EVENTS = 1


def observation_from_documents(
    spec: SessionSpec,
    proposal: Proposal,
    documents: Sequence[Document],
    error: str | None = None,
) -> Observation:
    """Build the observation of one proposal's run from its documents.

    Args:
        spec: says which event field each variable's read-back and each objective lives in.
        proposal: the proposal the run carried out.
        documents: ``(name, document)`` pairs, in the order the RunEngine emitted them.
        error: what the executor saw go wrong, if anything (kept as the failure reason).

    Returns:
        An ``ok`` observation with read-backs and objective values, or a ``failed`` one saying why.
    """
    start = next((doc for name, doc in documents if name == "start"), None)
    stop = next((doc for name, doc in documents if name == "stop"), None)
    events = [doc for name, doc in documents if name == "event"]
    data: dict[str, Any] = dict(events[-1]["data"]) if events else {}
    duration = float(stop["time"] - start["time"]) if start and stop else 0.0

    readbacks: dict[str, float | str] = {}
    for variable, variable_spec in spec.variables.items():
        raw = data.get(spec.readback_of(variable))
        if variable_spec.categorical and isinstance(raw, str):
            readbacks[variable] = raw
        elif _is_number(raw):
            readbacks[variable] = float(raw)
    values = {
        output: float(data[spec.field_of(output)])
        for output in spec.outputs
        if _is_number(data.get(spec.field_of(output)))
    }

    reason = _failure(spec, start, stop, events, values, error)
    return Observation(
        proposal_id=proposal.id,
        status=ObservationStatus.FAILED if reason else ObservationStatus.OK,
        setpoints=dict(proposal.setpoints),
        readbacks=readbacks,
        values=values,
        run_uid=start["uid"] if start else None,
        error=reason,
        duration=duration,
    )


def _is_number(value: Any) -> bool:
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def _failure(
    spec: SessionSpec,
    start: dict[str, Any] | None,
    stop: dict[str, Any] | None,
    events: list[dict[str, Any]],
    values: dict[str, float],
    error: str | None,
) -> str | None:
    if start is None:
        return error or "the run never started"
    if stop is None:
        return error or "the run has no stop document"
    if stop.get("exit_status") != "success":
        return error or f"run {stop.get('exit_status')}: {stop.get('reason') or 'no reason given'}"
    if len(events) < EXPECTED_EVENTS:
        return error or f"run ended with {len(events)} of {EXPECTED_EVENTS} events"
    missing = [spec.field_of(name) for name in spec.outputs if name not in values]
    if missing:
        return f"event has no finite value for {', '.join(missing)}"
    return error
