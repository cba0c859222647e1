"""The 0MQ document subscription: decoding, routing by proposal id, refusal of pickle, a missing proxy.

A real PUB socket on a loopback port stands in for the proxy's out-port, sending what
:class:`bluesky.callbacks.zmq.Publisher` sends (``prefix name payload``).
"""

from __future__ import annotations

import json
import pickle
import socket
import time
from collections.abc import Callable, Iterator

import msgpack
import pytest
import zmq

from closedloop.errors import InstrumentError
from instruments._document_stream import DocumentStream, RunWatch


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def publisher() -> Iterator[tuple[zmq.Socket, str]]:
    context = zmq.Context()
    pub = context.socket(zmq.PUB)
    port = pub.bind_to_random_port("tcp://127.0.0.1")
    try:
        yield pub, f"tcp://127.0.0.1:{port}"
    finally:
        pub.close(linger=0)
        context.term()


def _send(pub: zmq.Socket, name: str, payload: bytes) -> None:
    pub.send(b" ".join([b"", name.encode(), payload]))


def _json(doc: dict) -> bytes:
    return json.dumps(doc).encode()


def _subscribed(pub: zmq.Socket, stream: DocumentStream, encode: Callable[[dict], bytes] = _json) -> None:
    """Publish a probe run until it arrives: a SUB socket misses what is sent before its subscription lands."""
    probe = stream.watch("probe")
    deadline = time.monotonic() + 5
    while not probe.drain():
        assert time.monotonic() < deadline, "the subscription never arrived"
        _send(pub, "start", encode({"uid": "probe-run", "proposal_id": "probe", "time": 0}))
        probe.wait(0.05)
    stream.unwatch("probe")


def _run(run: str, proposal: str) -> list[tuple[str, dict]]:
    return [
        ("start", {"uid": run, "proposal_id": proposal, "time": 1.0}),
        ("descriptor", {"uid": f"{run}-d", "run_start": run, "name": "primary"}),
        ("event", {"uid": f"{run}-e", "descriptor": f"{run}-d", "data": {"det-flux": 3.5}}),
        ("stop", {"uid": f"{run}-s", "run_start": run, "exit_status": "success"}),
    ]


def _collect(watch: RunWatch, timeout: float = 5.0) -> list[tuple[str, dict]]:
    documents: list[tuple[str, dict]] = []
    deadline = time.monotonic() + timeout
    while not watch.stopped and time.monotonic() < deadline:
        watch.wait(0.05)
        documents += watch.drain()
    return documents + watch.drain()


@pytest.mark.parametrize("serializer", ["json", "msgpack"])
def test_only_the_watched_proposals_run_is_collected_in_order(publisher, serializer) -> None:
    pub, address = publisher
    encode = _json if serializer == "json" else msgpack.packb
    stream = DocumentStream(address, serializer, timeout=2.0)
    try:
        _subscribed(pub, stream, encode)
        watch = stream.watch("p-ours")
        theirs, ours = _run("run-theirs", "p-theirs"), _run("run-ours", "p-ours")
        for (their_name, their_doc), (our_name, our_doc) in zip(theirs, ours, strict=True):  # interleaved runs
            _send(pub, their_name, encode(their_doc))
            _send(pub, our_name, encode(our_doc))
        assert _collect(watch) == ours
        assert watch.run_uid == "run-ours"
    finally:
        stream.close()


def test_pickled_documents_are_never_unpickled_and_are_reported(publisher) -> None:
    pub, address = publisher
    stream = DocumentStream(address, "json", timeout=2.0)
    try:
        _subscribed(pub, stream)
        watch = stream.watch("p-1")
        start = _run("run-1", "p-1")[0][1]
        _send(pub, "start", pickle.dumps(start))
        _send(pub, "start", json.dumps({"uid": "other", "proposal_id": "p-2"}).encode())  # a marker after it
        deadline = time.monotonic() + 5
        while stream.undecodable == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert stream.undecodable == 1 and watch.drain() == []
        assert "publishing with pickle" in stream.describe_trouble()
    finally:
        stream.close()


def test_no_proxy_at_the_address_is_one_line_within_the_timeout() -> None:
    address = f"tcp://127.0.0.1:{_free_port()}"
    started = time.monotonic()
    with pytest.raises(InstrumentError, match=f"documents_address: no 0MQ document proxy at {address} within 0.3 s"):
        DocumentStream(address, "json", timeout=0.3)
    assert time.monotonic() - started < 2.0
