"""Documents published as the usual consumers see them: a real ``bluesky-0MQ-proxy`` process on loopback, the
executor's JSON ``Publisher`` on its input, bluesky's ``RemoteDispatcher`` (JSON deserializer) on its output."""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from bluesky.callbacks.zmq import RemoteDispatcher

from closedloop import Proposal
from instruments import InProcessExecutor, json_document
from simulators import BEAMLINE_OPTIMUM
from tests.conftest import args_for, beamline_session, writer_for

pytestmark = pytest.mark.system


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def proxy_command() -> list[str]:
    found = shutil.which("bluesky-0MQ-proxy") or str(Path(sys.executable).with_name("bluesky-0MQ-proxy"))
    return [found]


def wait_for_port(port: int, process: subprocess.Popen[bytes], deadline: float = 10.0) -> None:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if process.poll() is not None:
            raise RuntimeError(f"bluesky-0MQ-proxy exited with {process.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"bluesky-0MQ-proxy did not listen on {port} within {deadline} s")


def test_a_runs_documents_reach_a_remote_dispatcher_through_a_real_proxy(run_engine: Any) -> None:
    port_in, port_out = free_port(), free_port()
    proxy = subprocess.Popen(
        [
            *proxy_command(),
            "--in-address",
            f"tcp://127.0.0.1:{port_in}",
            "--out-address",
            f"tcp://127.0.0.1:{port_out}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    received: list[tuple[str, dict[str, Any]]] = []
    dispatcher = RemoteDispatcher(f"127.0.0.1:{port_out}", loop=asyncio.new_event_loop(), deserializer=json.loads)
    dispatcher.subscribe(lambda name, doc: received.append((name, doc)))

    def listen() -> None:
        with contextlib.suppress(asyncio.CancelledError):
            dispatcher.start()

    listener = threading.Thread(target=listen, daemon=True)
    executor = None
    try:
        wait_for_port(port_in, proxy)
        wait_for_port(port_out, proxy)
        listener.start()
        data = beamline_session(
            instrument={"simulator": "beamline", "options": {"noise": 0.0}},
            publish={"address": f"127.0.0.1:{port_in}"},
            metadata={"beamline": "BL-7"},
        )
        executor = InProcessExecutor(args_for(data, "s-pub"), run_engine=run_engine, writer=writer_for(data))
        # PUB/SUB drops messages until both ends are joined: warm up until a whole run comes through
        for attempt in range(50):
            warm = executor.run(Proposal(iteration=attempt, setpoints={"pitch1": 0.0, "pitch2": 0.0}))
            time.sleep(0.1)
            if any(doc.get("uid") == warm.documents[0][1]["uid"] for name, doc in received if name == "start"):
                break
        else:
            pytest.fail("no document came through the proxy in 50 runs")
        proposal = Proposal(iteration=99, setpoints=dict(BEAMLINE_OPTIMUM.point))
        record = executor.run(proposal)
        uid = record.documents[0][1]["uid"]
        end = time.monotonic() + 5.0
        while time.monotonic() < end and not any(name == "stop" and doc["run_start"] == uid for name, doc in received):
            time.sleep(0.02)
        run = [(name, doc) for name, doc in received if doc.get("uid") == uid or doc.get("run_start") == uid]
        descriptors = {doc["uid"] for name, doc in record.documents if name == "descriptor"}
        run += [(name, doc) for name, doc in received if name == "event" and doc["descriptor"] in descriptors]
        order = {"start": 0, "descriptor": 1, "event": 2, "stop": 3}
        run.sort(key=lambda item: order[item[0]])
        # every document, as JSON carries it, in the order the RunEngine made them
        assert run == [(name, json.loads(json_document(doc))) for name, doc in record.documents]
        start = run[0][1]
        assert (start["proposal_id"], start["beamline"]) == (proposal.id, "BL-7")
        event = next(doc for name, doc in run if name == "event")
        assert event["data"]["det-flux"] == pytest.approx(BEAMLINE_OPTIMUM.value)
    finally:
        if executor is not None:
            executor.close()
        if listener.is_alive() and dispatcher._task is not None:
            dispatcher.loop.call_soon_threadsafe(dispatcher._task.cancel)
            listener.join(timeout=5)
        proxy.kill()
        proxy.wait(timeout=10)
