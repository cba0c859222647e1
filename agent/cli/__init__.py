"""The ``closedloop`` command line: typer commands that parse, call and print.

``closedloop = agent.cli:main`` (and ``python -m agent.cli``) runs :data:`app`; the operator's commands are in
:mod:`agent.cli.control`, the report's in :mod:`agent.cli.report`, ``planners`` in :mod:`agent.cli.planners`,
``queueserver`` (:class:`LocalQueueServer`) in :mod:`agent.cli.queueserver`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from agent._lazy import lazy_exports

_EXPORTS = {
    "app": "commands",
    "main": "commands",
    "LocalQueueServer": "queueserver",
    "QueueServerAddresses": "queueserver",
}

__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

if TYPE_CHECKING:
    from agent.cli.commands import app, main
    from agent.cli.queueserver import LocalQueueServer, QueueServerAddresses
