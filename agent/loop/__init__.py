"""The loop: propose -> review -> dispatch -> ingest -> decide, as a LangGraph graph over the session's parts.

:func:`build_graph` compiles it, its nodes (:mod:`agent.loop.nodes`) functions of the state and a
:class:`LoopContext` given at each ``invoke``; the instruments run as :class:`Lanes`; on resume the
planner and the loop's checks are rebuilt from the store (:func:`replay_into_planner`, :func:`checkpoint_gap`,
:func:`check_high_water`). The transports (``agent.cli``, ``agent.web``, ``agent.operator``) use only the names
exported here, never the modules behind them (an import-linter contract keeps it so).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from agent._lazy import lazy_exports

_EXPORTS = {
    "LoopContext": "context",
    "LoopState": "state",
    "collect_dispatched": "nodes",
    "collect_ended": "nodes",
    "build_graph": "graph",
    "thread_config": "graph",
    "build_planner": "planner",
    "Lane": "lanes",
    "Lanes": "lanes",
    "SeenPoints": "rebuild",
    "check_high_water": "rebuild",
    "checkpoint_gap": "rebuild",
    "replay_into_planner": "rebuild",
    "start_iteration": "rebuild",
    "Checkpoint": "review",
    "checkpoint_info": "review",
    "shown_predictions": "review",
    "variables_info": "review",
}

__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

if TYPE_CHECKING:
    from agent.loop.context import LoopContext
    from agent.loop.graph import build_graph, thread_config
    from agent.loop.lanes import Lane, Lanes
    from agent.loop.nodes import collect_dispatched, collect_ended
    from agent.loop.planner import build_planner
    from agent.loop.rebuild import (
        SeenPoints,
        check_high_water,
        checkpoint_gap,
        replay_into_planner,
        start_iteration,
    )
    from agent.loop.review import Checkpoint, checkpoint_info, shown_predictions, variables_info
    from agent.loop.state import LoopState
