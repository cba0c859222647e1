"""``closedloop sessions PATH``: every session under a folder, from real sessions run on the simulated beamline."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from agent.session import Session
from tests.conftest import beamline_session
from tests.integration.test_cli import closedloop


def _run(root: Path, name: str, budget: int) -> Path:
    path = root / f"{name}.yaml"
    path.write_text(yaml.safe_dump(beamline_session(name=name, budget={"experiments": budget})))
    folder = root / "lab" / name
    with Session.create(path, folder) as session:
        assert session.advance() is None
    return folder


def test_every_session_under_a_folder_newest_first_and_a_damaged_one_named(tmp_path: Path) -> None:
    older = _run(tmp_path, "older", 2)
    newer = _run(tmp_path, "newer", 3)
    damaged = tmp_path / "lab" / "deeper" / "damaged"
    damaged.mkdir(parents=True)
    (damaged / "session.yaml").write_text("name: x\n")
    (damaged / "store.sqlite").write_bytes(b"not a database at all" * 100)
    listed = closedloop("sessions", str(tmp_path / "lab"), "--json")
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)["sessions"]
    readable = [row for row in rows if row["state"] != "unreadable"]
    assert [row["name"] for row in readable] == ["newer", "older"]  # newest activity first
    assert [row["experiments"] for row in readable] == [3, 2]
    assert all(row["state"] == "finished" and row["planner"] == "sobol" for row in readable)
    assert all(row["session_id"].startswith("s-") and isinstance(row["best_value"], float) for row in readable)
    assert [row["folder"] for row in readable] == [str(newer), str(older)]
    (bad,) = [row for row in rows if row["state"] == "unreadable"]
    assert bad["folder"] == str(damaged) and "store.sqlite" in bad["error"]
    table = closedloop("sessions", str(tmp_path / "lab"))
    assert table.returncode == 0 and "newer" in table.stdout and "unreadable" in table.stdout
    missing = closedloop("sessions", str(tmp_path / "nowhere"))
    assert missing.returncode == 2 and missing.stderr.count("\n") == 1 and "PATH" in missing.stderr
