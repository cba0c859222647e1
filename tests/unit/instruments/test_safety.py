"""The safety gate: no setpoint outside the hard limits passes, whatever the input."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from closedloop import SafetyError, spec_from_dict
from instruments import check_setpoints
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
