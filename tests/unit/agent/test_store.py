"""The session store on a real SQLite file: queued operator points and the proposals that take them."""

from __future__ import annotations

from pathlib import Path

from agent.store.sqlite import SessionStore
from closedloop import Proposal


def test_queued_points_are_taken_once_with_the_proposals_that_take_them(tmp_path: Path) -> None:
    store = SessionStore(tmp_path / "store.sqlite")
    seqs = store.queue_points([{"a": 1.0, "b": "x"}, {"a": 2.0, "b": "y"}])
    assert [point for _, point in store.queued_points()] == [{"a": 1.0, "b": "x"}, {"a": 2.0, "b": "y"}]

    proposal = Proposal(iteration=0, setpoints={"a": 1.0, "b": "x"}, origin="operator")
    store.add_proposals([proposal], taken={seqs[0]: proposal.id})
    assert store.queued_points() == [(seqs[1], {"a": 2.0, "b": "y"})]
    # a second proposal cannot take a point already taken
    other = Proposal(iteration=1, setpoints={"a": 1.0, "b": "x"}, origin="operator")
    store.add_proposals([other], taken={seqs[0]: other.id})
    store.close()

    reopened = SessionStore(tmp_path / "store.sqlite")  # what another process (closedloop add) sees
    assert reopened.queued_points() == [(seqs[1], {"a": 2.0, "b": "y"})]
    assert [p.origin for p in reopened.proposals()] == ["operator", "operator"]
    taken = reopened._conn.execute("SELECT proposal_id FROM queued_points ORDER BY seq").fetchall()
    assert taken == [(proposal.id,), (None,)]
    reopened.close()
