"""Planner options in one place: the pydantic models, their one-line errors, and ``closedloop planners``."""

from __future__ import annotations

import json
from typing import Any

import pytest
import typer
from gest_api.vocs import VOCS
from typer.testing import CliRunner

from agent.cli.planners import planners as planners_command
from closedloop.errors import PlannerError
from closedloop.plugins import planner_entry_points
from planners.foreign import Foreign
from planners.options import BUILTIN_OPTIONS, BoTorchOptions
from planners.registry import accepts_option, load_planner, options_model
from planners.warmup import WarmStart

VOCS_2D = VOCS(variables={"x": [0.0, 1.0], "y": [-1.0, 1.0]}, objectives={"f": "MAXIMIZE"})


def test_each_registered_planner_declares_the_model_the_table_names() -> None:
    """The table lets ``closedloop planners`` read options without loading a planner: it must not drift."""
    for entry in planner_entry_points().values():
        if entry.value.startswith("planners."):
            assert entry.load().options_model is BUILTIN_OPTIONS[entry.value], entry.name
            assert options_model(entry.name) is BUILTIN_OPTIONS[entry.value]


def test_every_option_has_a_description_and_a_default() -> None:
    for model in BUILTIN_OPTIONS.values():
        assert model.summary, model.__name__
        for name, info in model.model_fields.items():
            assert info.description and not info.is_required(), f"{model.__name__}.{name}"


@pytest.mark.parametrize(
    ("name", "options", "message"),
    [
        ("botorch", {"n_initial": 0}, "planner.options.n_initial: Input should be greater than or equal to 1, got 0"),
        ("botorch", {"max_travel": "far"}, "planner.options.max_travel"),
        ("botorch", {"noise_prior": "low", "low_noise_prior": True}, "planner.options: give noise_prior or"),
        ("turbo", {"acquisition": "ei"}, "planner.options.acquisition: Input should be 'ts' or 'qlognei', got 'ei'"),
        ("turbo", {"n_initial": 1}, "planner.options.n_initial: Input should be greater than or equal to 2, got 1"),
        ("grid", {"shuffle": "yes"}, "planner.options.shuffle: Input should be a valid boolean, got 'yes'"),
        ("manual", {"points": [3]}, "planner.options.points.0: Input should be a valid dictionary, got 3"),
        ("sobol", {"n_initial": 5}, "planner.options.n_initial: unknown option (options: none)"),
        ("random", {"step": 1}, "planner.options.step: unknown option"),
    ],
)
def test_a_bad_option_is_one_line_naming_it(name: str, options: dict, message: str) -> None:
    with pytest.raises(PlannerError) as caught:
        load_planner(name, VOCS_2D, **options)
    text = str(caught.value)
    assert text.startswith(message) and "\n" not in text


def test_accepts_option_reads_the_model() -> None:
    assert accepts_option("botorch", "max_travel") and accepts_option("turbo", "batch_size")
    assert not accepts_option("sobol", "max_travel") and not accepts_option("botorch", "seed")


class NeedsData:
    """A generator that, like Xopt's Bayesian ones, cannot propose without data."""

    def __init__(self, vocs: VOCS) -> None:
        self.vocs, self.data = vocs, []

    def suggest(self, num_points: int) -> list[dict[str, Any]]:
        if not self.data:
            raise RuntimeError("no data contained in generator, call `add_data` method to add data")
        return [{"x": 0.5, "y": 0.0} for _ in range(num_points)]

    def ingest(self, results: list[dict[str, Any]]) -> None:
        self.data += results


def test_a_generator_that_cannot_start_cold_says_to_set_the_initial_design() -> None:
    planner = load_planner(f"{__name__}:NeedsData", VOCS_2D)
    assert isinstance(planner, Foreign) and planner.vocs is VOCS_2D  # the rest is the generator's
    with pytest.raises(
        PlannerError,
        match=r"cannot propose without data: RuntimeError: no data contained.*"
        r"set planner\.initial_design",
    ):
        planner.suggest(1)
    planner.ingest([{"x": 0.1, "y": 0.2, "f": 1.0}])
    assert planner.suggest(2) == [{"x": 0.5, "y": 0.0, "_id": 0}, {"x": 0.5, "y": 0.0, "_id": 1}]
    # with an initial design the design gives it data before it is first asked
    warm = WarmStart(VOCS_2D, planner=load_planner(f"{__name__}:NeedsData", VOCS_2D), initial=2, seed=0)
    warm.ingest([{**point, "f": 1.0} for point in warm.suggest(2)])
    assert warm.suggest(1)[0]["x"] == 0.5


def test_warmstart_replaces_a_repeat_of_a_failed_point() -> None:
    warm = WarmStart(VOCS_2D, planner=NeedsData(VOCS_2D), initial=1, seed=0)
    warm.ingest([{**warm.suggest(1)[0], "f": 1.0}])
    (theirs,) = warm.suggest(1)
    assert (theirs["x"], theirs["y"]) == (0.5, 0.0)
    warm.ingest([{**theirs, "f": float("nan")}])  # rejected
    again = warm.suggest(2)  # the generator proposes (0.5, 0.0) twice more
    assert all((p["x"], p["y"]) != (0.5, 0.0) for p in again)
    assert len({p["_id"] for p in again}) == 2


def run(*args: str) -> Any:
    app = typer.Typer()
    app.command()(planners_command)
    return CliRunner().invoke(app, list(args))


def test_planners_command_lists_and_shows_options() -> None:
    listing = run()
    assert listing.exit_code == 0
    for name in ("botorch", "turbo", "sobol", "random", "grid", "manual"):
        assert name in listing.output
    shown = json.loads(run("botorch", "--json").output)
    options = {o["name"]: o for o in shown["options"]}
    assert set(options) == set(BoTorchOptions.model_fields)
    assert options["noise_prior"]["default"] == BoTorchOptions().noise_prior
    assert "GP noise" in options["noise_prior"]["description"]
    table = run("grid")
    assert table.exit_code == 0 and "points_per_dim" in table.output and "shuffle" in table.output
    items = json.loads(run("--json").output)
    assert {i["name"] for i in items} >= {"botorch", "manual"}
    third = json.loads(run(f"{__name__}:NeedsData", "--json").output)
    assert third["options"] == [] and third["summary"].startswith("A generator that, like Xopt")


def test_planners_command_refuses_an_unknown_planner_with_exit_2() -> None:
    result = run("nope")
    assert result.exit_code == 2
    assert "unknown planner 'nope'" in result.output
