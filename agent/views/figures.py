"""A session's figures, drawn with matplotlib's object interface (``Figure`` with the Agg canvas, never pyplot, so
no global state changes): progress, variable traces, the model's belief, the Pareto front, the constraints.

Each function takes a :class:`~agent.views.SessionData` and returns a ``Figure`` (or None when the session has
nothing of that kind to draw); :func:`png` encodes one.
"""

from __future__ import annotations

import io
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from agent.views.data import Belief, SessionData
from closedloop.problem import Direction
from closedloop.records import Observation, ObservationStatus

#: Marker and colour per way a point came about or ended.
STYLES: dict[str, dict[str, Any]] = {
    "planner": {"marker": "o", "color": "#1f77b4", "label": "planner"},
    "operator": {"marker": "^", "color": "#2ca02c", "label": "added by an operator"},
    "edited": {"marker": "D", "color": "#9467bd", "label": "edited by an operator"},
    "failed": {"marker": "x", "color": "#d62728", "label": "failed"},
    "interrupted": {"marker": "X", "color": "#ff7f0e", "label": "interrupted or aborted"},
    "infeasible": {"marker": "o", "color": "#bbbbbb", "label": "infeasible"},
}
WIDTH = 9.0


def new_figure(rows: int = 1, height: float = 3.2) -> Figure:
    """A figure with its Agg canvas attached, ``rows`` panels high."""
    figure = Figure(figsize=(WIDTH, height * rows), layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def png(figure: Figure, dpi: int = 90) -> bytes:
    """The figure as PNG bytes."""
    out = io.BytesIO()
    figure.savefig(out, format="png", dpi=dpi)
    return out.getvalue()


def _size(n: int) -> float:
    """A marker size that keeps ``n`` points apart: large for a few, small for thousands."""
    return max(3.0, min(18.0, 1500.0 / max(n, 1)))


def _legend(ax: Any) -> None:
    """The legend beside the axes, where it hides no point."""
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)


def _label(data: SessionData, name: str) -> str:
    units = data.spec.variables[name].units if name in data.spec.variables else ""
    return f"{name} [{units}]" if units else name


def _kind(data: SessionData, observation: Observation) -> str:
    if observation.status == ObservationStatus.FAILED or (
        observation.status == ObservationStatus.OK and not observation.ok
    ):
        return "failed"
    if observation.status != ObservationStatus.OK:
        return "interrupted"
    if not data.spec.feasible(observation.values):
        return "infeasible"
    return data.origin(observation)


def best_so_far(data: SessionData, objective: str) -> list[float | None]:
    """The best feasible value of ``objective`` after each experiment (None before the first)."""
    sign = 1.0 if data.spec.objectives[objective].direction == Direction.MAXIMIZE else -1.0
    best: float | None = None
    out: list[float | None] = []
    for o in data.observations:
        if o.ok and data.spec.feasible(o.values) and objective in o.values:
            value = o.values[objective]
            best = value if best is None or sign * value > sign * best else best
        out.append(best)
    return out


def progress(data: SessionData) -> Figure | None:
    """Every observation of each objective against experiment number, marked by how it came about and ended,
    with the best so far; failed runs sit on the axis's floor."""
    if not data.observations:
        return None
    objectives = list(data.spec.objectives)
    figure = new_figure(len(objectives))
    for ax, objective in zip(figure.subplots(len(objectives), 1, squeeze=False)[:, 0], objectives, strict=True):
        numbers = list(range(1, len(data.observations) + 1))
        values = [o.values.get(objective) for o in data.observations]
        known = [v for v in values if v is not None]
        floor = min(known) if known else 0.0
        groups: dict[str, tuple[list[int], list[float]]] = {}
        for n, o, v in zip(numbers, data.observations, values, strict=True):
            kind = _kind(data, o)
            xs, ys = groups.setdefault(kind, ([], []))
            xs.append(n)
            ys.append(floor if v is None or kind in ("failed", "interrupted") else v)
        for kind in STYLES:  # the planner's points first, the rarer kinds drawn over them
            if kind not in groups:
                continue
            xs, ys = groups[kind]
            style = STYLES[kind]
            size = _size(len(data.observations)) * (1 if kind == "planner" else 2.5)
            ax.scatter(xs, ys, s=size, marker=style["marker"], color=style["color"], label=style["label"], zorder=4)
        best = best_so_far(data, objective)
        ax.step(
            numbers, [float("nan") if b is None else b for b in best], where="post", color="black", label="best so far"
        )
        ax.set_xlabel("experiment")
        ax.set_ylabel(f"{objective} ({data.spec.objectives[objective].direction.value})")
        ax.grid(alpha=0.3)
        _legend(ax)
    return figure


def traces(data: SessionData) -> Figure | None:
    """Each numeric variable's value (read back) against experiment number, with its search range."""
    names = data.variables
    if not data.observations or not names:
        return None
    figure = new_figure(len(names), height=2.2)
    for ax, name in zip(figure.subplots(len(names), 1, squeeze=False)[:, 0], names, strict=True):
        numbers, ys, colours = [], [], []
        for n, o in enumerate(data.observations, start=1):
            value = data.point(o).get(name)
            if isinstance(value, int | float):
                numbers.append(n)
                ys.append(float(value))
                colours.append(STYLES[_kind(data, o)]["color"])
        ax.scatter(numbers, ys, s=_size(len(numbers)), c=colours, zorder=3)
        if len(numbers) <= 100:  # a line through hundreds of points hides them
            ax.plot(numbers, ys, color="#888888", linewidth=0.5)
        for edge in data.bounds(name):
            ax.axhline(edge, color="#999999", linestyle=":", linewidth=1)
        ax.set_ylabel(_label(data, name))
        ax.set_xlabel("experiment")
        ax.grid(alpha=0.3)
    return figure


def _observed(data: SessionData, name: str, objective: str) -> tuple[list[float], list[float]]:
    xs, ys = [], []
    for o in data.observations:
        value = data.point(o).get(name)
        if o.ok and objective in o.values and isinstance(value, int | float):
            xs.append(float(value))
            ys.append(o.values[objective])
    return xs, ys


def belief_lines(data: SessionData, belief: Belief) -> Figure:
    """Posterior mean and two standard deviations of each objective along each variable through the best point,
    with every ok observation (projected) and the next proposal(s)."""
    names, objectives = list(belief.lines), list(data.spec.objectives)
    figure = new_figure(len(objectives), height=3.0)
    axes = figure.subplots(len(objectives), len(names), squeeze=False)
    for i, objective in enumerate(objectives):
        for j, name in enumerate(names):
            ax = axes[i, j]
            xs, by_objective = belief.lines[name]
            mean, std = by_objective[objective]
            ax.fill_between(
                xs,
                [m - 2 * s for m, s in zip(mean, std, strict=True)],
                [m + 2 * s for m, s in zip(mean, std, strict=True)],
                color="#1f77b4",
                alpha=0.2,
                label="mean ± 2 sd",
            )
            ax.plot(xs, mean, color="#1f77b4", label="posterior mean")
            ox, oy = _observed(data, name, objective)
            ax.scatter(
                ox, oy, s=_size(len(ox)) / 2, color="#444444", alpha=0.5, label="observations (projected)", zorder=3
            )
            ax.axvline(float(belief.through[name]), color="black", linestyle="--", linewidth=1, label="best point")
            for k, proposal in enumerate(data.pending):
                value = proposal.setpoints.get(name)
                if isinstance(value, int | float):
                    ax.axvline(float(value), color="#d62728", linewidth=1.5, label="next proposal" if k == 0 else None)
            ax.set_xlabel(_label(data, name))
            if j == 0:
                ax.set_ylabel(objective)
            ax.grid(alpha=0.3)
    _legend(axes[0, -1])
    return figure


def belief_map(data: SessionData, belief: Belief) -> Figure | None:
    """The posterior mean (left) and standard deviation (right) of each objective over the first two variables
    (the others at the best point), with the observations, the best point and the next proposal(s)."""
    if belief.plane is None:
        return None
    gx, gy, maps = belief.plane
    xname, yname = list(belief.lines)[:2]
    objectives = list(maps)
    figure = new_figure(len(objectives), height=3.6)
    axes = figure.subplots(len(objectives), 2, squeeze=False)
    points = [data.point(o) for o in data.observations if o.ok]
    for i, objective in enumerate(objectives):
        for j, (grid, title) in enumerate(zip(maps[objective], ("posterior mean", "posterior sd"), strict=True)):
            ax = axes[i, j]
            shown = ax.contourf(gx, gy, grid, levels=20, cmap="viridis")
            figure.colorbar(shown, ax=ax)
            ax.scatter(
                [p[xname] for p in points],
                [p[yname] for p in points],
                s=_size(len(points)),
                color="white",
                edgecolors="black",
                linewidths=0.3,
                label="observations",
            )
            ax.scatter(
                [belief.through[xname]],
                [belief.through[yname]],
                marker="*",
                s=120,
                color="gold",
                edgecolors="black",
                label="best",
            )
            nxt = [p.setpoints for p in data.pending]
            if nxt:
                ax.scatter(
                    [p.get(xname) for p in nxt],
                    [p.get(yname) for p in nxt],
                    marker="P",
                    s=80,
                    color="#d62728",
                    label="next proposal",
                )
            ax.set_title(f"{objective}: {title}", fontsize="small")
            ax.set_xlabel(_label(data, xname))
            ax.set_ylabel(_label(data, yname))
    axes[0, 0].legend(fontsize="x-small", loc="best")
    return figure


def pareto(data: SessionData) -> Figure | None:
    """For two or more objectives: the first two against each other, the front apart from the dominated points."""
    objectives = list(data.spec.objectives)
    if len(objectives) < 2 or not any(o.ok for o in data.observations):
        return None
    a, b = objectives[:2]
    front = {id(o) for o in data.front()}
    figure = new_figure(height=4.0)
    ax = figure.subplots()
    ok = [o for o in data.observations if o.ok and a in o.values and b in o.values]
    groups = {
        "dominated": [o for o in ok if id(o) not in front and data.spec.feasible(o.values)],
        "infeasible": [o for o in ok if not data.spec.feasible(o.values)],
    }
    for kind, colour, marker in (("dominated", "#999999", "o"), ("infeasible", "#d62728", "x")):
        if groups[kind]:
            xs, ys = [o.values[a] for o in groups[kind]], [o.values[b] for o in groups[kind]]
            ax.scatter(xs, ys, s=14, color=colour, marker=marker, label=kind)
    line = sorted((o for o in ok if id(o) in front), key=lambda o: o.values[a])
    ax.plot([o.values[a] for o in line], [o.values[b] for o in line], "o-", color="#1f77b4", label="Pareto front")
    ax.set_xlabel(f"{a} ({data.spec.objectives[a].direction.value})")
    ax.set_ylabel(f"{b} ({data.spec.objectives[b].direction.value})")
    ax.grid(alpha=0.3)
    _legend(ax)
    return figure


def constraints(data: SessionData) -> Figure | None:
    """Each constraint's measured value against experiment number, feasible and infeasible apart, with its
    limit."""
    names = list(data.spec.constraints)
    if not names or not data.observations:
        return None
    figure = new_figure(len(names), height=2.6)
    for ax, name in zip(figure.subplots(len(names), 1, squeeze=False)[:, 0], names, strict=True):
        constraint = data.spec.constraints[name]
        for feasible, colour, label in ((True, "#2ca02c", "feasible"), (False, "#d62728", "infeasible")):
            pts = [
                (n, o.values[name])
                for n, o in enumerate(data.observations, start=1)
                if o.ok and name in o.values and constraint.satisfied(o.values[name]) == feasible
            ]
            ax.scatter([p[0] for p in pts], [p[1] for p in pts], s=12, color=colour, label=label)
        limit = constraint.less_than if constraint.less_than is not None else constraint.greater_than
        side = "<" if constraint.less_than is not None else ">"
        ax.axhline(float(limit or 0.0), color="black", linestyle="--", label=f"{name} {side} {limit}")
        ax.set_xlabel("experiment")
        ax.set_ylabel(name)
        ax.grid(alpha=0.3)
        _legend(ax)
    return figure
