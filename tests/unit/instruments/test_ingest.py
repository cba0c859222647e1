"""Ingestion: documents become observations; the primary stream and what was read back win; bad runs become
failures whose reason names the field, the reducer or the run's fault."""

from __future__ import annotations

from typing import Any

import pytest

from closedloop import ObservationStatus, Proposal, spec_from_dict
from instruments import observation_from_documents
from tests.conftest import beamline_session

SPEC = spec_from_dict(beamline_session())
PROPOSAL = Proposal(iteration=0, setpoints={"pitch1": 0.5, "pitch2": -0.5})
HERE = "tests.unit.instruments.test_ingest"

Docs = list[tuple[str, dict[str, Any]]]


def documents(
    exit_status: str = "success",
    events: int = 1,
    flux: Any = 812.0,
    data: dict[str, Any] | None = None,
    start: dict[str, Any] | None = None,
) -> Docs:
    """A run as the RunEngine emits it: start, the primary descriptor, events, stop."""
    row = {"det-flux": flux, "m1": 0.49, "m2": -0.51} if data is None else data
    docs: Docs = [("start", {"uid": "run-1", "time": 10.0, "proposal_id": PROPOSAL.id, **(start or {})})]
    keys = {key: {"dtype": "number", "shape": [], "source": "sim"} for key in row}
    docs.append(("descriptor", {"uid": "d-1", "name": "primary", "data_keys": keys, "hints": {}, "object_keys": {}}))
    for i in range(events):
        docs.append(("event", {"descriptor": "d-1", "seq_num": i + 1, "data": dict(row)}))
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
    assert observation.error == "run ended with 0 of 1 events in the primary stream"


def test_a_non_finite_objective_is_a_failure() -> None:
    observation = observation_from_documents(SPEC, PROPOSAL, documents(flux=float("nan")))
    assert observation.status == ObservationStatus.FAILED
    assert observation.error == "objectives.flux: 'det-flux' is nan, not a finite number"


def test_no_documents_keeps_the_executor_error() -> None:
    observation = observation_from_documents(SPEC, PROPOSAL, [], error="refused by the safety gate")
    assert observation.status == ObservationStatus.FAILED
    assert observation.error == "refused by the safety gate"
    assert observation.run_uid is None


def test_only_the_primary_stream_counts() -> None:
    docs = documents()
    stop = docs.pop()
    baseline_keys = {"m1": {"dtype": "number", "shape": [], "source": "sim"}}
    docs.append(("descriptor", {"uid": "d-2", "name": "baseline", "data_keys": baseline_keys}))
    docs.append(("event", {"descriptor": "d-2", "seq_num": 1, "data": {"m1": 1.9}}))  # the last event, not primary
    docs.append(stop)
    observation = observation_from_documents(SPEC, PROPOSAL, docs)
    assert observation.status == ObservationStatus.OK, observation.error
    assert observation.readbacks["pitch1"] == 0.49
    assert observation.values == {"flux": 812.0}


def test_event_pages_are_read_like_events() -> None:
    docs = documents(events=0)
    page = {"descriptor": "d-1", "seq_num": [1], "time": [10.1], "uid": ["e-1"], "filled": {}}
    page |= {"data": {"det-flux": [700.0], "m1": [0.4], "m2": [-0.4]}, "timestamps": {"det-flux": [10.1]}}
    page["timestamps"] |= {"m1": [10.1], "m2": [10.1]}
    docs.insert(2, ("event_page", page))
    observation = observation_from_documents(SPEC, PROPOSAL, docs)
    assert observation.status == ObservationStatus.OK, observation.error
    assert (observation.readbacks, observation.values) == ({"pitch1": 0.4, "pitch2": -0.4}, {"flux": 700.0})


def test_a_missing_readback_is_a_failure_naming_the_field_not_an_empty_reading() -> None:
    observation = observation_from_documents(SPEC, PROPOSAL, documents(data={"det-flux": 812.0, "m2": -0.51}))
    assert observation.status == ObservationStatus.FAILED
    assert observation.error == (
        "variables.pitch1.readback: no field 'm1' in the primary stream (its fields: det-flux, m2)"
    )
    assert observation.readbacks == {"pitch2": -0.51}


def test_a_missing_objective_field_is_a_failure_naming_it() -> None:
    observation = observation_from_documents(SPEC, PROPOSAL, documents(data={"m1": 0.5, "m2": -0.5}))
    assert observation.status == ObservationStatus.FAILED
    assert (observation.error or "").startswith("objectives.flux: no field 'det-flux' in the primary stream")


def test_child_devices_are_found_by_their_names_in_the_run() -> None:
    # the spec names the device by its path (stage.x) and ophyd-async names the field stage-x
    variables = {"pitch1": {"bounds": [-1, 1], "device": "stage.x"}, "pitch2": {"bounds": [-1, 1], "device": "y"}}
    spec = spec_from_dict(beamline_session(variables=variables))
    # the plan recorded which device moved each variable: y in the instrument's dict is the device "stage-y"
    md = {"closedloop": {"movers": {"pitch1": "stage-x", "pitch2": "stage-y"}}}
    docs = documents(data={"det-flux": 5.0, "stage-x": 0.25, "stage-y": -0.75}, start=md)
    observation = observation_from_documents(spec, PROPOSAL, docs)
    assert observation.status == ObservationStatus.OK, observation.error
    assert observation.readbacks == {"pitch1": 0.25, "pitch2": -0.75}


def test_a_device_name_finds_its_hinted_field() -> None:
    docs = documents(data={"det-flux": 5.0, "m1-user_readback": 0.3, "m1-user_setpoint": 0.31, "m2": 0.0})
    descriptor = docs[1][1]
    descriptor["hints"] = {"m1": {"fields": ["m1-user_readback"]}}
    descriptor["object_keys"] = {"m1": ["m1-user_readback", "m1-user_setpoint"]}
    observation = observation_from_documents(SPEC, PROPOSAL, docs)
    assert observation.readbacks["pitch1"] == 0.3


def test_the_scan_plan_expects_its_number_of_points() -> None:
    spec = spec_from_dict(beamline_session(plan={"name": "scan", "options": {"variable": "pitch1", "width": 1.0}}))
    assert spec.plan.expected_events == 11
    observation = observation_from_documents(spec, PROPOSAL, documents(events=10))
    assert observation.error == "run ended with 10 of 11 events in the primary stream"
    assert observation_from_documents(spec, PROPOSAL, documents(events=11)).status == ObservationStatus.OK


def test_a_factory_plan_is_held_to_the_num_points_it_declares() -> None:
    spec = spec_from_dict(beamline_session(plan={"factory": f"{HERE}:some_factory"}))
    short = observation_from_documents(spec, PROPOSAL, documents(events=2, start={"num_points": 3}))
    assert short.error == "run ended with 2 of 3 events in the primary stream"
    assert observation_from_documents(spec, PROPOSAL, documents(events=1)).status == ObservationStatus.OK


def test_a_run_for_another_proposal_or_two_runs_are_failures() -> None:
    other = observation_from_documents(SPEC, PROPOSAL, documents(start={"proposal_id": "p-other"}))
    assert other.error == f"the run's start document names proposal 'p-other', not '{PROPOSAL.id}' " + (
        "(a plan must pass md to its run)"
    )
    twice = documents()
    twice.insert(-1, ("start", {"uid": "run-2", "time": 10.1, "proposal_id": PROPOSAL.id}))
    assert observation_from_documents(SPEC, PROPOSAL, twice).error == "the plan made 2 runs; one proposal is one run"


def test_objectives_are_normalised_by_the_monitor_and_a_zero_monitor_fails() -> None:
    spec = spec_from_dict(beamline_session(plan={"monitor": "i0"}))
    docs = documents(data={"det-flux": 800.0, "i0": 4.0, "m1": 0.5, "m2": -0.5})
    assert observation_from_documents(spec, PROPOSAL, docs).values == {"flux": 200.0}
    docs = documents(data={"det-flux": 800.0, "i0": 0.0, "m1": 0.5, "m2": -0.5})
    observation = observation_from_documents(spec, PROPOSAL, docs)
    assert observation.error == "objectives.flux: 'det-flux' per monitor 'i0' is inf, not a finite number"


def test_an_objective_whose_reducer_raises_is_a_failure_naming_it() -> None:
    objectives = {"flux": {"field": "det-flux", "reducer": f"{HERE}:broken_reducer"}}
    spec = spec_from_dict(beamline_session(objectives=objectives))
    observation = observation_from_documents(spec, PROPOSAL, documents())
    assert observation.status == ObservationStatus.FAILED
    assert observation.error == (
        f"objectives.flux: reducer {HERE}:broken_reducer could not compute it: ZeroDivisionError: no counts in det-flux"
    )


def test_a_constraint_whose_reducer_cannot_compute_it_is_missing_and_the_run_ok() -> None:
    constraints = {"heat": {"field": "det-flux", "reducer": f"{HERE}:broken_reducer", "less_than": 5.0}}
    spec = spec_from_dict(beamline_session(constraints=constraints))
    observation = observation_from_documents(spec, PROPOSAL, documents())
    assert observation.status == ObservationStatus.OK and observation.ok
    assert list(observation.values) == ["flux"] and not spec.feasible(observation.values)
    assert observation.missing["heat"].reason == (
        f"reducer {HERE}:broken_reducer could not compute it: ZeroDivisionError: no counts in det-flux"
    )


def test_a_constraint_reducer_naming_a_field_the_stream_lacks_fails_the_run() -> None:
    constraints = {"heat": {"field": "det-nothing", "reducer": "instruments.reducers:mean", "less_than": 5.0}}
    spec = spec_from_dict(beamline_session(constraints=constraints))
    observation = observation_from_documents(spec, PROPOSAL, documents())
    assert observation.status == ObservationStatus.FAILED and not observation.missing
    assert (observation.error or "").startswith(
        "constraints.heat: reducer instruments.reducers:mean failed: InstrumentError: no field 'det-nothing'"
    )


def test_a_reducer_may_return_several_outputs_by_name() -> None:
    objectives = {"flux": {"reducer": f"{HERE}:two_outputs"}}
    constraints = {"heat": {"reducer": f"{HERE}:two_outputs", "less_than": 5.0}}
    spec = spec_from_dict(beamline_session(objectives=objectives, constraints=constraints))
    observation = observation_from_documents(spec, PROPOSAL, documents())
    assert observation.values == {"flux": 812.0 * 2, "heat": 3.0}


def test_an_unimportable_reducer_is_refused_when_the_spec_is_resolved() -> None:
    from closedloop import SpecError
    from closedloop.resolve import resolve

    spec = spec_from_dict(beamline_session(objectives={"flux": {"reducer": "instruments.reducers:nope"}}))
    with pytest.raises(SpecError, match=r"objectives\.flux\.reducer: 'instruments\.reducers:nope' does not import"):
        resolve(spec)


# -- used by import path above ------------------------------------------------------------------------------------


def some_factory(setpoints, movers, detectors, md):  # pragma: no cover - only its path is used
    yield from ()


def broken_reducer(documents, field, monitor=None):
    raise ZeroDivisionError(f"no counts in {field}")


def two_outputs(documents, field, monitor=None):
    event = next(doc for name, doc in documents if name == "event")
    return {"flux": event["data"]["det-flux"] * 2, "heat": 3.0}
