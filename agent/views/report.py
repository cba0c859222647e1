"""``closedloop report``: one self-contained HTML page about a session (figures embedded as base64 PNG, styles
inline, nothing fetched from the network), or its figures alone as PNG files.

Reads the store only (:func:`~agent.views.load_session`), so it works on a running, stopped or finished
session, kept in SQLite or in PostgreSQL.
"""

from __future__ import annotations

import base64
import datetime
import html
import json
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from agent.views import figures
from agent.views.data import SessionData, belief, load_session

#: The page's styles, inline: system fonts only.
STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5em auto; max-width: 60em; padding: 0 1em; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; border-bottom: 1px solid #ccc; margin-top: 1.6em; }
table { border-collapse: collapse; font-size: 0.85em; width: 100%; }
th, td { border: 1px solid #ddd; padding: 0.25em 0.5em; text-align: left; vertical-align: top; }
th { background: #f4f4f4; } img { max-width: 100%; height: auto; } .note { color: #666; font-size: 0.9em; }
dl { display: grid; grid-template-columns: max-content auto; gap: 0.2em 1em; } dt { font-weight: 600; }
"""


def session_figures(data: SessionData) -> tuple[dict[str, Figure], str]:
    """The session's figures by name (in page order) and a sentence about the model's belief (why none, or
    what it was fitted on)."""
    shown: dict[str, Figure | None] = {"progress": figures.progress(data), "variables": figures.traces(data)}
    model = belief(data)
    if isinstance(model, str):
        note = model
    else:
        note = (
            f"The {data.spec.planner.name} planner rebuilt from the store and given {model.fitted_on} ok "
            "observation(s); lines go through the best point."
        )
        shown["belief"] = figures.belief_lines(data, model)
        shown["belief-map"] = figures.belief_map(data, model)
    shown["pareto"] = figures.pareto(data)
    shown["constraints"] = figures.constraints(data)
    return {name: figure for name, figure in shown.items() if figure is not None}, note


def write_pngs(folder: Path, out: Path) -> list[Path]:
    """Write the session's figures to ``out`` (created if missing) as ``NAME.png``; the paths written.

    Raises:
        SessionError: ``folder`` holds no session.
        OSError: ``out`` cannot be written.
    """
    drawn, _ = session_figures(load_session(folder))
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, figure in drawn.items():
        path = out / f"{name}.png"
        path.write_bytes(figures.png(figure))
        paths.append(path)
    return paths


def report_html(folder: Path) -> str:
    """The report of the session in ``folder`` as one HTML page.

    Raises:
        SessionError: ``folder`` holds no session.
    """
    data = load_session(folder)
    drawn, note = session_figures(data)
    titles = {
        "progress": "Objectives and best so far",
        "variables": "Variables",
        "belief": "The model's belief along each variable",
        "belief-map": "The model's belief over two variables",
        "pareto": "Pareto front",
        "constraints": "Constraints",
    }
    parts = [_head(data), _summary(data)]
    for name, figure in drawn.items():
        parts.append(f"<h2>{titles[name]}</h2>")
        if name == "belief":
            parts.append(f'<p class="note">{html.escape(note)}</p>')
        parts.append(_img(figure, titles[name]))
    if "belief" not in drawn:
        parts.append(f"<h2>The model's belief</h2><p>{html.escape(note)}</p>")
    parts += [_failures(data), _decisions(data), "</body></html>"]
    return "\n".join(parts)


def planner_label(data: SessionData) -> str:
    """The planner and what sets it apart: its options, initial design and batch size (the group a session falls
    in when sessions are compared)."""
    planner = data.spec.planner
    label = planner.name
    if planner.options:
        label += " " + json.dumps(planner.options, sort_keys=True, default=str)
    if planner.initial_design:
        label += f" initial_design={planner.initial_design}"
    if planner.batch_size != 1:
        label += f" batch_size={planner.batch_size}"
    return label


def _img(figure: Figure, alt: str) -> str:
    encoded = base64.b64encode(figures.png(figure)).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{encoded}">'


def _head(data: SessionData) -> str:
    title = html.escape(f"closedloop report: {data.spec.name}")
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{title}</title><style>{STYLE}</style></head><body><h1>{title}</h1>"
    )


def _summary(data: SessionData) -> str:
    status = data.status
    best = data.tally.best_observation
    rows: list[tuple[str, Any]] = [
        ("state", status.get("state")),
        ("session", status.get("session_id")),
        ("store", status.get("store")),
        ("planner", planner_label(data)),
        ("experiments", f"{status['experiments']} ok of a budget of {status['budget']}"),
        ("failed", status["failed"]),
        ("interrupted or aborted", status["interrupted"]),
        ("infeasible", status["infeasible"]),
        ("with a constraint output missing", status.get("missing", 0)),
    ]
    if best is not None:
        values = ", ".join(f"{k} = {v:.6g}" for k, v in best.values.items())
        point = ", ".join(f"{k} = {_num(v)}" for k, v in data.point(best).items())
        rows += [("best", f"{values} at {point} ({best.proposal_id})")]
    if data.pending:
        rows += [("next proposal", "; ".join(f"{p.id}: {_point(p.setpoints)}" for p in data.pending))]
    rows += [("written", datetime.datetime.now().astimezone().isoformat(timespec="seconds"))]
    items = "".join(f"<dt>{html.escape(k)}</dt><dd>{html.escape(str(v))}</dd>" for k, v in rows)
    return f"<dl>{items}</dl>"


def _num(value: Any) -> str:
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def _point(point: dict[str, Any]) -> str:
    return ", ".join(f"{k} = {_num(v)}" for k, v in point.items())


def _table(columns: list[str], rows: list[list[Any]], empty: str) -> str:
    if not rows:
        return f"<p>{html.escape(empty)}</p>"
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(_cell(v))}</td>" for v in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _cell(value: Any) -> str:
    return "" if value is None else _num(value)


def _failures(data: SessionData) -> str:
    rows = []
    for n, o in enumerate(data.observations, start=1):
        if not o.ok:
            rows.append([n, o.proposal_id, o.status.value, _point(data.point(o)), o.error or ""])
    table = _table(["experiment", "proposal", "status", "point", "reason"], rows, "No run failed.")
    return f"<h2>Failures</h2>{table}"


def _decisions(data: SessionData) -> str:
    """Every decision an operator made, one row each; the review policy's own approvals counted in one line."""
    rows, by_policy = [], 0
    for entry in data.trail:
        if entry["source"] != "decision":
            continue
        decision = entry["decision"]
        if entry.get("via") == "policy" and entry["what"] == "approve":
            by_policy += 1
            continue
        what = ", ".join(decision.get("proposal_ids") or []) or "all shown"
        if decision.get("setpoints"):
            what += f" -> {_point(decision['setpoints'])}"
        when = datetime.datetime.fromtimestamp(entry["timestamp"]).astimezone().strftime("%Y-%m-%d %H:%M:%S")
        rows.append([when, entry.get("who"), entry.get("via"), entry["what"], what, entry["why"]])
    table = _table(["when", "who", "how", "verdict", "proposals", "why"], rows, "No operator decision was recorded.")
    note = f'<p class="note">{by_policy} proposal(s) approved by the review policy.</p>' if by_policy else ""
    return f"<h2>Decisions</h2>{table}{note}"
