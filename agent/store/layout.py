"""What a session folder holds, by name: every path in it is spelled here once.

A session lives in one folder: the session file as given, its store (SQLite here, or a record of the PostgreSQL
store that keeps it), LangGraph's checkpoints, the seal, the run documents, the control channel's addresses and
keys while a process runs it, the lock that makes one process its driver, and the log of a background start.
:class:`SessionFolder` names each of them; the module constants are the bare names, for code that needs only one.
Opening the store is :func:`agent.store.open_store`'s, the one way, with its checks.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

SESSION_FILE = "session.yaml"
"""The session file, as it was given."""
STORE_FILE = "store.sqlite"
"""The SQLite store: proposals, runs, observations, decisions, the audit log."""
SEAL_FILE = "seal.json"
"""How many observations the SQLite store holds, written beside it (see :func:`agent.store.open_store`)."""
CHECKPOINT_FILE = "checkpoints.sqlite"
"""LangGraph's checkpoints (for a session in SQLite, and the local copy for one in PostgreSQL)."""
STORE_RECORD = "store.json"
"""For a session kept in PostgreSQL: the store's URL and the session's id."""
CONTROL_FILE = "control.json"
"""The control channel's addresses, while a process runs the session."""
KEYS_DIR = "keys"
"""The control channel's CurveZMQ keys (readable by the owner only)."""
LOCK_FILE = "session.lock"
"""The lock the session's driving process holds."""
RUNS_DIR = "runs"
"""Each run's documents (``<proposal id>.jsonl``) and array files."""
LOG_FILE = "session.log"
"""The output of a session process started in the background."""
REPORT_FILE = "report.html"
"""``closedloop report``'s page, by default."""
FIGURES_DIR = "figures"
"""``closedloop report --format png``'s figures, by default."""


@dataclass(frozen=True)
class SessionFolder:
    """A session folder and every path in it.

    Args:
        path: the folder (it need not exist yet).
    """

    path: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(self.path))

    @property
    def session_file(self) -> Path:
        """The session file, as it was given."""
        return self.path / SESSION_FILE

    @property
    def store_file(self) -> Path:
        """The SQLite store."""
        return self.path / STORE_FILE

    @property
    def seal_file(self) -> Path:
        """The seal: how many observations the SQLite store holds."""
        return self.path / SEAL_FILE

    @property
    def checkpoints_file(self) -> Path:
        """LangGraph's checkpoint database."""
        return self.path / CHECKPOINT_FILE

    @property
    def store_record(self) -> Path:
        """The record of a PostgreSQL store (URL and session id)."""
        return self.path / STORE_RECORD

    @property
    def control_file(self) -> Path:
        """The control channel's addresses, while a process runs the session."""
        return self.path / CONTROL_FILE

    @property
    def keys_dir(self) -> Path:
        """The control channel's keys."""
        return self.path / KEYS_DIR

    @property
    def lock_file(self) -> Path:
        """The driving process's lock."""
        return self.path / LOCK_FILE

    @property
    def runs(self) -> Path:
        """The run documents' folder."""
        return self.path / RUNS_DIR

    @property
    def log_file(self) -> Path:
        """A background session process's output."""
        return self.path / LOG_FILE

    @property
    def report_file(self) -> Path:
        """The report page's default path."""
        return self.path / REPORT_FILE

    @property
    def figures_dir(self) -> Path:
        """The report figures' default folder."""
        return self.path / FIGURES_DIR

    def run_file(self, proposal_id: str) -> Path:
        """The documents file of the run of ``proposal_id``."""
        return self.runs / f"{proposal_id}.jsonl"

    @property
    def in_postgres(self) -> bool:
        """Whether the session's store is kept in PostgreSQL (the folder records it)."""
        return self.store_record.exists()

    @property
    def has_store(self) -> bool:
        """Whether the folder has a store: a SQLite file, or the record of a PostgreSQL one."""
        return self.store_file.exists() or self.store_record.exists()

    def database_files(self) -> Iterator[Path]:
        """The SQLite store, the checkpoints and the seal, each with SQLite's ``-wal`` and ``-shm`` companions."""
        for name in (STORE_FILE, CHECKPOINT_FILE, SEAL_FILE):
            for suffix in ("", "-wal", "-shm"):
                yield self.path / f"{name}{suffix}"
