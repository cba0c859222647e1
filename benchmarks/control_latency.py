"""The control channel's transport cost on loopback, beside bare ZeroMQ.

Two measurements, each against a baseline measured in the same invocation:

- **round trip**: a :class:`~agent.operator.ControlClient` calls a :class:`~agent.operator.ControlServer` whose handler
  does nothing (``status`` in, ``{}`` out), one call at a time; the baseline is a bare DEALER/ROUTER echo of the
  same bytes. The difference is the protocol's cost: JSON, pydantic validation, correlation ids.
- **web page round trip**: the same request from an HTTP client through ``closedloop web``'s server, which opens a
  control client per request; printed beside the control round trip.
- **web page event streams**: ``--streams`` pages follow the events through ``closedloop web``'s server at once: the
  threads its process gains for them, and the time until an event has reached them all.
- **event delivery**: :meth:`~agent.operator.ControlServer.publish` to a :func:`~agent.operator.subscribe` iterator
  in another thread, one event in flight at a time; the baseline is a bare PUB/SUB pair sending the same bytes.

- **approve to first move**: a real session (the simulated beamline, review always) run as a
  :class:`~agent.process.SessionProcess` (its control channel served, its driver waiting at each checkpoint); a
  client sends ``answer`` (approve) and the time until the RunEngine processes the first ``set`` message is taken
  from the RunEngine's message hook. The baseline, in the same invocation, is the same session answered in-process
  (``Session.answer`` called directly, no channel).

    python -m benchmarks.control_latency [--calls 2000] [--approvals 20] [--streams 300]
"""

from __future__ import annotations

import argparse
import http.client
import json
import queue
import socket
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import zmq

from agent.operator import ControlClient, ControlServer, subscribe
from agent.web import WebGate, WebServer
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


def web_round_trips(folder: Path, calls: int) -> list[float]:
    """The same status request as :func:`control_round_trips`, from an HTTP client through the web page's server
    (``closedloop web``: HTTP in, a control client per request, the control channel, and back)."""
    server = ControlServer(folder, lambda request: {})
    web = WebServer(WebGate(folder, by="bench"), port=0)
    web.start()
    host, port = web.server_address[:2]
    connection = http.client.HTTPConnection(str(host), int(port), timeout=10)
    headers = {"X-Closedloop-Token": web.token, "Content-Type": "application/json"}
    times = []
    try:
        for _ in range(calls):
            started = time.perf_counter()
            connection.request("POST", "/api/request", body=b'{"type": "status"}', headers=headers)
            reply = json.loads(connection.getresponse().read())
            times.append(time.perf_counter() - started)
            if not reply["ok"]:
                raise RuntimeError(reply["error"])
    finally:
        connection.close()
        web.shutdown()
        web.server_close()
        server.close()
    return times


def threads() -> int:
    """The threads this process runs, ZeroMQ's own included (Linux), else the Python threads."""
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        return threading.active_count()
    return int(next(line for line in status.splitlines() if line.startswith("Threads:")).split()[1])


def web_streams(folder: Path, streams: int) -> tuple[int, list[float]]:
    """``streams`` pages following the events through the web page's server at once: the threads the server's
    process gained for them, and for each event published, the seconds until every page had it."""
    server = ControlServer(folder, lambda request: {})
    web = WebServer(WebGate(folder, by="bench"), port=0, max_streams=streams)
    web.start()
    host, port = web.server_address[:2]
    before = threads()
    pages = []
    try:
        for _ in range(streams):
            page = socket.create_connection((str(host), int(port)), timeout=10)
            page.sendall(f"GET /api/events?token={web.token} HTTP/1.1\r\nHost: bench\r\n\r\n".encode())
            pages.append(page)
        received = [b""] * streams
        for i in range(streams):  # each page is followed once it has the stream's first line
            while b"retry:" not in received[i]:
                received[i] += pages[i].recv(65536)
        times = []
        for n in range(1, 21):
            started = time.perf_counter()
            server.publish("observation", {"proposal_id": f"p-{n}"})
            for i, page in enumerate(pages):
                while received[i].count(b"\ndata: ") < n:
                    received[i] += page.recv(65536)
            times.append(time.perf_counter() - started)
        return threads() - before, times
    finally:
        for page in pages:
            page.close()
        web.shutdown()
        web.server_close()
        server.close()


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


SESSION = {
    "name": "approve-latency",
    "seed": 0,
    "variables": {
        "pitch1": {"bounds": [-1.5, 1.5], "hard_limits": [-2.0, 2.0], "device": "m1"},
        "pitch2": {"bounds": [-1.5, 1.5], "hard_limits": [-2.0, 2.0], "device": "m2"},
    },
    "objectives": {"flux": {"field": "det-flux"}},
    "planner": {"name": "sobol"},
    "instrument": {"simulator": "beamline"},
    "review": {"policy": "always"},
}


def _first_moves(session: Any) -> list[float]:
    """Times at which the session's RunEngine processed a ``set`` (a motor move), in order."""
    moves: list[float] = []
    session.executor.run_engine.msg_hook = lambda msg: (
        moves.append(time.perf_counter()) if msg.command == "set" else None
    )
    return moves


def approve_to_move(folder: Path, approvals: int, channel: bool) -> list[float]:
    """Seconds from an approve to the first move of the run it releases, over ``approvals`` checkpoints."""
    import yaml

    from agent.process import SessionProcess
    from agent.session import Session
    from closedloop.control import AnswerRequest, CheckpointRequest
    from closedloop.records import Decision, Verdict

    path = folder / "session.yaml"
    path.write_text(yaml.safe_dump({**SESSION, "budget": {"experiments": approvals + 1}}))
    session = Session.create(path, folder / "run")
    moves = _first_moves(session)
    latencies: list[float] = []
    try:
        if not channel:
            checkpoint = session.advance()
            for _ in range(approvals):
                assert checkpoint is not None
                count, started = len(moves), time.perf_counter()
                checkpoint = session.answer(Decision(verdict=Verdict.APPROVE))
                latencies.append(moves[count] - started)
            return latencies
        with SessionProcess(session) as process:  # served and driven as `closedloop run` does, in a thread
            process.start()
            with ControlClient(session.folder, timeout=10) as client:
                for _ in range(approvals):
                    pending = None
                    while pending is None:
                        pending = client.call(CheckpointRequest(by="bench")).result.get("checkpoint")
                        time.sleep(0.002)
                    count, started = len(moves), time.perf_counter()
                    reply = client.call(AnswerRequest(by="bench", checkpoint=pending["checkpoint"]))
                    assert reply.ok, reply.error
                    while len(moves) <= count:
                        time.sleep(0.0005)
                    latencies.append(moves[count] - started)
                client.call(AnswerRequest(by="bench", checkpoint=_wait_checkpoint(client), stop=True))
                process.join(timeout=30)
    finally:
        session.close()
    return latencies


def _wait_checkpoint(client: ControlClient) -> str:
    from closedloop.control import CheckpointRequest

    while True:
        pending = client.call(CheckpointRequest(by="bench")).result.get("checkpoint")
        if pending is not None:
            return str(pending["checkpoint"])
        time.sleep(0.002)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000, help="round trips and events measured")
    parser.add_argument("--approvals", type=int, default=20, help="checkpoints approved through the channel")
    parser.add_argument("--streams", type=int, default=300, help="pages following the events through the web server")
    args = parser.parse_args()
    payload = encode(StatusRequest(by="bench"))
    event_bytes = b'{"v":1,"seq":1,"time":0.0,"kind":"observation","data":{"proposal_id":"p-1","values":{"flux":1.0}}}'
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        bare = bare_round_trips(args.calls, payload)
        ours = control_round_trips(folder, args.calls)
        web = web_round_trips(folder, args.calls // 4)
        bare_pub = bare_delivery(args.calls, event_bytes)
        ours_pub = control_delivery(folder, args.calls)
        added, fanned = web_streams(folder, args.streams)
    ms = 1e3
    print(f"calls / events measured        : {args.calls} each, loopback, one in flight")
    print(f"median bare DEALER/ROUTER echo : {ms * statistics.median(bare):7.3f} ms  (baseline, same invocation)")
    print(
        f"median control round trip      : {ms * statistics.median(ours):7.3f} ms  "
        f"(p95 {ms * percentile(ours, 0.95):.3f} ms; target < 5 ms)"
    )
    print(f"control / bare round trip      : {statistics.median(ours) / statistics.median(bare):7.2f}x")
    print(
        f"median web page round trip     : {ms * statistics.median(web):7.3f} ms  "
        f"(HTTP through closedloop web; {len(web)} calls; {statistics.median(web) / statistics.median(ours):.2f}x "
        "the control round trip)"
    )
    print(f"median bare PUB/SUB delivery   : {ms * statistics.median(bare_pub):7.3f} ms  (baseline)")
    print(
        f"median event delivery          : {ms * statistics.median(ours_pub):7.3f} ms  "
        f"(p95 {ms * percentile(ours_pub, 0.95):.3f} ms)"
    )
    print(f"event / bare delivery          : {statistics.median(ours_pub) / statistics.median(bare_pub):7.2f}x")
    print(
        f"web page event streams         : {args.streams} open, {added} threads added for them; an event reaches "
        f"them all in {ms * statistics.median(fanned):.3f} ms (median)"
    )
    with tempfile.TemporaryDirectory() as tmp:
        direct = approve_to_move(Path(tmp), args.approvals, channel=False)
    with tempfile.TemporaryDirectory() as tmp:
        channelled = approve_to_move(Path(tmp), args.approvals, channel=True)
    print(f"median approve -> first move, in-process answer : {ms * statistics.median(direct):7.2f} ms  (baseline)")
    print(
        f"median approve -> first move, through channel   : {ms * statistics.median(channelled):7.2f} ms  "
        f"(target < 50 ms; {statistics.median(channelled) / statistics.median(direct):.2f}x the baseline)"
    )


if __name__ == "__main__":
    main()
