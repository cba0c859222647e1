"""The queueserver executor's cost per experiment, beside the RE Manager's own round trip.

Starts a local queueserver (Redis, bluesky-0MQ-proxy, RE Manager with the bundled startup folder) and, in the same
invocation, alternates two measurements N times each on the same manager and the same plan:

- **manager**: a bare bluesky-queueserver-api client adds the ``closedloop_point`` item, starts the queue and polls
  the status every 50 ms until the manager is idle again: the manager's own round trip, no documents.
- **executor**: :meth:`QueueServerExecutor.run` for one proposal (submit, wait for the manager's history, receive the
  run's documents from the proxy) plus ingestion into an observation.

It prints each median and the executor's overhead over the manager (difference and ratio). The target is under
0.6 s per experiment through the executor.

    python -m benchmarks.queueserver_overhead [--experiments 50]
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

from bluesky_queueserver_api import BPlan
from bluesky_queueserver_api.zmq import REManagerAPI

from agent.cli_queueserver import LocalQueueServer, QueueServerAddresses
from closedloop.records import Proposal
from closedloop.spec import SessionSpec, spec_from_dict
from instruments.ingest import observation_from_documents
from instruments.queueserver import QueueServerExecutor, close_api

TARGET_SECONDS = 0.6
POLL = 0.05


def _spec(addresses: QueueServerAddresses) -> SessionSpec:
    return spec_from_dict(
        {
            "variables": {
                "pitch1": {"bounds": [-1.5, 1.5], "device": "m1"},
                "pitch2": {"bounds": [-1.5, 1.5], "device": "m2"},
            },
            "objectives": {"flux": {"field": "det-flux"}},
            "budget": {"experiments": 1},
            "instrument": {
                "queueserver": {
                    "control_address": addresses.control,
                    "documents_address": addresses.documents,
                    "detectors": ["det"],
                    "poll_interval": POLL,
                }
            },
        }
    )


def _manager_round_trip(api: REManagerAPI, point: tuple[float, float], index: int) -> float:
    """Seconds from adding the item to the manager reporting idle again, polling every 50 ms."""
    item = BPlan("closedloop_point", ["det"], ["m1", "m2"], list(point), md={"proposal_id": f"bare-{index}"})
    started = time.perf_counter()
    api.item_add(item)
    api.queue_start()
    while True:
        time.sleep(POLL)
        status = api.status(reload=True)
        if status["manager_state"] == "idle" and status["items_in_queue"] == 0:
            return time.perf_counter() - started


def _executor_round_trip(executor: QueueServerExecutor, point: tuple[float, float], index: int) -> float:
    """Seconds from submitting the proposal to its observation built from the documents received."""
    proposal = Proposal(iteration=index, setpoints={"pitch1": point[0], "pitch2": point[1]})
    started = time.perf_counter()
    record = executor.run(proposal)
    observation = observation_from_documents(executor.spec, proposal, record.documents, record.error)
    elapsed = time.perf_counter() - started
    if not observation.ok:
        raise RuntimeError(f"experiment {index} failed: {observation.error}")
    return elapsed


def run(experiments: int) -> dict[str, Any]:
    """Measure both round trips ``experiments`` times each, alternating, and return the medians."""
    with LocalQueueServer(noise=0.0) as server:
        executor = QueueServerExecutor(_spec(server.addresses), "benchmark")
        api = REManagerAPI(zmq_control_addr=server.addresses.control)
        try:
            manager, ours = [], []
            for index in range(experiments):
                point = (-1.0 + 2.0 * index / max(experiments - 1, 1), 0.5 - index / max(experiments, 1))
                manager.append(_manager_round_trip(api, point, index))
                ours.append(_executor_round_trip(executor, point, index))
        finally:
            close_api(api)
            executor.close()
    manager_median, ours_median = statistics.median(manager), statistics.median(ours)
    return {
        "experiments": experiments,
        "manager_median_s": manager_median,
        "executor_median_s": ours_median,
        "overhead_s": ours_median - manager_median,
        "ratio": ours_median / manager_median,
        "target_s": TARGET_SECONDS,
        "meets_target": ours_median < TARGET_SECONDS,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiments", type=int, default=50)
    result = run(parser.parse_args(argv).experiments)
    print(f"experiments per measurement: {result['experiments']}")
    print(f"manager's own round trip (median): {result['manager_median_s'] * 1000:7.1f} ms")
    print(f"executor, submit to observation (median): {result['executor_median_s'] * 1000:7.1f} ms")
    print(f"executor overhead over the manager: {result['overhead_s'] * 1000:+7.1f} ms (ratio {result['ratio']:.2f})")
    verdict = "meets" if result["meets_target"] else "misses"
    print(f"target: under {TARGET_SECONDS * 1000:.0f} ms per experiment through the executor: {verdict} it")


if __name__ == "__main__":
    main()
