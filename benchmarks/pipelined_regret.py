"""What pipelining and several instruments cost in regret at equal experiment counts, from the planner alone.

``benchmarks/throughput.py`` runs whole sessions on real RunEngines: minutes per seed, so few seeds. This script
replays the loop's schedule on the harness's problems (``benchmarks/_problems.py``) with the ``botorch`` planner
(``--planner`` for another) and no instrument, fast enough for a dozen seeds: with ``L`` instruments pipelined, the
loop keeps ``L`` runs in flight and one proposal ready, so each proposal is made with the last ``L`` points pending
(``X_pending``) and their results not yet known; ``L = 0`` is ``pipeline: false`` (propose, run, ingest, strictly
in turn).

For each ``L`` it prints the median final regret over the seeds, the worst and best seed, and a one-sided
Mann-Whitney p-value that the sequential loop's regrets are lower (a small p: the difference stands out of the
spread over seeds). Beside it, the sequential loop's median regret ``L`` and ``L + 2`` experiments earlier, with the
same test of the sequential loop at ``N`` against itself ``L`` experiments earlier (p): what each proposal's
``L`` missing results would cost if that were all. It is not a bound a pipelined loop can be held to: a proposal
can build only on results of runs that ended before it was made, so a chain of proposals each building on the
last one's result (climbing a peak) gains a link every ``L + 1`` experiments, against one every experiment in the
sequential loop. Last, the same planner in synchronous batches of ``L + 1`` (``Replay.play_batches``: propose
``L + 1``, run them all, ingest them all), tested as the ``L`` rows: ``L + 1`` instruments without pipelining,
whose chains grow as slowly and whose proposals see fewer results.

    python -m benchmarks.pipelined_regret [--problems beamline,spot2] [--seeds 12] [--experiments 30] [--at 40,50]
        [--planner "botorch[num_restarts=6]"]

``--at`` compares the same sessions at earlier experiment counts as well: the regret after the first N results of
the longer session (whose proposals around N were made with as many points pending as anywhere mid-session).
"""

from __future__ import annotations

import argparse
import statistics
from typing import Any

import torch
from scipy.stats import mannwhitneyu  # type: ignore[import-untyped]

from benchmarks._problems import PROBLEMS, Problem, Replay
from benchmarks.planners import PlannerSpec, parse_planner_specs
from planners import load_planner


def build(spec: PlannerSpec, problem: Problem, seed: int) -> Any:
    """The planner ``spec`` names, for ``problem``, seeded with ``seed``."""
    return load_planner(spec.name, problem.vocs, default_seed=seed, **spec.options)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--problems", default="beamline,spot2")
    parser.add_argument("--seeds", type=int, default=12, help="seeds 0 .. N-1")
    parser.add_argument("--experiments", type=int, default=30)
    parser.add_argument("--lanes", default="0,1,2,4", help="instruments; 0 is pipeline: false")
    parser.add_argument("--at", default="", help="also compare at these experiment counts, e.g. 40,50,60")
    parser.add_argument("--planner", default="botorch", help="one planner, as benchmarks.planners takes it: name[k=v]")
    parser.add_argument(
        "--no-batches", action="store_true", help="leave out the batches of L + 1 in turn (half the runs)"
    )
    args = parser.parse_args(argv)
    (spec,) = parse_planner_specs(args.planner)
    torch.set_num_threads(1)
    lanes_list = [int(k) for k in args.lanes.split(",")]
    for name in args.problems.split(","):
        problem = PROBLEMS[name]
        curves = {
            k: [
                Replay(problem, seed).play(build(spec, problem, seed), args.experiments, k).regret
                for seed in range(args.seeds)
            ]
            for k in lanes_list
        }
        sequential = curves.get(0)
        print(f"\n{name}: {args.experiments} experiments, {spec.label}, seeds 0-{args.seeds - 1}")
        print(
            f"{'instruments':>24s}{'median':>9s}{'worst':>9s}{'best':>10s}{'p':>7s}"
            "  sequential at N-L (p), N-L-2; batches of L+1 in turn (p)"
        )
        for k, rows in curves.items():
            final = [curve[-1] for curve in rows]
            label = "pipeline: false" if k == 0 else f"{k} pipelined"
            line = f"{label:>24s}{statistics.median(final):9.3g}{max(final):9.3g}{min(final):10.3g}"
            if sequential is not None and k:
                sequential_final = [c[-1] for c in sequential]
                p = mannwhitneyu(sequential_final, final, alternative="less").pvalue
                earlier = [statistics.median(c[-1 - back] for c in sequential) for back in (k, k + 2)]
                # the lag alone: the sequential loop's regret L experiments earlier, tested as the L rows are
                lag = mannwhitneyu(sequential_final, [c[-1 - k] for c in sequential], alternative="less")
                line += f"{p:7.2f}  {earlier[0]:.3g} (p {lag.pvalue:.2f}), {earlier[1]:.3g}"
                if args.no_batches:
                    print(line, flush=True)
                    continue
                # L + 1 parallel runs with no pipelining: the same depth of adaptation (see the module docstring)
                batched = [
                    Replay(problem, seed).play_batches(build(spec, problem, seed), args.experiments, k + 1).regret[-1]
                    for seed in range(args.seeds)
                ]
                in_batches = mannwhitneyu(sequential_final, batched, alternative="less")
                line += f"; {statistics.median(batched):.3g} (p {in_batches.pvalue:.2f})"
            print(line, flush=True)
        for n in [int(n) for n in args.at.split(",") if n]:
            cells = []
            for k, rows in curves.items():
                at_n = [curve[n - 1] for curve in rows]
                cell = f"{k or 'false'}: {statistics.median(at_n):.3g}"
                if sequential is not None and k:
                    p = mannwhitneyu([c[n - 1] for c in sequential], at_n, alternative="less").pvalue
                    cell += f" (p {p:.2f})"
                cells.append(cell)
            print(f"at {n} experiments, median regret by instruments: " + ", ".join(cells))
        print(
            "final regret per seed: "
            + "; ".join(f"{k}: " + " ".join(f"{c[-1]:.3g}" for c in rows) for k, rows in curves.items())
        )


if __name__ == "__main__":
    main()
