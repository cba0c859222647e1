"""How BoTorchPlanner's proposal time grows with the number of observations, against a full refit every time.

On Hartmann6 (d = 6, one objective, ``suggest(1)``, the default qLogNEI), for each size ``n`` a planner ingests
``n`` seeded random observations, then makes ``--calls`` proposals, each after ingesting the result of the one
before, so the refit schedule runs as in a session. Two planners in the same invocation on the same data:

- ``scheduled``: the default (hyperparameters fitted on the geometric schedule, on at most ``max_fit_points``
  observations, reused in between; see :class:`planners.BoTorchPlanner`);
- ``always``: ``refit="always"`` and no subset, a full fit for every proposal (the behaviour before the schedule).

A fresh planner has no fitted hyperparameters yet, so its first call fits (as a planner rebuilt on resume
does); the median is the steady state, the max that first call. Prints one table per torch thread setting,
with the median ratio ``always / scheduled``.

    python -m benchmarks.proposal_scaling [--sizes 50,200,1000] [--calls 5] [--threads default,1]
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

import torch
from gest_api.vocs import VOCS

from planners import BoTorchPlanner
from simulators.physics import hartmann6

VOCS_6D = VOCS(variables={f"x{i}": [0.0, 1.0] for i in range(1, 7)}, objectives={"f": "MINIMIZE"})
MODES: dict[str, dict[str, Any]] = {
    "scheduled": {},
    "always": {"refit": "always", "max_fit_points": 10**9},
}


def evaluate(point: dict[str, Any]) -> dict[str, Any]:
    """``point`` with its Hartmann6 value as ``f``."""
    return dict(point, f=hartmann6(*(point[f"x{i}"] for i in range(1, 7))))


def random_observations(n: int, seed: int) -> list[dict[str, Any]]:
    """``n`` uniformly random points of the unit cube with their values (foreign points: no ``_id``)."""
    X = torch.rand(n, 6, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return [evaluate({f"x{i + 1}": v for i, v in enumerate(row)}) for row in X.tolist()]


def time_proposals(n: int, calls: int, options: dict[str, Any], seed: int) -> tuple[list[float], int]:
    """Seconds per ``suggest(1)`` for ``calls`` calls from ``n`` observations, and how many of them fitted."""
    planner = BoTorchPlanner(VOCS_6D, seed=seed, **options)
    planner.ingest(random_observations(n, seed))
    seconds = []
    for _ in range(calls):
        started = time.perf_counter()
        (point,) = planner.suggest(1)
        seconds.append(time.perf_counter() - started)
        planner.ingest([evaluate(point)])
    return seconds, planner.n_fits


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="50,200,1000", help="observations before the first call")
    parser.add_argument("--calls", type=int, default=5, help="proposals timed per size and mode")
    parser.add_argument("--threads", default="default,1", help="torch thread settings: 'default' or a number")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    default_threads = torch.get_num_threads()
    for setting in args.threads.split(","):
        threads = default_threads if setting == "default" else int(setting)
        torch.set_num_threads(threads)
        print(f"\ntorch threads: {threads} ({setting}); d = 6, Hartmann6, suggest(1), {args.calls} calls per row")
        print(f"{'n':>6} {'mode':>10} {'median s':>9} {'max s':>8} {'fits':>5}   ratio always/scheduled")
        for n in sizes:
            medians = {}
            for mode, options in MODES.items():
                seconds, fits = time_proposals(n, args.calls, options, args.seed)
                medians[mode] = statistics.median(seconds)
                ratio = f"{medians['always'] / medians['scheduled']:.1f}x" if mode == "always" else ""
                print(
                    f"{n:>6} {mode:>10} {medians[mode]:>9.3f} {max(seconds):>8.3f} {fits:>5}   {ratio}".rstrip(),
                    flush=True,
                )
    torch.set_num_threads(default_threads)


if __name__ == "__main__":
    main()
