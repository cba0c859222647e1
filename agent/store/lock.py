"""One process drives a session: an OS lock on the session folder.

:class:`SessionLock` takes an exclusive ``flock`` on ``<folder>/session.lock`` and keeps it for the life of the
process; the operating system releases it when the process ends, however it ends, so a lock left by a killed
process is simply taken over by the next one. The file records who holds it (pid, host, since) for the message a
second process gets; whether anyone holds it is always decided by trying the lock, never by probing a pid.

``flock`` locks are per open file: a child made by ``fork`` shares its parent's lock, and the lock is only as good
as the file system's ``flock`` (local disks are fine; some network file systems only emulate it).
"""

from __future__ import annotations

import datetime
import fcntl
import json
import os
import socket
import time
from pathlib import Path
from types import TracebackType
from typing import Any

from agent.store.layout import SessionFolder
from closedloop.errors import SessionError


def _read(fd: int) -> dict[str, Any] | None:
    os.lseek(fd, 0, os.SEEK_SET)
    text = os.read(fd, 4096).decode("utf-8", "replace")
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        return None
    return data if isinstance(data, dict) and "pid" in data else None


def _read_holder(fd: int) -> dict[str, Any]:
    """The holder recorded in the file; a new holder writes it just after locking, so wait a moment for it."""
    deadline = time.monotonic() + 0.2
    while (data := _read(fd)) is None and time.monotonic() < deadline:
        time.sleep(0.01)
    return data or {"pid": None, "host": None, "since": None}


def _lock_soon(fd: int, patience: float = 0.2) -> None:
    """Take the lock, retrying for ``patience`` seconds: :func:`holder` takes it for an instant to look.

    Raises:
        BlockingIOError: another process still holds it.
    """
    deadline = time.monotonic() + patience
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.01)


def describe(folder: Path, info: dict[str, Any]) -> str:
    """``<folder> is driven by pid 123 on host since 2026-...``."""
    return f"{folder} is driven by pid {info.get('pid')} on {info.get('host')} since {info.get('since')}"


class SessionLock:
    """The lock that makes one process the driver of a session folder.

    Args:
        folder: the session folder (must exist).
    """

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.path = SessionFolder(self.folder).lock_file
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        """Whether this object holds the lock."""
        return self._fd is not None

    def acquire(self) -> dict[str, Any]:
        """Take the lock and record this process as its holder.

        Returns:
            what was recorded: ``{"pid", "host", "since"}``.

        Raises:
            SessionError: another process holds it (the message names its pid, host and since when), or the
                folder cannot hold a lock file.
        """
        if self._fd is not None:
            raise SessionError(f"{self.folder}: this process holds the session lock already")
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise SessionError(f"{self.path}: cannot open the session lock ({exc.strerror})") from None
        try:
            _lock_soon(fd)
        except BlockingIOError:
            info = _read_holder(fd)
            os.close(fd)
            raise SessionError(
                describe(self.folder, info), f"wait for it to end, or stop it with: closedloop stop {self.folder}"
            ) from None
        except OSError as exc:
            os.close(fd)
            raise SessionError(f"{self.path}: cannot lock ({exc.strerror})") from None
        info = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "since": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(info).encode(), 0)
        self._fd = fd
        return info

    def release(self) -> None:
        """Let the lock go (harmless when it is not held)."""
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            os.ftruncate(fd, 0)  # no stale holder for the next reader; the lock is still ours while we do it
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def __enter__(self) -> SessionLock:
        self.acquire()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()


def holder(folder: Path) -> dict[str, Any] | None:
    """Who drives the session now: ``{"pid", "host", "since"}``, or None when no process holds its lock.

    Decided by trying the lock (and letting it go at once), so a process that was killed holds nothing.
    """
    path = SessionFolder(folder).lock_file
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _read_holder(fd)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def process_alive(pid: int, host: str | None = None) -> bool:
    """Whether process ``pid`` runs on this host; one on another ``host`` cannot be checked from here and is taken
    to run (as is one that runs under another account: it answers ``kill(pid, 0)`` with a permission error)."""
    if host is not None and host != socket.gethostname():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
