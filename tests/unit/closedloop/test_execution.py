"""What an executor takes (closedloop.execution): one instrument's part of a session spec, nothing more."""

from __future__ import annotations

import dataclasses

import pytest

from closedloop.execution import ExecutorArgs, executor_args
from closedloop.spec import spec_from_dict
from tests.conftest import beamline_session


def two_instruments(**overrides: object) -> dict[str, object]:
    data = beamline_session(**overrides)
    section = data.pop("instrument")
    data["instruments"] = [dict(section, name="hutch-a"), dict(section, name="hutch-b", run_timeout=7.0)]
    return data


def test_each_instrument_gets_its_own_section_and_seed() -> None:
    spec = spec_from_dict(two_instruments(seed=2**32 - 1))
    first, second = executor_args(spec, "s-1", 0), executor_args(spec, "s-1", 1)
    assert (first.instrument.name, second.instrument.name) == ("hutch-a", "hutch-b")
    assert second.instrument.run_timeout == 7.0 and first.instrument.run_timeout is None
    # simulated copies of one instrument get noise of their own, the seeds in range
    assert (first.seed, second.seed) == (2**32 - 1, 0)
    assert first.session_id == second.session_id == "s-1"
    with pytest.raises(IndexError):
        executor_args(spec, "s-1", 2)


def test_the_problem_plan_metadata_and_suspenders_are_the_sessions() -> None:
    data = beamline_session(
        metadata={"beamline": "BL-7"},
        suspenders=[{"signal": "ring.current", "below": 100.0}],
        constants={"gap": {"value": 3.0, "device": "undulator"}},
        constraints={"heat": {"field": "det-heat", "less_than": 2.0}},
        plan={"options": {"num": 3}},
    )
    spec = spec_from_dict(data)
    args = executor_args(spec, "s-2")
    assert args.instrument is spec.instrument and args.plan is spec.plan and args.seed == 3
    assert dict(args.metadata) == {"beamline": "BL-7"}
    assert [s.signal for s in args.suspenders] == ["ring.current"]
    assert list(args.problem.variables) == ["pitch1", "pitch2"] and list(args.problem.constants) == ["gap"]
    assert args.problem.outputs == spec.outputs == ["flux", "heat"]
    # nothing of the agent's: the budget, the planner, the review policy, the store
    assert {f.name for f in dataclasses.fields(ExecutorArgs)} == {
        "problem",
        "instrument",
        "plan",
        "session_id",
        "metadata",
        "seed",
        "suspenders",
    }


def test_the_problem_names_devices_and_fields_as_the_spec_does() -> None:
    data = beamline_session()
    data["variables"]["pitch2"]["readback"] = "m2-readback"
    data["variables"]["pitch3"] = {"bounds": [0, 1]}
    data["objectives"]["area"] = {"direction": "minimize"}
    spec = spec_from_dict(data)
    problem = spec.problem()
    for name in spec.variables:
        assert (problem.device_of(name), problem.readback_of(name)) == (spec.device_of(name), spec.readback_of(name))
    assert (problem.device_of("pitch1"), problem.readback_of("pitch2"), problem.device_of("pitch3")) == (
        "m1",
        "m2-readback",
        "pitch3",
    )
    assert (problem.field_of("flux"), problem.field_of("area")) == ("det-flux", "area")
    with pytest.raises(KeyError):
        problem.field_of("pitch1")
