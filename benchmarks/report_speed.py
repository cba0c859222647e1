"""How long ``closedloop report`` takes on a long session: a store of N observations written directly through the
store API (a botorch session on the simulated beamline's two pitches, a smooth peak plus noise as the flux, one
run in fifty failed, one point in a hundred added by an operator, every proposal approved by the policy), then the
report written by the CLI in a fresh process (imports included), against the same on a session of 10 and
against a process that only imports torch and matplotlib (the load of the machine, for scale).

    PYTHONPATH=$PWD python -m benchmarks.report_speed [--n 1000]
"""

from __future__ import annotations

import argparse
import math
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from agent.store import open_store, write_seal
from closedloop.changes import spec_fingerprint
from closedloop.records import Decision, Observation, ObservationStatus, Proposal, ProposalStatus, Verdict
from closedloop.spec import load_spec

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "beamline.yaml"


def flux(p1: float, p2: float, rng: random.Random) -> float:
    """A peak of about 1,000 counts near (0.3, -0.5), with noise."""
    return 1000.0 * math.exp(-((p1 - 0.3) ** 2 + (p2 + 0.5) ** 2) / 0.5) + rng.gauss(0.0, 10.0)


def build_session(folder: Path, n: int, seed: int = 0) -> None:
    """A finished session of ``n`` observations in ``folder``, written through the store API."""
    folder.mkdir(parents=True)
    shutil.copyfile(EXAMPLE, folder / "session.yaml")
    spec = load_spec(folder / "session.yaml")
    store = open_store(folder, new=True, session_id="s-benchmark")
    store.set_meta(
        session_id="s-benchmark",
        name=spec.name,
        state="finished",
        created=time.time(),
        budget=n,
        spec=spec.model_dump(mode="json"),
        spec_fingerprint=spec_fingerprint(spec),
    )
    rng = random.Random(seed)
    proposals, observations, decisions = [], [], []
    for i in range(n):
        pitch1, pitch2 = rng.uniform(-1.5, 1.5), rng.uniform(-1.5, 1.5)
        point: dict[str, float | str] = {"pitch1": pitch1, "pitch2": pitch2}
        operator = i % 100 == 50
        proposal = Proposal(
            iteration=i,
            setpoints=point,
            origin="operator" if operator else "planner",
            why="operator" if operator else "model",
            status=ProposalStatus.OBSERVED,
        )
        proposals.append(proposal)
        if i % 50 == 25:
            observation = Observation(
                proposal_id=proposal.id, status=ObservationStatus.FAILED, setpoints=point, error="det-flux: no reading"
            )
        else:
            value = flux(pitch1, pitch2, rng)
            observation = Observation(
                proposal_id=proposal.id,
                status=ObservationStatus.OK,
                setpoints=point,
                readbacks=point,
                values={"flux": value},
                duration=0.1,
            )
        observations.append(observation)
        decisions.append((i, Decision(verdict=Verdict.APPROVE, proposal_ids=[proposal.id], by="policy", via="policy")))
    store.add_proposals(proposals)
    for observation in observations:
        store.add_observation(observation)
    for iteration, decision in decisions:
        store.add_decision(iteration, decision)
    store.close()
    write_seal(folder, "s-benchmark", n)


def timed_report(folder: Path) -> float:
    """Seconds for ``closedloop report`` on ``folder`` in a fresh process."""
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "agent.cli", "report", str(folder), "--out", str(folder / "report.html")],
        check=True,
        capture_output=True,
    )
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--keep", type=Path, help="copy the long session's report.html here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as root:
        small, large = Path(root) / "small", Path(root) / "large"
        start = time.perf_counter()
        build_session(small, 10)
        build_session(large, args.n)
        print(f"stores written in {time.perf_counter() - start:.1f} s")
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import torch, matplotlib.figure"], check=True)
        imports = time.perf_counter() - start
        print(f"a fresh process importing torch and matplotlib: {imports:6.2f} s (the machine's load, for scale)")
        base = timed_report(small)
        long = timed_report(large)
        size = (large / "report.html").stat().st_size / 1e6
        if args.keep:
            shutil.copyfile(large / "report.html", args.keep)
        print(f"report of 10 observations:       {base:6.2f} s")
        ratios = f"{long / base:.2f}x the short one, {long / imports:.1f}x the imports"
        print(f"report of {args.n} observations: {long:6.2f} s  ({ratios}; page {size:.1f} MB)")
        print("target: under 10 s for 1,000 observations:", "met" if long < 10.0 or args.n != 1000 else "NOT met")


if __name__ == "__main__":
    main()
