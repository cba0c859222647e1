"""Campaign wall time on 1, 2 and 4 local workers, and the same numbers whatever the number of workers.

Runs one campaign (by default 3 planners x 4 problems x 4 seeds) through ``closedloop bench`` once per worker
count, each into its own folder, and prints the wall time of each against the one-worker run of the same
invocation, and whether every experiment's value, best so far and regret are identical (bit for bit) across them.

    python -m benchmarks.campaign_scaling
    python -m benchmarks.campaign_scaling --workers 1,2 --seeds 2 --experiments 20
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

KEYS = ("problem", "planner", "seed", "experiment", "value", "best_so_far", "regret")


def campaign(out: Path, workers: int, args: argparse.Namespace) -> float:
    """Run the campaign on ``workers`` local workers into ``out``; returns its wall time in seconds."""
    command = [sys.executable, "-m", "agent.cli", "bench", "--planners", args.planners, "--problems", args.problems]
    command += ["--seeds", str(args.seeds), "--experiments", str(args.experiments), "--initial", str(args.initial)]
    command += ["--workers", str(workers), "--out", str(out)]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"closedloop bench --workers {workers} exited {done.returncode}: {done.stderr[-500:]}")
    return time.perf_counter() - started


def rows(out: Path) -> list[tuple[object, ...]]:
    import pyarrow.parquet as pq

    table = pq.read_table(out / "experiments.parquet").to_pylist()
    return sorted(tuple(row[k] for k in KEYS) for row in table)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--planners", default="botorch,sobol,random")
    parser.add_argument("--problems", default="branin,beamline,spot2,hartmann6")
    parser.add_argument("--seeds", type=int, default=4)
    parser.add_argument("--experiments", type=int, default=30)
    parser.add_argument("--initial", type=int, default=10)
    parser.add_argument("--workers", default="1,2,4", help="comma-separated worker counts; the first is the baseline")
    args = parser.parse_args(argv)
    counts = [int(w) for w in args.workers.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        seconds, found = {}, {}
        for workers in counts:
            out = Path(tmp) / f"w{workers}"
            seconds[workers] = campaign(out, workers, args)
            found[workers] = rows(out)
            print(f"{workers} worker(s): {seconds[workers]:.1f} s", flush=True)
    base = counts[0]
    tasks = len({r[:3] for r in found[base]})
    print(f"\n{tasks} tasks ({args.planners} x {args.problems} x {args.seeds} seeds, {args.experiments} experiments)")
    for workers in counts:
        same = "identical" if found[workers] == found[base] else "DIFFERENT"
        print(f"{workers} worker(s): wall time x{seconds[workers] / seconds[base]:.2f} of {base}; numbers {same}")
    return 0 if all(found[w] == found[base] for w in counts) else 1


if __name__ == "__main__":
    sys.exit(main())
