"""Records hold finite numbers only, so every record survives the JSON round trip the store puts it through."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from closedloop.records import Decision, Observation, ObservationStatus, Proposal, Verdict


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf, np.float64("nan"), np.float32("inf"), True])
def test_a_proposal_with_a_non_finite_setpoint_is_refused(bad: Any) -> None:
    with pytest.raises(ValidationError, match="setpoints") as info:
        Proposal(iteration=0, setpoints={"pitch1": 0.5, "pitch2": bad})
    assert "pitch2" in str(info.value)


@pytest.mark.parametrize("field", ["setpoints", "readbacks", "values"])
def test_an_observation_with_a_non_finite_number_is_refused(field: str) -> None:
    numbers: dict[str, Any] = {"setpoints": {"x": 0.1}, "readbacks": {"x": 0.1}, "values": {"f": 1.0}}
    numbers[field] = {"x": math.nan}
    with pytest.raises(ValidationError, match=field):
        Observation(proposal_id="p-1", status=ObservationStatus.OK, **numbers)


def test_durations_and_times_are_finite_too() -> None:
    with pytest.raises(ValidationError, match="finite"):
        Observation(proposal_id="p-1", status=ObservationStatus.FAILED, setpoints={}, duration=math.inf)
    with pytest.raises(ValidationError, match="finite"):
        Decision(verdict=Verdict.APPROVE, at=math.nan)


values = st.one_of(st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=8))
points = st.dictionaries(st.text(min_size=1, max_size=6), values, max_size=4)
anything = st.one_of(st.floats(), st.text(max_size=4), st.integers(-(2**53), 2**53))


@settings(deadline=None)
@given(setpoints=points)
def test_proposals_round_trip_through_json(setpoints: dict[str, Any]) -> None:
    proposal = Proposal(iteration=1, setpoints=setpoints, planner_id=3)
    assert Proposal.model_validate_json(proposal.model_dump_json()) == proposal


@settings(deadline=None)
@given(setpoints=points, readbacks=points, outputs=st.dictionaries(st.text(max_size=6), anything, max_size=4))
def test_an_observation_is_refused_or_round_trips(
    setpoints: dict[str, Any], readbacks: dict[str, Any], outputs: dict[str, Any]
) -> None:
    try:
        observation = Observation(
            proposal_id="p-1", status=ObservationStatus.OK, setpoints=setpoints, readbacks=readbacks, values=outputs
        )
    except ValidationError:
        assert any(not (isinstance(v, int | float) and math.isfinite(v)) for v in outputs.values())
        return
    assert all(math.isfinite(v) for v in observation.values.values())
    assert Observation.model_validate_json(observation.model_dump_json()) == observation
