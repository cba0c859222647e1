"""The reach of the hardware as pure functions: limits in force, the reachable VOCS, the route of a long move."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from closedloop import InstrumentError, SafetyError, spec_from_dict
from closedloop.reach import device_limits, limits_in_force, reachable_vocs, route
from tests.conftest import beamline_session

SPEC = spec_from_dict(
    beamline_session(
        variables={
            "pitch1": {"bounds": [-1.5, 1.5], "hard_limits": [-2.0, 2.0], "device": "m1"},
            "filter": {"values": [0.0, 0.5, 1.0, 2.0], "device": "f"},
            "crystal": {"values": ["Si111", "Si311"], "device": "c"},
        }
    )
)


def test_zero_or_unordered_device_limits_mean_none() -> None:
    assert device_limits(0, 0) is None
    assert device_limits(1.0, -1.0) is None
    assert device_limits(float("nan"), 1.0) is None
    assert device_limits(None, 1.0) is None
    assert device_limits(-1, 1) == (-1.0, 1.0)


def test_the_tighter_of_hard_and_device_limits_is_in_force() -> None:
    assert limits_in_force(SPEC, {"pitch1": (-1.0, 3.0)}) == {"pitch1": (-1.0, 2.0), "filter": (0.0, 2.0)}
    with pytest.raises(InstrumentError, match=r"variables.pitch1.hard_limits: \[-2.0, 2.0\] and the limits of device"):
        limits_in_force(SPEC, {"pitch1": (2.5, 3.0)})


def test_the_reachable_vocs_cuts_bounds_and_values_and_keeps_the_rest() -> None:
    vocs = reachable_vocs(SPEC, {"pitch1": (-1.0, 3.0), "filter": (0.2, 1.0)})
    assert list(vocs.variables["pitch1"].domain) == [-1.0, 1.5]
    assert vocs.variables["filter"].values == {0.5, 1.0}
    assert vocs.variables["crystal"].values == {"Si111", "Si311"}
    assert vocs.objectives == SPEC.vocs().objectives
    assert reachable_vocs(SPEC, {}) == SPEC.vocs()
    with pytest.raises(InstrumentError, match=r"variables.filter.values: .* lies outside the limits of device 'f'"):
        reachable_vocs(SPEC, {"filter": (1.2, 1.8)})
    with pytest.raises(InstrumentError, match=r"variables.pitch1.bounds: \[-1.5, 1.5\] lies outside"):
        reachable_vocs(SPEC, {"pitch1": (1.5, 3.0)})


@given(
    start=st.tuples(st.floats(-5, 5), st.floats(-5, 5)),
    target=st.tuples(st.floats(-5, 5), st.floats(-5, 5)),
    steps=st.tuples(st.floats(0.01, 3), st.floats(0.01, 3)),
)
def test_no_leg_of_a_route_is_longer_than_max_step(
    start: tuple[float, float], target: tuple[float, float], steps: tuple[float, float]
) -> None:
    names = ("a", "b")
    here, there = {"a": start[0], "b": start[1]}, {"a": target[0], "b": target[1]}
    waypoints = route(here, there, {"a": steps[0], "b": steps[1]})
    path = [here, *waypoints, there]
    for j, name in enumerate(names):
        legs = [abs(b[name] - a[name]) for a, b in zip(path, path[1:], strict=False)]
        assert all(leg <= steps[j] * (1 + 1e-9) + 1e-12 for leg in legs)
    # as few legs as the longest move needs
    needed = max(math.ceil(abs(target[j] - start[j]) / steps[j] - 1e-9) for j in range(2))
    assert len(waypoints) + 1 == max(needed, 1)


def test_a_route_leaves_out_what_it_cannot_step() -> None:
    assert route({"a": 0.0, "c": "Si311"}, {"a": 0.5, "c": "Si111", "d": 3.0}, {"a": 0.2}) == [
        pytest.approx({"a": 0.5 / 3}),
        pytest.approx({"a": 1.0 / 3}),
    ]
    assert route({"a": 0.0}, {"a": 0.2}, {"a": 0.2}) == []


@pytest.mark.parametrize("where", [{}, {"a": None}, {"a": float("nan")}, {"a": True}])
def test_a_route_without_a_known_position_is_refused(where: dict) -> None:
    with pytest.raises(SafetyError, match=r"setpoints.a: no read-back position"):
        route(where, {"a": 0.5}, {"a": 0.2})
