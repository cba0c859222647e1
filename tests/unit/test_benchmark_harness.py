"""The planner benchmark harness: its problems' optima, its option parsing, and a tiny end-to-end run."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
import torch

from benchmarks._problems import (
    BRANIN_CURRIN_MAX_HV,
    DISK_OPTIMUM_POINT,
    DISK_OPTIMUM_VALUE,
    PEAKS,
    PROBLEMS,
    Problem,
    Replay,
    feasible_optimum,
    grid_hypervolume,
    hypervolume_2d,
)
from benchmarks.planners import PlannerSpec, parse_planner_specs, parse_value, plot_regret, run_one, summarize
from benchmarks.targets import check
from closedloop.errors import PlannerError
from planners import BoTorchPlanner
from simulators.physics import BEAMLINE_OPTIMUM, BRANIN_OPTIMUM, HARTMANN6_OPTIMUM


def _random_points(problem_name: str, n: int, seed: int = 0) -> list[dict[str, float]]:
    vocs = PROBLEMS[problem_name].vocs
    rng = np.random.default_rng(seed)
    lo, hi = np.array(vocs.bounds).T
    return [dict(zip(vocs.variable_names, lo + rng.random(len(lo)) * (hi - lo), strict=True)) for _ in range(n)]


@pytest.mark.parametrize(
    ("name", "optimum"), [("branin", BRANIN_OPTIMUM), ("hartmann6", HARTMANN6_OPTIMUM), ("beamline", BEAMLINE_OPTIMUM)]
)
def test_known_optima_are_reached_and_never_beaten(name: str, optimum) -> None:
    problem = PROBLEMS[name]
    objective = problem.objective_names[0]
    assert problem.truth(optimum.point)[objective] == pytest.approx(problem.optimum, abs=1e-4)
    sign = 1.0 if optimum.maximize else -1.0
    values = [sign * problem.truth(p)[objective] for p in _random_points(name, 2000)]
    assert max(values) <= sign * problem.optimum + 1e-9
    assert problem.regret_curve([problem.truth(optimum.point)])[-1] == pytest.approx(0.0, abs=1e-4)


def test_constrained_optimum_is_feasible_and_beats_a_dense_grid() -> None:
    problem = PROBLEMS["branin_disk"]
    at_optimum = problem.truth(DISK_OPTIMUM_POINT)
    assert at_optimum["f"] == pytest.approx(DISK_OPTIMUM_VALUE, abs=1e-9)
    assert at_optimum["c"] <= 1e-9
    # the unconstrained minima are all infeasible: the constraint matters
    for point in ({"x1": -math.pi, "x2": 12.275}, {"x1": math.pi, "x2": 2.275}, {"x1": 9.42478, "x2": 2.475}):
        assert not problem.feasible(problem.truth(point))
    g1, g2 = np.meshgrid(np.linspace(-5, 10, 301), np.linspace(0, 15, 301))
    best_grid = min(
        problem.truth({"x1": a, "x2": b})["f"]
        for a, b in zip(g1.ravel(), g2.ravel(), strict=True)
        if problem.feasible(problem.truth({"x1": a, "x2": b}))
    )
    assert DISK_OPTIMUM_VALUE <= best_grid
    point, value = feasible_optimum(n=301)
    assert value == pytest.approx(DISK_OPTIMUM_VALUE, abs=1e-6)
    assert point["x1"] == pytest.approx(DISK_OPTIMUM_POINT["x1"], abs=1e-3)


def test_hypervolume_matches_botorch_and_the_front_beats_random() -> None:
    from botorch.utils.multi_objective.hypervolume import Hypervolume

    problem = PROBLEMS["branin_currin"]
    outputs = [problem.truth(p) for p in _random_points("branin_currin", 40, seed=1)]
    Y = torch.tensor([[o["f1"], o["f2"]] for o in outputs], dtype=torch.float64)
    reference = Hypervolume(ref_point=-torch.tensor(problem.ref_point, dtype=torch.float64))
    botorch_hv = reference.compute(-Y)  # BoTorch maximizes
    random_hv = problem.hypervolume(outputs)
    assert random_hv == pytest.approx(botorch_hv, rel=1e-9)
    front_hv = grid_hypervolume(n=201)
    assert 0 < random_hv < front_hv <= BRANIN_CURRIN_MAX_HV
    assert front_hv > 0.95 * BRANIN_CURRIN_MAX_HV
    assert hypervolume_2d([], problem.ref_point) == 0.0


def test_regret_curve_never_rises_and_counts_only_feasible_points() -> None:
    problem = PROBLEMS["branin_disk"]
    outputs = [problem.truth(p) for p in _random_points("branin_disk", 30, seed=2)]
    curve = problem.regret_curve(outputs)
    assert all(b <= a for a, b in zip(curve, curve[1:], strict=False))
    infeasible = {"x1": math.pi, "x2": 2.275}  # the unconstrained minimum
    assert problem.regret_curve([problem.truth(infeasible)]) == [problem.worst]


def test_beamline_noise_is_gaussian_sd_10() -> None:
    problem = PROBLEMS["beamline"]
    rng = np.random.default_rng(0)
    point = BEAMLINE_OPTIMUM.point
    measured = np.array([problem.evaluate(point, rng)["flux"] for _ in range(4000)])
    assert problem.noise == 10.0
    assert measured.mean() == pytest.approx(BEAMLINE_OPTIMUM.value, abs=1.0)
    assert measured.std() == pytest.approx(10.0, rel=0.05)


def test_planner_specs_parse_with_options() -> None:
    specs = parse_planner_specs("botorch[n_initial=10,raw_samples=512,flag=true,rate=0.5,mode=fast],sobol, xopt")
    assert [s.name for s in specs] == ["botorch", "sobol", "xopt"]
    assert specs[0].options == {"n_initial": 10, "raw_samples": 512, "flag": True, "rate": 0.5, "mode": "fast"}
    assert specs[0].label == "botorch[n_initial=10,raw_samples=512,flag=true,rate=0.5,mode=fast]"
    assert specs[2].is_peer and not specs[1].is_peer
    assert parse_value("none") is None and parse_value("1e-3") == 1e-3 and parse_value("False") is False
    assert parse_planner_specs("pkg.mod:Cls[a=1]")[0].name == "pkg.mod:Cls"


@pytest.mark.parametrize("bad", ["botorch[n_initial=10", "botorch]", "botorch[n_initial]", "", "bo torch"])
def test_bad_planner_specs_are_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_planner_specs(bad)


class RefusingPlanner:
    """A generator that refuses every problem with constraints, as a planner's constructor does."""

    def __init__(self, vocs, *, seed: int | None = None) -> None:
        if vocs.constraints:
            raise PlannerError("RefusingPlanner does not support constraints")


def test_a_planner_that_refuses_the_problem_is_reported_unsupported() -> None:
    name = f"{__name__}:RefusingPlanner"
    run = run_one(PlannerSpec(name, name), PROBLEMS["branin_disk"], seed=0, n_initial=2, budget=1)
    assert run.status == "unsupported"
    assert "constraints" in run.message
    assert (
        run_one(
            PlannerSpec("xopt[n_restarts=3]", "xopt", {"n_restarts": 3}),
            PROBLEMS["branin"],
            seed=0,
            n_initial=2,
            budget=1,
        ).status
        == "unsupported"
    )  # peers run at their defaults


class Float64Planner:
    """A generator that, as Xopt does, sets torch's default dtype to float64 for the whole process."""

    def __init__(self, vocs, *, seed: int | None = None) -> None:
        torch.set_default_dtype(torch.float64)
        self.vocs = vocs

    def suggest(self, num_points: int | None = None) -> list[dict]:
        return [{name: 0.5 for name in self.vocs.variable_names} | {"_id": 0}]

    def ingest(self, results: list[dict]) -> None:
        pass


def test_a_contender_that_changes_torchs_default_dtype_does_not_pass_it_to_the_next() -> None:
    """botorch's results depend on the default dtype: after Xopt it drifted (hartmann6 seed 0: 0.247, not 0.0198)."""
    before = torch.get_default_dtype()
    torch.set_default_dtype(torch.float32)  # whatever an earlier test in this process left
    try:
        name = f"{__name__}:Float64Planner"
        assert run_one(PlannerSpec(name, name), PROBLEMS["branin"], seed=0, n_initial=1, budget=1).status == "ok"
        assert torch.get_default_dtype() == torch.float32
    finally:
        torch.set_default_dtype(before)


def test_a_run_records_the_planners_counters() -> None:
    spec = PlannerSpec("botorch[num_restarts=1,raw_samples=8]", "botorch", {"num_restarts": 1, "raw_samples": 8})
    run = run_one(spec, PROBLEMS["branin"], seed=0, n_initial=3, budget=2)
    assert run.status == "ok"
    assert run.counters == {
        "n_fits": 2,
        "n_reuses": 0,
        "n_peak_boxes": 0,
        "n_stalls": 0,
    }  # two model-based proposals, no peak
    assert run_one(PlannerSpec("sobol", "sobol"), PROBLEMS["branin"], seed=0, n_initial=3, budget=1).counters == {}


def test_targets_ours_against_the_best_peer() -> None:
    def summary(median: float, hit: float, worst: float, seconds: float) -> dict:
        return {"final_regret": median, "hit_rate": hit, "final_regret_worst": worst, "seconds_per_proposal": seconds}

    ours = summary(1.0, 0.6, 50.0, 0.4)
    peers = {"xopt": summary(2.0, 0.4, 900.0, 0.2), "ax": summary(0.5, 0.8, 40.0, 1.0)}
    met = check(ours, peers, same_run_ax=True, speed=0.5)
    assert met == {"regret": False, "hit": False, "worst": False, "speed": True}  # Ax is better on the first three
    met = check(ours, {"xopt": peers["xopt"]}, same_run_ax=False, speed=0.5)
    assert met == {"regret": True, "hit": True, "worst": True, "speed": None}  # no Ax: seconds not judged
    assert check(ours, peers, same_run_ax=False, speed=0.5)["speed"] is None  # Ax timed in another run


@pytest.mark.parametrize("module", ["benchmarks.planners", "benchmarks.feasibility"])
def test_the_retired_commands_exit_2_and_name_the_campaign_that_replaces_them(module: str, capsys) -> None:
    import importlib

    assert importlib.import_module(module).main(["--seeds", "3"]) == 2
    err = capsys.readouterr().err
    assert "is retired" in err and "closedloop bench --planners botorch,xopt,ax" in err
    assert "closedloop bench page OUT" in err


def test_a_short_run_is_summarized_and_plotted(tmp_path) -> None:
    problem = PROBLEMS["branin"]
    runs = [run_one(PlannerSpec("sobol", "sobol"), problem, seed=s, n_initial=3, budget=2) for s in (0, 1)]
    assert all(run.status == "ok" and len(run.regret) == 5 and len(run.seconds) == 5 for run in runs)
    summary = summarize(runs, problem, 3, 2)
    assert summary["ok"] == 2 and summary["final_regret_worst"] == max(run.regret[-1] for run in runs)
    assert summary["final_regret_q1"] <= summary["final_regret"] <= summary["final_regret_q3"]
    plot_regret(runs, problem, tmp_path / "regret_branin.png", 3)
    assert (tmp_path / "regret_branin.png").stat().st_size > 1000


@pytest.mark.parametrize("name", [peak[0] for peak in PEAKS])
def test_a_narrow_peak_problem_is_flat_noise_almost_everywhere(name: str) -> None:
    """Its optimum is at the centre, and most of the space reads only the background (within 3 noise sd)."""
    problem = PROBLEMS[name]
    centre = problem.extra["centre"]
    assert problem.truth(centre)["f"] == pytest.approx(problem.optimum)
    assert problem.regret_curve([problem.truth(centre)]) == [0.0]
    values = np.array([problem.truth(p)["f"] for p in _random_points(name, 3000, seed=3)])
    assert values.max() < problem.optimum
    background = np.abs(values - 20.0) < 3 * problem.noise
    assert 0.9 < background.mean() < 1.0  # a narrow peak: most points see nothing, a few see it
    rng = np.random.default_rng(0)
    measured = np.array([problem.evaluate(centre, rng)["f"] for _ in range(2000)])
    assert measured.std() == pytest.approx(problem.noise, rel=0.1)


def sobol_planner_recording_suggests(problem: Problem) -> tuple[Any, list[tuple[int, int, int]]]:
    """A seeded Sobol planner for ``problem`` and, filled as it goes, ``(n, pending, observed)`` at each suggest."""
    from planners import load_planner

    planner = load_planner("sobol", problem.vocs, default_seed=0)
    calls: list[tuple[int, int, int]] = []
    suggest = planner.suggest

    def spy(n: int | None = None) -> list[dict]:
        calls.append((n or 1, len(planner.pending), planner.n_observed))
        return suggest(n)

    planner.suggest = spy  # type: ignore[method-assign]
    return planner, calls


@pytest.mark.parametrize("lanes", [0, 1, 2])
def test_the_pipelined_replay_keeps_as_many_points_pending_as_the_loop_does(lanes: int) -> None:
    """With L instruments the loop proposes with the last L points in flight (none strictly in turn)."""
    problem = PROBLEMS["beamline"]
    planner, calls = sobol_planner_recording_suggests(problem)
    curve = Replay(problem, 0).play(planner, 8, lanes).regret
    pending_at_suggest = [pending for _, pending, _ in calls]
    assert len(curve) == 8
    assert pending_at_suggest[0] == 0 and set(pending_at_suggest[1:]) == {lanes}


def test_the_batched_replay_proposes_each_batch_with_every_earlier_result_in() -> None:
    """Batches of 3 in turn: suggest(3) with nothing pending, then all three ingested; the last batch is smaller."""
    problem = PROBLEMS["beamline"]
    planner, calls = sobol_planner_recording_suggests(problem)
    replay = Replay(problem, 0).play_batches(planner, 8, 3)
    assert calls == [(3, 0, 0), (3, 0, 3), (2, 0, 6)]
    assert len(replay.points) == len(replay.regret) == 8 and planner.n_observed == 8


def test_the_planner_without_the_identity_input_transform_proposes_the_same_points() -> None:
    from benchmarks.proposal_overhead import WithNormalize, session

    with_it, _ = session(WithNormalize, PROBLEMS["spot2_noisy"], seed=1, experiments=14)
    without, _ = session(BoTorchPlanner, PROBLEMS["spot2_noisy"], seed=1, experiments=14)
    assert np.array_equal(with_it, without)


def test_the_pipelined_replay_runs_the_planner_it_is_given(capsys: pytest.CaptureFixture[str]) -> None:
    from benchmarks.pipelined_regret import main

    main(
        [
            "--problems",
            "beamline",
            "--seeds",
            "2",
            "--experiments",
            "4",
            "--lanes",
            "0,1",
            "--planner",
            "grid[shuffle=false]",
        ]
    )
    out = capsys.readouterr().out
    assert "beamline: 4 experiments, grid[shuffle=false], seeds 0-1" in out
    # an unshuffled grid proposes the same points whatever the seed, so both seeds end at the same regret
    finals = {
        lanes: set(values.split())
        for lanes, values in (part.split(": ") for part in out.split("per seed: ")[1].strip().split("; "))
    }
    assert len(finals["0"]) == 1 and len(finals["1"]) == 1


def test_a_repeat_counts_only_while_the_point_it_repeats_is_in_flight() -> None:
    from benchmarks.foreign_in_flight import repeats_in_flight

    problem = PROBLEMS["beamline"]
    a, b = {"pitch1": 0.1, "pitch2": 0.2}, {"pitch1": -1.0, "pitch2": 1.0}
    near_a = {"pitch1": 0.1 + 1e-4, "pitch2": 0.2}
    assert repeats_in_flight(problem, [a, near_a, b], lanes=1) == 1
    assert repeats_in_flight(problem, [a, b, near_a], lanes=1) == 0  # a's run ended before near_a was proposed
    assert repeats_in_flight(problem, [a, b, near_a], lanes=2) == 1


def test_a_run_records_the_planners_counters_and_the_numerical_failures_it_caught() -> None:
    problem = PROBLEMS["branin"]
    run = run_one(PlannerSpec("botorch", "botorch"), problem, seed=0, n_initial=3, budget=1)
    assert run.status == "ok" and run.counters["n_fits"] >= 1
    assert run.diagnostics == {"recoveries": {}, "recovered_by": {}}  # nothing to recover from on Branin
    assert run_one(PlannerSpec("sobol", "sobol"), problem, seed=0, n_initial=3, budget=1).diagnostics == {}
