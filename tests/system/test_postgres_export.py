"""A session kept in a real PostgreSQL server (Debian's ``postgresql``, started by the fixture of
tests/system/test_postgres.py) keeps its lineage there, exports as a bundle with every row, and replays."""

from __future__ import annotations

import json
import sqlite3
import zipfile
from pathlib import Path

import pytest

from tests.conftest import beamline_session
from tests.integration.test_cli import closedloop
from tests.system.test_postgres import postgres_url  # noqa: F401 (the module's PostgreSQL cluster)

pytestmark = [pytest.mark.system, pytest.mark.timeout(300)]


def test_a_session_kept_in_postgresql_exports_with_its_lineage_and_replays(
    postgres_url: str,  # noqa: F811
    tmp_path: Path,
) -> None:
    path = tmp_path / "pg.yaml"
    path.write_text(json.dumps(beamline_session(name="pg-export", budget={"experiments": 4}, store=postgres_url)))
    folder = tmp_path / "run"
    run = closedloop("run", str(path), "--dir", str(folder), "--yes", "--json")
    assert run.returncode == 0, run.stderr
    rows = json.loads(closedloop("results", str(folder), "--json").stdout)["rows"]
    assert [row["planner"] for row in rows] == ["sobol"] * 4 and [row["known"] for row in rows] == [0, 1, 2, 3]
    out = tmp_path / "pg.zip"
    exported = closedloop("export", str(folder), str(out), "--json")
    assert exported.returncode == 0, exported.stderr
    with zipfile.ZipFile(out) as archive:
        archive.extract("store.sqlite", tmp_path / "unpacked")
        assert "store.json" not in archive.namelist()  # the URL (and its password) stays out of the bundle
        assert all("s3cret" not in archive.read(name).decode(errors="replace") for name in archive.namelist())
    with sqlite3.connect(tmp_path / "unpacked" / "store.sqlite") as conn:
        assert conn.execute("SELECT COUNT(*) FROM observations").fetchone()[0] == 4
        assert conn.execute("SELECT COUNT(*) FROM lineage WHERE kind = 'proposed'").fetchone()[0] == 4
        assert {row[0] for row in conn.execute("SELECT session FROM proposals")} == {""}
    replayed = closedloop("replay", str(out), "--json")
    assert replayed.returncode == 0, replayed.stderr
    assert json.loads(replayed.stdout)["reproduced"] == 4
