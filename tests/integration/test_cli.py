"""The command line as an operator uses it: real processes, real files, exit codes."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import beamline_session

CLI = [sys.executable, "-m", "agent.cli"]


def closedloop(*args: str, stdin: str = "", timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], input=stdin, capture_output=True, text=True, timeout=timeout)


@contextlib.contextmanager
def detached_session(data: dict[str, Any], root: Path) -> Iterator[Path]:
    """A session process for ``data`` started with ``--detach`` in ``root/run``; stopped (:func:`stop_detached`)
    when the block ends."""
    path = root / "session.yaml"
    path.write_text(yaml.safe_dump(data))
    folder = root / "run"
    started = closedloop("run", str(path), "--dir", str(folder), "--detach")
    assert started.returncode == 0, started.stderr
    try:
        yield folder
    finally:
        stop_detached(folder)


def stop_detached(folder: Path, patience: float = 30.0) -> None:
    """End the session process a test started with ``--detach``: stop it through its channel, and kill it if it
    is still there after ``patience`` seconds."""
    control = folder / "control.json"
    pid = (json.loads(control.read_text()) if control.exists() else {}).get("pid")
    closedloop("stop", str(folder), "--timeout", "10")
    if not pid:
        return
    deadline = time.monotonic() + patience
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    os.kill(pid, signal.SIGKILL)


def observations(folder: Path) -> list[tuple[str, str]]:
    """The observations in a session's store, read by another process (empty while the store is being made)."""
    if not (folder / "store.sqlite").exists():
        return []
    try:
        with sqlite3.connect(folder / "store.sqlite") as conn:
            return [tuple(row) for row in conn.execute("SELECT proposal_id, body FROM observations ORDER BY seq")]
    except sqlite3.OperationalError:
        return []


def meta(folder: Path, key: str) -> object:
    try:
        with sqlite3.connect(folder / "store.sqlite") as conn:
            row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    except sqlite3.OperationalError:
        return None
    return json.loads(row[0]) if row else None


def run_then_kill(command: list[str], ready, log_path: Path, stdin: str | None = None) -> None:
    """Start ``command``, feed it ``stdin``, and SIGKILL it as soon as ``ready()`` holds (within 90 s)."""
    with log_path.open("w") as log:
        process = subprocess.Popen(command, stdin=subprocess.PIPE if stdin else None, stdout=log, stderr=log, text=True)
        try:
            if stdin:
                assert process.stdin is not None
                process.stdin.write(stdin)
                process.stdin.flush()
            deadline = time.monotonic() + 90
            while not ready():
                assert time.monotonic() < deadline and process.poll() is None, log_path.read_text()
                time.sleep(0.02)
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=30)
        finally:
            if process.poll() is None:
                os.kill(process.pid, signal.SIGKILL)
                process.wait(timeout=30)
            if process.stdin is not None:
                process.stdin.close()
    assert process.returncode == -signal.SIGKILL


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"colour": "blue"}, "colour: unknown key"),
        ({"variables": {"p": {"bounds": [0.0, 3.0], "hard_limits": [0.0, 2.0]}}}, "variables.p: bounds"),
        ({"variables": {"p": {"bounds": [1.0, 0.0]}}}, "variables.p.bounds: low must be below high"),
        ({"variables": {}}, "variables: at least one variable"),
        ({"planner": {"name": "nope"}}, "planner.name: unknown planner 'nope'"),
        (
            {"instrument": {"factory": "nowhere.devices:make"}},
            "instrument.factory: 'nowhere.devices:make' does not import",
        ),
        ({"budget": {"experiments": 0}}, "budget.experiments"),
        ({"planner": {"name": "sobol", "options": {"colour": 1}}}, "planner.options.colour: unknown option"),
        (
            {"planner": {"name": "botorch", "options": {"n_initial": 0}}},
            "planner.options.n_initial: Input should be greater than or equal to 1",
        ),
    ],
)
def test_bad_input_exits_2_with_one_line(tmp_path: Path, write_session, overrides: dict, field: str) -> None:
    path = write_session(beamline_session(**overrides))
    result = closedloop("run", str(path), "--dir", str(tmp_path / "run"))
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert field in lines[0]
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "run").exists()  # nothing was created, nothing moved


def test_run_then_status_and_a_second_run_in_the_same_folder_is_refused(tmp_path: Path, write_session) -> None:
    path = write_session(beamline_session(budget={"experiments": 3}))
    result = closedloop("run", str(path), "--dir", str(tmp_path / "run"), "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["state"] == "finished" and summary["experiments"] == 3
    status = json.loads(closedloop("status", str(tmp_path / "run"), "--json").stdout)
    assert status == summary
    again = closedloop("run", str(path), "--dir", str(tmp_path / "run"))
    assert again.returncode == 2
    assert "already holds a session" in again.stderr


def answer_when_waiting(folder: Path, answers: dict[int, list[str]]) -> bool:
    """Answer the checkpoint a session (with nothing reading its terminal) waits at, through ``closedloop review``
    with ``answers[n]``'s flags once it holds ``n`` observations; True once one was answered (each is used once)."""
    done = len(observations(folder))
    if done not in answers or meta(folder, "state") != "waiting":
        return False
    if closedloop("review", str(folder), *answers[done]).returncode not in (0, 3):
        return False  # not yet at its checkpoint: asked again on the next look
    del answers[done]
    return True


def test_stop_at_a_checkpoint_exits_3_and_resume_carries_on(tmp_path: Path, write_session) -> None:
    path = write_session(beamline_session(review={"policy": "always"}))
    process = subprocess.Popen(
        [*CLI, "run", str(path), "--dir", str(tmp_path / "run")], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    answers = {0: ["--approve"], 1: ["--stop"]}
    deadline = time.monotonic() + 120
    try:
        while answers:
            assert time.monotonic() < deadline and process.poll() is None
            answer_when_waiting(tmp_path / "run", answers)
            time.sleep(0.1)
        assert process.wait(timeout=120) == 3
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=30)
    assert len(observations(tmp_path / "run")) == 1
    assert meta(tmp_path / "run", "state") == "stopped"
    with sqlite3.connect(tmp_path / "run" / "store.sqlite") as conn:
        (held,) = conn.execute("SELECT id FROM proposals WHERE status = 'proposed'").fetchone()
    resumed = closedloop("resume", str(tmp_path / "run"), "--yes", "--json")
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout)["state"] == "finished"
    done = observations(tmp_path / "run")
    assert len(done) == 4 and done[1][0] == held  # the proposal shown at the stop is the next to run


def test_a_session_killed_at_a_checkpoint_resumes_with_nothing_lost_or_duplicated(
    tmp_path: Path, write_session
) -> None:
    folder = tmp_path / "run"
    path = write_session(beamline_session(review={"policy": "always"}, budget={"experiments": 5}))
    answers: dict[int, list[str]] = {0: ["--approve"], 1: ["--approve"]}
    run_then_kill(
        [*CLI, "run", str(path), "--dir", str(folder)],
        ready=lambda: (
            not answer_when_waiting(folder, answers)
            and not answers
            and len(observations(folder)) == 2
            and meta(folder, "state") == "waiting"
        ),
        log_path=tmp_path / "first.log",
    )
    before = observations(folder)
    with sqlite3.connect(folder / "store.sqlite") as conn:
        waiting = [row[0] for row in conn.execute("SELECT id FROM proposals WHERE status = 'proposed'")]
    assert len(before) == 2 and len(waiting) == 1

    result = closedloop("resume", str(folder), "--yes", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["experiments"] == 5
    after = observations(folder)
    assert after[:2] == before  # nothing lost or rewritten
    ids = [proposal_id for proposal_id, _ in after]
    assert len(ids) == 5 and len(set(ids)) == 5  # nothing duplicated
    assert ids[2] == waiting[0]  # the proposal held at the checkpoint is the one that ran next
    with sqlite3.connect(folder / "store.sqlite") as conn:
        assert conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 5
    assert len(list((folder / "runs").glob("*.jsonl"))) == 5


def test_a_session_killed_while_running_shows_interrupted_and_resumes_exactly(tmp_path: Path, write_session) -> None:
    folder = tmp_path / "run"
    path = write_session(beamline_session(budget={"experiments": 150}))
    run_then_kill(
        [*CLI, "run", str(path), "--dir", str(folder)],
        ready=lambda: len(observations(folder)) >= 5,
        log_path=tmp_path / "first.log",
    )
    before = observations(folder)
    status = json.loads(closedloop("status", str(folder), "--json").stdout)
    assert status["state"] == "interrupted"
    assert status["experiments"] == len(before)

    result = closedloop("resume", str(folder), "--json")
    assert result.returncode == 0, result.stderr
    after = observations(folder)
    assert after[: len(before)] == before
    ids = [proposal_id for proposal_id, _ in after]
    # a kill inside a run leaves that proposal interrupted (never run again by itself): 150 ok, at most one more
    statuses = [json.loads(body)["status"] for _, body in after]
    assert statuses.count("ok") == 150 and len(ids) - 150 == statuses.count("interrupted") <= 1
    assert len(set(ids)) == len(ids)
    with sqlite3.connect(folder / "store.sqlite") as conn:
        assert conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == len(ids)
        # the Sobol sequence carried on after the kill: no setpoint was proposed twice
        bodies = [json.loads(row[0]) for row in conn.execute("SELECT body FROM proposals")]
    points = {(b["setpoints"]["pitch1"], b["setpoints"]["pitch2"]) for b in bodies}
    assert len(points) == len(bodies)
