"""What the operator's page server holds against a client that asks too much or says too little: a 400 for a bad
``since``, a cap on event streams, no thread per stream, idle connections closed.

One detached session process (the simulated beamline, holding its first proposals for review: it keeps running)
and a ``closedloop web`` process per test, spoken to over raw sockets as a browser or an attacker would.
"""

from __future__ import annotations

import socket
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import beamline_session
from tests.integration.test_cli import detached_session
from tests.system.test_web import get, web_process

pytestmark = [pytest.mark.system, pytest.mark.timeout(180)]


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A session process waiting at its first checkpoint (it has events to send), stopped at the end."""
    data = beamline_session(review={"policy": "always"}, budget={"experiments": 4})
    with detached_session(data, tmp_path_factory.mktemp("web-limits")) as folder:
        yield folder


def address(printed: dict) -> tuple[str, int, str]:
    """The host, port and token of the address ``closedloop web`` printed."""
    url = urllib.parse.urlsplit(printed["url"])
    assert url.hostname is not None and url.port is not None
    return url.hostname, url.port, urllib.parse.parse_qs(url.query)["token"][0]


def open_stream(host: str, port: int, token: str) -> socket.socket:
    """A connection asking for the event stream, as a page's EventSource does."""
    sock = socket.create_connection((host, port), timeout=30)
    sock.sendall(
        f"GET /api/events?token={token} HTTP/1.1\r\nHost: {host}\r\nAccept: text/event-stream\r\n\r\n".encode()
    )
    return sock


def read_until(sock: socket.socket, marker: bytes) -> bytes:
    """What the server sent until ``marker`` (or until it closed the connection)."""
    data = b""
    while marker not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def threads(pid: int) -> int:
    """How many threads the process runs (Linux)."""
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line for line in status.splitlines() if line.startswith("Threads:")).split()[1])


def test_since_in_other_digits_than_ascii_is_refused_in_one_line(folder: Path) -> None:
    with web_process(folder) as printed:
        host, port, token = address(printed)
        base = f"http://{host}:{port}/api/events?token={token}"
        for since in ("%C2%B2", "%D9%A3", "-1", "1e3"):  # superscript two, Arabic-Indic three
            code, body = get(f"{base}&since={since}")
            assert code == 400 and body["error"].startswith("since: "), (since, body)
            assert "\n" not in body["error"]
        with open_stream(host, port, token) as ok:  # digits 0-9 are taken
            assert read_until(ok, b"\r\n").startswith(b"HTTP/1.1 200")


def test_event_streams_beyond_the_cap_are_refused_and_a_closed_one_gives_its_place_back(folder: Path) -> None:
    with web_process(folder, "--max-streams", "3") as printed:
        host, port, token = address(printed)
        streams = [open_stream(host, port, token) for _ in range(3)]
        for stream in streams:
            assert b"HTTP/1.1 200" in read_until(stream, b"data:")
        with open_stream(host, port, token) as refused:
            answer = read_until(refused, b'"}')
        assert answer.startswith(b"HTTP/1.1 503") and b"--max-streams" in answer
        streams.pop().close()
        for _ in range(100):  # (the server takes the page's leaving in a moment)
            with open_stream(host, port, token) as again:
                answer = read_until(again, b"\r\n")
            if answer.startswith(b"HTTP/1.1 200"):
                break
            time.sleep(0.1)
        assert answer.startswith(b"HTTP/1.1 200")
        for stream in streams:
            stream.close()


def test_an_event_stream_costs_no_thread_of_its_own(folder: Path) -> None:
    with web_process(folder) as printed:
        host, port, token = address(printed)
        first = open_stream(host, port, token)
        assert b"HTTP/1.1 200" in read_until(first, b"data:")  # the shared subscription runs and sends
        before = threads(printed["pid"])
        more = [open_stream(host, port, token) for _ in range(40)]
        for stream in more:
            assert b"HTTP/1.1 200" in read_until(stream, b"data:")
        assert threads(printed["pid"]) == before  # (the old server ran three threads per stream)
    # Ctrl-C with the streams open: they are ended, and the server exits 0 (checked by web_process)
    for stream in [first, *more]:
        stream.close()


def test_a_connection_that_sends_no_request_is_closed_after_the_idle_timeout(folder: Path) -> None:
    with web_process(folder, "--idle-timeout", "1") as printed:
        host, port, token = address(printed)
        with socket.create_connection((host, port), timeout=30) as silent:
            assert silent.recv(1) == b""  # closed by the server, long before the socket's own 30 s
        with socket.create_connection((host, port), timeout=30) as trickling:
            trickling.sendall(b"GET /api/status HTTP/1.1\r\nHost: x\r\n")  # a request begun, never ended
            assert trickling.recv(1) == b""
        with socket.create_connection((host, port), timeout=30) as kept:
            kept.sendall(f"GET /api/status?token={token} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            answer = read_until(kept, b"\r\n\r\n")
            assert answer.startswith(b"HTTP/1.1 200")
            while kept.recv(65536):  # the answer's body, then the close
                pass
