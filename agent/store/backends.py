"""Which store a session lives in, and opening it: SQLite in the session folder (the default), or PostgreSQL.

A session whose store is in PostgreSQL still has its folder (the session file, ``runs/``, ``control.json``); the
folder's ``store.json`` records the store's URL and the session's id, so that ``resume DIR``, ``status DIR`` and the
other commands find it. An operator on another host, who has no folder, names the store and the session instead
(:func:`agent.views.summarize_remote`); the running agent publishes its control channel's addresses in the
store's ``meta`` (key ``control``) for them.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
from pathlib import Path
from typing import Any

from agent.store.layout import STORE_RECORD, SessionFolder
from agent.store.sql import SqlStore
from closedloop.errors import SessionError


def recorded_store(folder: Path) -> dict[str, str] | None:
    """The folder's record of its PostgreSQL store (``{"url", "session_id"}``), or None when its store is SQLite.

    Raises:
        SessionError: the record is there but unreadable.
    """
    path = SessionFolder(folder).store_record
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise SessionError(f"{path}: unreadable ({exc})", "restore it, or write it again from the store") from None
    if not isinstance(data, dict) or not all(isinstance(data.get(key), str) for key in ("url", "session_id")):
        raise SessionError(f"{path}: names no store url and session_id", "restore it")
    return {"url": data["url"], "session_id": data["session_id"]}


def record_store(folder: Path, url: str, session_id: str) -> None:
    """Write the folder's record of its PostgreSQL store (readable by its owner only: the URL may hold a password)."""
    path = SessionFolder(folder).store_record
    temporary = path.with_name(f".{STORE_RECORD}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as file:
        json.dump({"url": url, "session_id": session_id}, file)
    os.replace(temporary, path)


def open_postgres(folder: Path, new: bool, url: str | None = None, session_id: str | None = None) -> SqlStore:
    """Open the PostgreSQL store of a session folder: a new one (recorded in the folder), or the one it records.

    Raises:
        SessionError: the store cannot be reached, or does not hold the recorded session.
    """
    from agent.store.postgres import PostgresStore, store_error

    if new:
        if url is None or session_id is None:
            raise ValueError("a new PostgreSQL store needs its url and the session id")
        store = PostgresStore(url, session_id, create=True)
        record_store(folder, url, session_id)
        return store
    record = recorded_store(folder)
    if record is None:
        raise SessionError(f"{folder}: records no PostgreSQL store")
    store = PostgresStore(record["url"], record["session_id"])
    if store.meta("session_id") != record["session_id"]:
        store.close()
        raise store_error(record["url"], f"holds no session {record['session_id']} (the one {folder} records)")
    return store


def open_checkpoints(folder: Path, session_id: str, store: SqlStore | None = None) -> tuple[Any, bool]:
    """Open LangGraph's checkpoint database; returns it and whether it was (re)made empty. A session whose
    ``store`` is in PostgreSQL keeps its checkpoints there (a ``PostgresSaver``, keyed by the session's id).

    Raises:
        SessionError: the file is damaged or belongs to another session; the PostgreSQL store cannot be reached.
    """
    from agent.store.postgres import PostgresStore
    from agent.store.postgres import open_checkpoints as open_postgres_checkpoints

    if isinstance(store, PostgresStore):
        return open_postgres_checkpoints(store.url, session_id)
    path = SessionFolder(folder).checkpoints_file
    fresh = not path.exists() or path.stat().st_size == 0
    conn = sqlite3.connect(path, check_same_thread=False)
    try:
        if not fresh:
            problems = [row[0] for row in conn.execute("PRAGMA quick_check").fetchall()]
            if problems != ["ok"]:
                raise SessionError(f"{path}: damaged ({problems[0]})", "move it away to rebuild it from the store")
        # WAL with synchronous=NORMAL: a committed checkpoint survives the process being killed
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("CREATE TABLE IF NOT EXISTS closedloop_session (session_id TEXT NOT NULL)")
        row = conn.execute("SELECT session_id FROM closedloop_session").fetchone()
        if row is None:
            conn.execute("INSERT INTO closedloop_session VALUES (?)", (session_id,))
            conn.commit()
        elif row[0] != session_id:
            raise SessionError(f"{path}: belongs to session {row[0]}, not {session_id}", "move it away to rebuild it")
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise SessionError(f"{path}: not a readable SQLite database ({exc})", "move it away to rebuild it") from None
    except SessionError:
        conn.close()
        raise
    return conn, fresh


def saver_for(connection: Any) -> Any:
    """LangGraph's checkpointer over what :func:`open_checkpoints` opened: a SQLite connection gets
    a ``SqliteSaver``; a PostgreSQL session's saver is already one."""
    import sqlite3

    if isinstance(connection, sqlite3.Connection):
        from langgraph.checkpoint.sqlite import SqliteSaver

        return SqliteSaver(connection)
    return connection


def open_remote(url: str, name_or_id: str) -> SqlStore:
    """The store of the session named (or with the id) ``name_or_id`` in the PostgreSQL database at ``url``.

    Raises:
        SessionError: the store cannot be reached, or holds no such session (or several with that name).
    """
    from agent.store.postgres import PostgresStore, find_session

    return PostgresStore(url, find_session(url, name_or_id))


def publish_control(store: SqlStore, info: dict[str, Any] | None, folder: Path) -> None:
    """Record in the store where the session's control channel listens (None when it closes), on which host its
    process runs and in which folder, so that an operator elsewhere can reach it and judge whether it still runs."""
    store.set_meta(control=info, host=socket.gethostname(), folder=str(Path(folder).resolve()))


def published_control(folder: Path) -> dict[str, Any] | None:
    """The control channel's addresses that the process running a PostgreSQL-kept session published in its store
    (None for a folder whose store is SQLite, or when no process has it open).

    Raises:
        SessionError: the store cannot be reached.
    """
    if recorded_store(folder) is None:
        return None
    store = open_postgres(folder, new=False)
    try:
        info = store.meta("control")
    finally:
        store.close()
    return info if isinstance(info, dict) else None


def attach(folder: Path, url: str, name_or_id: str) -> str:
    """Make ``folder`` stand for a session kept in PostgreSQL, on a host without its own folder: it records the
    store, so that ``status``, ``audit`` and the channel commands (``watch``, ``review``, ``pause``, ``stop``,
    ``budget``) work on it. Returns the session's id.

    Raises:
        SessionError: the folder holds a session already, or the store holds no such session.
    """
    where = SessionFolder(folder)
    if any(path.exists() for path in (where.store_record, where.store_file, where.session_file)):
        raise SessionError(f"{folder} holds a session already", "attach into a new folder")
    store = open_remote(url, name_or_id)
    try:
        session_id = store.scope
    finally:
        store.close()
    where.path.mkdir(parents=True, exist_ok=True)
    record_store(where.path, url, session_id)
    return session_id


def recorded_spec(store: SqlStore) -> Any:
    """The session spec a store recorded when the session began (its planner and instrument not imported).

    Raises:
        SessionError: it recorded none.
    """
    from closedloop.spec import SessionSpec

    recorded = store.meta("spec")
    if recorded is None:
        raise SessionError(f"store {store.location}: holds no session spec")
    return SessionSpec.model_validate(recorded)  # imports nothing: its planner and instruments need not be here
