"""Edits between a stop and a resume: which are allowed, which are refused, and the fingerprint that notices them."""

from __future__ import annotations

from typing import Any

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from closedloop.changes import SpecChanges, spec_changes, spec_fingerprint
from closedloop.spec import spec_from_dict
from tests.conftest import beamline_session


def changes(**overrides: Any) -> SpecChanges:
    return spec_changes(spec_from_dict(beamline_session()), spec_from_dict(beamline_session(**overrides)))


def test_no_edit_is_no_change() -> None:
    assert not changes()
    assert changes() == SpecChanges(allowed=[], refused=[])


def test_budget_review_and_failure_policy_edits_are_allowed() -> None:
    found = changes(
        budget={"experiments": 30}, review={"policy": "always"}, failures={"max_consecutive": 5, "then": "stop"}
    )
    assert found.refused == []
    assert found.allowed == [
        "budget.experiments: 4 -> 30",
        "review.policy: never -> always",
        "failures.max_consecutive: 3 -> 5",
        "failures.then: pause -> stop",
    ]


def test_where_arrays_are_kept_may_change_and_an_old_spec_without_it_is_unchanged() -> None:
    assert changes(arrays={"external_above": None}).allowed == ["arrays.external_above: 1000 -> null"]
    older = beamline_session()  # a session made before the arrays section: its stored spec lacks it
    assert not spec_changes(spec_from_dict(older), spec_from_dict(beamline_session(arrays={})))


def test_writing_out_a_default_is_no_change() -> None:
    assert not changes(failures={"max_consecutive": 3}, constants={}, folder=None)


def test_every_other_edit_is_refused_and_named() -> None:
    session = beamline_session()
    variables = session["variables"]
    found = changes(
        name="renamed",
        seed=4,
        variables={**variables, "pitch1": {**variables["pitch1"], "hard_limits": [-3.0, 3.0]}},
        objectives={"flux": {"direction": "maximize", "field": "det-x"}},
        constraints={"heat": {"field": "det-heat", "less_than": 2.0}},
        planner={"name": "random"},
        instrument={"simulator": "beamline", "options": {"noise": 1.0}},
    )
    assert found.allowed == []
    assert found.refused == [
        "name: test-beamline -> renamed",
        "variables.pitch1.hard_limits: [-2.0, 2.0] -> [-3.0, 3.0]",
        "objectives.flux.field: det-flux -> det-x",
        'constraints.heat: (absent) -> {"field": "det-heat", "greater_than": null, "less_than": 2.0, "reducer": null}',
        "planner.name: sobol -> random",
        "instrument.options.noise: 5.0 -> 1.0",
        "seed: 3 -> 4",
    ]


def test_renaming_an_objective_is_a_removal_and_an_addition() -> None:
    found = changes(objectives={"intensity": {"direction": "maximize", "field": "det-flux"}})
    assert found.refused == [
        'objectives.flux: {"direction": "maximize", "field": "det-flux", "reducer": null} -> (absent)',
        'objectives.intensity: (absent) -> {"direction": "maximize", "field": "det-flux", "reducer": null}',
    ]


def test_mixed_edits_are_sorted_into_both_lists() -> None:
    found = changes(budget={"experiments": 10}, constants={"energy": {"value": 8.0, "device": "dcm"}})
    assert found.allowed == ["budget.experiments: 4 -> 10"]
    assert found.refused == ['constants.energy: (absent) -> {"device": "dcm", "hard_limits": null, "value": 8.0}']


def test_the_fingerprint_ignores_formatting_and_sees_every_change() -> None:
    data = beamline_session()
    text = yaml.safe_dump(data, sort_keys=False)
    reordered = "# a comment\n" + yaml.safe_dump(data, sort_keys=True, default_flow_style=True)
    fingerprint = spec_fingerprint(text)
    assert len(fingerprint) == 64 and int(fingerprint, 16) >= 0
    assert spec_fingerprint(reordered) == fingerprint
    assert spec_fingerprint(spec_from_dict(data)) == fingerprint
    assert spec_fingerprint(yaml.safe_dump({**data, "failures": {"then": "pause"}})) == fingerprint  # a default
    assert spec_fingerprint(yaml.safe_dump({**data, "budget": {"experiments": 5}})) != fingerprint


budgets = st.integers(1, 1000)


@settings(max_examples=50, deadline=None)
@given(old=budgets, new=budgets, policy=st.sampled_from(["always", "never"]), seed=st.integers(0, 2**32 - 1))
def test_changes_are_exactly_the_fields_that_differ(old: int, new: int, policy: str, seed: int) -> None:
    a = spec_from_dict(beamline_session(budget={"experiments": old}))
    b = spec_from_dict(beamline_session(budget={"experiments": new}, review={"policy": policy}, seed=seed))
    found = spec_changes(a, b)
    assert found.allowed == [f"budget.experiments: {old} -> {new}"] * (old != new) + [
        f"review.policy: never -> {policy}"
    ] * (policy != "never")
    assert found.refused == [f"seed: 3 -> {seed}"] * (seed != 3)
    assert (spec_fingerprint(a) == spec_fingerprint(b)) == (not found)
