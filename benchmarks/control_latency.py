"""The control channel's transport cost on loopback, beside bare ZeroMQ.

Two measurements, each against a baseline measured in the same invocation:

- **round trip**: a :class:`~agent.control.ControlClient` calls a :class:`~agent.control.ControlServer` whose handler
  does nothing (``status`` in, ``{}`` out), one call at a time; the baseline is a bare DEALER/ROUTER echo of the
  same bytes. The difference is the protocol's cost: JSON, pydantic validation, correlation ids.
- **event delivery**: :meth:`~agent.control.ControlServer.publish` to a :func:`~agent.control.subscribe` iterator
  in another thread, one event in flight at a time; the baseline is a bare PUB/SUB pair sending the same bytes.

The time from an operator's approve to the first motor move is a session measurement, added with the session's
wiring.

    python -m benchmarks.control_latency [--calls 2000]
"""

from __future__ import annotations

import argparse
import queue
import statistics
import tempfile
import threading
import time
from pathlib import Path

import zmq

from agent.control import ControlClient, ControlServer, subscribe
from closedloop.control import StatusRequest, encode


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def bare_round_trips(calls: int, payload: bytes) -> list[float]:
    """DEALER -> ROUTER -> DEALER with the same bytes, an echo thread serving."""
    ctx = zmq.Context()
    router, dealer = ctx.socket(zmq.ROUTER), ctx.socket(zmq.DEALER)
    for sock in (router, dealer):
        sock.linger = 0
    router.bind("tcp://127.0.0.1:*")
    dealer.connect(router.getsockopt_string(zmq.LAST_ENDPOINT))

    def echo() -> None:
        for _ in range(calls):
            router.send_multipart(router.recv_multipart())

    thread = threading.Thread(target=echo, daemon=True)
    thread.start()
    times = []
    for _ in range(calls):
        started = time.perf_counter()
        dealer.send(payload)
        dealer.recv()
        times.append(time.perf_counter() - started)
    thread.join()
    router.close()
    dealer.close()
    ctx.term()
    return times


def control_round_trips(folder: Path, calls: int) -> list[float]:
    server = ControlServer(folder, lambda request: {})
    times = []
    try:
        with ControlClient(folder) as client:
            for _ in range(calls):
                request = StatusRequest(by="bench")
                started = time.perf_counter()
                reply = client.call(request)
                times.append(time.perf_counter() - started)
                if not reply.ok:
                    raise RuntimeError(reply.error)
    finally:
        server.close()
    return times


def bare_delivery(events: int, payload: bytes) -> list[float]:
    """PUB -> SUB of the same bytes, one in flight at a time."""
    ctx = zmq.Context()
    pub, sub = ctx.socket(zmq.PUB), ctx.socket(zmq.SUB)
    for sock in (pub, sub):
        sock.linger = 0
    pub.bind("tcp://127.0.0.1:*")
    sub.setsockopt(zmq.SUBSCRIBE, b"")
    sub.connect(pub.getsockopt_string(zmq.LAST_ENDPOINT))
    while True:  # wait until the subscription has reached the publisher
        pub.send(b"hello")
        if sub.poll(10):
            sub.recv()
            break
    while sub.poll(50):
        sub.recv()
    times = []
    for _ in range(events):
        started = time.perf_counter()
        pub.send(payload)
        sub.recv()
        times.append(time.perf_counter() - started)
    pub.close()
    sub.close()
    ctx.term()
    return times


def control_delivery(folder: Path, events: int) -> list[float]:
    server = ControlServer(folder, lambda request: {})
    arrived: queue.Queue[float] = queue.Queue()

    def listen() -> None:
        for event in subscribe(folder):
            arrived.put(time.perf_counter())
            if event.kind == "finished":
                return

    thread = threading.Thread(target=listen, daemon=True)
    thread.start()
    try:
        server.publish("paused", {})  # replayed on joining: the subscriber is connected once it arrives
        arrived.get(timeout=10)
        times = []
        for i in range(events):
            started = time.perf_counter()
            server.publish("observation", {"proposal_id": f"p-{i}", "values": {"flux": float(i)}})
            times.append(arrived.get(timeout=10) - started)
        server.publish("finished", {})
        thread.join(timeout=10)
    finally:
        server.close()
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000, help="round trips and events measured")
    args = parser.parse_args()
    payload = encode(StatusRequest(by="bench"))
    event_bytes = b'{"v":1,"seq":1,"time":0.0,"kind":"observation","data":{"proposal_id":"p-1","values":{"flux":1.0}}}'
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        bare = bare_round_trips(args.calls, payload)
        ours = control_round_trips(folder, args.calls)
        bare_pub = bare_delivery(args.calls, event_bytes)
        ours_pub = control_delivery(folder, args.calls)
    ms = 1e3
    print(f"calls / events measured        : {args.calls} each, loopback, one in flight")
    print(f"median bare DEALER/ROUTER echo : {ms * statistics.median(bare):7.3f} ms  (baseline, same invocation)")
    print(
        f"median control round trip      : {ms * statistics.median(ours):7.3f} ms  "
        f"(p95 {ms * percentile(ours, 0.95):.3f} ms; target < 5 ms)"
    )
    print(f"control / bare round trip      : {statistics.median(ours) / statistics.median(bare):7.2f}x")
    print(f"median bare PUB/SUB delivery   : {ms * statistics.median(bare_pub):7.3f} ms  (baseline)")
    print(
        f"median event delivery          : {ms * statistics.median(ours_pub):7.3f} ms  "
        f"(p95 {ms * percentile(ours_pub, 0.95):.3f} ms)"
    )
    print(f"event / bare delivery          : {statistics.median(ours_pub) / statistics.median(bare_pub):7.2f}x")


if __name__ == "__main__":
    main()
