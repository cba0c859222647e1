"""A session folder's paths are named in one place (agent.store.SessionFolder), and every view opens a store
through the same checks a resume makes (agent.store.open_store)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from agent.store import SessionFolder, open_store, write_seal
from agent.store import layout as layout_module
from agent.views import audit_trail
from closedloop.errors import SessionError

ROOT = Path(__file__).resolve().parents[3]

NAMES = {
    value
    for name, value in vars(layout_module).items()
    if name.isupper() and isinstance(value, str) and name.endswith(("_FILE", "_RECORD"))
}


def test_every_path_of_a_folder_is_under_it_and_distinct(tmp_path: Path) -> None:
    where = SessionFolder(tmp_path)
    paths = [
        where.session_file,
        where.store_file,
        where.seal_file,
        where.checkpoints_file,
        where.store_record,
        where.control_file,
        where.keys_dir,
        where.lock_file,
        where.runs,
        where.log_file,
        where.report_file,
        where.figures_dir,
    ]
    assert all(path.parent == tmp_path for path in paths) and len(set(paths)) == len(paths)
    assert where.run_file("p-1") == tmp_path / "runs" / "p-1.jsonl"
    assert SessionFolder(str(tmp_path)).path == tmp_path  # a string is taken as a path
    assert not where.has_store and not where.in_postgres
    where.store_record.write_text("{}")
    assert where.has_store and where.in_postgres
    assert {path.name for path in where.database_files()} >= {"store.sqlite-wal", "checkpoints.sqlite", "seal.json"}


def test_no_agent_module_spells_a_session_folder_file_but_the_layout() -> None:
    """``store.sqlite`` was spelled in three modules, and the others each spelled one file of their own."""
    spelled = []
    for path in sorted((ROOT / "agent").rglob("*.py")):
        if path == ROOT / "agent" / "store" / "layout.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and node.value in NAMES:
                spelled.append(f"{path.relative_to(ROOT)}:{node.lineno}: {node.value}")
    assert NAMES >= {"store.sqlite", "checkpoints.sqlite", "control.json", "session.lock", "seal.json"}
    assert spelled == []


def test_the_audit_trail_refuses_a_store_older_than_its_seal(tmp_path: Path) -> None:
    """The audit trail opened the SQLite file by itself, skipping the seal: a rolled-back store was read as if
    whole. It is opened through open_store now, like status, results and a resume."""
    store = open_store(tmp_path, new=True)
    store.set_meta(session_id="s-1")
    store.close()
    assert audit_trail(tmp_path) == []
    write_seal(tmp_path, "s-1", observations=3)  # the session recorded three observations; the store holds none
    with pytest.raises(SessionError, match="holds 0 observations but the session recorded 3"):
        audit_trail(tmp_path)
