"""Planner benchmark: planners x problems x seeds, scored by simple regret, with Xopt and Ax run beside ours.

Every contender starts from ``--initial`` Sobol points and then proposes one point at a time (q = 1) for
``--budget-2d`` more experiments on 2-D problems, ``--budget-6d`` on larger ones. After each experiment the
harness records the simple regret of the best *noiseless* value among the feasible points evaluated so far (the
hypervolume gap for the multi-objective problems), and the wall time of each ``suggest(1)``. The problems, their
optima and the meaning of "within 1 %" are in :mod:`benchmarks._problems`; the peers in :mod:`benchmarks._peers`.

Output in ``--out`` (default ``benchmarks/results/<timestamp>``): ``table.md`` (also printed), ``results.json``
(every run's regret curve and proposal times, and the summary) and ``regret_<problem>.png`` (median and
interquartile band over seeds, log scale). The ratio lines compare each of our planners with each peer on the
same problems and seeds: median final regret and median seconds per model-based proposal, ours / theirs.

    python -m benchmarks.planners --planners botorch,sobol,xopt,ax --seeds 5
    python -m benchmarks.planners --planners "botorch,botorch[raw_samples=512,num_restarts=10]" --problems branin
    python -m benchmarks.planners --quick

The harness sets ``torch.set_num_threads(1)`` (``--threads``, 0 for torch's default): on this 2-core machine,
shared with other processes, two torch threads made per-proposal times both slower and far noisier (measured
for BoTorch on Branin, model-based proposals: median 1.0-1.4 s, sd 0.3-0.4 s with 2 threads; 0.11 s, sd 0.02-0.12
s with 1; Xopt 2.3-2.7 s, sd 1.0-1.2 s against 0.20-0.24 s, sd 0.04-0.07 s).

A planner entry is a registered name, an import path, ``xopt`` or ``ax``, optionally with constructor options in
brackets (``name[key=value,...]``; values parse as int, float, bool or string). Ours are built with
``planners.load_planner`` and ``n_initial=--initial`` when the constructor takes it (a generator given by import
path that takes none starts behind :class:`planners.warmup.WarmStart`'s ``--initial`` Sobol points; and, for
two objectives, the
problem's reference point, as the peers are given it). A contender that refuses a
problem (``PlannerError``/``ValueError`` when built) is reported as unsupported; an uninstalled peer as skipped.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __name__ == "__main__" and __package__ in (None, ""):
    # Run as a file: this file's folder would shadow the ``planners`` package, so put the project root first.
    _here = Path(__file__).resolve().parent
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _here]
    sys.path.insert(0, str(_here.parent))

import argparse  # noqa: E402
import datetime as dt  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import re  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
import traceback  # noqa: E402
import warnings  # noqa: E402
from dataclasses import asdict, dataclass, field  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

from benchmarks._peers import PEER_NAMES, PeerUnavailable, build_peer  # noqa: E402
from benchmarks._problems import PROBLEMS, Problem, Replay  # noqa: E402
from planners.registry import accepts_option, load_planner  # noqa: E402
from planners.warmup import WarmStart  # noqa: E402

DEFAULT_PLANNERS = "botorch,sobol,xopt,ax"
#: A planner's counters recorded with each run (in results.json, and summed in the summary), when it has them.
COUNTERS = ("n_fits", "n_reuses", "n_peak_boxes")


# -- planner specs ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PlannerSpec:
    """One contender: its label in the table (the spec as written), its name and its options."""

    label: str
    name: str
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def is_peer(self) -> bool:
        return self.name in PEER_NAMES


def parse_value(text: str) -> Any:
    """``"10"`` -> 10, ``"0.5"`` -> 0.5, ``"true"``/``"false"`` -> bool, ``"none"`` -> None, else the string."""
    lowered = text.strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered in ("none", "null"):
        return None
    for convert in (int, float):
        try:
            return convert(text.strip())
        except ValueError:
            pass
    return text.strip()


_SPEC = re.compile(r"^\s*([\w.:\-]+)\s*(?:\[(.*)\])?\s*$")


def parse_planner_specs(text: str) -> list[PlannerSpec]:
    """Split ``"botorch[n_initial=10,raw_samples=512],sobol,xopt"`` into specs (commas inside brackets kept).

    Raises:
        ValueError: an entry is malformed (unbalanced brackets, an option without ``=``, an empty name).
    """
    entries, depth, current = [], 0, ""
    for char in text:
        if char == "[":
            depth += 1
        elif char == "]":
            depth -= 1
            if depth < 0:
                raise ValueError(f"unbalanced ']' in planner list {text!r}")
        if char == "," and depth == 0:
            entries.append(current)
            current = ""
        else:
            current += char
    if depth:
        raise ValueError(f"unbalanced '[' in planner list {text!r}")
    entries.append(current)
    specs = []
    for entry in entries:
        if not entry.strip():
            continue
        match = _SPEC.match(entry)
        if not match:
            raise ValueError(f"bad planner entry {entry!r}; expected name or name[key=value,...]")
        name, body = match.group(1), match.group(2)
        options: dict[str, Any] = {}
        for item in (body or "").split(","):
            if not item.strip():
                continue
            key, sep, value = item.partition("=")
            if not sep or not key.strip():
                raise ValueError(f"bad option {item!r} in {entry.strip()!r}; expected key=value")
            options[key.strip()] = parse_value(value)
        specs.append(PlannerSpec(label=entry.strip(), name=name, options=options))
    if not specs:
        raise ValueError("no planners given")
    return specs


def _takes_option(name: str, option: str) -> bool:
    """Whether our planner ``name`` takes ``option`` (its options model, or a named constructor parameter)."""
    try:
        return accepts_option(name, option)
    except (ImportError, AttributeError, TypeError, ValueError):
        return False


class Unsupported(Exception):
    """The contender refused the problem."""


class Skipped(Exception):
    """The contender's library is not installed."""


def build_contender(spec: PlannerSpec, problem: Problem, *, seed: int, n_initial: int) -> Any:
    """The contender for one run: a peer adapter or one of our planners.

    Raises:
        Unsupported: it refused the problem. Skipped: its library is missing.
    """
    try:
        if spec.is_peer:
            return build_peer(spec.name, problem, seed=seed, n_initial=n_initial, **spec.options)
        options = dict(spec.options)
        if "n_initial" not in options and _takes_option(spec.name, "n_initial"):
            options["n_initial"] = n_initial
        if (
            problem.ref_point is not None
            and "reference_point" not in options
            and _takes_option(spec.name, "reference_point")
        ):  # the same reference point the peers are given
            options["reference_point"] = dict(zip(problem.objective_names, problem.ref_point, strict=True))
        planner = load_planner(spec.name, problem.vocs, default_seed=seed, **options)
        if "n_initial" not in options and ":" in spec.name:
            # a gest-api generator by its import path (Xopt's, say): the same Sobol start as every contender
            planner = WarmStart(problem.vocs, planner=planner, initial=n_initial, seed=seed)
        return planner
    except PeerUnavailable as exc:
        raise Skipped(str(exc)) from exc
    except ValueError as exc:  # PlannerError is a ValueError
        raise Unsupported(str(exc).splitlines()[0]) from exc


# -- one run ---------------------------------------------------------------------------------------------------


@dataclass
class Run:
    """One (planner, problem, seed): what happened and the curves."""

    planner: str
    problem: str
    seed: int
    status: str  # ok, unsupported, skipped, error
    message: str = ""
    regret: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    hypervolume: float | None = None
    warnings: int = 0
    counters: dict[str, int] = field(default_factory=dict)
    truths: list[dict[str, float]] = field(default_factory=list)


def budget_for(problem: Problem, budget_2d: int, budget_6d: int) -> int:
    """Experiments after the initial design: ``budget_2d`` up to 2-D, ``budget_6d`` above."""
    return budget_2d if problem.dim <= 2 else budget_6d


def run_one(spec: PlannerSpec, problem: Problem, *, seed: int, n_initial: int, budget: int, batch: int = 1) -> Run:
    """Run one contender on one problem for ``n_initial + budget`` experiments, one at a time (or in synchronous
    batches of ``batch`` points, :meth:`Replay.play_batches`)."""
    run = Run(planner=spec.label, problem=problem.name, seed=seed, status="ok")
    replay = Replay(problem, seed)
    dtype = torch.get_default_dtype()  # Xopt sets float64 for the whole process: the next contender must not inherit it
    contender: Any = None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            contender = build_contender(spec, problem, seed=seed, n_initial=n_initial)
            if batch == 1:
                replay.play(contender, n_initial + budget)
            else:
                replay.play_batches(contender, n_initial + budget, batch)
        except Unsupported as exc:
            run.status, run.message = "unsupported", str(exc)
        except Skipped as exc:
            run.status, run.message = "skipped", str(exc)
        except Exception as exc:  # a crash is a result: report it, go on with the next run
            run.status, run.message = "error", f"{type(exc).__name__}: {exc}"
            traceback.print_exc()
        finally:
            torch.set_default_dtype(dtype)
    run.warnings = len(caught)
    if contender is not None:
        diagnostics = getattr(contender, "diagnostics", None)  # the BoTorch planner's counters live there
        if isinstance(diagnostics, dict):
            run.counters = {k: int(diagnostics[k]) for k in COUNTERS if isinstance(diagnostics.get(k), int)}
    run.seconds = replay.seconds
    run.regret = replay.regret
    run.truths = replay.truths
    run.hypervolume = problem.hypervolume(replay.truths)
    return run


# -- summary ---------------------------------------------------------------------------------------------------


def _quantiles(values: list[float]) -> tuple[float, float, float]:
    q = np.quantile(np.asarray(values, dtype=float), [0.25, 0.5, 0.75])
    return float(q[1]), float(q[0]), float(q[2])


def summarize(runs: list[Run], problem: Problem, n_initial: int, budget: int) -> dict[str, Any]:
    """Statistics over seeds for one (planner, problem); runs that did not finish are only counted."""
    done = [r for r in runs if r.status == "ok"]
    total = n_initial + budget
    summary: dict[str, Any] = {"runs": len(runs), "ok": len(done)}
    if len(done) < len(runs):
        statuses = sorted({r.status for r in runs if r.status != "ok"})
        summary["status"] = "/".join(statuses)
        summary["message"] = next(r.message for r in runs if r.status != "ok")
    if not done:
        return summary
    summary["status"] = summary.get("status", "ok")
    checkpoints = sorted({n_initial, n_initial + budget // 2, total})
    summary["regret_at"] = {str(n): _quantiles([r.regret[n - 1] for r in done])[0] for n in checkpoints}
    median, q1, q3 = _quantiles([r.regret[-1] for r in done])
    summary.update(final_regret=median, final_regret_q1=q1, final_regret_q3=q3)
    summary["final_regret_worst"] = max(r.regret[-1] for r in done)
    to_hit = [next((i + 1 for i, v in enumerate(r.regret) if v <= problem.hit_tolerance), None) for r in done]
    hits = [n for n in to_hit if n is not None]
    summary["hit_rate"] = len(hits) / len(done)
    summary["experiments_to_hit"] = statistics.median(hits) if hits else None
    model_seconds = [s for r in done for s in r.seconds[n_initial:]] or [s for r in done for s in r.seconds]
    summary["seconds_per_proposal"] = statistics.median(model_seconds)
    if problem.multi_objective:
        summary["hypervolume"] = statistics.median(r.hypervolume or 0.0 for r in done)
    summary["warnings"] = sum(r.warnings for r in done)
    for name in COUNTERS:
        if any(name in r.counters for r in done):
            summary[name] = sum(r.counters.get(name, 0) for r in done)
    return summary


def _fmt(value: float | None, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if value == 0:
        return "0"
    if abs(value) >= 1000 or abs(value) < 1e-3:
        return f"{value:.{digits - 1}e}"
    return f"{value:.{digits}g}"


def format_table(summaries: dict[str, dict[str, dict[str, Any]]], problems: dict[str, Problem]) -> str:
    """Markdown table: one row per (problem, planner)."""
    lines = [
        "| problem | planner | runs | regret@init | regret@mid | final regret [IQR] | worst seed | hit rate "
        "| exps to 1 % | s/proposal | hypervolume | status |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for problem_name, by_planner in summaries.items():
        problem = problems[problem_name]
        for planner, s in by_planner.items():
            if "final_regret" not in s:
                lines.append(
                    f"| {problem_name} | {planner} | {s['runs']} | - | - | - | - | - | - | - | - | "
                    f"{s.get('status', '?')}: {s.get('message', '')[:80]} |"
                )
                continue
            at = list(s["regret_at"].values())
            hv = _fmt(s.get("hypervolume"), 4) + f" / {problem.max_hv:.4g}" if problem.multi_objective else "-"
            lines.append(
                f"| {problem_name} | {planner} | {s['ok']}/{s['runs']} | {_fmt(at[0])}"
                f" | {_fmt(at[1] if len(at) > 2 else None)}"
                f" | {_fmt(s['final_regret'])} [{_fmt(s['final_regret_q1'])}, {_fmt(s['final_regret_q3'])}]"
                f" | {_fmt(s['final_regret_worst'])}"
                f" | {s['hit_rate']:.0%} | {_fmt(s['experiments_to_hit'])} | {s['seconds_per_proposal']:.3f}"
                f" | {hv} | {s['status']} |"
            )
    return "\n".join(lines)


def ratio_lines(summaries: dict[str, dict[str, dict[str, Any]]], specs: list[PlannerSpec]) -> list[str]:
    """``ours / peer`` for median final regret and median seconds per proposal, per problem."""
    ours = [s.label for s in specs if not s.is_peer]
    peers = [s.label for s in specs if s.is_peer]
    lines = []
    for problem_name, by_planner in summaries.items():
        for mine in ours:
            for peer in peers:
                a, b = by_planner.get(mine, {}), by_planner.get(peer, {})
                if "final_regret" not in a or "final_regret" not in b:
                    continue
                regret = a["final_regret"] / b["final_regret"] if b["final_regret"] > 0 else math.inf
                seconds = a["seconds_per_proposal"] / b["seconds_per_proposal"]
                lines.append(
                    f"{problem_name}: {mine} / {peer}: final regret x{_fmt(regret)},"
                    f" seconds per proposal x{_fmt(seconds)}"
                )
    return lines


def plot_regret(runs: list[Run], problem: Problem, path: Path, n_initial: int) -> None:
    """Median simple regret with the interquartile band over seeds, one line per planner, log y."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for planner in dict.fromkeys(r.planner for r in runs):
        curves = [r.regret for r in runs if r.planner == planner and r.status == "ok"]
        if not curves:
            continue
        Y = np.maximum(np.asarray(curves, dtype=float), 1e-9)
        x = np.arange(1, Y.shape[1] + 1)
        q1, med, q3 = np.quantile(Y, [0.25, 0.5, 0.75], axis=0)
        ax.plot(x, med, label=f"{planner} ({len(curves)})")
        ax.fill_between(x, q1, q3, alpha=0.2)
    ax.axhline(max(problem.hit_tolerance, 1e-9), color="grey", linestyle=":", linewidth=1, label="within 1 %")
    ax.axvline(n_initial + 0.5, color="grey", linewidth=0.8)
    ax.set_yscale("log")
    ax.set_xlabel("experiments")
    ax.set_ylabel("hypervolume gap" if problem.multi_objective else "simple regret (noiseless)")
    ax.set_title(problem.name)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# -- the command -----------------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--planners", default=DEFAULT_PLANNERS, help="comma-separated specs, name[key=value,...]")
    parser.add_argument("--problems", default=",".join(PROBLEMS), help=f"comma-separated, from {', '.join(PROBLEMS)}")
    parser.add_argument("--seeds", type=int, default=5, help="seeds 0..N-1 (default 5)")
    parser.add_argument("--budget-2d", type=int, default=30, help="experiments after the initial design, d <= 2")
    parser.add_argument("--budget-6d", type=int, default=50, help="experiments after the initial design, d > 2")
    parser.add_argument("--initial", type=int, default=10, help="initial Sobol points for every contender")
    parser.add_argument("--out", type=Path, default=None, help="output folder (default benchmarks/results/<time>)")
    parser.add_argument(
        "--threads", type=int, default=1, help="torch.set_num_threads for this process (0: torch default)"
    )
    parser.add_argument("--quick", action="store_true", help="smoke test: 2 seeds, initial 6, budgets 6")
    return parser


def write_results(
    out: Path,
    args: argparse.Namespace,
    argv: list[str] | None,
    specs: list[PlannerSpec],
    problems: dict[str, Problem],
    runs: list[Run],
    summaries: dict[str, dict[str, dict[str, Any]]],
    elapsed: float,
    *,
    final: bool,
) -> str:
    """Write ``table.md`` and ``results.json`` (after every planner, so a long run leaves a partial table)."""
    table = format_table(summaries, {n: problems[n] for n in summaries})
    ratios = ratio_lines(summaries, specs)
    skipped = sorted({r.planner for r in runs if r.status == "skipped"})
    command = " ".join(["python -m benchmarks.planners", *(argv if argv is not None else sys.argv[1:])])
    header = (
        f"# Planner benchmark{'' if final else ' (partial: still running)'}\n\n`{command}`"
        f"\n\nseeds {args.seeds}, initial {args.initial}, budget {args.budget_2d} (2-D) / {args.budget_6d} (6-D), "
        f"torch threads {torch.get_num_threads()}, {elapsed:.0f} s. Regret of the best noiseless feasible value "
        "(hypervolume gap for several objectives); s/proposal is the median over model-based proposals.\n"
    )
    text = header + "\n" + table + "\n" + ("\n" + "\n".join(f"- {line}" for line in ratios) + "\n" if ratios else "")
    if skipped:
        text += f"\nSkipped (not installed): {', '.join(skipped)}\n"
    (out / "table.md").write_text(text)
    (out / "results.json").write_text(
        json.dumps(
            {
                "config": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
                "command": command,
                "finished": final,
                "planners": [asdict(s) for s in specs],
                "elapsed_seconds": elapsed,
                "torch_threads": torch.get_num_threads(),
                "summary": summaries,
                "ratios": ratios,
                "runs": [asdict(r) for r in runs],
            },
            indent=1,
        )
    )
    return text


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; returns the exit code (2 for bad input)."""
    args = build_parser().parse_args(argv)
    if args.quick:
        args.seeds, args.initial, args.budget_2d, args.budget_6d = 2, 6, 6, 6
    try:
        specs = parse_planner_specs(args.planners)
        names = [p.strip() for p in args.problems.split(",") if p.strip()]
        unknown = [n for n in names if n not in PROBLEMS]
        if unknown:
            raise ValueError(f"unknown problem(s) {', '.join(unknown)}; known: {', '.join(PROBLEMS)}")
        if min(args.seeds, args.initial, args.budget_2d, args.budget_6d) < 1:
            raise ValueError("--seeds, --initial and the budgets must be >= 1")
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.threads:
        torch.set_num_threads(args.threads)
    out = args.out or Path(__file__).resolve().parent / "results" / dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    out.mkdir(parents=True, exist_ok=True)
    problems = {n: PROBLEMS[n] for n in names}

    started = time.perf_counter()
    runs: list[Run] = []
    summaries: dict[str, dict[str, dict[str, Any]]] = {}
    for problem in problems.values():
        budget = budget_for(problem, args.budget_2d, args.budget_6d)
        summaries[problem.name] = {}
        # The contenders take turns seed by seed, so a change in the machine's load during the invocation falls on
        # all of them alike (their seconds per proposal are compared).
        mine: dict[str, list[Run]] = {spec.label: [] for spec in specs}
        for seed in range(args.seeds):
            for spec in specs:
                if any(r.status in ("unsupported", "skipped") for r in mine[spec.label]):
                    continue  # the same for every seed
                run = run_one(spec, problem, seed=seed, n_initial=args.initial, budget=budget)
                mine[spec.label].append(run)
                print(
                    f"[{time.perf_counter() - started:7.1f}s] {problem.name} {spec.label} seed {seed}: {run.status}"
                    + (f", final regret {_fmt(run.regret[-1])}" if run.status == "ok" else f" ({run.message[:100]})"),
                    flush=True,
                )
            for label, theirs in mine.items():
                summaries[problem.name][label] = summarize(theirs, problem, args.initial, budget)
            so_far = runs + [r for theirs in mine.values() for r in theirs]
            elapsed = time.perf_counter() - started
            write_results(out, args, argv, specs, problems, so_far, summaries, elapsed, final=False)
        runs.extend(r for theirs in mine.values() for r in theirs)
        mine_all = [r for r in runs if r.problem == problem.name]
        plot_regret(mine_all, problem, out / f"regret_{problem.name}.png", args.initial)

    text = write_results(out, args, argv, specs, problems, runs, summaries, time.perf_counter() - started, final=True)
    print(text)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
