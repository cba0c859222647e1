"""A session folder's own files: made for a new session (:func:`create_store`), and checked when one is opened.

``store.sqlite`` is the truth; ``seal.json`` records, beside it, how many observations it holds, so that a store
that lost its last commits (copied without its ``-wal`` file, or rolled back) is recognised instead of resumed. The
run files in ``runs/`` are a second witness, with or without the seal: a store with no record of a run whose
documents are there is older than the folder (see :func:`agent.store.check_run_files`; the checkpoints are a
third, see :func:`agent.loop.check_high_water`).
A folder whose store is in PostgreSQL holds ``store.json`` instead (see :mod:`agent.store.backends`); the SQLite checks
(``quick_check``, the seal) do not apply to it.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sqlite3
import time
from pathlib import Path
from typing import Any

from agent.store.backends import open_postgres
from agent.store.documents import read_run_file
from agent.store.layout import SEAL_FILE, SESSION_FILE, STORE_FILE, SessionFolder
from agent.store.sql import SqlStore
from agent.store.sqlite import SessionStore
from closedloop.changes import spec_fingerprint
from closedloop.errors import SessionError
from closedloop.records import new_id
from closedloop.spec import SessionSpec

__all__ = [
    "SESSION_FILE",
    "STORE_FILE",
    "SEAL_FILE",
    "check_run_files",
    "clear_unfinished",
    "create_store",
    "holds_session",
    "open_store",
    "write_seal",
]


def holds_session(folder: Path | SessionFolder) -> bool:
    """Whether the folder holds a session: a store that records a session id (a creation that was killed before it
    recorded one holds none, and a new ``run`` may start over in it), or a record of its PostgreSQL store."""
    where = _folder(folder)
    if where.in_postgres:
        return True
    path = where.store_file
    if not path.exists() or path.stat().st_size == 0:
        return False
    try:
        with contextlib.closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)) as conn:
            if conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'meta'").fetchone() is None:
                return False  # a database with no session tables yet: a creation that never got that far
            row = conn.execute("SELECT value FROM meta WHERE key = 'session_id'").fetchone()
    except sqlite3.Error:
        return True  # unreadable: not ours to overwrite; opening it says what is wrong
    return row is not None


def clear_unfinished(folder: Path | SessionFolder) -> None:
    """Remove what a killed creation left (a store with no session id, its checkpoints), before starting over."""
    for path in _folder(folder).database_files():
        path.unlink(missing_ok=True)


def open_store(
    folder: Path | SessionFolder, new: bool, url: str | None = None, session_id: str | None = None
) -> SqlStore:
    """Open a session's store: checked for damage, its identity and what the session recorded of it. The one way
    to open a session folder's store: every command, view and process opens it here.

    Args:
        folder: the session folder.
        new: create the store (a new session).
        url: for a new session, the PostgreSQL store to keep it in (recorded in the folder); None for SQLite in
            the folder. An existing session's store is the one its folder records.
        session_id: for a new session in PostgreSQL, its id (the key of its rows).

    Raises:
        SessionError: the store is missing, empty, damaged, or holds less than the session recorded (a copy
            without its ``-wal`` file, for example) or than its run files show; the message names the file. A
            PostgreSQL store that cannot be reached, or does not hold the session, is named by its URL (without the
            password).
    """
    where = _folder(folder)
    if (url is not None and new) or (not new and where.in_postgres):
        kept = open_postgres(where.path, new, url, session_id)
        if not new:
            try:
                check_run_files(where.runs, kept)
            except SessionError:
                kept.close()
                raise
        return kept
    path = where.store_file
    if not new and (not path.exists() or path.stat().st_size == 0):
        raise SessionError(f"{path}: missing or empty; the session cannot be resumed from it", "restore a copy")
    store = SessionStore(path, check=not new)
    if new:
        return store
    try:
        session_id = store.meta("session_id")
        seal = _read_seal(where)
        lost = "(copied without its -wal file, or rolled back?)"
        if session_id is None and seal.get("session_id"):
            raise SessionError(f"{path}: holds none of session {seal['session_id']}'s records {lost}", "restore a copy")
        if session_id is None:
            raise SessionError(f"{path}: holds no session (empty or overwritten)", "restore a copy")
        if seal.get("session_id", session_id) != session_id:
            raise SessionError(f"{path}: belongs to session {session_id}, but the folder to {seal['session_id']}")
        held = store.count_observations()
        if held < int(seal.get("observations", 0)):
            raise SessionError(
                f"{path}: holds {held} observations but the session recorded {seal['observations']} {lost}",
                "restore the store with its -wal file",
            )
        check_run_files(where.runs, store)
    except SessionError:
        store.close()
        raise
    return store


def create_store(folder: Path, spec_path: Path, spec: SessionSpec, **meta: Any) -> SqlStore:
    """A new session's store, in ``folder`` (made if need be) or in PostgreSQL when the spec's ``store`` says so.

    The session file at ``spec_path`` is copied into the folder as given; the store records a new session id, the
    session's name, budget, spec and its fingerprint, the pid and time of its creation, and ``meta``; the seal
    records an empty store.

    Raises:
        SessionError: the store cannot be made (a PostgreSQL store that cannot be reached is named by its URL).
    """
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(spec_path, SessionFolder(folder).session_file)
    session_id = new_id("s")
    store = open_store(folder, new=True, url=spec.store, session_id=session_id)
    store.set_meta(
        session_id=session_id,
        name=spec.name,
        pid=os.getpid(),
        created=time.time(),
        budget=spec.budget.experiments,
        spec=spec.model_dump(mode="json"),
        spec_fingerprint=spec_fingerprint(spec),
        **meta,
    )
    write_seal(folder, session_id, 0)
    return store


def _folder(folder: Path | SessionFolder) -> SessionFolder:
    return folder if isinstance(folder, SessionFolder) else SessionFolder(folder)


def _read_seal(where: SessionFolder) -> dict[str, Any]:
    try:
        return dict(json.loads(where.seal_file.read_text()))
    except (OSError, ValueError, TypeError):
        return {}


def write_seal(folder: Path | SessionFolder, session_id: str, observations: int) -> None:
    """Record how many observations the store holds (written beside it, replaced atomically; nothing for a store
    in PostgreSQL)."""
    where = _folder(folder)
    if where.in_postgres:
        return
    temporary = where.path / f".{SEAL_FILE}.tmp"
    temporary.write_text(json.dumps({"session_id": session_id, "observations": observations}))
    os.replace(temporary, where.seal_file)


def check_run_files(runs: Path, store: SqlStore) -> None:
    """Refuse a store older than the run files: a documents file that holds a start document names a proposal
    whose run the store has no record of. (An empty file is a dispatch a kill cut before its intent was stored:
    nothing moved.)

    Raises:
        SessionError: such a file is found; names the store and the file.
    """
    if not runs.is_dir():
        return
    names = {path.stem: path for path in runs.glob("*.jsonl")}
    if not names:
        return
    missing = sorted(set(names) - store.dispatched_ids())
    for proposal_id in missing:
        if any(name == "start" for name, _ in read_run_file(names[proposal_id])):
            raise SessionError(
                f"{store.location}: has no record of the run in {names[proposal_id]} "
                "(restored from an older copy, or rolled back?)",
                "restore the newest copy of the store",
            )
