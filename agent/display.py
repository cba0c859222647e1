"""How a checkpoint and the session's events look to an operator, at the session's terminal and in ``review``.

:func:`checkpoint_table` renders a :class:`~closedloop.control.CheckpointInfo` as a Rich table; :func:`event_line`
renders an :class:`~closedloop.control.Event` as one line of plain text. Every cell is a Rich ``Text``, never
markup, so units such as ``[mrad]`` and hints such as ``[a/r/e/s]`` show as written.
"""

from __future__ import annotations

import datetime
import math
from collections.abc import Mapping
from typing import Any

from rich import box
from rich.table import Table
from rich.text import Text

from closedloop.control import CheckpointInfo, Event, ProposalInfo, VariableInfo, printable

_KIND_TITLE = {
    "review": "review the proposal(s)",
    "points": "the planner has no points left",
    "paused": "paused",
    "failures": "runs failed",
}


def fmt(value: Any) -> str:
    """A value for people: numbers to 5 significant digits, None as ``-``, control characters escaped."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:.5g}" if math.isfinite(value) else str(value)
    if isinstance(value, Mapping):
        return ", ".join(f"{fmt(k)}={fmt(v)}" for k, v in value.items())
    if isinstance(value, list | tuple):
        return "[" + ", ".join(fmt(v) for v in value) + "]"
    return printable(str(value))


def _move(target: Any, current: Any, variable: VariableInfo) -> tuple[str, str]:
    """The move from ``current`` to ``target`` and its style (red when longer than the variable's max step)."""
    if current is None:
        return "?", "dim"
    if isinstance(target, str) or isinstance(current, str):
        return ("none", "dim") if target == current else (f"from {current}", "")
    step = float(target) - float(current)
    too_far = variable.max_step is not None and abs(step) > variable.max_step
    return f"{step:+.4g}" + (" > max step" if too_far else ""), "bold red" if too_far else ""


def _allowed(variable: VariableInfo) -> str:
    if variable.values is not None:
        return "one of " + ", ".join(fmt(v) for v in variable.values)
    if variable.bounds is None:
        return "-"
    return f"{fmt(variable.bounds[0])} to {fmt(variable.bounds[1])}"


def _limits(variable: VariableInfo) -> str:
    parts = []
    if variable.hard_limits is not None:
        parts.append(f"{fmt(variable.hard_limits[0])} to {fmt(variable.hard_limits[1])}")
    if variable.device_limits is not None:
        parts.append(f"device {fmt(variable.device_limits[0])} to {fmt(variable.device_limits[1])}")
    if variable.max_step is not None:
        parts.append(f"step <= {fmt(variable.max_step)}")
    return ", ".join(parts) or "-"


def _near_limit(target: Any, variable: VariableInfo) -> bool:
    if variable.hard_limits is None or isinstance(target, str):
        return False
    low, high = variable.hard_limits
    return min(float(target) - low, high - float(target)) <= 0.05 * (high - low)


def _prediction(proposal: ProposalInfo) -> Text:
    if not proposal.prediction:
        return Text("no prediction", style="dim")
    return Text("\n".join(f"{name} {p.mean:.4g} ± {p.std:.2g}" for name, p in proposal.prediction.items()))


def _summary(entry: Mapping[str, Any] | None) -> str:
    if not entry:
        return "-"
    values = entry.get("values")
    if values is None and "value" in entry:
        values = {entry.get("objective", "value"): entry["value"]}
    text = fmt(values) if values is not None else ""
    if entry.get("ok") is False:
        text = f"failed: {entry.get('error') or 'no value'}"
    point = entry.get("point")
    if point:
        text += f" at {fmt(point)}"
    if entry.get("proposal_id"):
        text += f" ({entry['proposal_id']})"
    return text.strip() or "-"


def checkpoint_table(info: CheckpointInfo) -> Table:
    """The question at a checkpoint as a table: one block of rows per proposal, one row per variable.

    Columns: the proposal (its id, why it was proposed, the model's prediction per objective and the acquisition
    value), the variable with its units, the setpoint (yellow within 5% of a hard limit), where the instrument is
    now, the move (red when longer than ``max_step``), the search range and the hard limits. The caption holds the
    last observation, the best so far and the choices.
    """
    title = f"Checkpoint {info.checkpoint}: iteration {info.iteration}, {_KIND_TITLE[info.kind]}"
    if info.reason:
        title += f" ({printable(info.reason)})"
    objectives = ", ".join(f"{name} ({direction})" for name, direction in info.objectives.items())
    caption = [
        f"objectives: {objectives or '-'}",
        f"last: {_summary(info.last)}",
        f"best so far: {_summary(info.best)}",
        f"choices: {', '.join(info.choices)}",
    ]
    table = Table(
        title=Text(title, style="bold"), caption=Text("\n".join(caption)), box=box.SIMPLE_HEAD, caption_justify="left"
    )
    for header, justify in (
        ("proposal", "left"),
        ("prediction", "left"),
        ("variable", "left"),
        ("setpoint", "right"),
        ("now", "right"),
        ("move", "right"),
        ("search range", "left"),
        ("hard limits", "left"),
    ):
        table.add_column(Text(header), justify=justify)  # type: ignore[arg-type]
    for proposal in info.proposals:
        names = list(proposal.setpoints) or ["-"]
        for i, name in enumerate(names):
            variable = info.variables.get(name, VariableInfo())
            target = proposal.setpoints.get(name)
            move, move_style = _move(target, proposal.current.get(name), variable)
            label = Text()
            prediction = Text()
            if i == 0:
                label = Text(f"{proposal.id}\n{printable(proposal.why)}")
                if proposal.acquisition is not None:
                    label.append(f"\nacquisition {proposal.acquisition:.4g}")
                prediction = _prediction(proposal)
            table.add_row(
                label,
                prediction,
                Text(f"{name} [{variable.units}]" if variable.units else name),
                Text(fmt(target), style="yellow" if _near_limit(target, variable) else ""),
                Text(fmt(proposal.current.get(name))),
                Text(move, style=move_style),
                Text(_allowed(variable), style="dim"),
                Text(_limits(variable), style="dim"),
                end_section=i == len(names) - 1,
            )
    return table


def _clock(timestamp: float) -> str:
    return datetime.datetime.fromtimestamp(timestamp).strftime("%H:%M:%S")


def event_line(event: Event) -> str:
    """One line of plain text (no markup) for an event: time, sequence number, kind, then its details.

    The details are the event's data as ``key=value`` pairs, ids first, numbers to 5 significant digits; control
    characters are escaped.
    """
    data = dict(event.data)
    head = [data.pop(key) for key in ("proposal_id", "checkpoint", "id") if isinstance(data.get(key), str)]
    pairs = [f"{key}={{{fmt(v)}}}" if isinstance(v, Mapping) else f"{key}={fmt(v)}" for key, v in data.items()]
    details = " ".join([*head, *pairs])
    return printable(f"{_clock(event.time)} #{event.seq:<4} {event.kind:<12} {details}".rstrip())
