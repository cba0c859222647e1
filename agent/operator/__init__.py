"""What operators do to a running session, and how their requests reach it.

:class:`Operations` holds the rules (answer a checkpoint, pause, resume, stop, add points, change the budget) that the
terminal, the control channel and the web page all call. :class:`ControlServer` serves them over ZeroMQ (CurveZMQ
keys in the session folder, :func:`make_keys`); :class:`ControlClient` is what other terminals use. :func:`build`
makes a request from what an operator typed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from agent._lazy import lazy_exports

_EXPORTS = {
    "BACKLOG": "client",
    "ControlClient": "client",
    "read_control": "client",
    "subscribe": "client",
    "tell_refused": "client",
    "answer_at_terminal": "input",
    "answer_from_flags": "input",
    "build": "input",
    "describe_answer": "input",
    "parse_edits": "input",
    "unchecked_budget": "input",
    "client_curve": "keys",
    "make_keys": "keys",
    "Operations": "operations",
    "check_points": "operations",
    "ControlServer": "server",
    "MAX_FRAME_BYTES": "server",
}

__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

if TYPE_CHECKING:
    from agent.operator.client import BACKLOG, ControlClient, read_control, subscribe, tell_refused
    from agent.operator.input import (
        answer_at_terminal,
        answer_from_flags,
        build,
        describe_answer,
        parse_edits,
        unchecked_budget,
    )
    from agent.operator.keys import client_curve, make_keys
    from agent.operator.operations import Operations, check_points
    from agent.operator.server import MAX_FRAME_BYTES, ControlServer
