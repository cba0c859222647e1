"""A finished campaign as a dataset: tables (Parquet and CSV), a summary, plots and a card.

``runs.parquet``/``runs.csv`` hold one row per (planner, problem, seed) and ``experiments.parquet``/
``experiments.csv`` one row per experiment, each with the planner, its options, the problem, the seed, the worker
that ran it and the versions it ran with. ``summary.md`` has, per problem and planner, the median and worst final
regret, the hits within 1 %, the seconds per proposal, and each planner's median regret over the best peer's on
that problem. ``best_<problem>.png`` draws the best so far with its spread over seeds. ``CAMPAIGN.md`` says what
was run, on what, and how to reproduce it.
"""

from __future__ import annotations

import json
import math
import re
import statistics
from pathlib import Path
from typing import Any

from benchmarks._peers import PEER_NAMES
from benchmarks.campaign.problems import SessionProblem, resolve
from benchmarks.campaign.spec import CampaignSpec
from benchmarks.planners import Run, _fmt, plot_regret, summarize

IDENTITY = ("planner", "problem", "seed")


def tables(results: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The run rows and the experiment rows of ``results`` (dicts and lists as JSON text)."""
    runs, experiments = [], []
    for result in results:
        run = {k: _flat(v) for k, v in result["run"].items()}
        runs.append(run)
        shared = {k: run[k] for k in (*IDENTITY, "worker", "versions")} | {"options": run.get("options", "{}")}
        experiments += [shared | row for row in result["experiments"]]
    order = {k: i for i, k in enumerate(("planner", "options", "problem", "seed", "experiment"))}
    experiments = [dict(sorted(row.items(), key=lambda kv: order.get(kv[0], 99))) for row in experiments]
    return runs, experiments


def _flat(value: Any) -> Any:
    return json.dumps(value, sort_keys=True) if isinstance(value, dict | list) else value


def write_tables(out: Path, results: list[dict[str, Any]]) -> None:
    """``runs`` and ``experiments`` as Parquet and CSV in ``out``."""
    import pyarrow as pa
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    for name, rows in zip(("runs", "experiments"), tables(results), strict=True):
        table = pa.Table.from_pylist(rows)
        pq.write_table(table, out / f"{name}.parquet")
        pcsv.write_csv(table, out / f"{name}.csv")


def summaries(spec: CampaignSpec, results: list[dict[str, Any]]) -> dict[str, dict[str, dict[str, Any]]]:
    """Problem -> planner -> statistics over seeds (:func:`benchmarks.planners.summarize` on harness problems)."""
    found: dict[str, dict[str, dict[str, Any]]] = {}
    for name in spec.problems:
        problem = resolve(name)
        found[name] = {}
        for planner in spec.planners:
            mine = [r for r in results if r["run"]["problem"] == name and r["run"]["planner"] == planner]
            if isinstance(problem, SessionProblem):
                found[name][planner] = _session_summary(mine)
            else:
                runs = [_as_run(r) for r in mine]
                found[name][planner] = summarize(runs, problem, spec.initial, spec.experiments - spec.initial)
        _against_best_peer(found[name])
    return found


def _as_run(result: dict[str, Any]) -> Run:
    run = result["run"]
    return Run(
        planner=run["planner"],
        problem=run["problem"],
        seed=run["seed"],
        status=run["status"],
        message=run.get("message", ""),
        regret=result["regret"],
        seconds=result["proposal_seconds"],
        hypervolume=run.get("hypervolume"),
        warnings=run.get("warnings", 0),
    )


def _session_summary(mine: list[dict[str, Any]]) -> dict[str, Any]:
    done = [r for r in mine if r["run"]["status"] == "ok" and r["run"].get("best") is not None]
    summary: dict[str, Any] = {"runs": len(mine), "ok": len(done), "status": "ok" if done else "error"}
    if done:
        best = [r["run"]["best"] for r in done]
        summary.update(best=statistics.median(best), best_worst=min(best) if best else None)
    elif mine:
        summary["message"] = mine[0]["run"].get("message", "")
    return summary


def _against_best_peer(by_planner: dict[str, dict[str, Any]]) -> None:
    """Each planner's median final regret over the best peer's (the lowest), where a peer ran."""
    peers = {p: s for p, s in by_planner.items() if p.split("[")[0] in PEER_NAMES and "final_regret" in s}
    if not peers:
        return
    best_peer, theirs = min(peers.items(), key=lambda kv: kv[1]["final_regret"])
    for summary in by_planner.values():
        if "final_regret" in summary:
            ratio = summary["final_regret"] / theirs["final_regret"] if theirs["final_regret"] > 0 else math.inf
            summary["vs_best_peer"] = {"peer": best_peer, "regret_ratio": ratio}


def summary_table(found: dict[str, dict[str, dict[str, Any]]]) -> str:
    """Markdown: one row per (problem, planner)."""
    lines = [
        "| problem | planner | runs | median final regret | worst seed | hits within 1 % | s/proposal "
        "| regret / best peer's |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for problem, by_planner in found.items():
        for planner, s in by_planner.items():
            if "best" in s:
                lines.append(
                    f"| {problem} | {planner} | {s['ok']}/{s['runs']} | best {_fmt(s['best'])} "
                    f"| {_fmt(s['best_worst'])} | - | - | - |"
                )
            elif "final_regret" not in s:
                lines.append(
                    f"| {problem} | {planner} | {s.get('ok', 0)}/{s['runs']} | {s.get('status', '?')}: "
                    f"{s.get('message', '')[:60]} | | | | |"
                )
            else:
                peer = s.get("vs_best_peer")
                versus = f"x{_fmt(peer['regret_ratio'])} ({peer['peer']})" if peer else "-"
                lines.append(
                    f"| {problem} | {planner} | {s['ok']}/{s['runs']} | {_fmt(s['final_regret'])} "
                    f"| {_fmt(s['final_regret_worst'])} | {s['hit_rate']:.0%} | {s['seconds_per_proposal']:.3f} "
                    f"| {versus} |"
                )
    return "\n".join(lines)


def plot(out: Path, spec: CampaignSpec, results: list[dict[str, Any]]) -> list[str]:
    """One best-so-far plot per problem (regret with its spread on harness problems); returns the file names."""
    names = []
    for name in spec.problems:
        problem = resolve(name)
        mine = [r for r in results if r["run"]["problem"] == name]
        path = out / f"best_{_safe(name)}.png"
        if isinstance(problem, SessionProblem):
            _plot_values(mine, name, path)
        else:
            plot_regret([_as_run(r) for r in mine], problem, path, spec.initial)
        names.append(path.name)
    return names


def _plot_values(mine: list[dict[str, Any]], name: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for planner in dict.fromkeys(r["run"]["planner"] for r in mine):
        for r in (r for r in mine if r["run"]["planner"] == planner):
            ax.plot([row["best_so_far"] for row in r["experiments"]], alpha=0.6, label=f"{planner} s{r['run']['seed']}")
    ax.set_xlabel("experiments")
    ax.set_ylabel("best so far (as measured)")
    ax.set_title(name)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _safe(name: str) -> str:
    stem = Path(name).stem if name.endswith((".yaml", ".yml")) else name
    return re.sub(r"[^A-Za-z0-9_-]+", "_", stem)


def card(spec: CampaignSpec, command: str, found: dict[str, Any], plots: list[str], context: dict[str, Any]) -> str:
    """``CAMPAIGN.md``: what was run, on what, the results, and how to reproduce them."""
    problems = []
    for name in spec.problems:
        problem = resolve(name)
        if isinstance(problem, SessionProblem):
            problems.append(f"- `{name}`: a session file, run for real through `closedloop run`")
        else:
            kind = f"{len(problem.objective_names)} objectives" if problem.multi_objective else "1 objective"
            constraints = f", {len(problem.vocs.constraints)} constraints" if problem.vocs.constraints else ""
            problems.append(f"- `{name}`: {problem.dim}-D, {kind}{constraints}, noise sd {problem.noise:g}")
    versions = ", ".join(f"{k} {v}" for k, v in context["versions"].items())
    return "\n".join(
        [
            "# Campaign",
            "",
            f"{len(spec.planners)} planners x {len(spec.problems)} problems x {spec.seeds} seeds: "
            f"{spec.experiments} experiments per run ({spec.initial} initial Sobol points), {spec.batch} per proposal. "
            f"Problem set {spec.problem_set}.",
            "",
            "## Planners",
            *[f"- `{p}`" for p in spec.planners],
            "",
            "## Problems",
            *problems,
            "",
            "## Results",
            "",
            summary_table(found),
            "",
            "Regret of the best noiseless feasible value (the hypervolume gap for several objectives); the ratio "
            "compares each planner's median final regret with the best peer's on the same problem and seeds.",
            "",
            *[f"![{p}]({p})" for p in plots],
            "",
            "## Where it ran",
            f"{context['workers']} on {context['where']}; {context['seconds']:.0f} s of wall time. {versions}.",
            "",
            "## Reproduce",
            "",
            f"    {command}",
            "",
            "Every run's rows are in `runs.parquet` and `experiments.parquet` (and `.csv`).",
            "",
        ]
    )
