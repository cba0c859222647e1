"""Ingestion: documents become observations; what was read back wins; bad runs become failures."""

from __future__ import annotations

from typing import Any

from closedloop import ObservationStatus, Proposal, spec_from_dict
from instruments import observation_from_documents
from tests.conftest import beamline_session

SPEC = spec_from_dict(beamline_session())
PROPOSAL = Proposal(iteration=0, setpoints={"pitch1": 0.5, "pitch2": -0.5})


def documents(exit_status: str = "success", events: int = 1, flux: Any = 812.0) -> list[tuple[str, dict]]:
    docs: list[tuple[str, dict]] = [("start", {"uid": "run-1", "time": 10.0, "proposal_id": PROPOSAL.id})]
    docs.append(("descriptor", {"uid": "d-1", "data_keys": {}}))
    for i in range(events):
        docs.append(("event", {"seq_num": i + 1, "data": {"det-flux": flux, "m1": 0.49, "m2": -0.51}}))
    docs.append(("stop", {"time": 10.25, "exit_status": exit_status, "reason": "because", "num_events": {}}))
    return docs


def test_a_good_run_gives_readbacks_not_setpoints() -> None:
    observation = observation_from_documents(SPEC, PROPOSAL, documents())
    assert observation.status == ObservationStatus.OK
    assert observation.readbacks == {"pitch1": 0.49, "pitch2": -0.51}
    assert observation.setpoints == {"pitch1": 0.5, "pitch2": -0.5}
    assert observation.values == {"flux": 812.0}
    assert observation.run_uid == "run-1"
    assert observation.duration == 0.25
    assert observation.as_result() == {"pitch1": 0.49, "pitch2": -0.51, "flux": 812.0}


def test_aborted_and_failed_runs_are_failed_observations() -> None:
    for status in ("abort", "fail"):
        observation = observation_from_documents(SPEC, PROPOSAL, documents(exit_status=status))
        assert observation.status == ObservationStatus.FAILED
        assert observation.error == f"run {status}: because"
        assert "flux" not in observation.as_result()


def test_a_short_success_is_a_failure() -> None:
    observation = observation_from_documents(SPEC, PROPOSAL, documents(events=0))
    assert observation.status == ObservationStatus.FAILED
    assert "0 of 1 events" in (observation.error or "")


def test_a_non_finite_objective_is_a_failure() -> None:
    observation = observation_from_documents(SPEC, PROPOSAL, documents(flux=float("nan")))
    assert observation.status == ObservationStatus.FAILED
    assert "det-flux" in (observation.error or "")


def test_no_documents_keeps_the_executor_error() -> None:
    observation = observation_from_documents(SPEC, PROPOSAL, [], error="refused by the safety gate")
    assert observation.status == ObservationStatus.FAILED
    assert observation.error == "refused by the safety gate"
    assert observation.run_uid is None
