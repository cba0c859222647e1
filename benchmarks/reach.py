"""The reach of the hardware, before and after: refused and failed runs per planner.

Two tables from one invocation, each planner run twice on the same session with the same seed:

- ``max_step``: the simulated beamline with ``max_step`` on both variables. *before* runs the instrument behind an
  executor that hides its reach (:class:`Blind`: no device limits, no stepping), so the safety gate refuses every
  move longer than ``max_step``, as it did before the reach work; *after* runs the executor as it is (long moves
  walked in steps). Printed: runs, share refused by the gate, experiments ok.
- ``device limits``: an ophyd classic motor with controller limits (-1, 1) under hard limits (-2, 2) (the factory of
  ``tests/integration/test_reach.py``); *before* hides the limits, *after* reads them at connect. Printed: runs,
  share failed (``LimitError``), share of proposals outside the device's limits.

Each session runs until its budget of ok experiments (failures do not stop it), so the shares compare like with like.

    python -m benchmarks.reach [--experiments 20] [--seed 1] [--max-step 0.3] [--planners sobol,random]
"""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from agent.session import Session
from closedloop.execution import executor_args
from closedloop.records import Proposal
from closedloop.spec import spec_from_dict
from instruments.executor import InProcessExecutor
from instruments.protocols import DocumentSink, RunRecord

PLANNERS: dict[str, dict[str, Any]] = {
    "sobol": {"name": "sobol"},
    "random": {"name": "random"},
    "grid": {"name": "grid", "options": {"points_per_dim": 6}},
    "foreign (xopt random)": {"name": "xopt.generators.random:RandomGenerator"},
    "botorch": {"name": "botorch", "options": {"n_initial": 5, "num_restarts": 2, "raw_samples": 64}},
}


class Blind:
    """An executor as the gate saw every executor before: it runs proposals and says where its movers are, but not
    its devices' limits, and does not make long moves in steps."""

    def __init__(self, executor: InProcessExecutor) -> None:
        self.executor = executor

    def run(
        self, proposal: Proposal, md: Mapping[str, Any] | None = None, on_document: DocumentSink | None = None
    ) -> RunRecord:
        return self.executor.run(proposal, md, on_document)

    def positions(self) -> dict[str, Any]:
        return self.executor.positions()

    def abort(self, reason: str) -> None:
        self.executor.abort(reason)

    def close(self) -> None:
        self.executor.close()


def beamline(planner: dict[str, Any], experiments: int, seed: int, max_step: float = 0.3) -> dict[str, Any]:
    step = {"hard_limits": [-2.0, 2.0], "max_step": max_step}
    return {
        "name": "reach-max-step",
        "seed": seed,
        "variables": {
            "pitch1": {"bounds": [-1.5, 1.5], "device": "m1", **step},
            "pitch2": {"bounds": [-1.5, 1.5], "device": "m2", **step},
        },
        "objectives": {"flux": {"direction": "maximize", "field": "det-flux"}},
        "budget": {"experiments": experiments},
        "planner": planner,
        "instrument": {"simulator": "beamline", "options": {"noise": 1.0}},
        "review": {"policy": "never"},
        "failures": {"max_consecutive": 100_000},
        "pipeline": False,
    }


def limited(planner: dict[str, Any], experiments: int, seed: int) -> dict[str, Any]:
    return {
        "name": "reach-device-limits",
        "seed": seed,
        "variables": {"x": {"bounds": [-2.0, 2.0], "hard_limits": [-2.0, 2.0], "device": "mx"}},
        "objectives": {"peak": {"direction": "maximize", "field": "gauss"}},
        "budget": {"experiments": experiments},
        "planner": planner,
        "instrument": {"factory": "tests.integration.test_reach:limited_classic"},
        "review": {"policy": "never"},
        "failures": {"max_consecutive": 100_000},
        "pipeline": False,
    }


def run(data: dict[str, Any], blind: bool, folder: Path) -> dict[str, Any]:
    """One session to its end; what its runs came to."""
    folder.mkdir(parents=True)
    path = folder / "session.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    executor = Blind(InProcessExecutor(executor_args(spec_from_dict(data), "s-bench"))) if blind else None
    session = Session.create(path, folder / "run", executor=executor)
    try:
        session.advance()
        observations = session.store.observations()
        events = session.store.events()
    finally:
        session.close()
    refused = sum(1 for _, kind, _ in events if kind == "safety")
    failed = [o for o in observations if o.status == "failed"]
    limit_errors = sum("LimitError" in (o.error or "") for o in failed)
    outside = sum(1 for o in observations if any(abs(float(v)) > 1.0 for k, v in o.setpoints.items() if k == "x"))
    return {"runs": len(observations), "refused": refused, "limit": limit_errors, "outside": outside}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiments", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--max-step", type=float, default=0.3, help="max_step of both beamline variables")
    parser.add_argument("--planners", default=",".join(PLANNERS), help="comma-separated names from the table")
    args = parser.parse_args()
    chosen = [name for name in args.planners.split(",") if name]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        print(f"max_step {args.max_step:g} on both variables, {args.experiments} ok experiments, seed {args.seed}")
        print(f"{'planner':24} {'runs before':>11} {'refused before':>15} {'runs after':>11} {'refused after':>14}")
        for name in chosen:
            shares = []
            for blind in (True, False):
                data = beamline(PLANNERS[name], args.experiments, args.seed, args.max_step)
                got = run(data, blind, root / f"step-{name.split()[0]}-{blind}")
                shares.append((got["runs"], got["refused"] / max(got["runs"], 1)))
            (rb, sb), (ra, sa) = shares
            print(f"{name:24} {rb:>11} {sb:>15.0%} {ra:>11} {sa:>14.0%}")
        print()
        print(f"device limits (-1, 1) under hard limits (-2, 2), {args.experiments} ok experiments, seed {args.seed}")
        head = f"{'runs before':>11} {'LimitError':>11} {'outside':>8} {'runs after':>11} {'LimitError':>11}"
        print(f"{'planner':24} {head}")
        for name in chosen:
            before = run(limited(PLANNERS[name], args.experiments, args.seed), True, root / f"lim-{name[:5]}-1")
            after = run(limited(PLANNERS[name], args.experiments, args.seed), False, root / f"lim-{name[:5]}-0")
            share = {key: got["limit"] / max(got["runs"], 1) for key, got in (("before", before), ("after", after))}
            print(
                f"{name:24} {before['runs']:>11} {share['before']:>11.0%} "
                f"{before['outside'] / max(before['runs'], 1):>8.0%} {after['runs']:>11} {share['after']:>11.0%}"
            )


if __name__ == "__main__":
    main()
