"""The loop's nodes, each a function of the graph state and the runtime context (LangGraph's ``Runtime``).

``propose`` -> ``review`` -> ``dispatch`` -> ``ingest`` -> ``decide``, with the routers that choose the next node.
Each node reads its parts from ``runtime.context`` (a :class:`~agent.loop.context.LoopContext`) and returns the
state it changes, so a test can run one alone on a context it builds. Every node is safe to re-run after a crash:
it looks in the store before doing anything twice.
"""

from agent.loop.nodes.decide import after_decide, decide
from agent.loop.nodes.dispatch import dispatch
from agent.loop.nodes.ingest import collect_dispatched, collect_ended, ingest
from agent.loop.nodes.propose import after_propose, propose
from agent.loop.nodes.review import after_review, review

__all__ = [
    "after_decide",
    "after_propose",
    "after_review",
    "collect_dispatched",
    "collect_ended",
    "decide",
    "dispatch",
    "ingest",
    "propose",
    "review",
]
