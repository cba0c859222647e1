"""No way past a hard limit through the session file: one device one input, usable names, finite numbers only."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from closedloop import SessionSpec, SpecError, spec_from_dict
from closedloop.problem import ConstantSpec, ConstraintSpec, VariableSpec, name_problem
from tests.conftest import beamline_session

NAN, INF = float("nan"), float("inf")


def refusal(**overrides: Any) -> str:
    """The one-line message a session with ``overrides`` is refused with."""
    with pytest.raises(SpecError) as info:
        spec_from_dict(beamline_session(**overrides))
    message = str(info.value)
    assert "\n" not in message
    return message


def pitches(pitch1: dict[str, Any], pitch2: dict[str, Any]) -> dict[str, Any]:
    return {"pitch1": {"bounds": [-1.5, 1.5], **pitch1}, "pitch2": {"bounds": [-1.5, 1.5], **pitch2}}


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (
            {"variables": pitches({"device": "m1"}, {"device": "m1"})},
            "variables.pitch2.device: device 'm1' is already moved by variables.pitch1",
        ),
        (  # a variable whose device defaults to its own name
            {"variables": {"m1": {"bounds": [-1, 1]}, "pitch2": {"bounds": [-1, 1], "device": "m1"}}},
            "variables.pitch2.device: device 'm1' is already moved by variables.m1",
        ),
        (
            {"variables": {"pitch2": {"bounds": [-1, 1], "device": "m1"}, "m1": {"bounds": [-1, 1]}}},
            "variables.m1.device: device 'm1' (by default",
        ),
        (
            {"constants": {"energy": {"value": 1.0, "device": "m2"}}},
            "constants.energy.device: device 'm2' is already moved by variables.pitch2",
        ),
        (
            {"constants": {"a": {"value": 1.0, "device": "dcm"}, "b": {"value": 2.0, "device": "dcm"}}},
            "constants.b.device: device 'dcm' is already moved by constants.a",
        ),
        (
            {"variables": pitches({"device": "m1"}, {"device": "m2", "readback": "m1"})},
            "variables.pitch2.readback: 'm1' is already read back by variables.pitch1",
        ),
        (
            {"variables": pitches({"device": "m1", "readback": "m1-rb"}, {"device": "m2", "readback": "m1"})},
            "variables.pitch2.readback: 'm1' is the device of variables.pitch1",
        ),
    ],
)
def test_a_device_moved_by_two_inputs_is_refused(overrides: dict[str, Any], expected: str) -> None:
    assert expected in refusal(**overrides)


def test_a_constant_without_a_device_may_share_a_variables_name_space_only_once() -> None:
    spec = spec_from_dict(beamline_session(constants={"energy": {"value": 8.0}, "mode": {"value": "fast"}}))
    assert spec.constants["energy"].device is None
    assert "constants.pitch1: the name 'pitch1' is already used in variables" in refusal(
        constants={"pitch1": {"value": 1.0}}
    )
    assert "constraints.flux: the name 'flux' is already used in objectives" in refusal(
        constraints={"flux": {"less_than": 1.0}}
    )


@pytest.mark.parametrize(
    ("section", "name", "words"),
    [
        ("variables", "_id", "variables.'_id': the name '_id' is reserved"),
        ("variables", "_step", "variables.'_step': the name '_step' is reserved"),
        ("constants", "_id", "constants.'_id': the name '_id' is reserved"),
        ("objectives", "_id", "objectives.'_id': the name '_id' is reserved"),
        ("constraints", "_id", "constraints.'_id': the name '_id' is reserved"),
        ("variables", "", "variables.'': a name cannot be empty"),
        ("variables", "   ", "variables.'   ': a name cannot be empty"),
        ("variables", "pitch 1", "variables.'pitch 1': 'pitch 1' is not a usable name"),
        ("variables", "x=1", "variables.'x=1': 'x=1' is not a usable name"),
        ("objectives", "fl\nux", "objectives.'fl\\nux': 'fl\\nux' is not a usable name"),
        ("variables", "1x", "variables.'1x': '1x' is not a usable name"),
        ("variables", "x" * 101, "is at most 100 characters"),
    ],
)
def test_reserved_and_unusable_names_are_refused(section: str, name: str, words: str) -> None:
    entry = {
        "variables": {"bounds": [0.0, 1.0], "device": "m9"},
        "constants": {"value": 1.0},
        "objectives": {"direction": "minimize"},
        "constraints": {"less_than": 1.0},
    }[section]
    data = beamline_session()
    data[section] = {**data.get(section, {}), name: entry}
    with pytest.raises(SpecError) as info:
        spec_from_dict(data)
    assert words in str(info.value)
    assert "\n" not in str(info.value)


def test_names_people_use_are_accepted() -> None:
    for name in ["pitch1", "m1.pitch", "det-flux", "x_2", "θ", "Energy"]:
        assert name_problem(name) is None, name


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"variables": {"x": {"bounds": [-1.0, NAN], "device": "m1"}}}, "variables.x.bounds.1"),
        ({"variables": {"x": {"bounds": [-1.0, 1.0], "hard_limits": [-INF, INF]}}}, "variables.x.hard_limits.0"),
        ({"variables": {"x": {"values": [0.1, NAN]}}}, "variables.x.values.1"),
        ({"variables": {"x": {"bounds": [-1.0, 1.0], "max_step": INF}}}, "variables.x.max_step"),
        ({"constants": {"e": {"value": NAN}}}, "constants.e.value"),
        ({"constants": {"e": {"value": 1.0, "hard_limits": [0.0, INF]}}}, "constants.e.hard_limits.1"),
        ({"constraints": {"c": {"less_than": NAN}}}, "constraints.c.less_than"),
        ({"constraints": {"c": {"greater_than": -INF}}}, "constraints.c.greater_than"),
        ({"planner": {"name": "sobol", "options": {"a": {"b": [1.0, INF]}}}}, "planner.options.a.b.1"),
        ({"instrument": {"simulator": "beamline", "options": {"noise": NAN}}}, "instrument.options.noise"),
    ],
)
def test_nan_or_infinity_anywhere_is_refused_naming_the_field(overrides: dict[str, Any], field: str) -> None:
    assert f"{field}: not a finite number" in refusal(**overrides)


def test_nan_is_refused_when_specs_are_built_in_python_too() -> None:
    for build in (
        lambda: VariableSpec(bounds=(0.0, NAN)),
        lambda: VariableSpec(bounds=(0.0, 1.0), max_step=INF),
        lambda: ConstantSpec(value=NAN),
        lambda: ConstraintSpec(less_than=NAN),
    ):
        with pytest.raises(ValueError, match="finite number"):
            build()


@pytest.mark.parametrize("seed", [10**23, 1e23, "1e23", -1, 2**32, True, 3.0, "3"])
def test_seed_must_be_an_integer_in_range(seed: Any) -> None:
    assert "seed: must be an integer from 0 to 4294967295" in refusal(seed=seed)


def test_seed_extremes_are_accepted() -> None:
    assert spec_from_dict(beamline_session(seed=0)).seed == 0
    assert spec_from_dict(beamline_session(seed=2**32 - 1)).seed == 2**32 - 1
    assert spec_from_dict(beamline_session(seed=None)).seed is None


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"variables": {"x": {"bounds": [0, 1], "device": ""}}}, "variables.x.device: '' is not a device"),
        ({"variables": {"x": {"bounds": [0, 1], "device": "m 1"}}}, "variables.x.device: 'm 1' is not a device"),
        ({"variables": {"x": {"bounds": [0, 1], "readback": "\t"}}}, "variables.x.readback: '\\t' is not"),
        ({"objectives": {"flux": {"field": "det\nflux"}}}, "objectives.flux.field: 'det\\nflux' is not"),
        ({"name": "two\nlines"}, "name: must be one line"),
        ({"budget": {"experiments": 1e30}}, "budget.experiments: Input should be a valid integer"),
        ({"planner": {"name": "sobol", "batch_size": 10**9}}, "planner.batch_size: Input should be less than"),
    ],
)
def test_device_and_field_names_and_sizes_are_checked(overrides: dict[str, Any], expected: str) -> None:
    assert expected in refusal(**overrides)


def test_failure_policy_defaults_and_refusals() -> None:
    spec = spec_from_dict(beamline_session())
    assert (spec.failures.max_consecutive, spec.failures.then) == (3, "pause")
    spec = spec_from_dict(beamline_session(failures={"max_consecutive": 5, "then": "stop"}))
    assert (spec.failures.max_consecutive, spec.failures.then) == (5, "stop")
    assert "failures.max_consecutive: Input should be greater than or equal to 1" in refusal(
        failures={"max_consecutive": 0}
    )
    assert "failures.then: Input should be 'pause' or 'stop'" in refusal(failures={"then": "explode"})
    assert "failures.retries: unknown key" in refusal(failures={"retries": 2})


# property: whatever numbers and devices a file holds, an accepted spec has only finite numbers and one input a device

finite = st.floats(-10.0, 10.0)
# about one number in forty is NaN or infinite, so that some sessions are clean and some are poisoned
numbers = st.integers(0, 39).flatmap(lambda k: st.sampled_from([NAN, INF, -INF]) if k == 0 else finite)
devices = st.one_of(st.none(), st.sampled_from(["m1", "m2", "m3", "dcm"]))


@st.composite
def raw_sessions(draw: st.DrawFn) -> dict[str, Any]:
    variables = {}
    for name in draw(st.lists(st.sampled_from(["a", "b", "c", "m1", "m2"]), min_size=1, max_size=4, unique=True)):
        low = draw(numbers)
        high = low + draw(st.floats(0.01, 5.0)) if draw(st.integers(0, 9)) else draw(numbers)
        entry: dict[str, Any] = {"bounds": [low, high], "device": draw(devices)}
        if draw(st.booleans()):
            entry["hard_limits"] = [low - abs(draw(numbers)), high + abs(draw(numbers))]
        if draw(st.booleans()):
            entry["max_step"] = abs(draw(numbers)) + 0.1
        variables[name] = {k: v for k, v in entry.items() if v is not None}
    constants = {
        name: {"value": draw(numbers), **({"device": d} if (d := draw(devices)) else {})}
        for name in draw(st.lists(st.sampled_from(["e", "g"]), max_size=2, unique=True))
    }
    constraints = {"heat": {"less_than": draw(numbers)}} if draw(st.booleans()) else {}
    options = {"noise": abs(draw(numbers)), "nested": [draw(numbers)]}
    return beamline_session(
        variables=variables,
        constants=constants,
        constraints=constraints,
        planner={"name": "sobol", "options": {}},
        instrument={"simulator": "beamline", "options": options},
    )


def _numbers_in(value: Any) -> list[float]:
    if isinstance(value, dict):
        return [n for item in value.values() for n in _numbers_in(item)]
    if isinstance(value, list | tuple):
        return [n for item in value for n in _numbers_in(item)]
    return [float(value)] if isinstance(value, int | float) and not isinstance(value, bool) else []


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=raw_sessions())
def test_no_accepted_spec_has_a_non_finite_number_or_a_device_moved_twice(data: dict[str, Any]) -> None:
    try:
        spec = spec_from_dict(data)
    except SpecError as exc:
        assert "\n" not in str(exc)
        return
    assert all(math.isfinite(n) for n in _numbers_in(spec.model_dump()))
    moved = [spec.device_of(name) for name in spec.variables]
    moved += [c.device for c in spec.constants.values() if c.device is not None]
    assert len(moved) == len(set(moved))
    assert SessionSpec.model_validate_json(spec.model_dump_json()) == spec
