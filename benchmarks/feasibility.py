"""Feasibility and numerical failures on the harness's constrained problems: ours beside Xopt and Ax.

Each contender starts from ``--initial`` Sobol points and proposes one point at a time, every result ingested, for
``--budget`` experiments in all, on each constrained problem (:mod:`benchmarks._problems`) and seed. Printed, per
problem and contender: seeds with no feasible point after the budget, the median experiments to the first feasible
point (over the seeds that found one), the median final regret (best feasible, scored on the noiseless outputs),
the seeds within 1 % of the optimum (hits), the worst seed's regret, the numerical failures the planner caught by kind
and the step that recovered from each (``recoveries`` and ``recovered_by`` of the ``botorch`` planner's
``diagnostics``), and the proposals lost (a ``suggest`` that raised: the run ends there).

    python -m benchmarks.feasibility --seeds 10 --budget 40
    python -m benchmarks.feasibility --problems spring --contenders "botorch,botorch[feasibility_search=probability]"
    python -m benchmarks.feasibility --until-feasible   # the search for feasibility only: far faster

A contender is ``botorch`` (optionally ``botorch[option=value,...]``), ``xopt`` or ``ax``; an uninstalled peer is
reported as skipped. torch runs on one thread (``--threads``), as in :mod:`benchmarks.planners`.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections import Counter
from typing import Any

import torch

from benchmarks._peers import PEER_NAMES, PeerUnavailable, build_peer
from benchmarks._problems import PROBLEMS, Problem, Replay
from benchmarks.planners import PlannerSpec, parse_planner_specs
from planners.registry import load_planner

CONSTRAINED = [name for name, problem in PROBLEMS.items() if problem.vocs.constraints]


def build(spec: PlannerSpec, problem: Problem, seed: int, n_initial: int) -> Any:
    """The contender for one run (raises ``PeerUnavailable`` for a peer not installed)."""
    if spec.name in PEER_NAMES:
        return build_peer(spec.name, problem, seed=seed, n_initial=n_initial)
    return load_planner(spec.name, problem.vocs, seed=seed, n_initial=n_initial, **spec.options)


def run(
    spec: PlannerSpec, problem: Problem, seed: int, n_initial: int, budget: int, until_feasible: bool = False
) -> dict[str, Any]:
    """One run: the first feasible experiment (1-based, None), the final regret, counters, and whether a proposal
    was lost (``suggest`` raised; the run stops there). ``until_feasible`` stops at the first feasible point."""
    planner = build(spec, problem, seed, n_initial)
    replay = Replay(problem, seed=seed)
    lost, error = 0, ""
    started = time.perf_counter()
    try:
        if until_feasible:
            noise = problem.noise_stream(seed)
            while len(replay.truths) < budget and not any(map(problem.feasible, replay.truths)):
                planner.ingest([replay._run(replay._suggest(planner, 1)[0], noise)])
        else:
            replay.play(planner, budget)
    except Exception as exc:  # noqa: BLE001 - a lost proposal is what is measured
        lost, error = 1, f"{type(exc).__name__}: {(str(exc).splitlines() or [''])[0][:120]}"
    first = next((i + 1 for i, truth in enumerate(replay.truths) if problem.feasible(truth)), None)
    diagnostics = getattr(planner, "diagnostics", None) or {}
    return {
        "first_feasible": first,
        "regret": replay.regret[-1] if replay.truths else problem.worst,
        "recoveries": Counter(diagnostics.get("recoveries", {})),
        "recovered_by": Counter(diagnostics.get("recovered_by", {})),
        "lost": lost,
        "error": error,
        "seconds": time.perf_counter() - started,
    }


def _counts(counter: Counter[str]) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(counter.items())) or "0"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problems", default=",".join(CONSTRAINED), help=f"from {', '.join(CONSTRAINED)}")
    parser.add_argument("--contenders", default="botorch,xopt,ax")
    parser.add_argument("--seeds", type=int, default=10, help="seeds 0 .. N-1")
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--budget", type=int, default=40, help="experiments in all, the design's included")
    parser.add_argument("--initial", type=int, default=10)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--until-feasible", action="store_true", help="stop each run at its first feasible point (feasibility only)"
    )
    parser.add_argument("--each", action="store_true", help="also print each run as it ends")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    print(f"budget {args.budget} ({args.initial} Sobol), seeds {seeds.start}-{seeds.stop - 1}")
    header = "| problem | contender | no feasible | median to first feasible | median regret | hits | worst regret | "
    print(header + "failures caught | recovered by | proposals lost | s/run |")
    print("|" + "---|" * 11)
    for problem_name in args.problems.split(","):
        problem = PROBLEMS[problem_name]
        for spec in parse_planner_specs(args.contenders):
            try:
                runs = []
                for seed in seeds:
                    runs.append(run(spec, problem, seed, args.initial, args.budget, args.until_feasible))
                    if args.each:
                        r = runs[-1]
                        print(
                            f"    {problem_name} {spec.label} seed {seed}: first feasible {r['first_feasible']}, "
                            f"regret {r['regret']:.3g}, {r['seconds']:.0f} s",
                            flush=True,
                        )
            except PeerUnavailable as exc:
                print(f"| {problem_name} | {spec.label} | skipped: {exc} |")
                continue
            firsts = [r["first_feasible"] for r in runs if r["first_feasible"] is not None]
            none = sum(r["first_feasible"] is None for r in runs)
            median_first = f"{statistics.median(firsts):g} (of {len(firsts)})" if firsts else "-"
            print(
                f"| {problem_name} | {spec.label} | {none} of {len(runs)} | {median_first} | "
                f"{statistics.median(r['regret'] for r in runs):.3g} | "
                f"{sum(r['regret'] <= problem.hit_tolerance for r in runs)} | {max(r['regret'] for r in runs):.3g} | "
                f"{_counts(sum((r['recoveries'] for r in runs), Counter()))} | "
                f"{_counts(sum((r['recovered_by'] for r in runs), Counter()))} | {sum(r['lost'] for r in runs)} | "
                f"{statistics.median(r['seconds'] for r in runs):.0f} |",
                flush=True,
            )
            for seed, r in zip(seeds, runs, strict=True):
                if r["error"]:
                    print(f"    seed {seed}: lost a proposal: {r['error']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
