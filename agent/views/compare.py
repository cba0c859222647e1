"""``closedloop compare``: sessions on the same problem side by side in one self-contained HTML page.

Sessions that share a planner and its options form a group: the page draws each group's median best-so-far
against experiment number with the spread (lowest to highest) over its sessions, and tabulates each session's
final best, the experiments it took to come within 1 % of the best any of them found, its seconds per proposal
and its failures. Sessions whose variables, objectives or constraints differ are refused.
"""

from __future__ import annotations

import html
import statistics
from pathlib import Path
from typing import Any

from agent.views import figures
from agent.views.data import SessionData, load_session
from agent.views.report import STYLE, _img, _table, planner_label
from closedloop.errors import SpecError
from closedloop.problem import Direction

#: How close to the best found counts as reaching it (a fraction of its magnitude).
WITHIN = 0.01


def comparable(sessions: list[SessionData]) -> None:
    """Check that the sessions pose the same problem: same variables (names and search ranges), objectives
    (names and directions) and constraints (names and limits).

    Raises:
        SpecError: naming the first session that differs from the first one, and how.
    """
    first = sessions[0]
    for other in sessions[1:]:
        difference = _difference(first, other)
        if difference:
            raise SpecError(f"{other.folder} cannot be compared with {first.folder}: {difference}")


def _difference(a: SessionData, b: SessionData) -> str | None:
    for what, left, right in (
        ("variables", a.spec.variables, b.spec.variables),
        ("objectives", a.spec.objectives, b.spec.objectives),
        ("constraints", a.spec.constraints, b.spec.constraints),
    ):
        if set(left) != set(right):
            only_a, only_b = sorted(set(left) - set(right)), sorted(set(right) - set(left))
            first, this = ", ".join(only_a) or "none", ", ".join(only_b) or "none"
            return f"{what} differ ({first} only in the first; {this} only in this one)"
    for name, v in a.spec.variables.items():
        w = b.spec.variables[name]
        if (v.bounds, v.values) != (w.bounds, w.values):
            return f"variables.{name} differs ({v.bounds or v.values} against {w.bounds or w.values})"
    for name, o in a.spec.objectives.items():
        if o.direction != b.spec.objectives[name].direction:
            other = b.spec.objectives[name].direction.value
            return f"objectives.{name}.direction differs ({o.direction.value} against {other})"
    for name, c in a.spec.constraints.items():
        d = b.spec.constraints[name]
        if (c.less_than, c.greater_than) != (d.less_than, d.greater_than):
            return f"constraints.{name} differs"
    return None


def seconds_per_proposal(data: SessionData) -> float | None:
    """Wall-clock seconds per proposal: the span of the store's proposal timestamps over the proposals made
    since the first (so it includes the runs' own time, not the planner's alone); None with fewer than two."""
    times = sorted(p.created for p in data.proposals.values() if p.origin == "planner")
    if len(times) < 2:
        return None
    return (times[-1] - times[0]) / (len(times) - 1)


def _row(data: SessionData, objective: str, best_found: float | None, sign: float) -> list[Any]:
    curve = figures.best_so_far(data, objective)
    final = next((v for v in reversed(curve) if v is not None), None)
    reached = None
    if best_found is not None:
        margin = WITHIN * abs(best_found)
        reached = next((n for n, v in enumerate(curve, 1) if v is not None and sign * (best_found - v) <= margin), None)
    spp = seconds_per_proposal(data)
    return [
        str(data.folder),
        planner_label(data),
        len(data.observations),
        final,
        reached if reached is not None else "not reached",
        None if spp is None else round(spp, 3),
        data.status["failed"] + data.status["interrupted"],
    ]


def compare_html(folders: list[Path]) -> str:
    """The comparison of the sessions in ``folders`` as one HTML page (see the module docstring).

    Raises:
        SessionError: a folder holds no session.
        SpecError: fewer than two sessions, or sessions that pose different problems.
    """
    if len(folders) < 2:
        raise SpecError("compare needs two session folders or more")
    sessions = [load_session(folder) for folder in folders]
    comparable(sessions)
    objective = next(iter(sessions[0].spec.objectives))
    sign = 1.0 if sessions[0].spec.objectives[objective].direction == Direction.MAXIMIZE else -1.0
    finals = [v for s in sessions for v in figures.best_so_far(s, objective) if v is not None]
    best_found = (max if sign > 0 else min)(finals) if finals else None
    groups: dict[str, list[SessionData]] = {}
    for session in sessions:
        groups.setdefault(planner_label(session), []).append(session)
    columns = [
        "session",
        "planner",
        "experiments",
        f"final best {objective}",
        "experiments to within 1 % of the best found",
        "seconds per proposal",
        "failed or interrupted",
    ]
    rows = [_row(s, objective, best_found, sign) for s in sessions]
    title = html.escape(f"closedloop compare: {sessions[0].spec.name}")
    return "\n".join(
        [
            f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" '
            f'content="width=device-width, initial-scale=1"><title>{title}</title><style>{STYLE}</style></head>'
            f"<body><h1>{title}</h1>",
            f"<h2>Best {html.escape(objective)} so far</h2>",
            _img(_curves(groups, objective), f"best {objective} so far per planner"),
            f'<p class="note">Median over the sessions of each planner, shaded from the lowest to the highest. '
            f"Best found over all sessions: {best_found if best_found is None else f'{best_found:.6g}'}.</p>",
            "<h2>Sessions</h2>",
            _table(columns, rows, "No sessions."),
            '<p class="note">Seconds per proposal: from the store\'s proposal timestamps (the span from the first '
            "planner proposal to the last, over their number), so run time is included.</p>",
            "</body></html>",
        ]
    )


def _curves(groups: dict[str, list[SessionData]], objective: str) -> Any:
    figure = figures.new_figure(height=4.0)
    ax = figure.subplots()
    for label, members in groups.items():
        curves = [figures.best_so_far(s, objective) for s in members]
        length = max(len(c) for c in curves)
        xs: list[int] = []
        median: list[float] = []
        low: list[float] = []
        high: list[float] = []
        for n in range(length):
            known = [v for c in curves if n < len(c) and (v := c[n]) is not None]
            if known:
                xs.append(n + 1)
                median.append(statistics.median(known))
                low.append(min(known))
                high.append(max(known))
        (line,) = ax.step(xs, median, where="post", label=f"{label} ({len(members)} session(s))")
        ax.fill_between(xs, low, high, step="post", alpha=0.2, color=line.get_color())
    ax.set_xlabel("experiment")
    ax.set_ylabel(f"best {objective} so far")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small", loc="upper center", bbox_to_anchor=(0.5, -0.15))
    return figure
