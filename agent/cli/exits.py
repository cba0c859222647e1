"""How a command ends: one handler turns what a command raises into one line on stderr and the error's exit code.

The codes are :class:`closedloop.errors.ExitCode`'s; each closedloop error carries its own (``exit_code``), so the
same error ends every command with the same code. Anything else a command raises is a failure while running
(:attr:`~closedloop.errors.ExitCode.FAILED`), printed as one line naming its type; no traceback is printed.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import NoReturn

import typer
from rich.console import Console
from rich.text import Text

from closedloop.control import printable
from closedloop.errors import ClosedLoopError, ExitCode

err = Console(stderr=True, highlight=False)


def exit_code(exc: BaseException) -> ExitCode:
    """The code a command ends with when ``exc`` stops it: a closedloop error's own, otherwise ``FAILED``."""
    return exc.exit_code if isinstance(exc, ClosedLoopError) else ExitCode.FAILED


def fail(message: str, code: ExitCode, as_json: bool = False) -> typer.Exit:
    """Print ``message`` as one error line on stderr, as it is (markup is not read, control characters are shown
    escaped), and with ``as_json`` also as ``{"ok": false, "error": message}`` on stdout.

    Returns:
        The :class:`typer.Exit` to raise, with ``code``.
    """
    if as_json:
        print(json.dumps({"ok": False, "error": message}))
    shown = "\n".join(printable(line) for line in message.split("\n"))
    err.print(Text("error: ", style="bold red") + Text(shown), soft_wrap=True)
    return typer.Exit(code)


def guarded(body: Callable[[], int], as_json: bool = False) -> NoReturn:
    """Run a command's ``body`` and exit with the code it returns.

    Raises:
        typer.Exit: always: with ``body``'s code; with the error's :func:`exit_code` after :func:`fail` printed it
            when ``body`` raised; as ``body`` raised it when that was a :class:`typer.Exit` already.
    """
    try:
        code = body()
    except typer.Exit:
        raise
    except Exception as exc:  # a planner or device error while running: the session is marked failed
        message = str(exc) if isinstance(exc, ClosedLoopError) else f"{type(exc).__name__}: {exc}"
        raise fail(message, exit_code(exc), as_json) from None
    raise typer.Exit(code)
