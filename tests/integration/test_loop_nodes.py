"""Each node of the loop run alone, on the context of a real session (store, planner, RunEngine, devices).

The graph never runs here: a node is called with graph state and LangGraph's ``Runtime`` holding the session's
:class:`~agent.loop.context.LoopContext`, as LangGraph calls it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from langgraph.graph import END
from langgraph.runtime import Runtime

from agent.loop.nodes import after_decide, after_propose, after_review, decide, dispatch, ingest, propose, review
from agent.session import Session
from closedloop import ObservationStatus, ProposalStatus
from tests.conftest import beamline_session

REPEATS = "tests.integration.planners_for_tests:Repeats"


@pytest.fixture
def session(tmp_path: Path, write_session) -> Iterator[Session]:
    path = write_session(beamline_session(planner={"name": REPEATS}, budget={"experiments": 3}))
    opened = Session.create(path, tmp_path / "run")
    yield opened
    opened.close()


def test_one_round_through_the_nodes_by_hand(session: Session) -> None:
    runtime = Runtime(context=session.context)
    state = propose({"iteration": 0}, runtime)
    (pid,) = state["proposal_ids"]
    assert session.store.proposals(ids=[pid])[0].status == ProposalStatus.PROPOSED
    assert propose({"iteration": 0}, runtime)["proposal_ids"] == [pid]  # run again: the same proposal, none new
    assert after_propose(state) == "review"

    state |= review(state, runtime)  # review policy never: approved by policy
    assert state["verdict"] == "approve" and after_review(state) == "dispatch"
    state |= dispatch(state, runtime)
    assert state["in_flight"] == [pid] and session.store.was_dispatched(pid)
    again = dispatch({"proposal_ids": [pid]}, runtime)  # run again (after a kill): nothing moves twice
    assert again["in_flight"] == [pid] and session.store.unobserved_dispatches() == [pid]

    state |= ingest(state, runtime)
    assert state["in_flight"] == [] and state["observed"] == 1
    assert session.store.observation(pid).status == ObservationStatus.OK

    state |= decide(state, runtime)
    assert state["iteration"] == 1 and after_decide(state) == "propose"


def test_propose_never_stores_a_point_twice(session: Session) -> None:
    runtime = Runtime(context=session.context)
    made = []
    for iteration in range(3):
        made += propose({"iteration": iteration}, runtime)["proposal_ids"]
    points = [tuple(p.setpoints.values()) for p in session.store.proposals(ids=made)]
    assert len(points) == 3 and points[:2] == [(0.1, 0.2), (0.3, -0.4)]
    assert len(set(points)) == 3  # the generator's third point repeated its first: never proposed again


def test_decide_ends_on_a_stop_request_and_on_the_budget(session: Session) -> None:
    runtime = Runtime(context=session.context)
    session.context.requests.stop = True
    state = decide({"iteration": 4}, runtime)
    assert state["outcome"] == "stopped" and after_decide(state) == END
    session.context.requests.stop = False
    session.store.set_meta(budget=0)
    assert decide({"iteration": 4}, runtime)["outcome"] == "finished"
