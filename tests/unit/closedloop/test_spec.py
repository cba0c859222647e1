"""The session spec: good files load, bad ones give one line naming the field."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

import closedloop
from closedloop import SessionSpec, SpecError, load_spec, spec_fingerprint, spec_from_dict
from closedloop.files import parse_yaml
from closedloop.resolve import resolve
from tests.conftest import beamline_session


def test_every_public_name_resolves() -> None:
    for name in closedloop.__all__:
        assert getattr(closedloop, name) is not None


def test_demo_like_session_loads_and_maps_onto_vocs() -> None:
    spec = spec_from_dict(beamline_session())
    vocs = spec.vocs()
    assert vocs.variable_names == ["pitch1", "pitch2"]
    assert vocs.bounds == [[-1.5, 1.5], [-1.5, 1.5]]
    assert type(vocs.objectives["flux"]).__name__ == "MaximizeObjective"
    assert spec.device_of("pitch1") == "m1"
    assert spec.readback_of("pitch1") == "m1"
    assert spec.field_of("flux") == "det-flux"
    assert spec.variables["pitch1"].limits == (-2.0, 2.0)


def _variables(**pitch1: object) -> dict[str, object]:
    return {"pitch1": {"bounds": [-1.5, 1.5], "device": "m1", **pitch1}}


@pytest.mark.parametrize(
    ("overrides", "field", "words"),
    [
        ({"colour": "blue"}, "colour", "unknown key"),
        ({"variables": _variables(speed=3)}, "variables.pitch1.speed", "unknown key"),
        (
            {"variables": {"pitch1": {"bounds": [1.0, -1.0]}}},
            "variables.pitch1.bounds",
            "low must be below high",
        ),
        (
            {"variables": _variables(hard_limits=[-1.0, 1.0])},
            "variables.pitch1",
            "outside hard_limits",
        ),
        (
            {"variables": _variables(hard_limits=[2.0, -2.0])},
            "variables.pitch1.hard_limits",
            "low must be below",
        ),
        ({"variables": {}}, "variables", "at least one variable"),
        ({"planner": {"name": "no-such-planner"}}, "planner.name", "unknown planner 'no-such-planner'"),
        ({"instrument": {"factory": "no_such_pkg.devices:make"}}, "instrument.factory", "does not import"),
        ({"instrument": {"factory": "closedloop.spec:NoSuchThing"}}, "instrument.factory", "has no 'NoSuchThing'"),
        ({"instrument": {"simulator": "no_such_sim"}}, "instrument.simulator", "no bundled simulator 'no_such_sim'"),
        ({"budget": {"experiments": 0}}, "budget.experiments", "greater than or equal to 1"),
        ({"objectives": {}}, "objectives", "at least one objective"),
        ({"review": {"policy": "sometimes"}}, "review.policy", "always"),
    ],
)
def test_bad_input_is_one_line_naming_the_field(overrides: dict, field: str, words: str) -> None:
    with pytest.raises(SpecError) as info:
        resolve(spec_from_dict(beamline_session(**overrides)))  # validation, then what the agent resolves
    message = str(info.value)
    assert "\n" not in message
    assert f"{field}:" in message
    assert words in message


def test_missing_budget_is_named() -> None:
    data = beamline_session()
    del data["budget"]
    with pytest.raises(SpecError, match="budget: required but missing"):
        spec_from_dict(data)


def test_load_spec_reports_unreadable_and_non_yaml_files(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="cannot read"):
        load_spec(tmp_path / "absent.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("variables: [unclosed\n")
    with pytest.raises(SpecError, match="not valid YAML"):
        load_spec(bad)
    listy = tmp_path / "list.yaml"
    listy.write_text("- 1\n- 2\n")
    with pytest.raises(SpecError, match="must be a mapping"):
        load_spec(listy)


bounds = st.tuples(st.floats(-1e6, 1e6, allow_nan=False), st.floats(1e-3, 1e6, allow_nan=False)).map(
    lambda lw: (lw[0], lw[0] + lw[1])
)


@settings(max_examples=40, deadline=None)
@given(
    bounds=bounds,
    margin=st.floats(0, 1e3, allow_nan=False),
    seed=st.none() | st.integers(0, 2**32 - 1),
    failures=st.fixed_dictionaries(
        {"max_consecutive": st.integers(1, 100), "then": st.sampled_from(["pause", "stop"])}
    ),
    options=st.dictionaries(st.sampled_from(["noise", "width_noise"]), st.floats(0, 10)),
)
def test_specs_round_trip_through_yaml(
    bounds: tuple[float, float], margin: float, seed: int | None, failures: dict, options: dict
) -> None:
    low, high = bounds
    data = beamline_session(
        variables={"x": {"bounds": [low, high], "hard_limits": [low - margin, high + margin], "device": "m1"}},
        seed=seed,
        failures=failures,
        instrument={"simulator": "beamline", "options": options},
    )
    spec = spec_from_dict(data)
    again = spec_from_dict(parse_yaml(yaml.safe_dump(spec.model_dump(mode="json")), "again.yaml"))
    assert again == spec
    assert SessionSpec.model_validate_json(spec.model_dump_json()) == spec
    assert spec_fingerprint(again) == spec_fingerprint(spec)


def test_discrete_categorical_constants_and_constraints_map_onto_vocs() -> None:
    spec = spec_from_dict(
        beamline_session(
            variables={
                "pitch1": {"bounds": [-1.5, 1.5], "device": "m1", "max_step": 0.5},
                "filter": {"values": [0.0, 0.1, 0.25], "device": "m2"},
                "crystal": {"values": ["Si111", "Si311"]},
            },
            constants={"energy": {"value": 8.0}},
            constraints={"heat": {"field": "det-heat", "less_than": 3.0}},
        )
    )
    vocs = spec.vocs()
    assert type(vocs.variables["filter"]).__name__ == "DiscreteVariable"
    assert vocs.variables["crystal"].values == {"Si111", "Si311"}
    assert vocs.constants["energy"].value == 8.0
    assert vocs.constraints["heat"].value == 3.0 and type(vocs.constraints["heat"]).__name__ == "LessThanConstraint"
    assert spec.outputs == ["flux", "heat"]
    assert spec.field_of("heat") == "det-heat"
    assert spec.variables["filter"].limits == (0.0, 0.25)
    assert spec.variables["crystal"].categorical
    assert spec.feasible({"flux": 1.0, "heat": 2.0}) and not spec.feasible({"flux": 1.0, "heat": 3.5})


@pytest.mark.parametrize(
    ("overrides", "field", "words"),
    [
        ({"variables": {"f": {"values": [0.1, 0.1]}}}, "variables.f.values", "distinct"),
        ({"variables": {"f": {"values": [0.1, "Cu"]}}}, "variables.f.values", "not a mix"),
        ({"variables": {"f": {"bounds": [0, 1], "values": [0.5]}}}, "variables.f", "exactly one of 'bounds'"),
        ({"variables": {"f": {"values": [0.0, 5.0], "hard_limits": [0, 2]}}}, "variables.f", "outside hard_limits"),
        ({"variables": {"f": {"values": ["a", "b"], "max_step": 1}}}, "variables.f", "apply to numbers"),
        ({"variables": {"f": {"bounds": [0, 1], "max_step": 0}}}, "variables.f.max_step", "greater than 0"),
        ({"constraints": {"c": {"field": "x"}}}, "constraints.c", "exactly one of 'less_than'"),
        ({"constants": {"e": {"value": 9.0, "hard_limits": [0, 8]}}}, "constants.e", "outside hard_limits"),
        ({"constants": {"pitch1": {"value": 1.0}}}, "constants.pitch1", "'pitch1' is already used in variables"),
    ],
)
def test_bad_discrete_constant_and_constraint_input(overrides: dict, field: str, words: str) -> None:
    with pytest.raises(SpecError) as info:
        spec_from_dict(beamline_session(**overrides))
    assert f"{field}:" in str(info.value) and words in str(info.value)


def test_several_instruments_each_named_and_seen_one_at_a_time() -> None:
    data = beamline_session(seed=2**32 - 1)
    section = data.pop("instrument")
    data["instruments"] = [dict(section, name="hutch-a"), section]
    spec = spec_from_dict(data)
    assert [name for name, _ in spec.lanes()] == ["hutch-a", "instrument-2"]
    first, second = spec.for_instrument(0), spec.for_instrument(1)
    assert first.instrument is not None and first.instrument.name == "hutch-a" and first.instruments == []
    assert (first.seed, second.seed) == (2**32 - 1, 0)  # simulated copies get noise of their own, seeds in range
    assert spec_from_dict(beamline_session()).lanes()[0][0] == "instrument"
    assert spec_from_dict(beamline_session(pipeline=True)).pipeline is True


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda d: d.pop("instrument"), "instrument: give 'instrument' (one) or 'instruments'"),
        (lambda d: d.update(instruments=[d["instrument"]]), "instrument: give 'instrument' (one) or 'instruments'"),
        (lambda d: d.update(instruments=[dict(d.pop("instrument"), name="a")] * 2), "instruments.1.name: 'a'"),
        (lambda d: d.update(instruments=[dict(d.pop("instrument"), name="a b")]), "instruments.0.name"),
    ],
)
def test_instruments_are_given_once_and_named_apart(change, field: str) -> None:
    data = beamline_session()
    change(data)
    with pytest.raises(SpecError) as caught:
        spec_from_dict(data)
    assert field in str(caught.value) and "\n" not in str(caught.value)


def test_an_unknown_key_points_at_the_reference_page_that_lists_every_key() -> None:
    pattern = r"^session: colour: unknown key \(every key of the session file: (\S+)\)$"
    with pytest.raises(SpecError, match=pattern) as info:
        spec_from_dict({**beamline_session(), "colour": "blue"})
    page = info.value.args[0].rpartition(": ")[2].rstrip(")")
    assert (Path(__file__).resolve().parents[3] / page).is_file()
