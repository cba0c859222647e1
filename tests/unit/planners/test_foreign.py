"""Generators that are not ours, with points in flight they cannot see: Xopt's own, and two small ones."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pytest
import torch
from gest_api.vocs import VOCS

from closedloop.errors import PlannerError
from planners import LimitsInFlight
from planners.foreign import Foreign
from planners.registry import load_planner
from planners.warmup import WarmStart

pytest.importorskip("xopt", reason="xopt is in the dev extras")

VOCS_2D = VOCS(variables={"x": [0.0, 1.0], "y": [-1.0, 1.0]}, objectives={"f": "MAXIMIZE"})
EI = "xopt.generators.bayesian.expected_improvement:ExpectedImprovementGenerator"
NELDER_MEAD = "xopt.generators.sequential.neldermead:NelderMeadGenerator"


def f(point: dict[str, Any]) -> float:
    return -((point["x"] - 0.3) ** 2) - (point["y"] - 0.2) ** 2


def result(point: dict[str, Any]) -> dict[str, Any]:
    return {**point, "f": f(point)}


def design(n: int, seed: int = 0) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    return [result({"x": float(a), "y": float(2 * b - 1)}) for a, b in rng.random((n, 2))]


@pytest.fixture(autouse=True)
def quiet() -> Any:
    dtype = torch.get_default_dtype()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Xopt's own deprecation and fitting warnings
        yield
    torch.set_default_dtype(dtype)  # Xopt sets torch's default dtype for the whole process


def test_xopts_ei_asked_again_with_its_point_out_completes_the_batch_instead_of_repeating_it() -> None:
    torch.manual_seed(0)  # Xopt's optimizer starts are drawn from torch's generator
    raw = load_planner(EI, VOCS_2D).planner
    raw.ingest(design(8))
    (a,), (b,) = raw.suggest(1), raw.suggest(1)
    assert (a["x"], a["y"]) == pytest.approx((b["x"], b["y"]), abs=1e-6)  # what the loop got before: one point
    planner = load_planner(EI, VOCS_2D)
    assert isinstance(planner, Foreign) and planner.room is None
    planner.ingest(design(8))
    points = planner.suggest(1) + planner.suggest(1) + planner.suggest(1)  # three instruments, one by one
    assert [p["_id"] for p in points] == [0, 1, 2] and planner.out == 3
    U = np.array([[p["x"], (p["y"] + 1) / 2] for p in points])
    gaps = [np.abs(U[i] - U[j]).max() for i in range(3) for j in range(i)]
    assert min(gaps) > 0.01
    assert all(0.0 <= p["x"] <= 1.0 and -1.0 <= p["y"] <= 1.0 for p in points)
    planner.ingest([result(p) for p in points])
    assert planner.out == 0 and len(planner.data) == 11


def test_a_one_at_a_time_generator_gets_each_result_before_its_next_point() -> None:
    planner = load_planner(NELDER_MEAD, VOCS_2D)
    assert isinstance(planner, LimitsInFlight) and planner.one_at_a_time
    planner.ingest(design(3))
    assert planner.room == 1
    (point,) = planner.suggest(1)
    assert planner.room == 0
    with pytest.raises(PlannerError, match="one point at a time"):
        planner.suggest(1)
    planner.ingest([result(point)])
    assert planner.room == 1
    (following,) = planner.suggest(1)
    assert following != point
    # an operator's point (no _id) ends while its own is out: it starts again from the data, its point's included
    planner.ingest([result({"x": 0.3, "y": 0.2})])
    assert len(planner.data) == 5 and not planner.is_active and planner.room == 0
    planner.ingest([result(following)])
    assert len(planner.data) == 6 and planner.room == 1
    (restart,) = planner.suggest(1)
    assert 0.0 <= restart["x"] <= 1.0 and -1.0 <= restart["y"] <= 1.0 and restart["_id"] == 2
    planner.ingest([{**restart, "f": float("nan")}])  # rejected by an operator: told as a failed point
    assert planner.room == 1


def test_a_result_for_no_point_out_is_refused() -> None:
    planner = load_planner(EI, VOCS_2D)
    with pytest.raises(PlannerError, match="no point out with _id 7"):
        planner.ingest([{**design(1)[0], "_id": 7}])


class SinglesOnly:
    """A generator that gives one point a call (a larger batch: ValueError, as gest-api says) and its own ids."""

    def __init__(self, vocs: VOCS) -> None:
        self.vocs, self.seen, self.made = vocs, [], 0

    def suggest(self, num_points: int) -> list[dict[str, Any]]:
        if num_points != 1:
            raise ValueError(f"cannot make {num_points} points at once")
        self.made += 1
        return [{"x": 0.1 * self.made, "y": 0.0, "_id": f"p{self.made}"}]

    def ingest(self, results: list[dict[str, Any]]) -> None:
        self.seen.extend(results)


def test_one_that_cannot_make_the_larger_batch_is_asked_for_what_is_wanted_with_its_own_ids_mapped_back() -> None:
    planner = load_planner(f"{__name__}:SinglesOnly", VOCS_2D)
    first, second = planner.suggest(1)[0], planner.suggest(1)[0]
    assert (first["x"], second["x"], first["_id"], second["_id"]) == (0.1, pytest.approx(0.2), 0, 1)
    planner.ingest([result(second), result(first)])
    assert [r["_id"] for r in planner.seen] == ["p2", "p1"]


def test_warm_start_adds_design_points_until_all_but_one_design_result_is_in() -> None:
    warm = WarmStart(VOCS_2D, planner=load_planner(EI, VOCS_2D), initial=4, seed=0)
    out = warm.suggest(4) + warm.suggest(1) + warm.suggest(1)  # four instruments and one ready: no result yet
    assert warm.planner.out == 0  # Xopt was not asked: it cannot propose on no data
    warm.ingest([result(p) for p in out[:3]])
    (theirs,) = warm.suggest(1)
    assert warm.planner.out == 1 and len(warm.planner.data) == 3
    assert theirs["_id"] == 6


def test_warm_start_holds_a_one_at_a_time_generator_until_the_whole_design_is_in() -> None:
    warm = WarmStart(VOCS_2D, planner=load_planner(NELDER_MEAD, VOCS_2D), initial=3, seed=0)
    assert warm.room is None
    design_points = warm.suggest(3)
    assert warm.room == 0
    with pytest.raises(PlannerError, match="waits for the design's results"):
        warm.suggest(1)
    warm.ingest([result(p) for p in design_points[:2]])
    assert warm.room == 0
    warm.ingest([result(design_points[2])])
    assert warm.room == 1
    warm.suggest(1)
    assert warm.room == 0


def test_a_one_at_a_time_generators_repeat_of_a_failed_point_is_replaced_and_told_to_it() -> None:
    """After a resume, Nelder-Mead starts from its last data point, here one interrupted by the kill (a failed
    point): the design's next point runs instead, and Nelder-Mead hears its own is failed, so it waits for nothing."""
    warm = WarmStart(VOCS_2D, planner=load_planner(NELDER_MEAD, VOCS_2D), initial=3, seed=0)
    warm.ingest(design(2) + [{"x": 0.2, "y": 0.1, "f": float("nan")}])  # as rebuilt from the store
    (point,) = warm.suggest(1)
    assert (point["x"], point["y"]) != (0.2, 0.1)
    assert warm.planner.out == 0 and warm.room == 1
    assert np.isnan(warm.planner.data["f"].iloc[-1])  # its own repeat, told as failed
    warm.ingest([result(point)])
    assert warm.room == 1


class Cornered:
    """Drawn to one corner once it has a first point at (0.9, 0.8): a batch holds the corner twice (one nudged by
    1e-5)."""

    def __init__(self, vocs: VOCS) -> None:
        self.vocs, self.asked = vocs, 0

    def suggest(self, num_points: int) -> list[dict[str, Any]]:
        self.asked += 1
        corner = {"x": 0.0, "y": -1.0}
        if num_points == 1:
            return [{"x": 0.9, "y": 0.8} if self.asked == 1 else corner]
        return [corner, {"x": 1e-5, "y": -1.0}] + [{"x": 0.91, "y": 0.8}] * (num_points - 2)

    def ingest(self, results: list[dict[str, Any]]) -> None:
        pass


def test_a_batch_point_that_repeats_one_out_never_goes() -> None:
    planner = load_planner(f"{__name__}:Cornered", VOCS_2D)
    points = planner.suggest(1) + planner.suggest(1)  # (0.9, 0.8), then the corner: both out
    (following,) = planner.suggest(1)  # the corner again; its batch of 3 holds it twice and (0.91, 0.8)
    assert [(p["x"], p["y"]) for p in points] == [(0.9, 0.8), (0.0, -1.0)]
    assert (following["x"], following["y"]) == (0.91, 0.8)


class Explained:
    """A generator of its own ids (from 100) that says why it made each point."""

    def __init__(self, vocs: VOCS) -> None:
        self.next_id, self.made = 100, 0

    def suggest(self, num_points: int) -> list[dict[str, Any]]:
        points = []
        for _ in range(num_points):
            points.append({"x": 0.1 * self.made, "y": 0.0, "_id": self.next_id})
            self.next_id, self.made = self.next_id + 1, self.made + 1
        return points

    def why(self, point_id: int) -> str:
        return f"its step {point_id}"

    def ingest(self, results: list[dict[str, Any]]) -> None:
        pass


def test_a_generator_that_says_why_is_asked_with_its_own_id() -> None:
    planner = Foreign(Explained(VOCS_2D), name="explained", vocs=VOCS_2D)
    points = planner.suggest(2)
    assert [p["_id"] for p in points] == [0, 1]  # the wrapper's ids, not the generator's
    assert [planner.why(p["_id"]) for p in points] == ["its step 100", "its step 101"]
    assert planner.why(7) is None  # no such point out
    xopt = load_planner(EI, VOCS_2D)  # one that does not say: its class's name
    xopt.ingest(design(8))
    (point,) = xopt.suggest(1)
    assert xopt.why(point["_id"]) == "ExpectedImprovementGenerator"


def extreme_readings() -> list[dict[str, Any]]:
    """Eight results, two of them a detector's glitch (+-1e154): Xopt's EI then raises BoTorch's
    OptimizationGradientError (every element of the gradient NaN) whatever its optimizer's starts."""
    data = design(8)
    data[0]["f"], data[1]["f"] = 1e154, -1e154
    return data


def test_xopts_ei_failing_numerically_costs_no_experiment_a_sobol_point_stands_in() -> None:
    planner = load_planner(EI, VOCS_2D, default_seed=4)
    planner.ingest(extreme_readings())
    (point,) = planner.suggest(1)
    assert planner.recoveries == {"nan_gradient": 2}  # the call and its retry
    assert planner.recovered_by == {"space-filling": 1}
    assert planner.why(point["_id"]) == f"Sobol: {EI} failed numerically (nan_gradient, nan_gradient)"
    assert 0.0 <= point["x"] <= 1.0 and -1.0 <= point["y"] <= 1.0
    planner.ingest([result(point)])  # its result reaches the generator as a point it did not make
    assert planner.out == 0 and len(planner.planner.data) == 9
    (again,) = planner.suggest(1)  # still failing: the next Sobol point, not the same one
    assert (again["x"], again["y"]) != (point["x"], point["y"])


class Broken:
    """A generator with a bug (not a numerical failure) once it has data."""

    def __init__(self, vocs: VOCS) -> None:
        self.vocs = vocs

    def suggest(self, n: int) -> list[dict[str, Any]]:
        raise KeyError("a bug")

    def ingest(self, results: list[dict[str, Any]]) -> None:
        pass


def test_a_generators_error_that_is_not_numerical_is_raised_as_it_was() -> None:
    planner = Foreign(Broken(VOCS_2D), name="broken", vocs=VOCS_2D, seed=1)
    planner.ingest(design(3))
    with pytest.raises(KeyError):
        planner.suggest(1)
    assert not planner.recoveries


def test_a_seeded_foreign_generator_neither_reads_nor_moves_the_process_torch_rng() -> None:
    """Xopt's EI takes no seed: around its calls torch's RNG is seeded from the session's seed and the results, so
    the same data give the same point whatever ran in the process before, and the process's RNG is left as it was."""
    points = []
    for before in (0, 1):
        torch.manual_seed(before)  # whatever ran before
        state = torch.get_rng_state()
        planner = load_planner(EI, VOCS_2D, default_seed=11)
        planner.ingest(design(8))
        (point,) = planner.suggest(1)
        assert torch.equal(torch.get_rng_state(), state)
        points.append((point["x"], point["y"]))
    assert points[0] == points[1]


def test_a_missing_constraint_output_reaches_xopt_as_nan_in_its_column_only() -> None:
    """An ok run whose constraint output is missing is told as NaN in that output's column (``Observation.as_result``):
    Xopt fits each outcome to the rows where it is not NaN, so its objective's GP uses the point."""
    from closedloop import MissingValue, Observation, ObservationStatus

    constrained = VOCS(
        variables={"x": [0.0, 1.0], "y": [-1.0, 1.0]},
        objectives={"f": "MAXIMIZE"},
        constraints={"c": ["LESS_THAN", 0.5]},
    )
    torch.manual_seed(0)
    planner = load_planner(EI, constrained)
    results = []
    for i, point in enumerate(design(8)):
        values = {"f": point["f"]} if i < 3 else {"f": point["f"], "c": point["x"] - 1.0}
        missing = {"c": MissingValue(reason="the peak does not fall to half its height")} if i < 3 else {}
        observation = Observation(
            proposal_id=f"p-{i}",
            status=ObservationStatus.OK,
            setpoints={"x": point["x"], "y": point["y"]},
            values=values,
            missing=missing,
        )
        results.append(observation.as_result())
    planner.ingest(results)
    planner.suggest(1)
    data = planner.planner.data
    assert int(data["c"].isna().sum()) == 3 and not data["f"].isna().any()
    objective_gp, constraint_gp = planner.planner.model.models
    assert (len(objective_gp.train_inputs[0]), len(constraint_gp.train_inputs[0])) == (8, 5)
