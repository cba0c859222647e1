"""Starting a session process and taking one over: the folder's lock, a start in the background, the default folder,
and cleaning up after a start that failed before anything ran.
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from agent.store import SessionFolder, holds_session, recorded_store
from closedloop.errors import ExitCode, SessionError


def slug(name: str) -> str:
    """``name`` as one safe folder-name part: letters, digits, ``.``, ``_`` and ``-`` only, never ``.`` or ``..``."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip(".-")[:64].strip(".-")
    return slug or "session"


def take_lock(folder: Path, new: bool) -> Any:
    """Take the session folder's lock for this process (made first for a new session).

    Raises:
        SessionError: another process drives the session (named: pid, host, since).
    """
    from agent.store import SessionLock

    if new:
        if holds_session(folder):
            raise SessionError(f"{folder} already holds a session", f"use: closedloop resume {folder}")
        folder.mkdir(parents=True, exist_ok=True)
    elif not SessionFolder(folder).store_file.exists() and not SessionFolder(folder).session_file.exists():
        raise SessionError(f"{folder} holds no session", "start one with: closedloop run SESSION.yaml")
    lock = SessionLock(folder)
    lock.acquire()
    record = None if new else recorded_store(folder)
    if record is None:
        return lock
    from agent.store import DriverLock

    driver = DriverLock(record["url"], record["session_id"])  # other hosts' folders for it have other locks
    try:
        driver.acquire()
    except BaseException:
        lock.release()
        raise
    return both(lock, driver)


def both(*locks: Any) -> Any:
    """One object whose ``release()`` lets every lock go (the last taken first)."""

    class Both:
        def release(self) -> None:
            for lock in reversed(locks):
                lock.release()

    return Both()


def resume_through_channel(folder: Path, as_json: bool) -> int:
    """A process runs the session: resume it if it is paused, else refuse naming the process."""
    from agent.cli.control import report, send
    from agent.operator import build
    from agent.store import holder

    who = holder(folder)
    if who is None:  # a folder attached to a session run elsewhere: who runs it, as it published
        from agent.operator import read_control

        who = read_control(folder)
    reply = send(folder, build("resume", None, "channel"))
    if not reply.ok and reply.code == "refused":
        since = who.get("since", "?")
        raise SessionError(
            f"{folder} is driven by pid {who.get('pid')} on {who.get('host')} since {since}, and is not paused",
            f"watch it with: closedloop watch {folder}",
        )
    return report(reply, as_json, "resumed")


def start_detached(args: list[str], folder: Path, yes: bool, threads: int) -> int:
    """Start the session process in the background, its output in the folder's session.log; return once its control
    channel is up (or it has ended).

    Returns:
        0 once the session runs in the background or has ended having started; a process that ended before its
        session started (at state ``new``, whatever its exit code: a factory may call ``os._exit(0)``) is a failed
        start: its exit code (1 if it said 0) after one line on stderr with the end of its output, and a folder
        this start made is removed when nothing ran in it.
    """
    where = SessionFolder(folder)
    made = Made(folder) if args[0] == "run" and not holds_session(folder) else None
    folder.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "agent.cli", *args, "--threads", str(threads)] + (["--yes"] if yes else [])
    with where.log_file.open("a") as log:
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
    deadline = time.monotonic() + 120
    while not where.control_file.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    code = process.poll()
    started = _store_state(folder) not in (None, "new") or where.in_postgres  # PostgreSQL: the code
    if code is not None and (code != 0 or not started):
        tail = where.log_file.read_text(errors="replace").strip().splitlines()[-1:]
        said = " ".join(tail) or "no output"
        if made is not None and made.ran_nothing():
            made.remove()
        when = "" if started else " before the session started"
        print(f"error: the session process ended with exit {code}{when}: {said}", file=sys.stderr)
        return code or ExitCode.FAILED
    if code is not None:
        print(f"the session process has already ended (exit 0); see: closedloop status {folder}")
        return ExitCode.OK
    print(f"session running in the background: pid {process.pid}, folder {folder}")
    print(f"watch it with: closedloop watch {folder}; its output is in {where.log_file}")
    return ExitCode.OK


def _store_state(folder: Path) -> str | None:
    """The state the folder's SQLite store records, or None (no store, or none readable yet)."""
    try:
        uri = SessionFolder(folder).store_file.resolve().as_uri() + "?mode=ro"
        with contextlib.closing(sqlite3.connect(uri, uri=True)) as conn:
            row = conn.execute("SELECT value FROM meta WHERE key = 'state'").fetchone()
    except sqlite3.Error:
        return None
    return json.loads(row[0]) if row else None


class Made:
    """What a failed start must remove: the folder and its parents it created, or, in a folder that was there
    before (which is never removed), only the entries it added.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.new_parents = [p for p in [folder, *folder.parents] if not p.exists()]
        self.had = set(folder.iterdir()) if folder.is_dir() else None

    def ran_nothing(self) -> bool:
        """True when no run started: no run documents and no observation in the store."""
        runs = SessionFolder(self.folder).runs
        if runs.is_dir() and any(runs.iterdir()):
            return False
        try:
            uri = SessionFolder(self.folder).store_file.resolve().as_uri() + "?mode=ro"
            with contextlib.closing(sqlite3.connect(uri, uri=True)) as conn:
                (count,) = conn.execute("SELECT COUNT(*) FROM observations").fetchone()
        except sqlite3.Error:
            return True  # no store, or one without observations yet
        return int(count) == 0

    def remove(self) -> None:
        """Remove what the failed start created."""
        if self.had is None:
            shutil.rmtree(self.folder, ignore_errors=True)
            for parent in self.new_parents[1:]:
                with contextlib.suppress(OSError):
                    parent.rmdir()  # only if empty
        elif self.folder.is_dir():
            for entry in set(self.folder.iterdir()) - self.had:
                if entry.is_dir() and not entry.is_symlink():
                    shutil.rmtree(entry, ignore_errors=True)
                else:
                    entry.unlink(missing_ok=True)
