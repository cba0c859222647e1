"""The queueserver executor's cost per experiment, beside the RE Manager's own round trip for the same plan.

For each case it starts a local queueserver (Redis, bluesky-0MQ-proxy, RE Manager) and alternates two
measurements N times each, on the same manager and the same queue items:

- **bare plan**: a bare bluesky-queueserver-api client adds the item the executor would submit, starts the queue
  and polls the status every 50 ms until the manager is idle again: the manager's own round trip, no documents.
- **executor**: :meth:`QueueServerExecutor.run` for one proposal (submit, wait for the manager's history, receive
  the run's documents from the proxy) plus ingestion into an observation.

Cases:

- ``bundled point``: closedloop's startup folder (``simulators/qserver``), one-point runs with ``closedloop_point``;
- ``stock point``: bluesky-queueserver's own simulated profile (``profile_collection_sim``: ``motor1``, ``motor2``,
  ``det4``; Bluesky's standard plans only), one-point runs with Bluesky's ``scan``;
- ``stock scan``: the same profile, ``plan: scan`` of 11 points with a peak reducer (Bluesky's ``scan``).

It prints each median and the executor's overhead over the bare plan (difference and ratio). The target is under
0.6 s per one-point experiment through the executor.

    python -m benchmarks.queueserver_overhead [--experiments 20] [--cases bundled-point stock-point stock-scan]
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

from bluesky_queueserver_api import BPlan
from bluesky_queueserver_api.zmq import REManagerAPI

from agent.cli import LocalQueueServer, QueueServerAddresses
from closedloop.execution import executor_args
from closedloop.records import Proposal
from closedloop.spec import SessionSpec, spec_from_dict
from instruments._queue_items import plan_items
from instruments.ingest import observation_from_documents
from instruments.queueserver import QueueServerExecutor, close_api

TARGET_SECONDS = 0.6
POLL = 0.05
CASES = ("bundled-point", "stock-point", "stock-scan")


def _spec(case: str, addresses: QueueServerAddresses) -> SessionSpec:
    queueserver = {
        "control_address": addresses.control,
        "documents_address": addresses.documents,
        "poll_interval": POLL,
    }
    extra: dict[str, Any] = {}
    if case == "bundled-point":
        devices, detector, field = ("m1", "m2"), "det", "det-flux"
    else:
        devices, detector, field = ("motor1", "motor2"), "det4", "det4"
        if case == "stock-scan":
            extra = {"plan": {"name": "scan", "options": {"variable": "p1", "width": 2.0, "num": 11}}}
    objective: dict[str, Any] = {"field": field}
    if case == "stock-scan":
        objective["reducer"] = "instruments.reducers:peak_position"
    return spec_from_dict(
        {
            "variables": {
                "p1": {"bounds": [-1.5, 1.5], "device": devices[0]},
                "p2": {"bounds": [-1.5, 1.5], "device": devices[1]},
            },
            "objectives": {"value": objective},
            "budget": {"experiments": 1},
            "instrument": {"queueserver": {**queueserver, "detectors": [detector]}},
            **extra,
        }
    )


def _bare_round_trip(api: REManagerAPI, items: list[BPlan]) -> float:
    """Seconds from adding the items to the manager reporting idle again, polling every 50 ms."""
    started = time.perf_counter()
    for item in items:
        api.item_add(item)
    api.queue_start()
    while True:
        time.sleep(POLL)
        status = api.status(reload=True)
        if status["manager_state"] == "idle" and status["items_in_queue"] == 0:
            return time.perf_counter() - started


def _executor_round_trip(spec: SessionSpec, executor: QueueServerExecutor, proposal: Proposal) -> float:
    """Seconds from submitting the proposal to its observation built from the documents received."""
    started = time.perf_counter()
    record = executor.run(proposal)
    observation = observation_from_documents(spec, proposal, record.documents, record.error)
    elapsed = time.perf_counter() - started
    if not observation.ok:
        raise RuntimeError(f"experiment {proposal.iteration} failed: {observation.error}")
    return elapsed


def measure(case: str, experiments: int) -> dict[str, Any]:
    """Both round trips of ``case``, ``experiments`` times each, alternating; their medians."""
    with LocalQueueServer("stock" if case.startswith("stock") else None, noise=0.0) as server:
        spec = _spec(case, server.addresses)
        executor = QueueServerExecutor(executor_args(spec, "benchmark"))
        api = REManagerAPI(zmq_control_addr=server.addresses.control)
        try:
            bare, ours = [], []
            for index in range(experiments):
                setpoints: dict[str, float | str] = {
                    "p1": -0.4 + 0.8 * index / max(experiments - 1, 1),
                    "p2": 0.3 - 0.5 * index / experiments,
                }
                md = {"proposal_id": f"bare-{index}"}
                items = plan_items(
                    executor.problem, executor.qs, spec.plan, executor.plan, setpoints, executor.movers, md
                )
                bare.append(_bare_round_trip(api, items))
                ours.append(_executor_round_trip(spec, executor, Proposal(iteration=index, setpoints=setpoints)))
            plan = executor.plan
        finally:
            close_api(api)
            executor.close()
    bare_median, ours_median = statistics.median(bare), statistics.median(ours)
    return {
        "case": case,
        "plan": plan,
        "experiments": experiments,
        "bare_median_s": bare_median,
        "executor_median_s": ours_median,
        "overhead_s": ours_median - bare_median,
        "ratio": ours_median / bare_median,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiments", type=int, default=20)
    parser.add_argument("--cases", nargs="+", choices=CASES, default=list(CASES))
    args = parser.parse_args(argv)
    print(f"experiments per measurement: {args.experiments}")
    print(f"{'case':<14} {'plan':<17} {'bare plan s':>11} {'executor s':>11} {'overhead s':>11} {'ratio':>6}")
    for case in args.cases:
        result = measure(case, args.experiments)
        print(
            f"{case:<14} {result['plan']:<17} {result['bare_median_s']:>11.3f} {result['executor_median_s']:>11.3f} "
            f"{result['overhead_s']:>+11.3f} {result['ratio']:>6.2f}"
        )
        if case.endswith("point"):
            verdict = "meets" if result["executor_median_s"] < TARGET_SECONDS else "misses"
            print(f"  target: under {TARGET_SECONDS:.1f} s per one-point experiment through the executor: {verdict} it")


if __name__ == "__main__":
    main()
