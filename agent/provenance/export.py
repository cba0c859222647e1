"""``closedloop export DIR OUT``: a session as one RO-Crate bundle (see :mod:`agent.provenance.bundle` for what is
in it), from a running, stopped or finished session, kept in SQLite or PostgreSQL.

The session is only read: its SQLite store is copied with SQLite's online backup from a read-only connection (a
consistent copy while the session runs), a PostgreSQL-kept one row by row; everything else in the bundle is read
from that copy, so that the tables, the card and the store agree. The bundle is written under a temporary name
beside OUT and renamed at the end: OUT either appears whole or not at all.
"""

from __future__ import annotations

import contextlib
import json
import platform
import shutil
import sqlite3
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from agent.provenance.bundle import FORMAT, MANIFEST, STORE, files_under, publish, sha256
from agent.provenance.lineage import BUILDS, VERSIONS, software_versions
from agent.store.backends import STORE_RECORD
from agent.store.layout import SESSION_FILE, STORE_FILE
from agent.store.sql import SqlStore
from agent.store.sqlite import SessionStore
from agent.views.status import folder_spec, session_store
from closedloop.errors import SpecError

#: Each table of the store and its columns (the ``session`` key left out: a bundle holds one session).
TABLES: dict[str, tuple[str, ...]] = {
    "meta": ("key", "value"),
    "proposals": ("id", "seq", "iteration", "status", "body"),
    "runs": ("proposal_id", "error", "seconds", "documents", "status"),
    "observations": ("seq", "proposal_id", "status", "body"),
    "decisions": ("seq", "iteration", "body", "key", "proposal_id"),
    "dispatches": ("proposal_id", "time", "setpoints"),
    "queued_points": ("seq", "time", "by", "setpoints", "proposal_id"),
    "events": ("seq", "time", "kind", "message", "key"),
    "lineage": ("proposal_id", "kind", "body"),
}
DESCRIPTIONS = {
    MANIFEST: "The bundle's format version and the session it holds.",
    "SESSION.md": "The session's card: what was optimized, how it went, who decided, how to reproduce it.",
    "convergence.png": "Each objective per experiment, and the best so far.",
    SESSION_FILE: "The session file as given.",
    STORE: "The session's store (SQLite): proposals, runs, observations, decisions, audit log, lineage.",
    "observations.csv": "Every observation with its lineage, one row each (the columns of closedloop results).",
    "observations.parquet": "observations.csv as Parquet.",
    "decisions.json": "Every decision at a checkpoint: who, how, when, any edit.",
    "audit.json": "The audit trail: every decision and audit-log line.",
    "environment.json": "The software versions, the planner's builds, the platform.",
}


def _check_out(out: Path) -> None:
    if out.exists():
        raise SpecError(f"OUT: {out} exists; give a new name")
    if not out.parent.is_dir():
        raise SpecError(f"OUT: {out.parent} does not exist")


def snapshot_store(folder: Path, target: Path) -> None:
    """Copy the session's store to a SQLite file ``target`` without changing the session (see the module text).

    Raises:
        SessionError: the folder holds no session, or its store cannot be read.
    """
    if not (folder / STORE_RECORD).exists():
        session_store(folder).close()  # the same checks as every reader (a session, not damaged, its own)
        source = sqlite3.connect(f"{(folder / STORE_FILE).resolve().as_uri()}?mode=ro", uri=True)
        try:
            with contextlib.closing(sqlite3.connect(target)) as copy:
                source.backup(copy)
        finally:
            source.close()
        return
    kept = session_store(folder)
    try:
        SessionStore(target).close()  # the schema
        everything = kept.tables_rows(TABLES)  # one snapshot: a running session is copied as it was
        with contextlib.closing(sqlite3.connect(target)) as copy, copy:
            for table, columns in TABLES.items():
                rows = everything[table]
                marks = ", ".join("?" for _ in columns)
                copy.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", rows)
    finally:
        kept.close()


def _forget_store_url(store: SqlStore) -> None:
    """Leave the PostgreSQL URL (it may hold a password) out of the copy: the spec it recorded names no store."""
    spec = store.meta("spec")
    if isinstance(spec, dict) and spec.get("store") is not None:
        store.set_meta(spec={**spec, "store": None})


def _settle(path: Path) -> None:
    """Leave the copied store one plain file (no ``-wal`` or ``-shm`` beside it)."""
    with contextlib.closing(sqlite3.connect(path)) as conn:
        conn.execute("PRAGMA journal_mode=DELETE")
    for suffix in ("-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def _copy_runs(folder: Path, stage: Path, store: SqlStore) -> None:
    """Copy the documents (and array files) of every run the copied store knows of."""
    runs = folder / "runs"
    if not runs.is_dir():
        return
    known = store.dispatched_ids()
    for path in sorted(runs.iterdir()):
        if path.is_file() and path.name.split(".")[0] in known:
            (stage / "runs").mkdir(exist_ok=True)
            shutil.copyfile(path, stage / "runs" / path.name)


def _tables(stage: Path) -> int:
    """Write observations.csv and .parquet, decisions.json and audit.json from the copied store; the rows' count."""
    from agent.views.audit import audit_trail
    from agent.views.results import as_csv, session_results

    columns, rows, _ = session_results(stage)
    (stage / "observations.csv").write_text(as_csv(columns, rows), encoding="utf-8")
    write_parquet(stage / "observations.parquet", columns, rows)
    store = SessionStore(stage / STORE)
    try:
        decisions = [{"iteration": i, **d.model_dump(mode="json")} for i, d in store.decisions()]
    finally:
        store.close()
    (stage / "decisions.json").write_text(json.dumps(decisions, indent=1), encoding="utf-8")
    (stage / "audit.json").write_text(json.dumps(audit_trail(stage), indent=1, default=str), encoding="utf-8")
    return len(rows)


def write_parquet(path: Path, columns: list[str], rows: list[dict[str, Any]]) -> None:
    """``rows`` as a Parquet file: a column of numbers only is float64 (int64 when all are integers), any other
    text; ``None`` is null."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    arrays = {}
    for column in columns:
        values = [row.get(column) for row in rows]
        present = [v for v in values if v is not None]
        if present and all(isinstance(v, int) and not isinstance(v, bool) for v in present):
            arrays[column] = pa.array(values, type=pa.int64())
        elif present and all(isinstance(v, int | float) and not isinstance(v, bool) for v in present):
            arrays[column] = pa.array([None if v is None else float(v) for v in values], type=pa.float64())
        else:
            arrays[column] = pa.array([None if v is None else str(v) for v in values], type=pa.string())
    pq.write_table(pa.table(arrays), path)


def _environment(stage: Path, store: SqlStore) -> dict[str, Any]:
    environment = {
        "versions": store.meta(VERSIONS),
        "exported_with": software_versions(),
        "planner_builds": store.meta(BUILDS) or [],
        "prior": store.meta("prior"),
        "platform": platform.platform(),
    }
    (stage / "environment.json").write_text(json.dumps(environment, indent=1), encoding="utf-8")
    return environment


def _crate(stage: Path, name: str, session_id: str) -> None:
    """Write the crate's metadata: every file in ``stage`` with its sha256, size and description."""
    from rocrate.rocrate import ROCrate

    crate = ROCrate()
    crate.name = f"closedloop session {name}"
    crate.description = f"The closedloop session {name} ({session_id}): its data, lineage, decisions and card."
    crate.datePublished = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    for relative in files_under(stage):
        path = stage / relative
        properties = {"sha256": sha256(path), "contentSize": str(path.stat().st_size)}
        if relative in DESCRIPTIONS:
            properties["description"] = DESCRIPTIONS[relative]
        elif relative.startswith("runs/"):
            properties["description"] = "A run's documents (JSON lines) or its large arrays (HDF5)."
        crate.add_file(path, dest_path=relative, properties=properties)
    crate.write(stage)


def export_session(folder: Path, out: Path) -> dict[str, Any]:
    """Write the session in ``folder`` as a bundle at ``out`` (a folder, or a zip when it ends in ``.zip``).

    Returns:
        what was written: ``out``, ``session_id``, ``observations``, ``files``, ``bytes``.

    Raises:
        SpecError: ``out`` exists or its folder does not (nothing is written).
        SessionError: ``folder`` holds no readable session (nothing is written).
    """
    from agent.provenance.card import PLOT, card, write_plot
    from agent.views.data import load_session

    folder, out = Path(folder), Path(out)
    _check_out(out)
    stage = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        stage.chmod(0o755)  # a bundle is for sharing (mkdtemp makes it its owner's only)
        snapshot_store(folder, stage / STORE)
        original = session_store(folder)
        try:
            spec = folder_spec(folder, original)
        finally:
            original.close()
        if (folder / SESSION_FILE).exists() and spec.store is None:
            shutil.copyfile(folder / SESSION_FILE, stage / SESSION_FILE)
        elif (folder / SESSION_FILE).exists():  # without its store URL, which may hold a password
            given = yaml.safe_load((folder / SESSION_FILE).read_text(encoding="utf-8"))
            (stage / SESSION_FILE).write_text(yaml.safe_dump({k: v for k, v in given.items() if k != "store"}))
        else:  # a folder attached to a PostgreSQL-kept session: the spec the store recorded
            recorded = spec.model_dump(mode="json", exclude_defaults=True, exclude={"store"})
            (stage / SESSION_FILE).write_text(yaml.safe_dump(recorded))
        store = SessionStore(stage / STORE)
        try:
            _forget_store_url(store)
            session_id, name = str(store.meta("session_id")), str(store.meta("name", spec.name))
            _copy_runs(folder, stage, store)
            environment = _environment(stage, store)
        finally:
            store.close()
        observed = _tables(stage)
        data = load_session(stage)
        plotted = write_plot(data, stage / PLOT)
        (stage / "SESSION.md").write_text(card(data, environment, plotted), encoding="utf-8")
        manifest = {
            "format": FORMAT,
            "session_id": session_id,
            "name": name,
            "folder": str(folder.resolve()),
            "observations": observed,
            "exported": time.time(),
            "closedloop": environment["exported_with"].get("closedloop"),
        }
        _settle(stage / STORE)
        (stage / MANIFEST).write_text(json.dumps(manifest, indent=1), encoding="utf-8")
        _crate(stage, name, session_id)
        files = files_under(stage)
        size = sum((stage / f).stat().st_size for f in files)
        publish(stage, out)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    return {"out": str(out), "session_id": session_id, "observations": observed, "files": len(files), "bytes": size}
