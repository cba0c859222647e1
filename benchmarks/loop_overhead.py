"""The agent's own cost per experiment, beside the RunEngine's.

Runs one unattended session of N experiments with the ``sobol`` planner on the simulated beamline, in process,
and splits every iteration's wall time into planner time, RunEngine time and the rest (the agent: LangGraph
steps and checkpoints, the store, ingestion). In the same invocation it runs the same plan N times on a bare
RunEngine as the baseline, and prints the agent's median cost per experiment and its ratio to the bare run. It then
runs the session again with ``publish:`` on (documents as JSON to a real ``bluesky-0MQ-proxy`` on loopback) and
prints the same figures for it.

    python -m benchmarks.loop_overhead [--experiments 100]
"""

from __future__ import annotations

import argparse
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from agent.process import SessionProcess
from agent.session import Session
from closedloop.execution import executor_args
from closedloop.records import Proposal
from closedloop.spec import spec_from_dict
from instruments.executor import InProcessExecutor
from instruments.writer import document_writer

SESSION: dict[str, Any] = {
    "name": "loop-overhead",
    "seed": 0,
    "variables": {
        "pitch1": {"bounds": [-1.5, 1.5], "hard_limits": [-2.0, 2.0], "device": "m1"},
        "pitch2": {"bounds": [-1.5, 1.5], "hard_limits": [-2.0, 2.0], "device": "m2"},
    },
    "objectives": {"flux": {"field": "det-flux"}},
    "budget": {"experiments": 100},
    "planner": {"name": "sobol"},
    "instrument": {"simulator": "beamline"},
    "review": {"policy": "never"},
}


class TimedPlanner:
    """Wraps a planner and adds up the time spent in it."""

    def __init__(self, planner: Any) -> None:
        self.planner = planner
        self.seconds = 0.0

    def suggest(self, num_points: int | None = None) -> list[dict[str, Any]]:
        started = time.perf_counter()
        try:
            return self.planner.suggest(num_points)
        finally:
            self.seconds += time.perf_counter() - started

    def ingest(self, results: list[dict[str, Any]]) -> None:
        started = time.perf_counter()
        try:
            self.planner.ingest(results)
        finally:
            self.seconds += time.perf_counter() - started


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def document_proxy() -> Iterator[str]:
    """A ``bluesky-0MQ-proxy`` process on loopback for the run; yields the address to publish to."""
    port_in, port_out = _free_port(), _free_port()
    command = shutil.which("bluesky-0MQ-proxy") or str(Path(sys.executable).with_name("bluesky-0MQ-proxy"))
    args = [command, "--in-address", f"tcp://127.0.0.1:{port_in}", "--out-address", f"tcp://127.0.0.1:{port_out}"]
    proxy = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        end = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port_in), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > end or proxy.poll() is not None:
                    raise RuntimeError("bluesky-0MQ-proxy did not start") from None
                time.sleep(0.05)
        yield f"127.0.0.1:{port_in}"
    finally:
        proxy.kill()
        proxy.wait(timeout=10)


def measure_loop(
    experiments: int, folder: Path, publish: str | None = None, channel: bool = False
) -> tuple[list[float], list[float], list[float]]:
    """Per-experiment (iteration, planner, RunEngine) seconds for one session (publishing to ``publish``; with
    ``channel``, serving the ZeroMQ control channel and publishing every loop event on it, as a session process
    does)."""
    data = dict(SESSION, budget={"experiments": experiments})
    if publish is not None:
        data["publish"] = {"address": publish}
    path = folder / "session.yaml"
    path.write_text(yaml.safe_dump(data))
    marks: list[tuple[float, float, str]] = []
    session = Session.create(path, folder / "run")
    process = SessionProcess(session) if channel else None  # served and driven as `closedloop run` does
    timed = TimedPlanner(session.planner)
    session.context.planner = timed
    session.context.on_observation = lambda o: marks.append((time.perf_counter(), timed.seconds, o.proposal_id))
    started = time.perf_counter()
    try:
        if process is not None:
            with process:
                process.run()
        else:
            session.advance()
        iterations, planner, engine = [], [], []
        previous_time, previous_planner = started, 0.0
        for now, planner_total, proposal_id in marks:
            run_seconds = session.store.run_seconds(proposal_id)
            iterations.append(now - previous_time)
            planner.append(planner_total - previous_planner)
            engine.append(run_seconds)
            previous_time, previous_planner = now, planner_total
    finally:
        session.close()
    # the first iteration carries one-off costs (first LangGraph compile paths, first run): leave it out
    return iterations[1:], planner[1:], engine[1:]


def measure_bare_run_engine(experiments: int, publish: str | None = None) -> list[float]:
    """Seconds per run of the same plan on a bare RunEngine with the same devices (the baseline), publishing its
    documents to ``publish`` if given."""
    spec = spec_from_dict(SESSION if publish is None else dict(SESSION, publish={"address": publish}))
    writer = document_writer(publish=spec.publish)
    executor = InProcessExecutor(executor_args(spec, "s-bare"), writer=writer)
    seconds = []
    try:
        for i in range(experiments):
            proposal = Proposal(iteration=i, setpoints={"pitch1": 0.01 * (i % 100), "pitch2": -0.5})
            started = time.perf_counter()
            executor.run(proposal)
            seconds.append(time.perf_counter() - started)
    finally:
        executor.close()
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiments", type=int, default=100)
    args = parser.parse_args()
    median = statistics.median
    with document_proxy() as address:
        bare, bare_published = [], []
        for _ in range(4):  # interleaved blocks, so that drift in the machine's load hits both alike
            bare += measure_bare_run_engine(max(1, args.experiments // 4))
            bare_published += measure_bare_run_engine(max(1, args.experiments // 4), publish=address)
    print(f"median bare RunEngine run     : {1e3 * median(bare):7.2f} ms  (baseline, same invocation)")
    print(
        f"  the same, publishing as JSON: {1e3 * median(bare_published):7.2f} ms  "
        f"({median(bare_published) / median(bare):.2f}x the bare run)"
    )
    variants = (
        ("documents to the store only", False, False),
        ("publishing to a 0MQ proxy", True, False),
        ("control channel on (events published)", False, True),
    )
    for label, publishing, channel in variants:
        with tempfile.TemporaryDirectory() as tmp:
            if publishing:
                with document_proxy() as address:
                    iterations, planner, engine = measure_loop(args.experiments, Path(tmp), publish=address)
            else:
                iterations, planner, engine = measure_loop(args.experiments, Path(tmp), channel=channel)
        agent = [it - pl - en for it, pl, en in zip(iterations, planner, engine, strict=True)]
        print(f"-- {label}")
        print(f"experiments measured          : {len(iterations)} (sobol, simulated beamline, review never)")
        print(f"median iteration              : {1e3 * median(iterations):7.2f} ms")
        print(f"median planner (suggest+ingest): {1e3 * median(planner):7.2f} ms")
        print(
            f"median RunEngine run          : {1e3 * median(engine):7.2f} ms  "
            f"({median(engine) / median(bare):.2f}x the bare run)"
        )
        print(f"median agent cost/experiment  : {1e3 * median(agent):7.2f} ms  (target < 15 ms)")
        print(f"agent cost / bare RunEngine   : {median(agent) / median(bare):7.2f}x")


if __name__ == "__main__":
    main()
