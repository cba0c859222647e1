"""Dead beam time and throughput: how long the instrument sits idle between experiments, and how many experiments
a minute one model gets from 1, 2 and 4 instruments.

Every session runs in process on the simulated beamline with ``exposure`` seconds per reading and the real
``botorch`` planner, unattended. In one invocation it runs, per seed:

- one instrument, ``pipeline: false`` (the baseline: propose, run, ingest, strictly in turn);
- one instrument, pipelined (the default);
- two and four instruments, pipelined;
- four instruments again with the planner option ``pending: believe`` (UCB on a GP told its own mean at the
  points in flight, instead of qLogNEI over them: see ``benchmarks/pipelined_regret.py`` for its regret over many
  seeds).

For each it prints the instrument's idle time between experiments (one run's stop document to the next run's
start document on the same instrument, median and max after the initial design), experiments per minute (over the
whole session, first start to last stop) with its ratio to the pipelined single instrument, and the regret at the
end (how far the best point's true flux is from the beamline's optimum, read-back positions). Regret is printed
per seed so that its spread over seeds can be read beside the differences, with its median and a one-sided
Mann-Whitney p that the sequential loop's regrets are lower (small: the difference stands out of that spread).

Torch gets one thread, as ``closedloop run`` gives it by default.

    python -m benchmarks.throughput [--experiments 30] [--exposure 2.0] [--seeds 0,1] [--variants one,four]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
import yaml
from scipy.stats import mannwhitneyu  # type: ignore[import-untyped]

from agent.session import Session
from simulators import BEAMLINE_OPTIMUM, beamline_flux


def session_file(
    experiments: int, exposure: float, instruments: int, pipeline: bool, seed: int, options: dict[str, Any]
) -> dict[str, Any]:
    """The benchmark's session: the simulated beamline, botorch with ``options``, no review."""
    instrument = {"simulator": "beamline", "options": {"exposure": exposure}}
    data: dict[str, Any] = {
        "name": "throughput",
        "seed": seed,
        "variables": {
            "pitch1": {"bounds": [-1.5, 1.5], "hard_limits": [-2.0, 2.0], "device": "m1"},
            "pitch2": {"bounds": [-1.5, 1.5], "hard_limits": [-2.0, 2.0], "device": "m2"},
        },
        "objectives": {"flux": {"field": "det-flux"}},
        "budget": {"experiments": experiments},
        "planner": {"name": "botorch", "options": options},
        "review": {"policy": "never"},
        "pipeline": pipeline,
    }
    if instruments == 1:
        data["instrument"] = instrument
    else:
        data["instruments"] = [dict(instrument, name=f"i{k + 1}") for k in range(instruments)]
    return data


def measure(data: dict[str, Any], initial: int) -> dict[str, float]:
    """Run one session; its idle times, experiments per minute and final regret."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "session.yaml"
        path.write_text(yaml.safe_dump(data))
        with Session.create(path, Path(tmp) / "run") as session:
            began = time.perf_counter()
            assert session.advance() is None, "the session held at a checkpoint"
            wall = time.perf_counter() - began
            runs = []
            for observation in session.store.observations():
                stored = session.store.run(observation.proposal_id)
                docs = {name: doc for name, doc in (stored[0] if stored else []) if name in ("start", "stop")}
                if "start" in docs and "stop" in docs:
                    runs.append((docs["start"], docs["stop"], observation))
    runs.sort(key=lambda run: run[0]["time"])
    idle: list[float] = []
    lanes: dict[str, list[tuple[dict[str, Any], dict[str, Any]]]] = {}
    for index, (start, stop, _) in enumerate(runs):
        lane = lanes.setdefault(str(start.get("instrument", "instrument")), [])
        if lane and index >= initial:  # after the initial design: the model's time is what pipelining hides
            idle.append(start["time"] - lane[-1][1]["time"])
        lane.append((start, stop))
    span = runs[-1][1]["time"] - runs[0][0]["time"]
    ok = [o for _, _, o in runs if o.ok]
    best = max(beamline_flux(float(o.readbacks.get("pitch1", 0.0)), float(o.readbacks.get("pitch2", 0.0))) for o in ok)
    return {
        "idle_median": statistics.median(idle) if idle else float("nan"),
        "idle_max": max(idle) if idle else float("nan"),
        "per_minute": 60.0 * len(runs) / span,
        "regret": BEAMLINE_OPTIMUM.value - best,
        "wall": wall,
    }


#: The sessions, by the key ``--variants`` takes: name, instruments, pipelined, planner options.
VARIANTS: dict[str, tuple[str, int, bool, dict[str, Any]]] = {
    "sequential": ("1 instrument, pipeline: false", 1, False, {}),
    "one": ("1 instrument", 1, True, {}),
    "two": ("2 instruments", 2, True, {}),
    "four": ("4 instruments", 4, True, {}),
    "four-believe": ("4 instruments, pending: believe", 4, True, {"pending": "believe"}),
}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--experiments", type=int, default=30)
    parser.add_argument("--exposure", type=float, default=2.0)
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--initial", type=int, default=10, help="experiments of the initial design (not timed)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads, as `closedloop run --threads`")
    parser.add_argument("--variants", default=",".join(VARIANTS), help="which sessions, of " + ", ".join(VARIANTS))
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)  # as the CLI does: one thread is fastest for the planner's small matrices
    seeds = [int(s) for s in args.seeds.split(",")]
    chosen = args.variants.split(",")
    unknown = set(chosen) - set(VARIANTS)
    if unknown:
        parser.error(f"--variants: one of {', '.join(VARIANTS)} each (got {args.variants})")
    variants = [VARIANTS[key] for key in VARIANTS if key in chosen]
    results: dict[str, list[dict[str, float]]] = {name: [] for name, *_ in variants}
    for seed in seeds:
        for name, count, pipeline, options in variants:
            data = session_file(args.experiments, args.exposure, count, pipeline, seed, options)
            result = measure(data, args.initial)
            results[name].append(result)
            print(
                f"seed {seed} {name:32s} idle median {1000 * result['idle_median']:7.1f} ms "
                f"max {1000 * result['idle_max']:7.1f} ms  {result['per_minute']:5.1f} exp/min  "
                f"regret {result['regret']:.2f}",
                flush=True,
            )
    one = results.get(VARIANTS["one"][0])
    sequential = results.get(VARIANTS["sequential"][0])
    print(f"\n{args.experiments} experiments, exposure {args.exposure} s, botorch, seeds {args.seeds}")
    print(
        f"{'':32s}{'idle median':>12s}{'idle max':>10s}{'exp/min':>9s}{'x one':>7s}"
        "  regret median (p: the sequential loop's lower), per seed"
    )
    for name, *_ in variants:
        rows = results[name]
        rate = statistics.median(r["per_minute"] for r in rows)
        ratio = f"{rate / statistics.median(r['per_minute'] for r in one):7.2f}" if one else f"{'-':>7s}"
        regrets = [r["regret"] for r in rows]
        p = ""
        if sequential and rows is not sequential:
            p = f" (p {mannwhitneyu([r['regret'] for r in sequential], regrets, alternative='less').pvalue:.2g})"
        print(
            f"{name:32s}{1000 * statistics.median(r['idle_median'] for r in rows):10.1f}ms"
            f"{1000 * max(r['idle_max'] for r in rows):8.1f}ms{rate:9.1f}{ratio}  "
            f"{statistics.median(regrets):.3g}{p}: " + ", ".join(f"{r:.2f}" for r in regrets)
        )


if __name__ == "__main__":
    main()
