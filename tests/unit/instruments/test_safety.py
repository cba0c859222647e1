"""The safety gate: no setpoint outside the hard limits passes, whatever the input."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from closedloop import SafetyError, spec_from_dict
from instruments import check_setpoints, gate
from tests.conftest import beamline_session

SPEC = spec_from_dict(beamline_session())


def test_inside_limits_passes_and_is_converted_to_floats() -> None:
    assert check_setpoints(SPEC, {"pitch1": 1, "pitch2": -2.0}) == {"pitch1": 1.0, "pitch2": -2.0}


@pytest.mark.parametrize(
    ("setpoints", "words"),
    [
        ({"pitch1": 2.5, "pitch2": 0.0}, "setpoints.pitch1: 2.5 is outside the hard limits [-2.0, 2.0]"),
        ({"pitch1": 0.0}, "setpoints.pitch2: missing"),
        ({"pitch1": 0.0, "pitch2": 0.0, "pitch3": 1.0}, "setpoints.pitch3: not a variable"),
        ({"pitch1": float("nan"), "pitch2": 0.0}, "setpoints.pitch1: nan is not a finite number"),
        ({"pitch1": "up", "pitch2": 0.0}, "setpoints.pitch1: 'up' is not a number"),
    ],
)
def test_refusals_name_the_field(setpoints: dict, words: str) -> None:
    with pytest.raises(SafetyError) as info:
        check_setpoints(SPEC, setpoints)
    assert words in str(info.value)


@given(
    p1=st.floats(allow_nan=True, allow_infinity=True),
    p2=st.floats(allow_nan=True, allow_infinity=True),
)
def test_nothing_outside_the_hard_limits_ever_passes(p1: float, p2: float) -> None:
    try:
        checked = check_setpoints(SPEC, {"pitch1": p1, "pitch2": p2})
    except SafetyError:
        inside = all(math.isfinite(v) and -2.0 <= v <= 2.0 for v in (p1, p2))
        assert not inside
    else:
        assert all(-2.0 <= v <= 2.0 for v in checked.values())


MIXED = spec_from_dict(
    beamline_session(
        variables={
            "pitch1": {"bounds": [-1.5, 1.5], "hard_limits": [-2.0, 2.0], "max_step": 0.5},
            "filter": {"values": [0.0, 0.1, 0.25]},
            "crystal": {"values": ["Si111", "Si311"]},
        },
        constants={"energy": {"value": 8.0}},
    )
)


def test_discrete_categorical_and_constants_are_checked() -> None:
    ok = check_setpoints(MIXED, {"pitch1": 0.1, "filter": 0.25, "crystal": "Si311"})
    assert ok == {"pitch1": 0.1, "filter": 0.25, "crystal": "Si311", "energy": 8.0}
    for bad, words in [
        ({"filter": 0.2}, "setpoints.filter: 0.2 is not one of"),
        ({"crystal": "Ge"}, "setpoints.crystal: 'Ge' is not one of"),
        ({"energy": 9.0}, "setpoints.energy: 9.0 differs from the constant 8.0"),
    ]:
        setpoints = {"pitch1": 0.1, "filter": 0.25, "crystal": "Si311", **bad}
        with pytest.raises(SafetyError, match=words):
            check_setpoints(MIXED, setpoints)


def test_max_step_is_measured_from_the_current_position() -> None:
    setpoints = {"pitch1": 1.0, "filter": 0.0, "crystal": "Si111"}
    assert check_setpoints(MIXED, setpoints, current={"pitch1": 0.6})["pitch1"] == 1.0
    with pytest.raises(SafetyError, match=r"setpoints.pitch1: a move of 0.9 from 0.1 exceeds max_step 0.5"):
        check_setpoints(MIXED, setpoints, current={"pitch1": 0.1})
    # without a known position there is nothing to measure a step from
    assert check_setpoints(MIXED, setpoints)["pitch1"] == 1.0


@given(start=st.floats(-2.0, 2.0), target=st.floats(-2.0, 2.0))
def test_no_move_longer_than_max_step_ever_passes(start: float, target: float) -> None:
    setpoints = {"pitch1": target, "filter": 0.0, "crystal": "Si111"}
    try:
        check_setpoints(MIXED, setpoints, current={"pitch1": start})
    except SafetyError:
        assert abs(target - start) > 0.5
    else:
        assert abs(target - start) <= 0.5 * (1 + 1e-9)


class Positions:
    """Stands in for an executor's positions() only (the gate asks nothing else); real executors are tested
    against the gate in tests/integration."""

    def __init__(self, where: dict[str, Any] | None) -> None:
        self.where = where
        self.asked = 0

    def positions(self) -> dict[str, Any]:
        self.asked += 1
        if self.where is None:
            raise AssertionError("positions() read although no variable has a max_step")
        return self.where


def test_the_gate_reads_positions_only_when_a_step_is_limited() -> None:
    assert gate(SPEC, {"pitch1": 1.0, "pitch2": 0.0}, Positions(None)) == {"pitch1": 1.0, "pitch2": 0.0}
    executor = Positions({"pitch1": np.float64(0.8), "filter": 0.0, "crystal": "Si111"})
    setpoints = {"pitch1": 1.2, "filter": 0.1, "crystal": "Si311"}
    assert gate(MIXED, setpoints, executor)["pitch1"] == 1.2 and executor.asked == 1
    with pytest.raises(SafetyError, match=r"a move of 1.2 from 0 exceeds max_step 0.5"):
        gate(MIXED, setpoints, Positions({"pitch1": np.int64(0)}))


@pytest.mark.parametrize("where", [{}, {"pitch1": float("nan")}, {"pitch1": None}, {"pitch1": True}])
def test_the_gate_refuses_a_limited_step_without_a_known_position(where: dict[str, Any]) -> None:
    with pytest.raises(SafetyError, match=r"setpoints.pitch1: no read-back position from device 'pitch1'"):
        gate(MIXED, {"pitch1": 0.1, "filter": 0.0, "crystal": "Si111"}, Positions(where))


@given(value=st.floats(-2.0, 2.0), low=st.floats(-3.0, 0.0), high=st.floats(0.0, 3.0))
def test_no_setpoint_outside_the_device_s_limits_ever_passes(value: float, low: float, high: float) -> None:
    limits = {"pitch1": (max(low, -2.0), min(high, 2.0)), "pitch2": (-2.0, 2.0)}
    try:
        check_setpoints(SPEC, {"pitch1": value, "pitch2": 0.0}, limits=limits)
    except SafetyError as exc:
        assert not limits["pitch1"][0] <= value <= limits["pitch1"][1]
        assert "outside the limits in force" in str(exc) and "device 'm1'" in str(exc)
    else:
        assert limits["pitch1"][0] <= value <= limits["pitch1"][1]
