"""A start that fails leaves nothing behind, error text is never eaten, folder names never leave ``sessions/``.

The end-to-end tests run the real ``closedloop`` command in a subprocess (with this checkout on PYTHONPATH), on the
bundled simulated beamline; the factory and planner that fail are small real modules written to a temporary
folder.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from agent.cli.commands import _default_folder
from agent.cli.exits import fail
from closedloop.errors import ExitCode
from tests.conftest import beamline_session

ROOT = Path(__file__).resolve().parents[3]

BAD_FACTORY = """
def make(**options):
    raise RuntimeError("no beam at [nan, 1.5] [mrad]")
"""

BAD_PLANNER = """
class Refuses:
    returns_id = False

    def __init__(self, vocs, **options):
        raise ValueError("cannot take [bold]this problem[/bold]")

    def suggest(self, num_points=None):
        return []

    def ingest(self, results):
        pass
"""


def closedloop(*args: str, cwd: Path, modules: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(modules)])}
    command = [sys.executable, "-m", "agent.cli", *args]
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture
def modules(tmp_path: Path) -> Path:
    folder = tmp_path / "modules"
    folder.mkdir()
    (folder / "bad_factory.py").write_text(BAD_FACTORY)
    (folder / "bad_planner.py").write_text(BAD_PLANNER)
    return folder


def write(path: Path, **overrides: Any) -> Path:
    path.write_text(yaml.safe_dump(beamline_session(budget={"experiments": 2}, **overrides), sort_keys=False))
    return path


@pytest.mark.slow
def test_a_failed_start_leaves_no_folder_and_the_same_run_then_works(tmp_path: Path, modules: Path) -> None:
    session, folder = tmp_path / "session.yaml", tmp_path / "sessions" / "run"
    write(session, instrument={"factory": "bad_factory:make"})
    result = closedloop("run", str(session), "--dir", str(folder), cwd=tmp_path, modules=modules)
    assert result.returncode == 1, result.stderr
    assert "no beam at [nan, 1.5] [mrad]" in result.stderr  # the brackets are text, not markup
    assert not (tmp_path / "sessions").exists()  # the folder and the parent it made are gone

    # a planner that refuses the problem: refused before anything is made (a planner that fails later, in the loop,
    # holds the session for an operator instead: tests/integration/test_reliability.py)
    write(session, planner={"name": "bad_planner:Refuses"})
    result = closedloop("run", str(session), "--dir", str(folder), cwd=tmp_path, modules=modules)
    assert result.returncode in (1, 2), result.stderr
    assert "cannot take [bold]this problem[/bold]" in result.stderr
    assert not (tmp_path / "sessions").exists()

    write(session)
    result = closedloop("run", str(session), "--dir", str(folder), "--json", cwd=tmp_path, modules=modules)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["experiments"] == 2


@pytest.mark.slow
def test_a_folder_that_was_there_keeps_what_it_held(tmp_path: Path, modules: Path) -> None:
    mine = tmp_path / "mine"
    (mine / "notes").mkdir(parents=True)
    (mine / "notes" / "plan.txt").write_text("keep me")
    session = write(
        tmp_path / "session.yaml",
        name="../../escape",
        variables={"pitch1": {"bounds": [-1.0, 1.0], "device": "m9"}},
    )
    result = closedloop("run", str(session), "--dir", str(mine), cwd=tmp_path, modules=modules)
    assert result.returncode == 2, result.stderr  # a mistake in the session file: bad input
    assert "variables.pitch1.device: no device 'm9' in the instrument" in result.stderr
    assert sorted(p.relative_to(mine).as_posix() for p in mine.rglob("*")) == ["notes", "notes/plan.txt"]

    before = sorted(tmp_path.parent.iterdir())
    result = closedloop("run", str(session), cwd=tmp_path, modules=modules)  # the default folder, from the name
    assert result.returncode == 2, result.stderr
    assert not (tmp_path / "sessions").exists()
    assert sorted(tmp_path.parent.iterdir()) == before


@pytest.mark.parametrize("name", ["..", "../..", "/etc", "/", "", "a/../../b", "..\\..", "~root", "x" * 300, "ok"])
def test_the_default_folder_never_leaves_sessions(tmp_path: Path, name: str) -> None:
    folder = _default_folder(tmp_path / "session.yaml", None, name)
    assert folder.parent == Path("sessions")
    assert (Path("/work/x") / folder).resolve().parent == Path("/work/x/sessions")
    assert folder.name and not folder.name.startswith((".", "-")) and len(folder.name) < 90
    assert all(c.isalnum() or c in "._-" for c in folder.name)


def test_the_default_folder_keeps_a_plain_name_and_honours_the_files_folder(tmp_path: Path) -> None:
    assert _default_folder(tmp_path / "s.yaml", None, "mirror-scan.2").name.startswith("mirror-scan.2-")
    assert _default_folder(tmp_path / "s.yaml", "out/run1", "x") == tmp_path / "out" / "run1"


def test_fail_prints_bracketed_text_as_it_is(capsys: pytest.CaptureFixture[str]) -> None:
    exit_ = fail("variables.x.bounds: [nan, 1.5] is not [mrad] [/] [bold]", ExitCode.BAD_INPUT)
    assert exit_.exit_code == 2
    assert "variables.x.bounds: [nan, 1.5] is not [mrad] [/] [bold]" in capsys.readouterr().err
