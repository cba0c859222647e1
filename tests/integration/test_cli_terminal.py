"""A session process reads its terminal only when it is its own: never with ``--yes``, never from a pipe, never from
a shell's background (where a read stops the process with SIGTTIN). Real processes, a real pseudo-terminal."""

from __future__ import annotations

import os
import pty
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import beamline_session
from tests.integration.test_cli import CLI, closedloop, meta

# Started as a shell starts `cmd &`: a process group of its own, on a terminal whose foreground group is another.
BACKGROUND = (
    "import subprocess, sys; p = subprocess.Popen(sys.argv[1:], process_group=0); "
    "print('PID', p.pid, flush=True); sys.exit(p.wait())"
)


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return "gone"


def test_yes_in_the_background_of_a_terminal_runs_to_its_end(tmp_path: Path, write_session) -> None:
    path = write_session(beamline_session(review={"policy": "always"}, budget={"experiments": 2}))
    folder = tmp_path / "run"
    leader, terminal = pty.fork()  # the child leads a new session whose controlling terminal is the pty
    if leader == 0:
        command = [*CLI, "run", str(path), "--dir", str(folder), "--yes"]
        os.execv(sys.executable, [sys.executable, "-c", BACKGROUND, *command])
    output, session_pid, states = b"", None, set()
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline:
            if select.select([terminal], [], [], 0.1)[0]:
                try:
                    output += os.read(terminal, 65536)
                except OSError:  # the terminal's last user is gone: the leader ends now
                    os.waitpid(leader, 0)
                    leader = 0
                    break
            if session_pid is None and b"PID " in output and b"\n" in output.split(b"PID ", 1)[1]:
                session_pid = int(output.split(b"PID ", 1)[1].split()[0])
            if session_pid is not None:
                states.add(_state(session_pid))
                assert "T" not in states, "the session process was stopped (SIGTTIN: it read the terminal)"
            if os.waitpid(leader, os.WNOHANG)[0]:
                leader = 0
                break
    finally:
        if session_pid is not None and _state(session_pid) != "gone":
            os.kill(session_pid, signal.SIGKILL)
        if leader:
            os.kill(leader, signal.SIGKILL)
            os.waitpid(leader, 0)
        os.close(terminal)
    assert leader == 0, output.decode(errors="replace")
    assert meta(folder, "state") == "finished", output.decode(errors="replace")


def test_yes_never_reads_a_pipe_and_says_how_to_answer_what_it_does_not(tmp_path: Path, write_session) -> None:
    data = beamline_session(
        review={"policy": "always"},
        budget={"experiments": 2},
        failures={"max_consecutive": 1},
        instrument={"simulator": "beamline", "options": {"noise": 5.0, "faults": {"nan_reading": 1}}},
    )
    folder = tmp_path / "run"
    log_path = tmp_path / "session.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [*CLI, "run", str(write_session(data)), "--dir", str(folder), "--yes"],
            stdin=subprocess.PIPE,  # written to, never closed: a reader would take the line as an answer
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
        )
    assert process.stdin is not None
    try:
        deadline = time.monotonic() + 120
        while "closedloop review" not in log_path.read_text():
            assert time.monotonic() < deadline and process.poll() is None, log_path.read_text()
            time.sleep(0.1)
        assert meta(folder, "state") == "waiting"
        said = " ".join(log_path.read_text().split())
        assert f"answer from another terminal with: closedloop review {folder}" in said
        process.stdin.write("\n\n")  # "go on" to a session that read its terminal
        process.stdin.flush()
        time.sleep(1.0)
        assert process.poll() is None and meta(folder, "state") == "waiting", log_path.read_text()
        answered = closedloop("review", str(folder), "--approve")
        assert answered.returncode == 0, answered.stderr
        assert process.wait(timeout=120) == 0, log_path.read_text()
        assert meta(folder, "state") == "finished"
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=30)
        process.stdin.close()


@pytest.mark.parametrize("piped", ["a\ns\n"])
def test_without_a_terminal_answers_come_only_through_the_channel(tmp_path: Path, write_session, piped: str) -> None:
    path = write_session(beamline_session(review={"policy": "always"}, budget={"experiments": 1}))
    folder = tmp_path / "run"
    with (tmp_path / "session.log").open("w") as log:
        process = subprocess.Popen(
            [*CLI, "run", str(path), "--dir", str(folder)], stdin=subprocess.PIPE, stdout=log, stderr=log, text=True
        )
    assert process.stdin is not None
    try:
        process.stdin.write(piped)
        process.stdin.flush()
        deadline = time.monotonic() + 120
        while meta(folder, "state") != "waiting":
            assert time.monotonic() < deadline and process.poll() is None, (tmp_path / "session.log").read_text()
            time.sleep(0.1)
        time.sleep(1.0)
        assert meta(folder, "state") == "waiting"  # the piped "a", "s" answered nothing
        assert closedloop("review", str(folder), "--approve").returncode == 0
        assert process.wait(timeout=120) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=30)
        process.stdin.close()
