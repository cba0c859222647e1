"""Error types shared by every part of closedloop.

Each error inherits :class:`ClosedLoopError` and the builtin it most resembles, and carries a ``hint``
saying what the user can do about it.
"""

from __future__ import annotations


class ClosedLoopError(Exception):
    """Base of every closedloop error.

    Args:
        message: what went wrong, in one line.
        hint: what to do about it (optional).
    """

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint

    def __str__(self) -> str:
        base = super().__str__()
        return f"{base} ({self.hint})" if self.hint else base


class SpecError(ClosedLoopError, ValueError):
    """A session file or spec is invalid; the message names the field."""


class SafetyError(ClosedLoopError, ValueError):
    """A setpoint would cross a hard limit; nothing was moved."""


class PlannerError(ClosedLoopError, ValueError):
    """A planner cannot handle the problem or the request."""


class PointsExhaustedError(PlannerError):
    """A planner that only replays given points (a grid, an operator's list) has none left to give."""


class InstrumentError(ClosedLoopError, RuntimeError):
    """The instrument could not be set up or could not run a plan."""


class SessionError(ClosedLoopError, RuntimeError):
    """A session folder is missing, corrupt or in a state that forbids the request."""


def one_line(text: str) -> str:
    """``text`` on one line: its lines stripped and joined with spaces, blank lines dropped."""
    return " ".join(line.strip() for line in text.splitlines() if line.strip())
