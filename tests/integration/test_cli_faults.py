"""Faults handled without configuring them: a hanging detector under the run timeout derived from the plan, and a
factory that ends the process at start, reported by the command that started it. Real processes, the simulated
beamline, a real RunEngine."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import beamline_session
from tests.integration.test_cli import CLI, meta, observations

ROOT = Path(__file__).resolve().parents[2]

EXITING_FACTORY = """
import os


def make(**options):
    os._exit(0)  # as a vendor library that ends the process on a missing licence does
"""


def exiting_session(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A session file whose device factory ends the process, and the environment that imports the factory."""
    modules = tmp_path / "modules"
    modules.mkdir()
    (modules / "exiting_factory.py").write_text(EXITING_FACTORY)
    path = tmp_path / "session.yaml"
    path.write_text(yaml.safe_dump(beamline_session(instrument={"factory": "exiting_factory:make"})))
    return path, {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(modules)])}


@pytest.mark.slow
def test_a_hanging_detector_fails_its_run_at_the_default_timeout_and_the_loop_goes_on(tmp_path: Path) -> None:
    options = {"noise": 5.0, "exposure": 0.01, "faults": {"hang_trigger": 1}}
    data = beamline_session(budget={"experiments": 2}, instrument={"simulator": "beamline", "options": options})
    assert "run_timeout" not in data["instrument"]
    path = tmp_path / "session.yaml"
    path.write_text(yaml.safe_dump(data))
    folder = tmp_path / "run"
    result = subprocess.run(
        [*CLI, "run", str(path), "--dir", str(folder), "--json"], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)  # bluesky's own "Aborting: ..." goes to stderr
    assert (summary["state"], summary["experiments"], summary["failed"]) == ("finished", 2, 1)
    failed = json.loads(observations(folder)[0][1])
    assert failed["status"] == "failed"
    assert failed["error"].startswith("timed out after 60 s (derived from the plan")


def test_a_factory_that_ends_the_process_is_a_failed_start_of_a_detached_session(tmp_path: Path) -> None:
    path, env = exiting_session(tmp_path)
    folder = tmp_path / "sessions" / "run"
    result = subprocess.run(
        [sys.executable, "-m", "agent.cli", "run", str(path), "--dir", str(folder), "--detach"],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert result.returncode != 0, result.stdout
    assert "the session process ended with exit 0 before the session started" in result.stderr
    assert result.stderr.count("\n") == 1
    assert not folder.exists() and meta(folder, "state") is None  # nothing ran: nothing is left at state 'new'


def test_the_files_folder_may_be_in_the_home_folder_and_is_made_where_the_docs_say(tmp_path: Path) -> None:
    beamtime = tmp_path / "beamtime"
    beamtime.mkdir()
    path = beamtime / "session.yaml"
    path.write_text(yaml.safe_dump(beamline_session(budget={"experiments": 1}, folder="~/data/run1")))
    env = {**os.environ, "HOME": str(tmp_path / "home"), "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [*CLI, "run", str(path), "--json"], capture_output=True, text=True, timeout=300, cwd=tmp_path, env=env
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["folder"] == str(tmp_path / "home" / "data" / "run1")
    assert meta(tmp_path / "home" / "data" / "run1", "state") == "finished"
    assert sorted(p.name for p in beamtime.iterdir()) == ["session.yaml"]  # no folder named '~' beside the file


def test_a_factory_that_ends_a_foreground_run_leaves_a_session_that_status_calls_failed(tmp_path: Path) -> None:
    # the process that runs the session is the one that ends: nothing is left to say so at once, so the folder's
    # status does (it would say `new` for ever otherwise)
    path, env = exiting_session(tmp_path)
    folder = tmp_path / "run"
    subprocess.run([*CLI, "run", str(path), "--dir", str(folder)], capture_output=True, timeout=300, env=env)
    assert meta(folder, "state") == "new"
    status = subprocess.run([*CLI, "status", str(folder), "--json"], capture_output=True, text=True, env=env)
    shown = json.loads(status.stdout)
    assert (shown["state"], shown["experiments"]) == ("failed", 0)
    assert shown["error"].startswith("the session process ended before the session started")
