"""Error types shared by every part of closedloop, and the exit codes of its command line.

Each error inherits :class:`ClosedLoopError` and the builtin it most resembles, carries a ``hint`` saying what the
user can do about it, and names the :class:`ExitCode` a command ends with when the error stops it: the same error
gives the same code from every command (one handler in the CLI reads it).
"""

from __future__ import annotations

from enum import IntEnum
from typing import ClassVar


class ExitCode(IntEnum):
    """The exit codes of every ``closedloop`` command (``docs/reference/exit-codes.md`` lists them)."""

    OK = 0
    """Success: the session finished its budget, or the command did what it was asked."""
    FAILED = 1
    """A failure while running, or no session process answers a command meant for one."""
    BAD_INPUT = 2
    """Bad input, or a request the session's state forbids: one line naming the field; nothing moved."""
    STOPPED = 3
    """Stopped by an operator."""


class ClosedLoopError(Exception):
    """Base of every closedloop error.

    Args:
        message: what went wrong, in one line.
        hint: what to do about it (optional).
    """

    exit_code: ClassVar[ExitCode] = ExitCode.FAILED
    """The code a command exits with when this error stops it."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint

    def __str__(self) -> str:
        base = super().__str__()
        return f"{base} ({self.hint})" if self.hint else base


class SpecError(ClosedLoopError, ValueError):
    """A session file or spec is invalid; the message names the field."""

    exit_code = ExitCode.BAD_INPUT


class SafetyError(ClosedLoopError, ValueError):
    """A setpoint would cross a hard limit; nothing was moved."""

    exit_code = ExitCode.BAD_INPUT


class PlannerError(ClosedLoopError, ValueError):
    """A planner cannot handle the problem or the request."""

    exit_code = ExitCode.BAD_INPUT


class PointsExhaustedError(PlannerError):
    """A planner that only replays given points (a grid, an operator's list) has none left to give."""


class InstrumentError(ClosedLoopError, RuntimeError):
    """The instrument could not be set up or could not run a plan."""

    exit_code = ExitCode.FAILED


class SessionError(ClosedLoopError, RuntimeError):
    """A session folder is missing, corrupt or in a state that forbids the request."""

    exit_code = ExitCode.BAD_INPUT


class RefusedError(SessionError):
    """The session refuses the request in its present state (no checkpoint waits, it was answered already, the
    session is not paused); the same request may succeed later."""

    exit_code = ExitCode.FAILED


class NotRunningError(SessionError):
    """No session process answers for a folder: none runs it, or it did not answer in time (or refused this client's
    key, which looks the same)."""

    exit_code = ExitCode.FAILED


def one_line(text: str) -> str:
    """``text`` on one line: its lines stripped and joined with spaces, blank lines dropped."""
    return " ".join(line.strip() for line in text.splitlines() if line.strip())
