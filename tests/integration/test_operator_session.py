"""An operator in charge of a real session process from other terminals: the lock, the control channel, Ctrl-C.

One detached session process serves most of these tests (a CLI call costs a couple of seconds of imports); every
command goes through the real ZeroMQ channel on loopback to the real loop, RunEngine and simulated beamline.
"""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agent.operator.client import ControlClient
from agent.operator.input import build
from agent.web.gate import WebGate
from tests.conftest import beamline_session
from tests.integration.test_cli import CLI, closedloop, detached_session, meta


def count(folder: Path, query: str) -> int:
    """A count from the session's store (0 while the store is still being made)."""
    if not (folder / "store.sqlite").exists():
        return 0  # never let the poll itself make the file
    try:
        with sqlite3.connect(folder / "store.sqlite") as conn:
            return int(conn.execute(query).fetchone()[0])
    except sqlite3.OperationalError:
        return 0


def wait_for(condition, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def checkpoint(folder: Path) -> dict[str, Any]:
    result = closedloop("review", str(folder), "--json", "--approve", "--timeout", "10", timeout=60)
    return json.loads(result.stdout.splitlines()[-1]) if result.stdout else {}


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A session process started with --detach, waiting at its checkpoints for the channel; stopped at the end."""
    variables = {
        name: {"bounds": [-1.5, 1.5], "hard_limits": [-2.0, 2.0], "device": device, "units": "mrad"}
        for name, device in (("pitch1", "m1"), ("pitch2", "m2"))
    }
    data = beamline_session(review={"policy": "always"}, budget={"experiments": 20}, variables=variables)
    with detached_session(data, tmp_path_factory.mktemp("operator")) as folder:
        yield folder


def test_review_approves_through_the_channel_and_a_second_answer_is_too_late(running: Path) -> None:
    wait_for(lambda: meta(running, "state") == "waiting")
    shown = json.loads(closedloop("status", str(running), "--json").stdout)
    assert shown["state"] == "waiting"
    before = count(running, "SELECT COUNT(*) FROM observations")
    first = closedloop("review", str(running), "--approve", "--by", "ann", "--json")
    assert first.returncode == 0, first.stderr
    checkpoint_id = json.loads(first.stdout)["result"]["checkpoint"]
    late = closedloop("review", str(running), "--approve", "--by", "bob")  # the next question, or too late
    assert late.returncode in (0, 1)
    wait_for(lambda: count(running, "SELECT COUNT(*) FROM observations") > before)
    with sqlite3.connect(running / "store.sqlite") as conn:
        bodies = [json.loads(row[0]) for row in conn.execute("SELECT body FROM decisions")]
    ann = [b for b in bodies if b["checkpoint"] == checkpoint_id]
    assert len(ann) == 1 and ann[0]["by"] == "ann" and ann[0]["via"] == "channel"
    # the start document of the released run names the decision
    (proposal,) = ann[0]["proposal_ids"]
    name, start = json.loads((running / "runs" / f"{proposal}.jsonl").read_text().splitlines()[0])
    assert name == "start" and start["decision_ids"] == [ann[0]["id"]]


def test_a_second_process_is_refused_naming_the_holder(running: Path) -> None:
    result = closedloop("resume", str(running), "--yes")
    assert result.returncode == 2
    pid = json.loads((running / "control.json").read_text())["pid"]
    assert f"driven by pid {pid}" in result.stderr and result.stderr.count("\n") == 1


def test_edit_outside_the_limits_is_refused_and_nothing_moves(running: Path) -> None:
    wait_for(lambda: meta(running, "state") == "waiting")
    before = count(running, "SELECT COUNT(*) FROM runs")
    result = closedloop("review", str(running), "--edit", "pitch1=3.0")
    assert result.returncode == 2, result.stdout + result.stderr
    assert "outside the hard limits" in result.stderr
    assert count(running, "SELECT COUNT(*) FROM runs") == before


def test_review_edit_takes_several_pairs_in_one_option_and_says_what_it_did(running: Path) -> None:
    for edit, said in (
        (["--edit", "pitch1=0.3", "pitch2=-0.5"], "pitch1=0.3 mrad  pitch2=-0.5 mrad"),  # as `add` takes them
        (["--edit", "pitch1=0.2", "--edit", "pitch2=-0.4"], "pitch1=0.2 mrad  pitch2=-0.4 mrad"),  # repeated
    ):
        wait_for(lambda: meta(running, "state") == "waiting")
        result = closedloop("review", str(running), *edit, "--by", "ada", "--reason", "closer")
        assert result.returncode == 0, result.stdout + result.stderr
        (line,) = result.stdout.splitlines()
        assert line.startswith("p-") and line.endswith(f" edited to {said} (closer)"), line
        with sqlite3.connect(running / "store.sqlite") as conn:
            (body,) = conn.execute("SELECT body FROM decisions ORDER BY seq DESC LIMIT 1").fetchone()
        setpoints = json.loads(body)["setpoints"]
        assert (setpoints["pitch1"], setpoints["pitch2"]) == tuple(
            float(pair.split("=")[1]) for pair in said.replace(" mrad", "").split("  ")
        )
    loose = closedloop("review", str(running), "pitch1=0.3")  # setpoints without --edit: refused, nothing sent
    assert loose.returncode == 2 and "--edit" in loose.stderr


def test_pause_holds_after_the_run_and_resume_carries_on(running: Path) -> None:
    wait_for(lambda: meta(running, "state") == "waiting")
    paused = closedloop("pause", str(running))
    assert paused.returncode == 0
    assert paused.stdout == "will pause after the current run (closedloop resume carries on)\n"  # not pausing=true
    assert closedloop("review", str(running), "--approve").returncode == 0
    wait_for(lambda: meta(running, "state") == "paused")
    runs = count(running, "SELECT COUNT(*) FROM runs")
    time.sleep(1.0)
    assert count(running, "SELECT COUNT(*) FROM runs") == runs  # nothing moves while paused
    assert json.loads(closedloop("status", str(running), "--json").stdout)["state"] == "paused"
    resumed = closedloop("resume", str(running))
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stdout == "resumed\n"
    wait_for(lambda: meta(running, "state") == "waiting")


def test_add_and_budget_through_the_channel(running: Path) -> None:
    added = closedloop("add", str(running), "pitch1=0.35", "pitch2=-0.6", "--json")
    assert added.returncode == 0, added.stderr
    budget = closedloop("budget", str(running), "7")
    assert budget.returncode == 0 and budget.stdout == "budget: 7 experiments (was 20)\n"
    assert meta(running, "budget") == 7
    zero = closedloop("budget", str(running), "0", "--by", "cy")  # refused here, and by the session, which records it
    assert zero.returncode == 2 and "budget.experiments" in zero.stderr and meta(running, "budget") == 7
    # the web page's server (its gate, without HTTP): refused there with a 400, recorded by the session as by dee
    status, reply = WebGate(running).request({"type": "budget", "experiments": -3}, "dee")
    assert status == 400 and "budget.experiments" in reply["error"] and meta(running, "budget") == 7
    refused = closedloop("add", str(running), "pitch1=9", "pitch2=0")
    assert refused.returncode == 2 and "outside the hard limits" in refused.stderr


def test_stop_ends_the_session_and_the_commands_say_nothing_runs(running: Path) -> None:
    watchers = [
        subprocess.Popen(
            [*CLI, "watch", str(running), *flags], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True
        )
        for flags in (["--json"], [])
    ]
    try:
        time.sleep(3.0)  # watch replays the recent events, then follows live ones
        assert closedloop("stop", str(running), "--reason", "end of shift").returncode == 0
        wait_for(lambda: meta(running, "state") == "stopped")
        wait_for(lambda: not (running / "control.json").exists())
        out, lines = (watcher.communicate(timeout=30)[0] for watcher in watchers)  # watch ends with the process
    finally:
        for watcher in watchers:
            if watcher.poll() is None:
                watcher.kill()
    kinds = [json.loads(line)["kind"] for line in out.splitlines() if line.startswith("{")]
    assert {"proposal", "checkpoint", "decision", "run_started", "observation"} <= set(kinds)
    assert kinds[-1] == "stopped"
    result = closedloop("pause", str(running), "--timeout", "2")
    assert result.returncode == 1 and "no session process is running" in result.stderr
    audit = json.loads(closedloop("audit", str(running), "--json").stdout)
    trail = audit["trail"]
    stops = [row for row in trail if row["what"] == "stop" and row["source"] == "log"]
    assert stops and stops[0]["who"] and (stops[0]["via"], stops[0]["why"]) == ("channel", "end of shift")
    asked = [row for row in trail if row["what"] == "question"]
    assert asked and "prediction" in asked[0]["detail"]  # what was proposed, with its prediction, is on record
    assert "prediction" in asked[0]["data"]["proposals"][0]
    assert any(row["source"] == "decision" and row["who"] == "ann" and row["via"] == "channel" for row in trail)
    _check_watch_lines(lines)
    _check_audit(running, trail)
    _check_tables(running)


NUMBER_REPR = re.compile(r"(?<![\w.-])-?\d+(?:\.\d+)?[eE][+-]?\d+(?!\w)|\d\.\d{7,}")  # 1.2e-05, 0.1603839611634612


def _check_watch_lines(text: str) -> None:
    """watch for a person: local times with the zone named, a sentence per event, no reprs, units."""
    lines = text.splitlines()
    assert lines[0].startswith("-- ") and " times in " in lines[0] and "UTC" in lines[0], lines[0]
    assert lines[-1].endswith("has ended")
    events = [line for line in lines[1:-1] if not line.startswith("-- ")]
    assert all(re.match(r"\d\d:\d\d:\d\d \w+", line) for line in events), events
    assert not [line for line in events if re.search(r"[{}\[\]'\"]", line) or NUMBER_REPR.search(line)]
    proposals = [line for line in events if line[9:].startswith("proposal ")]
    assert proposals and all(
        re.fullmatch(r"\S+ proposal +p-\w+  pitch1=-?[\d.]+ mrad  pitch2=-?[\d.]+ mrad  \(.+\)", line)
        for line in proposals
    ), proposals


def _check_audit(folder: Path, trail: list[dict[str, Any]]) -> None:
    """Every operator action names who and via; refused attempts are on record; the table fits 80 columns."""
    actions = [row for row in trail if row["what"] in ("pause", "resume", "stop", "budget", "queue", "refused")]
    actions += [row for row in trail if row["source"] == "decision"]
    assert {row["what"] for row in actions} >= {"pause", "resume", "stop", "budget", "queue", "refused", "edit"}
    assert all(row["who"] and row["via"] for row in actions), [r for r in actions if not (r["who"] and r["via"])]
    refused = [row for row in trail if row["what"] == "refused"]
    assert any("outside the hard limits" in row["why"] and "pitch1=3 mrad" in row["detail"] for row in refused)
    for who, via, budget in (("cy", "channel", "budget 0"), ("dee", "web", "budget -3")):
        assert any(
            (row["who"], row["via"]) == (who, via) and budget in row["detail"] and "budget.experiments" in row["why"]
            for row in refused
        ), refused
    edits = [row for row in trail if row["what"] == "edit" and row["source"] == "decision"]
    assert any(row["who"] == "ada" and row["why"] == "closer" for row in edits)
    table = subprocess.run(
        [*CLI, "audit", str(folder)], capture_output=True, text=True, env={**os.environ, "COLUMNS": "80"}
    )
    assert table.returncode == 0, table.stderr
    assert max(len(line) for line in table.stdout.splitlines()) <= 80
    assert "{" not in table.stdout and not NUMBER_REPR.search(table.stdout)
    assert "pitch1=0.3" in table.stdout and "mrad" in table.stdout


def _check_tables(folder: Path) -> None:
    """status and results: numbers in plain notation, the variables' units shown."""
    status = closedloop("status", str(folder))
    assert status.returncode == 0 and re.search(r"best point .*pitch1=-?[\d.]+ mrad", status.stdout), status.stdout
    results = subprocess.run(
        [*CLI, "results", str(folder)], capture_output=True, text=True, env={**os.environ, "COLUMNS": "200"}
    )
    assert results.returncode == 0 and "pitch1 (mrad)" in results.stdout, results.stdout
    assert not NUMBER_REPR.search(status.stdout + results.stdout)


def test_ctrl_c_stops_after_the_run_and_twice_aborts_it(tmp_path: Path, write_session) -> None:
    # motors at a real velocity: a run takes about a second, so Ctrl-C lands inside one
    instrument = {"simulator": "beamline", "options": {"noise": 1.0, "instant": False}}
    path = write_session(beamline_session(instrument=instrument, budget={"experiments": 50}))
    for presses, state in ((1, "ok"), (2, "aborted")):
        folder = tmp_path / f"run{presses}"
        process = subprocess.Popen(
            [*CLI, "run", str(path), "--dir", str(folder)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            wait_for(
                lambda folder=folder: (
                    (folder / "store.sqlite").exists()
                    and count(folder, "SELECT COUNT(*) FROM dispatches") > count(folder, "SELECT COUNT(*) FROM runs")
                )
            )
            for _ in range(presses):
                process.send_signal(signal.SIGINT)
                time.sleep(0.05)
            out, err = process.communicate(timeout=60)
        finally:
            if process.poll() is None:
                process.kill()
                process.communicate(timeout=30)  # closes the pipes
        assert process.returncode == 3, out + err
        assert "Traceback" not in err and "RunEngine" not in err
        assert meta(folder, "state") == "stopped"
        with sqlite3.connect(folder / "store.sqlite") as conn:
            statuses = [row[0] for row in conn.execute("SELECT status FROM observations ORDER BY seq")]
        assert statuses[-1] == state


def test_an_unanswered_checkpoint_is_approved_after_its_timeout(tmp_path: Path, write_session) -> None:
    review = {"policy": "always", "timeout": 0.5, "on_timeout": "approve"}
    path = write_session(beamline_session(review=review, budget={"experiments": 2}))
    result = closedloop("run", str(path), "--dir", str(tmp_path / "run"), "--json")  # no terminal answers
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["experiments"] == 2, result.stdout
    with sqlite3.connect(tmp_path / "run" / "store.sqlite") as conn:
        by = [json.loads(row[0])["by"] for row in conn.execute("SELECT body FROM decisions")]
    assert by == ["timeout", "timeout"]


def test_a_run_that_ends_during_a_review_is_counted_while_the_session_waits(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """Pipelined, an operator reviews the next proposal while the approved run goes on; when that run ends, the
    waiting session process ingests it at once: status counts it before anyone answers."""
    instrument = {"simulator": "beamline", "options": {"noise": 5.0, "exposure": 1.0}}
    data = beamline_session(instrument=instrument, pipeline=True, review={"policy": "always"})
    with detached_session(data, tmp_path_factory.mktemp("ended")) as folder:
        wait_for(lambda: meta(folder, "state") == "waiting")
        first = checkpoint(folder)  # approves the first proposal: its run starts, the second is asked
        assert first["ok"] and first["result"]["accepted"] == ["approve"]
        with ControlClient(folder, timeout=10) as client:

            def status() -> dict[str, Any]:  # the session process's own status: it knows its checkpoint
                return client.call(build("status", "test")).result

            wait_for(lambda: status().get("checkpoint") not in (None, first["result"]["checkpoint"]))
            second = status()["checkpoint"]
            assert status()["experiments"] == 0  # the first run goes on (a second of exposure)
            wait_for(lambda: count(folder, "SELECT COUNT(*) FROM observations") == 1, timeout=20)
            now = status()
        assert (now["state"], now["checkpoint"], now["experiments"]) == ("waiting", second, 1)
