"""How BoTorchPlanner's proposal time and memory grow with the number of observations, against the exact GP.

On Hartmann6 (d = 6, one objective, ``suggest(1)``, the default qLogNEI; ``--kind constrained`` or ``two`` for the
constrained and two-objective paths), for each size ``n`` a planner ingests ``n`` seeded random observations, then
makes ``--calls`` proposals, each after ingesting the result of the one before, so the refit schedule runs as in a
session. Each (mode, n) runs in its own process, so that its peak
resident memory (``getrusage`` maxrss, which sees torch's allocations) is its own. Two modes in the same
invocation, on the same data:

- ``default``: the default options (above ``max_model_points`` ok observations the GP and qLogNEI's baseline see a
  subset, :mod:`planners._large`);
- ``exact``: ``max_model_points`` unlimited, every observation in the GP (the behaviour before the subset). Its
  cost grows as ``n^3``: by default it runs only at the sizes up to 1,000.

Times are CPU seconds of the process (``time.process_time``) on ``--threads`` torch threads (default one), which
other jobs on a shared machine disturb far less than wall-clock seconds; the wall-clock median is printed too. A
fresh planner has no fitted hyperparameters yet, so its first call fits (as a planner rebuilt on resume does): the
``fit s`` column is the CPU time spent in GP fits over all the calls, ``first s`` the first call, ``median s`` the
median of the others (the steady state). ``regret`` is Hartmann6's simple regret (``f`` only) of the best random
observation, then of the best after the proposals: with many ``--calls``, what the subset costs in progress.
The summary prints each mode's ``t(n) / t(smallest n)`` of the medians.

    python -m benchmarks.proposal_scaling [--sizes 200,1000,10000] [--exact-sizes 200,1000] [--calls 4] [--threads 1]
    python -m benchmarks.proposal_scaling --kind constrained --sizes 200,1000 --exact-sizes ''
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from typing import Any

import torch
from gest_api.vocs import VOCS

from planners import BoTorchPlanner
from planners.gp.fitting import GPFitting
from simulators.physics import HARTMANN6_OPTIMUM, hartmann6

VARIABLES = {f"x{i}": [0.0, 1.0] for i in range(1, 7)}
#: The problem by ``--kind``: Hartmann6 alone, with a constraint (``sum(x) <= 3``, active at the optimum's side),
#: or with a second objective (the distance from the origin, to minimize too).
KINDS = {
    "single": VOCS(variables=VARIABLES, objectives={"f": "MINIMIZE"}),
    "constrained": VOCS(variables=VARIABLES, objectives={"f": "MINIMIZE"}, constraints={"c": ["LESS_THAN", 3.0]}),
    "two": VOCS(variables=VARIABLES, objectives={"f": "MINIMIZE", "g": "MINIMIZE"}),
}
VOCS_6D = KINDS["single"]
MODES: dict[str, dict[str, Any]] = {"default": {}, "exact": {"max_model_points": 10**9}}
#: The targets of issue 26: t(1000) / t(200), t(10000) / t(200), peak memory at 10,000 (MB).
TARGETS = {1000: 2.5, 10000: 10.0}
PEAK_TARGET_MB = 2048


class TimedFitting(GPFitting):
    """The GP fitting, counting the seconds its fits take."""

    fit_seconds = 0.0

    def fit(self, *args: Any, **kwargs: Any) -> Any:
        started = time.process_time()
        try:
            return super().fit(*args, **kwargs)
        finally:
            self.fit_seconds += time.process_time() - started


class TimedPlanner(BoTorchPlanner):
    """The planner, counting the seconds its GP fits take (in ``fitting.fit_seconds``)."""

    fitting_class = TimedFitting


def evaluate(point: dict[str, Any]) -> dict[str, Any]:
    """``point`` with its Hartmann6 value as ``f``, ``sum(x)`` as ``c`` and the distance from the origin as ``g``."""
    x = [point[f"x{i}"] for i in range(1, 7)]
    return dict(point, f=hartmann6(*x), c=sum(x), g=sum(v * v for v in x) ** 0.5)


def random_observations(n: int, seed: int) -> list[dict[str, Any]]:
    """``n`` uniformly random points of the unit cube with their values (foreign points: no ``_id``)."""
    X = torch.rand(n, 6, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return [evaluate({f"x{i + 1}": v for i, v in enumerate(row)}) for row in X.tolist()]


def measure(mode: str, n: int, calls: int, seed: int, threads: int, kind: str = "single") -> dict[str, Any]:
    """CPU and wall seconds per ``suggest(1)`` for ``calls`` calls from ``n`` observations, fit CPU seconds, fits,
    peak MB."""
    torch.set_num_threads(threads)
    planner = TimedPlanner(KINDS[kind], seed=seed, **MODES[mode])
    start = random_observations(n, seed)
    planner.ingest(start)
    values = [r["f"] for r in start]
    seconds, wall = [], []
    for _ in range(calls):
        started, started_wall = time.process_time(), time.perf_counter()
        (point,) = planner.suggest(1)
        seconds.append(time.process_time() - started)
        wall.append(time.perf_counter() - started_wall)
        (result,) = [evaluate(point)]
        planner.ingest([result])
        values.append(result["f"])
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kilobytes on Linux
    optimum = HARTMANN6_OPTIMUM.value
    regret = {"before": min(values[:n]) - optimum, "after": min(values) - optimum}  # f's simple regret
    return {
        "seconds": seconds,
        "wall": wall,
        "fit": planner.fitting.fit_seconds if isinstance(planner.fitting, TimedFitting) else 0.0,
        "fits": planner.fitting.n_fits,
        "peak_mb": peak_mb,
        "regret": regret,
    }


def in_subprocess(mode: str, n: int, calls: int, seed: int, threads: int, kind: str) -> dict[str, Any]:
    """:func:`measure` in a fresh Python process (its own peak memory)."""
    command = [sys.executable, "-m", "benchmarks.proposal_scaling", "--one", mode, str(n), str(calls), str(seed)]
    command += [str(threads), kind]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def summary(mode: str, medians: dict[int, float], peaks: dict[int, float]) -> str:
    """One line: each size's median over the smallest size's, against the target where there is one."""
    base = min(medians)
    parts = []
    for n in sorted(medians):
        if n == base:
            continue
        target = f" (target <= {TARGETS[n]:g}x)" if n in TARGETS and base == 200 else ""
        parts.append(f"t({n})/t({base}) = {medians[n] / medians[base]:.2f}x{target}")
    top = max(peaks)
    memory = f"peak at n = {top}: {peaks[top]:.0f} MB" + (f" (target < {PEAK_TARGET_MB})" if top >= 10000 else "")
    return f"{mode:>8}: " + ", ".join([*parts, memory])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="200,1000,10000", help="observations before the first call (default mode)")
    parser.add_argument("--exact-sizes", default="200,1000", help="sizes for the exact mode ('' for none)")
    parser.add_argument("--calls", type=int, default=4, help="proposals timed per size and mode (the first fits)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch threads in each measurement")
    parser.add_argument("--kind", choices=list(KINDS), default="single", help="one objective, constrained, or two")
    parser.add_argument("--one", nargs=6, help=argparse.SUPPRESS)  # MODE N CALLS SEED THREADS KIND: one measurement
    args = parser.parse_args()
    if args.one:
        mode, n, calls, seed, threads, kind = args.one
        print(json.dumps(measure(mode, int(n), int(calls), int(seed), int(threads), kind)))
        return
    sizes = {"default": [int(s) for s in args.sizes.split(",") if s], "exact": []}
    sizes["exact"] = [int(s) for s in args.exact_sizes.split(",") if s]
    print(
        f"d = 6, Hartmann6 ({args.kind}), suggest(1), {args.calls} calls per row, seed {args.seed}, "
        f"torch threads {args.threads}"
    )
    header = (
        f"{'n':>6} {'mode':>8} {'median s':>9} {'first s':>8} {'fit s':>7} {'fits':>5} {'peak MB':>8} {'wall s':>7}"
    )
    print(f"{header} {'regret before -> after':>23}")
    medians: dict[str, dict[int, float]] = {mode: {} for mode in MODES}
    peaks: dict[str, dict[int, float]] = {mode: {} for mode in MODES}
    for n in sorted(set(sizes["default"]) | set(sizes["exact"])):
        for mode in MODES:
            if n not in sizes[mode]:
                continue
            row = in_subprocess(mode, n, args.calls, args.seed, args.threads, args.kind)
            seconds = row["seconds"]
            medians[mode][n] = statistics.median(seconds[1:] or seconds)
            peaks[mode][n] = row["peak_mb"]
            print(
                f"{n:>6} {mode:>8} {medians[mode][n]:>9.3f} {seconds[0]:>8.3f} {row['fit']:>7.2f} {row['fits']:>5} "
                f"{row['peak_mb']:>8.0f} {statistics.median(row['wall'][1:] or row['wall']):>7.3f} "
                f"{row['regret']['before']:>11.3g} -> {row['regret']['after']:<9.3g}",
                flush=True,
            )
    print()
    for mode in MODES:
        if len(medians[mode]) > 1:
            print(summary(mode, medians[mode], peaks[mode]))


if __name__ == "__main__":
    main()
