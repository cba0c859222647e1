"""The planner registry and the package surface."""

from __future__ import annotations

import pytest

import planners
from closedloop.errors import PlannerError
from planners import BoTorchPlanner, SobolPlanner, load_planner, planner_names


def test_all_names_resolve():
    for name in planners.__all__:
        assert getattr(planners, name) is not None


def test_trunk_planners_are_registered():
    assert {"sobol", "botorch"} <= set(planner_names())


def test_load_by_name(vocs):
    assert isinstance(load_planner("sobol", vocs, seed=1), SobolPlanner)
    planner = load_planner("botorch", vocs, seed=1, n_initial=3)
    assert isinstance(planner, BoTorchPlanner)
    assert planner.options.n_initial == 3


def test_load_by_import_path(vocs):
    assert isinstance(load_planner("planners.sobol:SobolPlanner", vocs, seed=1), SobolPlanner)


def test_unknown_name_lists_the_registered(vocs):
    with pytest.raises(PlannerError, match="unknown planner 'nope'.*botorch.*sobol"):
        load_planner("nope", vocs)


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("no_such_module:Planner", "does not import"),
        ("planners.sobol:NoSuchPlanner", "has no 'NoSuchPlanner'"),
        ("math:pi", "not a generator class"),
        ("collections:OrderedDict", "not a gest-api generator"),
    ],
)
def test_bad_import_path(vocs, path, message):
    with pytest.raises(PlannerError, match=message):
        load_planner(path, vocs)


def test_unknown_option_is_named(vocs):
    with pytest.raises(PlannerError, match="n_intial"):
        load_planner("botorch", vocs, n_intial=3)


@pytest.mark.parametrize("options", [{"n_initial": 0}, {"num_restarts": 0}, {"raw_samples": 2, "num_restarts": 4}])
def test_bad_option_values(vocs, options):
    with pytest.raises(PlannerError, match=next(iter(options))):
        load_planner("botorch", vocs, **options)
