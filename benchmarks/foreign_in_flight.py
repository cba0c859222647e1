"""A generator that is not ours, with points in flight it cannot see: regret, and points run twice at once.

Replays (``benchmarks/_problems.py``) a gest-api generator from another library (Xopt's expected improvement by
default) through ``WarmStart`` with ``L`` instruments pipelined, as the loop drives it, in two ways in the same
invocation: wrapped in ``planners.foreign.Foreign``, as closedloop drives it, and bare, asked with no account of its
points out (as closedloop drove it before ``Foreign``); beside it, the same generator with ``pipeline: false``.
For each it prints the median final regret over the seeds, the worst and best seed, and the experiments that
repeated a point still in flight (within ``SAME_POINT`` of one of the ``L`` before it), summed over the seeds.

    python -m benchmarks.foreign_in_flight [--problems beamline,spot2] [--seeds 8] [--lanes 4] [--experiments 30]
        [--generator xopt.generators.bayesian.expected_improvement:ExpectedImprovementGenerator] [--initial-design 5]

Needs the generator's library (``pip install xopt`` for the default). Each seed also seeds torch, which Xopt's
optimizer draws its starts from.
"""

from __future__ import annotations

import argparse
import statistics
import warnings
from typing import Any

import torch

from benchmarks._problems import PROBLEMS, Problem, Replay
from planners import load_planner
from planners._points import near_any
from planners._space import Space, build_variables
from planners.foreign import Foreign
from planners.warmup import WarmStart

XOPT_EI = "xopt.generators.bayesian.expected_improvement:ExpectedImprovementGenerator"


def repeats_in_flight(problem: Problem, points: list[dict[str, float]], lanes: int) -> int:
    """How many of ``points`` lie within ``SAME_POINT`` of one of the ``lanes`` points before them."""
    space = Space(build_variables(problem.vocs))
    U = space.to_unit([[p[v.name] for v in space.variables] for p in points])
    return sum(bool(near_any(U[i : i + 1], U[max(0, i - lanes) : i])[0]) for i in range(len(U)))


def session(problem: Problem, seed: int, args: argparse.Namespace, lanes: int, bare: bool) -> tuple[float, int]:
    """One replayed session: its final regret and its repeats of a point in flight."""
    torch.manual_seed(seed)
    generator: Any = load_planner(args.generator, problem.vocs, default_seed=seed)
    if bare and isinstance(generator, Foreign):
        generator = generator.planner
    planner = WarmStart(problem.vocs, planner=generator, initial=args.initial_design, seed=seed)
    replay = Replay(problem, seed).play(planner, args.experiments, lanes)
    return replay.regret[-1], repeats_in_flight(problem, replay.points, lanes)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--problems", default="beamline,spot2")
    parser.add_argument("--seeds", type=int, default=8, help="seeds 0 .. N-1")
    parser.add_argument("--lanes", type=int, default=4, help="instruments pipelined")
    parser.add_argument("--experiments", type=int, default=30)
    parser.add_argument("--generator", default=XOPT_EI, help="import path of a gest-api generator class")
    parser.add_argument("--initial-design", type=int, default=5)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    warnings.filterwarnings("ignore")  # the generator's own (Xopt warns on every fit)
    rows = [("pipeline: false", 0, False), (f"{args.lanes} pipelined", args.lanes, False)]
    rows.append((f"{args.lanes} pipelined, bare", args.lanes, True))
    for name in args.problems.split(","):
        problem = PROBLEMS[name]
        print(f"\n{name}: {args.experiments} experiments, {args.generator}, seeds 0-{args.seeds - 1}")
        print(f"{'':>26s}{'median':>9s}{'worst':>9s}{'best':>10s}  repeats of a point in flight")
        for label, lanes, bare in rows:
            runs = [session(problem, seed, args, lanes, bare) for seed in range(args.seeds)]
            final = [regret for regret, _ in runs]
            repeats = [count for _, count in runs]
            line = f"{label:>26s}{statistics.median(final):9.3g}{max(final):9.3g}{min(final):10.3g}"
            print(f"{line}  {sum(repeats)} (most in a session: {max(repeats)})", flush=True)


if __name__ == "__main__":
    main()
