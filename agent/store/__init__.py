"""Where a session's data lives: its folder, its store (SQLite in the folder, or PostgreSQL), the run files, the lock.

:class:`SessionFolder` names every path of a session folder. :func:`open_store` is the one way to open a session's
store: it makes the seal and integrity checks every time. A :class:`SqlStore` holds every query the rest of the
agent calls, whichever database it lives in: the reads of a :class:`StoreReader` and the appends.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from agent._lazy import lazy_exports

_EXPORTS = {
    "CHECKPOINT_FILE": "layout",
    "CONTROL_FILE": "layout",
    "FIGURES_DIR": "layout",
    "KEYS_DIR": "layout",
    "LOCK_FILE": "layout",
    "LOG_FILE": "layout",
    "REPORT_FILE": "layout",
    "RUNS_DIR": "layout",
    "SEAL_FILE": "layout",
    "SESSION_FILE": "layout",
    "STORE_FILE": "layout",
    "STORE_RECORD": "layout",
    "SessionFolder": "layout",
    "attach": "backends",
    "open_checkpoints": "backends",
    "open_postgres": "backends",
    "open_remote": "backends",
    "publish_control": "backends",
    "published_control": "backends",
    "recorded_spec": "backends",
    "recorded_store": "backends",
    "saver_for": "backends",
    "RunFile": "documents",
    "read_run_file": "documents",
    "check_edits": "edits",
    "check_run_files": "folder",
    "clear_unfinished": "folder",
    "create_store": "folder",
    "holds_session": "folder",
    "open_store": "folder",
    "write_seal": "folder",
    "SessionLock": "lock",
    "holder": "lock",
    "process_alive": "lock",
    "DriverLock": "postgres",
    "PostgresStore": "postgres",
    "StoreReader": "reads",
    "SqlStore": "sql",
    "SessionStore": "sqlite",
    "dumps": "sqlite",
}

__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

if TYPE_CHECKING:
    from agent.store.backends import (
        attach,
        open_checkpoints,
        open_postgres,
        open_remote,
        publish_control,
        published_control,
        recorded_spec,
        recorded_store,
        saver_for,
    )
    from agent.store.documents import RunFile, read_run_file
    from agent.store.edits import check_edits
    from agent.store.folder import (
        check_run_files,
        clear_unfinished,
        create_store,
        holds_session,
        open_store,
        write_seal,
    )
    from agent.store.layout import (
        CHECKPOINT_FILE,
        CONTROL_FILE,
        FIGURES_DIR,
        KEYS_DIR,
        LOCK_FILE,
        LOG_FILE,
        REPORT_FILE,
        RUNS_DIR,
        SEAL_FILE,
        SESSION_FILE,
        STORE_FILE,
        STORE_RECORD,
        SessionFolder,
    )
    from agent.store.lock import SessionLock, holder, process_alive
    from agent.store.postgres import DriverLock, PostgresStore
    from agent.store.reads import StoreReader
    from agent.store.sql import SqlStore
    from agent.store.sqlite import SessionStore, dumps
