"""``SESSION.md``: a bundle's card, for people: what was optimized and how, how it went, who decided what, on which
software, and how to reproduce it. Written from a session folder's data (:class:`agent.views.data.SessionData`),
with its convergence plot (:func:`agent.views.figures.progress`) beside it as a PNG.
"""

from __future__ import annotations

import datetime
import json
from collections import Counter
from pathlib import Path
from typing import Any

from agent.views import figures
from agent.views.data import SessionData

PLOT = "convergence.png"


def write_plot(data: SessionData, path: Path) -> bool:
    """Write the convergence plot (each objective per experiment, and the best so far); False when there is no
    observation to plot."""
    figure = figures.progress(data)
    if figure is None:
        return False
    path.write_bytes(figures.png(figure, dpi=72))
    return True


def _num(value: Any) -> str:
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def _point(point: dict[str, Any]) -> str:
    return ", ".join(f"{k} = {_num(v)}" for k, v in point.items()) or "-"


def _cell(value: Any) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def _table(columns: list[str], rows: list[list[Any]]) -> list[str]:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return lines


def _problem(data: SessionData) -> list[str]:
    spec = data.spec
    lines = ["## What was optimized", ""]
    for name, objective in spec.objectives.items():
        lines.append(f"- objective `{name}`: {objective.direction.value}")
    for name, constraint in spec.constraints.items():
        lines.append(f"- constraint `{name}`: {json.dumps(constraint.model_dump(mode='json'), default=str)}")
    lines += ["", "### Variables and limits", ""]
    rows = []
    for name, variable in spec.variables.items():
        search = variable.bounds if variable.bounds is not None else variable.values
        rows.append([name, variable.units or "", search, getattr(variable, "hard_limits", None), variable.max_step])
    lines += _table(["variable", "units", "searched", "hard limits", "max step"], rows)
    return lines


def _planner(data: SessionData, environment: dict[str, Any]) -> list[str]:
    spec = data.spec
    builds = environment.get("planner_builds") or []
    first = builds[0]["planner"] if builds else {}
    lines = ["", "## Planner", ""]
    lines.append(
        f"- `{spec.planner.name}` ({first.get('class', 'class not recorded')}, version {first.get('version')})"
    )
    lines.append(f"- options: `{json.dumps(spec.planner.options, default=str)}`")
    lines.append(f"- batch size {spec.planner.batch_size}, initial design {spec.planner.initial_design}")
    lines.append(f"- seed: {first.get('seed', spec.seed)}; built {len(builds)} time(s) (the session's processes)")
    prior = environment.get("prior")
    if prior:
        lines.append(f"- warm-started from {prior.get('source')}: {prior.get('kept')} prior observation(s)")
    return lines


def _outcome(data: SessionData, plotted: bool) -> list[str]:
    status = data.status
    lines = ["", "## How it went", ""]
    lines.append(f"- state: {status['state']}")
    lines.append(f"- experiments: {status['experiments']} ok of a budget of {status['budget']}")
    lines.append(f"- failed: {status['failed']}, interrupted or aborted: {status['interrupted']}")
    best = data.tally.best_observation
    if best is not None:
        values = ", ".join(f"{k} = {v:.6g}" for k, v in best.values.items())
        lines.append(f"- best: {values} at {_point(data.point(best))} ({best.proposal_id})")
    if plotted:
        lines += ["", f"![convergence]({PLOT})"]
    return lines


def _decisions(data: SessionData) -> list[str]:
    lines = ["", "## Who approved what", ""]
    counts: Counter[tuple[str, str, str]] = Counter()
    for entry in data.trail:
        if entry["source"] == "decision":
            counts[(str(entry.get("who")), str(entry.get("via")), str(entry["what"]))] += 1
    if not counts:
        return [*lines, "No decision was recorded."]
    rows = [[who, via, what, n] for (who, via, what), n in sorted(counts.items())]
    return lines + _table(["who", "how", "verdict", "proposals"], rows) + ["", "Every decision: `decisions.json`."]


def _software(environment: dict[str, Any]) -> list[str]:
    versions = environment.get("versions") or {}
    rows = [[name, version or "not installed"] for name, version in versions.items()]
    return ["", "## Software", "", *_table(["package", "version"], rows)]


def card(data: SessionData, environment: dict[str, Any], plotted: bool) -> str:
    """The card's Markdown text (see the module's docstring)."""
    status = data.status
    lines = [f"# {data.spec.name}", ""]
    lines.append(
        f"Session `{status['session_id']}`, exported {datetime.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}."
    )
    lines += ["", *_problem(data), *_planner(data, environment), *_outcome(data, plotted)]
    lines += [*_decisions(data), *_software(environment)]
    lines += [
        "",
        "## How to reproduce it",
        "",
        "- Check that the planner re-derives every proposal from the data it had: `closedloop replay THIS_BUNDLE`.",
        "- Go on from these observations in a new session: `closedloop run session.yaml --from THIS_BUNDLE`.",
        "- Every observation with its lineage: `observations.csv` (or `.parquet`); the run documents: `runs/`;",
        "  the store itself: `store.sqlite`; every file's checksum: `ro-crate-metadata.json`.",
        "",
    ]
    return "\n".join(lines)
