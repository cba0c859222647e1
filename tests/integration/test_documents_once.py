"""A run's documents are written once, by one writer, and ingested from memory; the store's copy serves a resume."""

from __future__ import annotations

from pathlib import Path

from agent.session import Session
from agent.store import read_run_file
from instruments.ingest import observation_from_documents
from tests.conftest import beamline_session


def test_ingest_takes_each_run_from_memory_and_the_store_and_file_hold_the_same_run(
    tmp_path: Path, write_session
) -> None:
    path = write_session(beamline_session(budget={"experiments": 3}))
    taken: list[str] = []
    with Session.create(path, tmp_path / "run") as session:
        lanes = session.lanes
        take = lanes.take_ended

        def spy(proposal_id: str):  # what ingest asks the lanes for, and whether they had it in memory
            found = take(proposal_id)
            if found is not None:
                taken.append(proposal_id)
            return found

        lanes.take_ended = spy  # type: ignore[method-assign]
        assert session.advance() is None
        observations = session.store.observations()
        assert len(observations) == 3
        assert sorted(taken) == sorted(o.proposal_id for o in observations)  # every run ingested from memory
        assert all(take(o.proposal_id) is None for o in observations)  # handed over once, nothing left behind
        for observation in observations:
            stored = session.store.run(observation.proposal_id)
            assert stored is not None
            documents, error = stored
            on_disk = read_run_file(tmp_path / "run" / "runs" / f"{observation.proposal_id}.jsonl")
            assert documents == on_disk  # the run file and the store's copy: the same documents
            proposal = session.store.proposals(ids=[observation.proposal_id])[0]
            again = observation_from_documents(session.spec, proposal, documents, error)
            assert again.values == observation.values  # the store's copy gives what memory gave
