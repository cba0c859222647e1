"""How a checkpoint, the session's events and its audit trail look to an operator, at the session's terminal, in
``review``, ``watch`` and ``audit``.

:func:`checkpoint_table` renders a :class:`~closedloop.control.CheckpointInfo` as a Rich table; :func:`event_line`
renders an :class:`~closedloop.control.Event` as one line of plain text (:func:`event_lines` adds a line naming the
date and the zone); :func:`audit_table` renders :func:`agent.views.audit_trail`. Numbers go through
:mod:`agent.views.numbers`. Every cell is a Rich ``Text``, never markup, so units such as ``[mrad]`` and hints such as
``[a/r/e/s]`` show as written.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from rich import box
from rich.table import Table
from rich.text import Text

from agent.views.numbers import number, point, quantity
from closedloop.control import CheckpointInfo, Event, ProposalInfo, VariableInfo, printable

_KIND_TITLE = {
    "review": "review the proposal(s)",
    "points": "the planner has no points left",
    "paused": "paused",
    "failures": "runs failed",
}


def fmt(value: Any) -> str:
    """A value for people: numbers in plain notation (:func:`agent.views.number`), None as ``-``, control
    characters escaped."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int | float):
        return number(value)
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
    shown = ("+" if step > 0 else "") + number(step, 4) + (" > max step" if too_far else "")
    return shown, "bold red" if too_far else ""


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
    guesses = [f"{name} {number(p.mean, 4)} ± {number(p.std, 2)}" for name, p in proposal.prediction.items()]
    return Text("\n".join(guesses))


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
                    label.append(f"\nacquisition {number(proposal.acquisition, 4)}")
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


def clock(timestamp: float) -> str:
    """``HH:MM:SS`` in local time (:func:`day_line` says which zone)."""
    return datetime.datetime.fromtimestamp(timestamp).strftime("%H:%M:%S")


def zone(timestamp: float) -> str:
    """The local zone at ``timestamp`` with its offset from UTC, e.g. ``CET (UTC+01:00)``."""
    moment = datetime.datetime.fromtimestamp(timestamp).astimezone()
    offset = moment.strftime("%z")
    return f"{moment.tzname()} (UTC{offset[:3]}:{offset[3:]})"


def day_line(timestamp: float) -> str:
    """The date and the local zone, e.g. ``-- 2026-12-07, times in CET (UTC+01:00) --``."""
    return f"-- {datetime.datetime.fromtimestamp(timestamp):%Y-%m-%d}, times in {zone(timestamp)} --"


def event_lines(events: Iterable[Event], units: Mapping[str, str | None] | None = None) -> Iterator[str]:
    """:func:`event_line` for each event, after a :func:`day_line` first and whenever the date changes."""
    day = None
    for event in events:
        today = datetime.datetime.fromtimestamp(event.time).date()
        if today != day:
            day = today
            yield day_line(event.time)
        yield event_line(event, units)


def _flat(data: Mapping[str, Any], units: Mapping[str, str | None], prefix: str = "") -> list[str]:
    """``key=value`` words, nested mappings flattened (``values.flux=950.12``), lists joined with commas."""
    words = []
    for key, value in data.items():
        if value in (None, "", [], {}):
            continue
        if isinstance(value, Mapping):
            words += _flat(value, units, f"{prefix}{key}.")
        elif isinstance(value, list | tuple):
            words.append(f"{prefix}{key}=" + ",".join(fmt(v) for v in value))
        else:
            words.append(f"{prefix}{key}={quantity(value, units.get(key))}")
    return words


def _ended(data: Mapping[str, Any], units: Mapping[str, str | None]) -> str:
    """An observation: how it ended, what it measured, where the instrument read back, how long it took."""
    pid = data.get("proposal_id", "")
    if data.get("status", "ok") != "ok":
        return f"{pid}  {data['status']}: {data.get('error') or 'no value'}"
    measured = "  ".join(f"{name}={fmt(value)}" for name, value in (data.get("values") or {}).items())
    where = point(data.get("readbacks") or data.get("setpoints") or {}, units)
    took = f"  ({number(data['duration'], 2)} s)" if isinstance(data.get("duration"), int | float) else ""
    return f"{pid}  {measured}" + (f"  at {where}" if where else "") + took


def _decided(data: Mapping[str, Any], units: Mapping[str, str | None]) -> str:
    ids = " ".join(data.get("proposal_ids") or []) or "all shown"
    text = f"{data.get('verdict')} {ids}"
    if data.get("verdict") == "edit" and data.get("setpoints"):
        text += f" to {point(data['setpoints'], units)}"
    text += f" by {data.get('by', '?')} via {data.get('via', '?')}"
    return text + (f" ({data['reason']})" if data.get("reason") else "")


def _asked(data: Mapping[str, Any]) -> str:
    kind = data.get("kind", "review")
    ids = [p.get("id", "?") for p in data.get("proposals") or [] if isinstance(p, Mapping)]
    what = f"review of {', '.join(ids)}" if kind == "review" and ids else _KIND_TITLE.get(kind, str(kind))
    reason = f" ({data['reason']})" if data.get("reason") else ""
    return f"{data.get('checkpoint', '')}  {what}{reason}; waiting for an answer"


def _details(kind: str, data: Mapping[str, Any], units: Mapping[str, str | None]) -> str:
    """What an event says, in words and numbers with units; an unknown kind as flat ``key=value`` words."""
    if kind == "proposal":
        return f"{data.get('id', '')}  {point(data.get('setpoints') or {}, units)}  ({data.get('why', '')})"
    if kind == "checkpoint":
        return _asked(data)
    if kind == "decision":
        return _decided(data, units)
    if kind == "run_started":
        where = f" on {data['instrument']}" if data.get("instrument") else ""
        return f"{data.get('proposal', '')}{where}  {point(data.get('setpoints') or {}, units)}"
    if kind == "run_finished":
        where = f" on {data['instrument']}" if data.get("instrument") else ""
        ended = f"failed: {data['error']}" if data.get("error") else str(data.get("status", "done"))
        return f"{data.get('proposal', '')}  {ended}{where}"
    if kind == "observation":
        return _ended(data, units)
    if kind == "best":
        values = "  ".join(f"{name}={fmt(v)}" for name, v in (data.get("values") or {}).items())
        return f"{data.get('proposal', '')}  {values}"
    if kind == "resumed" and set(data) == {"by"}:
        return f"by {data['by']}"
    if kind in ("paused", "stopped", "finished", "failure") and set(data) <= {"reason", "outcome", "checkpoint"}:
        said = str(data.get("reason") or data.get("outcome") or "")
        return "" if said == kind else said
    return " ".join(_flat(data, units))


def event_line(event: Event, units: Mapping[str, str | None] | None = None) -> str:
    """One line of plain text (no markup, no nested reprs) for an event: local time, kind, then what happened.

    A proposal reads ``14:03:12 proposal     p-1a2b  pitch1=0.31 mrad  pitch2=-0.58 mrad  (model (qLogNEI))``:
    ids first, numbers in plain notation (:func:`agent.views.number`), each variable with its ``units``; an
    event of another kind shows its data as flat ``key=value`` words. Control characters are escaped.
    """
    details = _details(event.kind, event.data, units or {})
    return printable(f"{clock(event.time)} {event.kind:<12} {details}".rstrip())


def audit_table(folder: Path | str, trail: list[dict[str, Any]]) -> Table:
    """The audit trail for a terminal: one row per entry (decisions in bold), a date row at each new day, times
    local (the zone in the title); long details wrap within the terminal's width, nothing is cut."""
    where = f", times in {zone(trail[0]['timestamp'])}" if trail else ""
    table = Table(title=Text(f"audit trail of {folder}{where}"), box=box.SIMPLE_HEAD)
    table.add_column(Text("time"), no_wrap=True)
    for column in ("who", "via", "what"):
        table.add_column(Text(column), overflow="fold")
    table.add_column(Text("detail; why"), overflow="fold", ratio=1)
    day = ""
    for e in trail:
        date, clock = e["time"][:10], e["time"][11:19]
        if date != day:
            day = date
            table.add_row(Text(date, style="bold"))
        detail = e["detail"] + (f"; why: {e['why']}" if e["why"] else "")
        row = [clock, e["who"] or "-", e["via"] or "-", e["what"], detail]
        table.add_row(*(Text(printable(str(c))) for c in row), style="bold" if e["source"] == "decision" else None)
    return table
