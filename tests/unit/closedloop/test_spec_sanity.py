"""Mistakes a session file can be refused for at load, before any device is made: numbers no device position can
be, and names that would break every run's start document."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from closedloop import SpecError, spec_from_dict
from closedloop.problem import MAX_MAGNITUDE
from closedloop.spec import folder_path
from tests.conftest import beamline_session


def refusal(**overrides: Any) -> str:
    with pytest.raises(SpecError) as info:
        spec_from_dict(beamline_session(**overrides))
    message = str(info.value)
    assert "\n" not in message
    return message


def pitch1(**changes: Any) -> dict[str, Any]:
    return {
        "pitch1": {"bounds": [-1.5, 1.5], "device": "m1", **changes},
        "pitch2": {"bounds": [-1.5, 1.5], "device": "m2"},
    }


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"variables": pitch1(bounds=[-1e308, 1e308])}, "variables.pitch1.bounds: a limit of -1e+308"),
        ({"variables": pitch1(bounds=[0.0, 1e16])}, "variables.pitch1.bounds: a limit of 1e+16"),
        ({"variables": pitch1(hard_limits=[-1e300, 2.0])}, "variables.pitch1.hard_limits"),
        ({"variables": pitch1(max_step=1e200)}, "variables.pitch1.max_step"),
        ({"variables": pitch1(bounds=None, values=[0.0, 1e20])}, "variables.pitch1.values: a value of 1e+20"),
        ({"constants": {"energy": {"value": -1e100}}}, "constants.energy: a value of -1e+100"),
        ({"constants": {"energy": {"value": 1.0, "hard_limits": [0, 1e99]}}}, "constants.energy: a value of 1e+99"),
    ],
)
def test_numbers_no_device_position_can_be_are_refused(overrides: dict[str, Any], field: str) -> None:
    message = refusal(**overrides)
    assert field in message and "beyond" in message


def test_large_but_real_positions_load() -> None:
    spec = spec_from_dict(beamline_session(variables=pitch1(bounds=[-MAX_MAGNITUDE, MAX_MAGNITUDE])))
    assert spec.variables["pitch1"].bounds == (-MAX_MAGNITUDE, MAX_MAGNITUDE)


def test_a_dot_in_a_variables_or_constants_name_is_refused_naming_it() -> None:
    variables = {"m1.x": {"bounds": [-1.0, 1.0], "device": "m1"}, "pitch2": {"bounds": [-1.0, 1.0], "device": "m2"}}
    message = refusal(variables=variables)
    assert message.startswith("session: variables.'m1.x': ") and "cannot hold '.'" in message
    message = refusal(constants={"mono.energy": {"value": 8.0}})
    assert message.startswith("session: constants.'mono.energy': ")
    # objectives and constraints keep their dots: their names key no start document
    spec = spec_from_dict(beamline_session(objectives={"det.flux": {"field": "det-flux"}}))
    assert list(spec.objectives) == ["det.flux"]


@pytest.mark.parametrize(
    ("folder", "why"),
    [("", "must be a path"), ("  ", "must be a path"), ("run\n1", "must be a path"), ("~nobody-here/x", "no home")],
)
def test_a_folder_that_is_no_path_is_refused(folder: str, why: str) -> None:
    message = refusal(folder=folder)
    assert message.startswith("session: folder: ") and why in message


def test_folder_is_absolute_as_given_home_expanded_relative_from_the_files_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    session = tmp_path / "beamtime" / "session.yaml"
    assert folder_path(session, "/data/run1") == Path("/data/run1")
    assert folder_path(session, "~/run1") == tmp_path / "home" / "run1"
    assert folder_path(session, "out/run1") == tmp_path / "beamtime" / "out" / "run1"
    assert folder_path(session, "../data/run1") == tmp_path / "data" / "run1"
