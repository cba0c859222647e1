"""One process drives a session: the folder lock, between real processes (one is SIGKILLed, two race)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from agent.store import LOCK_FILE, SessionLock, holder
from closedloop.errors import SessionError

ROOT = Path(__file__).resolve().parents[3]

# A process that waits for a "go" file, tries the lock, prints the outcome as JSON, and holds what it got until its
# stdin closes (or it is killed).
CONTENDER = """
import json, sys, time
from pathlib import Path
from agent.store.lock import SessionLock
folder, go = Path(sys.argv[1]), Path(sys.argv[2])
print("ready", flush=True)
while not go.exists():
    time.sleep(0.002)
lock = SessionLock(folder)
try:
    info = lock.acquire()
    print(json.dumps({"won": True, "info": info}), flush=True)
except Exception as exc:
    print(json.dumps({"won": False, "error": str(exc)}), flush=True)
sys.stdin.read()
"""


def contender(folder: Path, go: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-c", CONTENDER, str(folder), str(go)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )


def ready(process: subprocess.Popen[str]) -> None:
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "ready", f"the contender did not start (exit {process.poll()})"


def outcome(process: subprocess.Popen[str]) -> dict:
    assert process.stdout is not None
    line = process.stdout.readline()
    assert line, f"the contender printed nothing (exit {process.poll()})"
    return json.loads(line)


def end(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        process.kill()
    process.wait(timeout=10)
    for stream in (process.stdin, process.stdout):
        if stream is not None:
            stream.close()


def test_a_lock_held_by_another_process_is_refused_naming_it_and_taken_over_once_it_is_killed(tmp_path: Path) -> None:
    go = tmp_path / "go"
    go.touch()
    other = contender(tmp_path, go)
    try:
        ready(other)
        assert outcome(other)["won"]
        seen = holder(tmp_path)
        assert seen is not None and seen["pid"] == other.pid and seen["host"] == socket.gethostname()
        with pytest.raises(SessionError) as refused:
            SessionLock(tmp_path).acquire()
        message = str(refused.value)
        assert f"{tmp_path} is driven by pid {other.pid} on {socket.gethostname()} since {seen['since']}" in message
        assert "closedloop stop" in message and "\n" not in message

        other.send_signal(signal.SIGKILL)
        other.wait(timeout=10)
        assert json.loads((tmp_path / LOCK_FILE).read_text())["pid"] == other.pid  # the dead holder's record stays
        assert holder(tmp_path) is None  # ... but it holds nothing: the OS let the lock go
        lock = SessionLock(tmp_path)
        info = lock.acquire()
        assert info["pid"] == os.getpid()
        assert holder(tmp_path) == info
    finally:
        end(other)
    lock.release()
    assert holder(tmp_path) is None


def test_of_two_processes_racing_for_the_lock_exactly_one_wins(tmp_path: Path) -> None:
    go = tmp_path / "go"
    racers = [contender(tmp_path, go), contender(tmp_path, go)]
    try:
        for process in racers:
            ready(process)  # both are polling for the go file
        go.touch()
        results = [outcome(p) for p in racers]
        winners = [r for r, p in zip(results, racers, strict=True) if r["won"]]
        assert len(winners) == 1, results
        (loser,) = [r for r in results if not r["won"]]
        assert f"driven by pid {winners[0]['info']['pid']}" in loser["error"]
        assert holder(tmp_path)["pid"] == winners[0]["info"]["pid"]
    finally:
        for process in racers:
            end(process)


def test_two_locks_in_one_process_conflict_and_release_is_harmless_twice(tmp_path: Path) -> None:
    with SessionLock(tmp_path) as first:
        assert first.held
        with pytest.raises(SessionError, match=f"driven by pid {os.getpid()}"):
            SessionLock(tmp_path).acquire()
        with pytest.raises(SessionError, match="holds the session lock already"):
            first.acquire()
    assert not first.held
    first.release()
    assert holder(tmp_path) is None
    assert (tmp_path / LOCK_FILE).read_text() == ""  # a released lock names no holder


def test_no_lock_file_means_no_holder(tmp_path: Path) -> None:
    assert holder(tmp_path) is None
    with pytest.raises(SessionError, match="cannot open the session lock"):
        SessionLock(tmp_path / "missing").acquire()
