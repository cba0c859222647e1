"""``closedloop bench page``: a finished campaign's dataset as the Markdown tables of the benchmark pages.

The tables come from the dataset alone (``runs.parquet``, ``experiments.parquet``, ``campaign.json`` and the card's
command), so whoever holds a campaign folder, from this repository or another group, renders the same table:

- ``regret`` (:doc:`planners`): per problem and planner, the median final regret with its interquartile range,
  the worst seed, the hit rate (within 1 % of the optimum), the median seconds per model-based proposal, and
  ours over each other planner (median regret and seconds, both from the same campaign).
- ``multi-objective``: the same for the hypervolume gap (a hit is 99 % of the largest hypervolume).
- ``constrained``: the seeds with no feasible point, the median experiment of the first feasible point, the
  median, worst and hits of the best-feasible regret, the numerical failures the planner caught by kind and the
  step that recovered from each (its ``diagnostics``), the proposals lost (runs that ended in an error: a
  ``suggest`` that raised) and the median seconds per run.

Several campaign folders make one table (a problem's rows from the last folder that holds it). With ``--into``,
the table replaces what is between ``<!-- bench:NAME -->`` and ``<!-- /bench:NAME -->`` in a page, and the prose
around it stays as written.
"""

from __future__ import annotations

import json
import re
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.campaign.errors import CampaignError

TABLES = ("regret", "multi-objective", "constrained")


@dataclass
class Cell:
    """One (problem, planner) of one campaign: what its runs measured."""

    problem: str
    planner: str
    campaign: str
    runs: int = 0
    finals: list[float] = field(default_factory=list)  # final regret of the runs that finished
    hits: int = 0
    proposal_seconds: list[float] = field(default_factory=list)  # model-based proposals of the finished runs
    run_seconds: list[float] = field(default_factory=list)
    first_feasible: list[int | None] = field(default_factory=list)  # every run with a regret, lost ones too
    last_regret: list[float] = field(default_factory=list)  # likewise: the regret where the run ended
    last_hits: int = 0
    lost: int = 0
    recoveries: dict[str, int] | None = None  # summed over the runs; None: the dataset does not record them
    recovered_by: dict[str, int] | None = None
    statuses: dict[str, int] = field(default_factory=dict)
    message: str = ""


@dataclass
class Campaign:
    """A campaign folder's definition, command and cells, in the order of its problems and planners."""

    path: Path
    definition: dict[str, Any]
    command: str
    versions: dict[str, str]
    cells: dict[tuple[str, str], Cell]


def fmt(value: float | None) -> str:
    """``926``, ``0.0823``, ``2.22e-03``: three significant digits, whole numbers from 100, exponent under 0.01."""
    if value is None:
        return "-"
    if value == 0:
        return "0"
    if abs(value) >= 100:
        return f"{value:.0f}"
    return f"{value:.2e}" if abs(value) < 1e-2 else f"{value:.3g}"


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def _quartiles(values: list[float]) -> tuple[float, float]:
    import numpy as np

    q1, q3 = np.quantile(np.asarray(values, dtype=float), [0.25, 0.75])
    return float(q1), float(q3)


def load(path: Path) -> Campaign:
    """Read a finished campaign's dataset.

    Raises:
        CampaignError: ``path`` holds no finished campaign (no ``campaign.json`` or no ``runs.parquet``).
    """
    import pyarrow.parquet as pq

    definition_file, runs_file, experiments_file = (
        path / n for n in ("campaign.json", "runs.parquet", "experiments.parquet")
    )
    if not all(f.is_file() for f in (definition_file, runs_file, experiments_file)):
        raise CampaignError(f"CAMPAIGNS: {path} holds no finished campaign (no campaign.json or runs.parquet)")
    definition = json.loads(definition_file.read_text())
    runs = pq.read_table(runs_file).to_pylist()
    experiments = pq.read_table(experiments_file).to_pylist()
    by_run: dict[tuple[str, str, int], list[dict[str, Any]]] = {}
    for row in experiments:
        by_run.setdefault((row["problem"], row["planner"], row["seed"]), []).append(row)
    cells = {
        (q, p): Cell(problem=q, planner=p, campaign=path.name)
        for q in definition["problems"]
        for p in definition["planners"]
    }
    for run in sorted(runs, key=lambda r: r["seed"]):
        rows = sorted(by_run.get((run["problem"], run["planner"], run["seed"]), []), key=lambda r: r["experiment"])
        _add(cells[(run["problem"], run["planner"])], run, rows, definition["initial"])
    versions = json.loads(runs[0]["versions"]) if runs and runs[0].get("versions") else {}
    return Campaign(path, definition, _command(path), versions, cells)


def _add(cell: Cell, run: dict[str, Any], rows: list[dict[str, Any]], initial: int) -> None:
    cell.runs += 1
    status = run["status"]
    cell.statuses[status] = cell.statuses.get(status, 0) + 1
    if status != "ok" and not cell.message:
        cell.message = (run.get("message") or "").splitlines()[0][:100] if run.get("message") else ""
    regrets = [r["regret"] for r in rows if r.get("regret") is not None]
    if status in ("ok", "error") and regrets:
        cell.first_feasible.append(next((r["experiment"] for r in rows if r["feasible"]), None))
        cell.last_regret.append(regrets[-1])
        cell.last_hits += bool(run.get("hit"))
        cell.lost += status == "error"
        for name in ("recoveries", "recovered_by"):
            if run.get(name) is not None:
                total = getattr(cell, name) or {}
                for kind, count in json.loads(run[name]).items():
                    total[kind] = total.get(kind, 0) + int(count)
                setattr(cell, name, total)
        if run.get("seconds") is not None:
            cell.run_seconds.append(float(run["seconds"]))
    if status == "ok" and run.get("final_regret") is not None:
        cell.finals.append(float(run["final_regret"]))
        cell.hits += bool(run.get("hit"))
        seconds = [r["seconds_per_proposal"] for r in rows if r.get("seconds_per_proposal") is not None]
        cell.proposal_seconds += seconds[initial:] or seconds


def _command(path: Path) -> str:
    """The command that made the campaign, from its card (``closedloop bench ...`` under "Reproduce")."""
    card = path / "CAMPAIGN.md"
    found = re.search(r"^## Reproduce\s+^ {4}(.+)$", card.read_text(), re.M) if card.is_file() else None
    return found.group(1).strip() if found else "closedloop bench ..."


def merge(campaigns: list[Campaign]) -> dict[str, dict[str, Cell]]:
    """Problem -> planner -> cell over several campaigns; for a (problem, planner), the last campaign wins."""
    found: dict[str, dict[str, Cell]] = {}
    for campaign in campaigns:
        for (problem, planner), cell in campaign.cells.items():
            found.setdefault(problem, {})[planner] = cell
    return found


def summary(cell: Cell) -> dict[str, Any]:
    """The statistics of a cell with finished runs, keyed as :func:`benchmarks.targets.check` reads them."""
    q1, q3 = _quartiles(cell.finals)
    return {
        "final_regret": statistics.median(cell.finals),
        "final_regret_q1": q1,
        "final_regret_q3": q3,
        "final_regret_worst": max(cell.finals),
        "hit_rate": cell.hits / len(cell.finals),
        "seconds_per_proposal": _median(cell.proposal_seconds),
    }


def _status(cell: Cell) -> str:
    others = {s: n for s, n in cell.statuses.items() if s != "ok"}
    return ", ".join(f"{n} {s}" for s, n in sorted(others.items()))


def _missing(cell: Cell) -> str:
    """Why a cell has no row of numbers: its runs did not finish, or they have no regret (a session file)."""
    if not cell.runs:
        return "no runs"
    return f"{_status(cell)}: {cell.message}" if _status(cell) else "no regret (a session file: no known optimum)"


def _regret_rows(found: dict[str, dict[str, Cell]], ours: str) -> list[str]:
    rows = []
    for problem, by_planner in found.items():
        mine = by_planner.get(ours)
        for planner, cell in by_planner.items():
            if not cell.finals:
                rows.append(f"| {problem} | {planner} | {_missing(cell)} | | | | |")
                continue
            s = summary(cell)
            ratio = _ratio(mine, cell) if mine is not None and mine.finals and planner != ours else ""
            runs = "" if len(cell.finals) == cell.runs else f" ({len(cell.finals)} of {cell.runs} runs)"
            rows.append(
                f"| {problem} | {planner}{runs} | {fmt(s['final_regret'])} [{fmt(s['final_regret_q1'])}, "
                f"{fmt(s['final_regret_q3'])}] | {fmt(s['final_regret_worst'])} | {s['hit_rate']:.0%} "
                f"| {_seconds(s['seconds_per_proposal'])} | {ratio} |"
            )
    return rows


def _ratio(mine: Cell, theirs: Cell) -> str:
    """Ours over theirs: median regret, and seconds per proposal when both ran in one campaign."""
    median = statistics.median(theirs.finals)
    regret = statistics.median(mine.finals) / median if median > 0 else float("inf")
    a, b = _median(mine.proposal_seconds), _median(theirs.proposal_seconds)
    same = mine.campaign == theirs.campaign and a is not None and b
    return f"x{fmt(regret)}, " + (f"x{a / b:.2f}" if same and a is not None and b else "other run")


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def regret_table(found: dict[str, dict[str, Cell]], ours: str = "botorch") -> str:
    """Median final regret [IQR], worst seed, hit rate, seconds per proposal, ours over each other planner."""
    head = [
        "| problem | planner | median [IQR] | worst | hit | s/proposal | ours / planner: median, s/proposal |",
        "|---|---|---|---|---|---|---|",
    ]
    return "\n".join(head + _regret_rows(found, ours))


def multi_objective_table(found: dict[str, dict[str, Cell]], ours: str = "botorch") -> str:
    """As :func:`regret_table`, for the hypervolume gap (a hit: 99 % of the largest hypervolume)."""
    head = [
        "| problem | planner | hypervolume gap: median [IQR] | worst | hit (99 %) | s/proposal "
        "| ours / planner: gap, s/proposal |",
        "|---|---|---|---|---|---|---|",
    ]
    return "\n".join(head + _regret_rows(found, ours))


def constrained_table(found: dict[str, dict[str, Cell]], ours: str = "botorch") -> str:
    """Feasibility and best-feasible regret per problem and planner (runs that lost a proposal included)."""
    lines = [
        "| problem | planner | seeds with no feasible point | median experiment of the first feasible point "
        "| best-feasible regret: median [IQR] | worst | hits (1 %) | failures caught | recovered by "
        "| proposals lost | s/run |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    del ours  # every contender's row stands alone here
    for problem, by_planner in found.items():
        for planner, cell in by_planner.items():
            n = len(cell.last_regret)
            if not n:
                lines.append(f"| {problem} | {planner} | {_missing(cell)} | | | | | | | | |")
                continue
            firsts = [f for f in cell.first_feasible if f is not None]
            first = "-"
            if firsts:
                first = f"{statistics.median(firsts):g}" + ("" if len(firsts) == n else f" (of {len(firsts)})")
            median, (q1, q3) = statistics.median(cell.last_regret), _quartiles(cell.last_regret)
            lines.append(
                f"| {problem} | {planner} | {n - len(firsts)} of {n} | {first} "
                f"| {fmt(median)} [{fmt(q1)}, {fmt(q3)}] | {fmt(max(cell.last_regret))} | {cell.last_hits} of {n} "
                f"| {_counts(cell.recoveries)} | {_counts(cell.recovered_by)} | {cell.lost} "
                f"| {fmt(_median(cell.run_seconds))} |"
            )
    return "\n".join(lines)


def _counts(counts: dict[str, int] | None) -> str:
    """``cholesky 2, nan 1``; ``0`` for none; ``-`` when the dataset does not record them."""
    if counts is None:
        return "-"
    return ", ".join(f"{kind} {n}" for kind, n in sorted(counts.items()) if n) or "0"


RENDER: dict[str, Callable[[dict[str, dict[str, Cell]], str], str]] = {
    "regret": regret_table,
    "multi-objective": multi_objective_table,
    "constrained": constrained_table,
}


def _seeds(n: int) -> str:
    return "seed 0" if n == 1 else f"seeds 0-{n - 1}"


def provenance(campaigns: list[Campaign]) -> str:
    """What was run, with what, and the commands: one paragraph per campaign."""
    lines = []
    for c in campaigns:
        d = c.definition
        versions = ", ".join(f"{k} {v}" for k, v in c.versions.items())
        lines.append(
            f"- `{c.path.name}`: {', '.join(d['problems'])}; {_seeds(d['seeds'])}, {d['experiments']} experiments "
            f"({d['initial']} initial Sobol points), {d['batch']} per proposal, problem set {d['problem_set']}; "
            f"{versions}.  \n  `{c.command}`"
        )
    return "\n".join(lines)


def notes(found: dict[str, dict[str, Cell]]) -> list[str]:
    """One line per (problem, planner) whose runs did not all finish."""
    return [
        f"- {problem}, {planner}: {_status(cell)} of {cell.runs} runs ({cell.message})"
        for problem, by_planner in found.items()
        for planner, cell in by_planner.items()
        if _status(cell) and cell.message
    ]


def render(campaigns: list[Campaign], table: str, ours: str = "botorch") -> str:
    """The table of ``campaigns`` with the runs that did not finish and what was run, as Markdown."""
    if table not in RENDER:
        raise CampaignError(f"--table: unknown table {table!r}; one of {', '.join(TABLES)}")
    found = merge(campaigns)
    parts = [RENDER[table](found, ours)]
    if notes(found):
        parts.append("Runs that did not finish:\n\n" + "\n".join(notes(found)))
    parts.append("Made by `closedloop bench page` from:\n\n" + provenance(campaigns))
    return "\n\n".join(parts) + "\n"


def markers(section: str) -> tuple[str, str]:
    """The comments that delimit ``section`` in a page."""
    return f"<!-- bench:{section} -->", f"<!-- /bench:{section} -->"


def fill(page: str, section: str, text: str) -> str:
    """``page`` with what is between ``section``'s markers replaced by ``text``.

    Raises:
        CampaignError: the page lacks the markers, or holds them more than once or in the wrong order.
    """
    start, end = markers(section)
    if page.count(start) != 1 or page.count(end) != 1 or page.index(start) > page.index(end):
        raise CampaignError(f"--into: the page needs '{start}' and then '{end}', each once")
    before, rest = page.split(start)
    _, after = rest.split(end)
    return f"{before}{start}\n{text.strip()}\n{end}{after}"
