"""The loop as a LangGraph graph: propose -> review -> dispatch -> ingest -> decide, and the configuration that names
one session's thread in it (:func:`thread_config`).

Graph state (:class:`~agent.loop.state.LoopState`) holds small things only; the proposals, documents and
observations live in the :class:`~agent.store.SqlStore`. The nodes (:mod:`agent.loop.nodes`) are functions of the
state and of LangGraph's runtime context, a :class:`~agent.loop.context.LoopContext` given with every
``invoke(..., context=ctx)``: the graph is compiled once, over no session in particular. Every node is safe to
re-run after a crash: it looks in the store before doing anything twice, and a node that asks an operator
(``interrupt()``) does nothing with side effects before asking, but for the review's question, written to the audit
log once (keyed by its checkpoint): when the node runs again, on the answer or after a kill, it asks for the same
reason, whatever the runs that ended while it waited (ingested meanwhile, :func:`~agent.loop.nodes.collect_ended`)
would make the review policy say now.

At most once on the hardware: dispatch stores the intent to run a proposal before anything moves. A proposal
whose intent is stored but whose run is not is one the process died during; it is never run again by itself but
recorded as ``interrupted`` with whatever documents reached its ``runs/<id>.jsonl``.
"""

from __future__ import annotations

from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import END, START, StateGraph

from agent.loop.context import LoopContext
from agent.loop.nodes import after_decide, after_propose, after_review, decide, dispatch, ingest, propose, review
from agent.loop.state import LoopState


def build_graph(checkpointer: BaseCheckpointSaver) -> Any:
    """Compile the loop graph with ``checkpointer`` persisting its state; invoke it with ``context=`` a
    :class:`~agent.loop.context.LoopContext`."""
    builder = StateGraph(LoopState, context_schema=LoopContext)
    builder.add_node("propose", propose)
    builder.add_node("review", review)
    builder.add_node("dispatch", dispatch)
    builder.add_node("ingest", ingest)
    builder.add_node("decide", decide)
    builder.add_edge(START, "propose")
    builder.add_conditional_edges("propose", after_propose, ["review", "decide", "propose", "ingest"])
    builder.add_conditional_edges("review", after_review, ["dispatch", "decide"])
    builder.add_edge("dispatch", "ingest")
    builder.add_edge("ingest", "decide")
    builder.add_conditional_edges("decide", after_decide, ["propose", "dispatch", END])
    return builder.compile(checkpointer=checkpointer)


def thread_config(session_id: str, budget: int) -> dict[str, Any]:
    """LangGraph's run configuration for one session (its thread id), hidden behind one helper."""
    return {"configurable": {"thread_id": session_id}, "recursion_limit": 10_000 + 12 * budget}
