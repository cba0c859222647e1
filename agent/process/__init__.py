"""The running session process: :class:`SessionProcess` wires an open session to its operations, its control
channel, its :class:`Driver` and Ctrl-C, for the CLI (``closedloop run`` and ``resume``), the tests and the
benchmarks alike. The driver runs the loop and, at a checkpoint, waits for the first answer from any transport
(the terminal, read by a :class:`TerminalReader` and parsed by :func:`parse_terminal_answer`; the control channel;
the review policy's timeout).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from agent._lazy import lazy_exports

_EXPORTS = {
    "Driver": "driver",
    "TerminalReader": "driver",
    "parse_terminal_answer": "driver",
    "SessionProcess": "running",
}

__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

if TYPE_CHECKING:
    from agent.process.driver import Driver, TerminalReader, parse_terminal_answer
    from agent.process.running import SessionProcess
