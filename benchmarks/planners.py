"""The planner benchmark's harness: a contender (ours or a peer) on a problem for a seed, scored by simple regret.

``closedloop bench`` (:mod:`benchmarks.campaign`) runs planners x problems x seeds through :func:`run_one`, one task
per run, and ``closedloop bench page`` renders the benchmark pages' tables from the campaign's dataset
(:mod:`benchmarks.campaign.pages`). This module was the command ``python -m benchmarks.planners`` before; that
command is retired (it now says so and exits 2): the same runs, the same seeds, the same numbers come from

    closedloop bench --planners botorch,sobol,xopt,ax --problems branin,hartmann6 --seeds 5 --experiments 40 --out OUT
    closedloop bench page OUT

Every contender starts from ``n_initial`` Sobol points and then proposes one point at a time (or ``batch``). After
each experiment the harness records the simple regret of the best *noiseless* value among the feasible points
evaluated so far (the hypervolume gap for the multi-objective problems), and the wall time of each ``suggest``. The
problems, their optima and the meaning of "within 1 %" are in :mod:`benchmarks._problems`; the peers in
:mod:`benchmarks._peers`. torch runs on one thread per task (the campaign pins it to the worker's threads): on
this 2-core machine, shared with other processes, two torch threads made per-proposal times both slower and far
noisier (BoTorch on Branin, model-based proposals: median 1.0-1.4 s, sd 0.3-0.4 s with 2 threads; 0.11 s, sd
0.02-0.12 s with 1; Xopt 2.3-2.7 s, sd 1.0-1.2 s against 0.20-0.24 s, sd 0.04-0.07 s).

A planner entry is a registered name, an import path, ``xopt`` or ``ax``, optionally with constructor options in
brackets (``name[key=value,...]``; values parse as int, float, bool or string). Ours are built with
``planners.load_planner`` and ``n_initial`` when the constructor takes it (a generator given by import path that
takes none starts behind :class:`planners.warmup.WarmStart`'s ``n_initial`` Sobol points; and, for two
objectives, the problem's reference point, as the peers are given it). A contender that refuses a problem
(``PlannerError``/``ValueError`` when built) is reported as unsupported; an uninstalled peer as skipped.
"""

from __future__ import annotations

import math
import re
import statistics
import sys
import traceback
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmarks._peers import PEER_NAMES, PeerUnavailable, build_peer
from benchmarks._problems import Problem, Replay
from planners.registry import accepts_option, load_planner
from planners.warmup import WarmStart

#: A planner's counters recorded with each run (in results.json, and summed in the summary), when it has them.
COUNTERS = ("n_fits", "n_reuses", "n_peak_boxes", "n_stalls")


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
    diagnostics: dict[str, dict[str, int]] = field(default_factory=dict)  # recoveries, recovered_by: kind -> count
    truths: list[dict[str, float]] = field(default_factory=list)


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
        if isinstance(diagnostics, dict):  # and the numerical failures it caught, and what recovered from each
            run.counters = {k: int(diagnostics[k]) for k in COUNTERS if isinstance(diagnostics.get(k), int)}
            run.diagnostics = {k: dict(diagnostics.get(k) or {}) for k in ("recoveries", "recovered_by")}
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


# -- the retired command --------------------------------------------------------------------------------------

RETIRED = (
    "python -m benchmarks.planners is retired: run the same contenders on the same seeds with\n"
    "  closedloop bench --planners botorch,xopt,ax --problems branin,hartmann6 --seeds 5 --experiments 40 --out OUT\n"
    "and render the table with\n"
    "  closedloop bench page OUT\n"
    "(see docs/how-to/campaigns.md; --experiments counts the initial design: --initial 10 and --budget-2d 30 are "
    "--experiments 40)"
)


def main(argv: list[str] | None = None) -> int:
    """Say where the command went; exit 2."""
    del argv
    print(RETIRED, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
