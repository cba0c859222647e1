"""A session's results as one table: a row per run, in the order its result was read, read from the session's store
(no process needed, so safe while another process runs the session, and the same for a folder attached to a
session kept in PostgreSQL).

Each row says what was asked and what the instrument read back, what was measured (and which outputs could not be
computed, and why, in ``missing``), how the run ended, where and
when it ran (instrument, Bluesky ``scan_id`` and start time, from the run's start document), the run's uid (to find
its documents in Tiled or a databroker), who released it (the last decision on the proposal), and its lineage
(:data:`agent.provenance.lineage.COLUMNS`: which planner, version, seed and build made the point, knowing how many
observations, and what the model predicted there).
"""

from __future__ import annotations

import csv
import datetime
import io
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from agent.provenance.lineage import COLUMNS as LINEAGE
from agent.provenance.lineage import lineage_columns
from agent.views.status import folder_spec, session_store

#: Columns before the variables' and after the outputs', in order.
LEADING = ("experiment", "proposal", "why", "instrument", "scan_id", "started", "status")
TRAILING = ("seconds", "missing", "error", "decided", "run_uid", "tiled", *LINEAGE)
#: The suffix of a variable's read-back column (the variable's own column is the value asked for).
READ_BACK = "_read"


def session_results(folder: Path) -> tuple[list[str], list[dict[str, Any]], list[str]]:
    """The columns, the rows and the variables' names of the session in ``folder`` (see the module docstring).

    The columns are :data:`LEADING`, then for each variable its value asked for and its read-back
    (``<name>_read``), then every output the session names (objectives, constraints) and any other the runs
    measured, then :data:`TRAILING`. A cell with nothing to say is ``None``.

    Raises:
        SessionError: the folder holds no session, or its store is damaged.
    """
    store = session_store(folder)
    try:
        spec = folder_spec(folder, store)
        observations = store.observations()
        proposals = {p.id: p for p in store.proposals(ids=[o.proposal_id for o in observations])}
        decisions = {o.proposal_id: store.decisions_for(o.proposal_id.removesuffix("-edit")) for o in observations}
        starts = {o.proposal_id: _start_document(store.run(o.proposal_id)) for o in observations}
        lineage = lineage_columns(store, next(iter(spec.objectives)))
    finally:
        store.close()
    variables = list(spec.variables)
    outputs = list(spec.objectives) + [name for name in spec.constraints if name not in spec.objectives]
    outputs += sorted({name for o in observations for name in o.values} - set(outputs))
    columns = [*LEADING, *(c for v in variables for c in (v, v + READ_BACK)), *outputs, *TRAILING]
    rows = []
    for n, observation in enumerate(observations, start=1):
        proposal = proposals.get(observation.proposal_id)
        start = starts[observation.proposal_id]
        row: dict[str, Any] = dict.fromkeys(columns)
        row.update(
            experiment=n,
            proposal=observation.proposal_id,
            why=proposal.why if proposal is not None else None,
            instrument=start.get("instrument") or _single_instrument(spec.lanes()),
            scan_id=start.get("scan_id"),
            started=_iso(start.get("time")),
            status=observation.status.value,
            seconds=round(observation.duration, 3),
            missing="; ".join(f"{name}: {gap.describe()}" for name, gap in observation.missing.items()) or None,
            error=observation.error,
            decided=_decided(decisions[observation.proposal_id]),
            run_uid=observation.run_uid,
            tiled=observation.tiled,
        )
        row.update(lineage.get(observation.proposal_id, {}))
        for name in variables:
            row[name] = observation.setpoints.get(name)
            row[name + READ_BACK] = observation.readbacks.get(name)
        row.update({name: value for name, value in observation.values.items()})
        rows.append(row)
    return columns, rows, variables


def as_csv(columns: list[str], rows: Iterable[dict[str, Any]]) -> str:
    """``rows`` as CSV text with a header row of ``columns``; ``None`` is an empty cell."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows({k: "" if v is None else v for k, v in row.items()} for row in rows)
    return out.getvalue()


def _start_document(run: tuple[list[tuple[str, dict[str, Any]]], str | None] | None) -> dict[str, Any]:
    """The last start document of a stored run (a retried run has several), or ``{}``."""
    if run is None:
        return {}
    starts = [doc for name, doc in run[0] if name == "start"]
    return starts[-1] if starts else {}


def _single_instrument(lanes: list[tuple[str, Any]]) -> str | None:
    """The instrument's name when the session has one only (its runs' start documents do not name it)."""
    return lanes[0][0] if len(lanes) == 1 else None


def _iso(timestamp: Any) -> str | None:
    """A start document's ``time`` as ISO time to the second, in this host's time zone with its offset."""
    if not isinstance(timestamp, int | float):
        return None
    return datetime.datetime.fromtimestamp(timestamp).astimezone().isoformat(timespec="seconds")


def _decided(decisions: list[tuple[int, Any]]) -> str | None:
    """The last decision on a proposal, as ``verdict by NAME via CHANNEL``."""
    if not decisions:
        return None
    decision = decisions[-1][1]
    text = decision.verdict.value
    if decision.by:
        text += f" by {decision.by}"
    if decision.via:
        text += f" via {decision.via}"
    return text
