"""The session's plan on a real RunEngine with real devices: ophyd-async sims (SimStage, SimPointDetector,
SimBlobDetector) and ophyd classic sims (SynAxis, SynGauss), the bundled ``measure`` and ``scan`` plans, plan
factories of the user's own, and the ingestion of what they produce.

The plan factories at the bottom of this module are used by the tests through their import paths
(``tests.integration.test_plans:...``), as a session file names them.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import bluesky.plan_stubs as bps
import bluesky.plans as bp
import numpy as np
import pytest
from bluesky.preprocessors import SupplementalData
from ophyd.sim import SynAxis, SynGauss, SynSignal
from ophyd_async.core import StaticPathProvider, UUIDFilenameProvider, init_devices
from ophyd_async.sim import PatternGenerator, SimBlobDetector, SimPointDetector, SimStage

from closedloop import Observation, ObservationStatus, Proposal, SessionSpec, spec_from_dict
from instruments import observation_from_documents, plan_for

HERE = "tests.integration.test_plans"


def session(variables: dict[str, Any], objectives: dict[str, Any], **extra: Any) -> SessionSpec:
    data = {
        "variables": variables,
        "objectives": objectives,
        "budget": {"experiments": 1},
        "planner": {"name": "sobol"},
        "instrument": {"simulator": "beamline"},  # not built here: the tests make their own devices
        **extra,
    }
    return spec_from_dict(data)


def carry_out(
    run_engine: Any, spec: SessionSpec, setpoints: dict[str, Any], movers: dict[str, Any], detectors: list[Any]
) -> tuple[Observation, list[tuple[str, dict[str, Any]]]]:
    """Run one proposal as the executor does (plan_for, every document kept, a fault kept as text)."""
    proposal = Proposal(iteration=0, setpoints=setpoints)
    documents: list[tuple[str, dict[str, Any]]] = []
    error = None
    md = {"proposal_id": proposal.id, "session_id": "s-test"}
    try:
        run_engine(
            plan_for(spec.problem(), spec.plan, setpoints, movers, detectors, md),
            lambda name, doc: documents.append((name, doc)),
        )
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"
    return observation_from_documents(spec, proposal, documents, error), documents


def pattern(x: float, y: float) -> float:
    """What ophyd-async's pattern generator gives at a stage position (channel 1, low energy)."""
    generator = PatternGenerator()
    generator.set_x(x)
    generator.set_y(y)
    return generator.generate_point(1, high_energy=False)


# -- ophyd-async: SimStage, SimPointDetector, SimBlobDetector -------------------------------------------------------


@pytest.fixture
def async_beamline(run_engine: Any, tmp_path: Path) -> Iterator[dict[str, Any]]:
    generator = PatternGenerator()
    with init_devices():
        stage = SimStage(generator)
        det = SimPointDetector(generator, num_channels=1)
        blob = SimBlobDetector(StaticPathProvider(UUIDFilenameProvider(), tmp_path), generator)
    run_engine(bps.mv(stage.x.velocity, 0, stage.y.velocity, 0))  # instant moves: the tests are about the data
    yield {"stage": stage, "det": det, "blob": blob}


STAGE_VARIABLES = {
    "x": {"bounds": [-5, 5], "device": "stage.x"},
    "y": {"bounds": [-5, 5], "device": "stage.y"},
}


def test_sim_point_detector_reads_the_pattern_at_the_stage_position(run_engine: Any, async_beamline: dict) -> None:
    stage, det = async_beamline["stage"], async_beamline["det"]
    spec = session(STAGE_VARIABLES, {"signal": {"field": "det-channel-1-value"}})
    movers = {"x": stage.x, "y": stage.y}
    seen = {}
    for x, y in [(1.0, 0.5), (-2.0, 1.5)]:
        observation, _ = carry_out(run_engine, spec, {"x": x, "y": y}, movers, [det])
        assert observation.status == ObservationStatus.OK, observation.error
        # child devices' read-backs (stage-x, stage-y) are found, not dropped
        assert observation.readbacks == {"x": x, "y": y}
        # counts = pattern * 10000 * acquire_time (0.1 s by default), truncated to an integer
        assert observation.values["signal"] == pytest.approx(pattern(x, y) * 1000, abs=1)
        seen[x] = observation.values["signal"]
    assert abs(seen[1.0] - seen[-2.0]) > 100  # the stage was staged: the detector sees where it is


def test_count_time_sets_the_acquire_time_for_the_run_and_puts_it_back(run_engine: Any, async_beamline: dict) -> None:
    stage, det = async_beamline["stage"], async_beamline["det"]
    movers = {"x": stage.x, "y": stage.y}
    objectives = {"signal": {"field": "det-channel-1-value"}}
    plain, _ = carry_out(run_engine, session(STAGE_VARIABLES, objectives), {"x": 1.0, "y": 0.5}, movers, [det])
    longer_spec = session(STAGE_VARIABLES, objectives, plan={"count_time": 0.3})
    longer, _ = carry_out(run_engine, longer_spec, {"x": 1.0, "y": 0.5}, movers, [det])
    assert longer.status == ObservationStatus.OK, longer.error
    assert longer.values["signal"] == pytest.approx(3 * plain.values["signal"], abs=3)
    assert run_engine(bps.rd(det.acquire_time)).plan_result == pytest.approx(0.1)  # restored after the run


def test_sim_blob_detector_is_staged_prepared_and_reduced_from_its_file(run_engine: Any, async_beamline: dict) -> None:
    stage, blob = async_beamline["stage"], async_beamline["blob"]
    objectives = {
        "frame": {"field": "blob", "reducer": "instruments.reducers:frame_sum"},
        "total": {"field": "blob-sum", "reducer": "instruments.reducers:mean"},
    }
    spec = session(STAGE_VARIABLES, objectives, plan={"count_time": 0.05})
    movers = {"x": stage.x, "y": stage.y}
    values = {}
    for x, y in [(1.0, 0.5), (-2.0, 1.5)]:
        observation, documents = carry_out(run_engine, spec, {"x": x, "y": y}, movers, [blob])
        assert observation.status == ObservationStatus.OK, observation.error
        names = [name for name, _ in documents]
        assert "stream_resource" in names and "stream_datum" in names
        event = next(doc for name, doc in documents if name == "event")
        assert "blob" not in event["data"]  # a reference, not a value: only a reducer can give it
        # the image read from the file, summed, matches the detector's own running sum in the same file
        assert observation.values["frame"] == observation.values["total"]
        # and the physics: a Gaussian blob of 255 * pattern(x, y) * exposure at its centre, floored per pixel
        gx, gy = np.meshgrid(np.linspace(-1, 1, 320), np.linspace(-1, 1, 240))
        expected = np.floor(np.exp(-(gx**2 + gy**2)) * 255 * pattern(x, y) * 0.05).sum()
        assert observation.values["frame"] == pytest.approx(expected, rel=1e-9)
        values[x] = observation.values["frame"]
    assert values[1.0] != pytest.approx(values[-2.0], rel=0.1)


def test_an_objective_on_file_data_without_a_reducer_fails_saying_so(run_engine: Any, async_beamline: dict) -> None:
    stage, blob = async_beamline["stage"], async_beamline["blob"]
    spec = session(STAGE_VARIABLES, {"total": {"field": "blob-sum"}})
    observation, _ = carry_out(run_engine, spec, {"x": 0.0, "y": 0.0}, {"x": stage.x, "y": stage.y}, [blob])
    assert observation.status == ObservationStatus.FAILED
    error = observation.error or ""
    assert error.startswith("objectives.total: 'blob-sum' is written to a file")
    assert "give this output a reducer" in error


# -- ophyd classic: SynAxis and SynGauss ---------------------------------------------------------------------------

CENTER, SIGMA, IMAX = 0.3, 0.1, 1000.0


@pytest.fixture
def classic(run_engine: Any) -> dict[str, Any]:
    motor = SynAxis(name="m1")
    other = SynAxis(name="m2")
    det = SynGauss("det", motor, "m1", center=CENTER, Imax=IMAX, sigma=SIGMA)
    i0 = SynSignal(func=lambda: 4.0, name="i0")
    return {"m1": motor, "m2": other, "det": det, "i0": i0}


CLASSIC_VARIABLES = {
    "pitch1": {"bounds": [-1.0, 1.0], "hard_limits": [-1.0, 1.0], "device": "m1"},
    "pitch2": {"bounds": [-1.0, 1.0], "device": "m2"},
}


def gauss(x: float) -> float:
    return IMAX * math.exp(-((x - CENTER) ** 2) / (2 * SIGMA**2))


def test_measure_on_ophyd_classic_devices_gives_the_gaussian(run_engine: Any, classic: dict) -> None:
    spec = session(CLASSIC_VARIABLES, {"flux": {"field": "det"}}, plan={"options": {"num": 3}})
    movers = {"pitch1": classic["m1"], "pitch2": classic["m2"]}
    for x in (0.25, 0.5):
        observation, documents = carry_out(run_engine, spec, {"pitch1": x, "pitch2": -0.2}, movers, [classic["det"]])
        assert observation.status == ObservationStatus.OK, observation.error
        assert observation.readbacks == {"pitch1": x, "pitch2": -0.2}
        assert observation.values["flux"] == pytest.approx(gauss(x))
        assert sum(name == "event" for name, _ in documents) == 3


def test_monitor_normalises_objectives_not_constraints(run_engine: Any, classic: dict) -> None:
    spec = session(
        CLASSIC_VARIABLES,
        {"flux": {"field": "det"}},
        constraints={"raw": {"field": "det", "greater_than": 0.0}},
        plan={"monitor": "i0"},
    )
    movers = {"pitch1": classic["m1"], "pitch2": classic["m2"]}
    detectors = [classic["det"], classic["i0"]]
    observation, _ = carry_out(run_engine, spec, {"pitch1": 0.3, "pitch2": 0.0}, movers, detectors)
    assert observation.status == ObservationStatus.OK, observation.error
    assert observation.values == pytest.approx({"flux": IMAX / 4.0, "raw": IMAX})


def test_a_monitor_that_was_not_read_fails_naming_it(run_engine: Any, classic: dict) -> None:
    spec = session(CLASSIC_VARIABLES, {"flux": {"field": "det"}}, plan={"monitor": "ion_chamber"})
    movers = {"pitch1": classic["m1"], "pitch2": classic["m2"]}
    observation, _ = carry_out(run_engine, spec, {"pitch1": 0.3, "pitch2": 0.0}, movers, [classic["det"]])
    assert observation.status == ObservationStatus.FAILED
    assert (observation.error or "").startswith("plan.monitor: no field 'ion_chamber' in the primary stream")


SCAN_OBJECTIVES = {
    "peak": {"field": "det", "reducer": "instruments.reducers:peak_position"},
    "width": {"field": "det", "reducer": "instruments.reducers:fwhm", "direction": "minimize"},
    "centre": {"field": "det", "reducer": "instruments.reducers:centroid"},
    "area": {"field": "det", "reducer": "instruments.reducers:integrated_intensity"},
}
SCAN_PLAN = {"name": "scan", "options": {"variable": "pitch1", "width": 0.8, "num": 21}}


def test_the_scan_plan_finds_the_peak_of_a_syn_gauss(run_engine: Any, classic: dict) -> None:
    spec = session(CLASSIC_VARIABLES, SCAN_OBJECTIVES, plan=SCAN_PLAN)
    movers = {"pitch1": classic["m1"], "pitch2": classic["m2"]}
    observation, documents = carry_out(run_engine, spec, {"pitch1": 0.25, "pitch2": 0.1}, movers, [classic["det"]])
    assert observation.status == ObservationStatus.OK, observation.error
    positions = [doc["data"]["m1"] for name, doc in documents if name == "event"]
    assert positions == pytest.approx(list(np.linspace(-0.15, 0.65, 21)))
    assert observation.readbacks == pytest.approx({"pitch1": 0.25, "pitch2": 0.1})  # the scan's centre
    values = observation.values
    assert values["peak"] == pytest.approx(CENTER, abs=0.005)  # between points 0.04 apart
    assert values["width"] == pytest.approx(2 * math.sqrt(2 * math.log(2)) * SIGMA, rel=0.03)
    assert values["centre"] == pytest.approx(CENTER, abs=0.01)
    assert values["area"] == pytest.approx(IMAX * SIGMA * math.sqrt(2 * math.pi), rel=0.01)
    start = documents[0][1]
    assert (start["plan_name"], start["num_points"], start["motors"]) == ("scan", 21, ["m1"])


def test_the_scan_stays_inside_the_hard_limits(run_engine: Any, classic: dict) -> None:
    spec = session(CLASSIC_VARIABLES, {"flux": {"field": "det"}}, plan=SCAN_PLAN)
    movers = {"pitch1": classic["m1"], "pitch2": classic["m2"]}
    observation, documents = carry_out(run_engine, spec, {"pitch1": 0.9, "pitch2": 0.0}, movers, [classic["det"]])
    assert observation.status == ObservationStatus.OK, observation.error
    positions = [doc["data"]["m1"] for name, doc in documents if name == "event"]
    assert len(positions) == 21
    assert min(positions) == pytest.approx(0.5) and max(positions) == pytest.approx(1.0)  # cut at the limit 1.0


def test_a_reducer_that_raises_is_a_failed_observation_naming_it(run_engine: Any, classic: dict) -> None:
    spec = session(CLASSIC_VARIABLES, SCAN_OBJECTIVES, plan=SCAN_PLAN)
    movers = {"pitch1": classic["m1"], "pitch2": classic["m2"]}
    # centred at -0.8: the Gaussian only rises towards the end of the scan, so it has no peak inside it
    observation, _ = carry_out(run_engine, spec, {"pitch1": -0.8, "pitch2": 0.0}, movers, [classic["det"]])
    assert observation.status == ObservationStatus.FAILED  # an objective that cannot be computed fails the run
    assert (observation.error or "").startswith(
        "objectives.peak: reducer instruments.reducers:peak_position could not compute it: 'det' is highest at the "
        "end of the scan (x=-0.4)"
    )
    assert (observation.error or "").endswith("(>= -0.4)")  # the peak lies beyond the scan's high end
    assert "peak" not in observation.values and "area" in observation.values
    assert observation.missing["peak"].at_least == pytest.approx(-0.4)


def test_a_constraint_the_reducer_cannot_compute_is_missing_and_the_run_ok(run_engine: Any, classic: dict) -> None:
    constraints = {"width": {"field": "det", "reducer": "instruments.reducers:fwhm", "less_than": 0.5}}
    spec = session(CLASSIC_VARIABLES, {"area": SCAN_OBJECTIVES["area"]}, constraints=constraints, plan=SCAN_PLAN)
    movers = {"pitch1": classic["m1"], "pitch2": classic["m2"]}
    # scanned over [0.2, 1.0]: the peak at 0.3 is inside, but falls to half its height only on its right
    observation, _ = carry_out(run_engine, spec, {"pitch1": 0.6, "pitch2": 0.0}, movers, [classic["det"]])
    assert observation.status == ObservationStatus.OK and observation.error is None
    assert list(observation.values) == ["area"] and observation.ok
    gap = observation.missing["width"]
    assert gap.reason == (
        "reducer instruments.reducers:fwhm could not compute it: 'det' does not fall to half its peak on the left "
        "of the scan"
    )
    # the width is at least the scanned part: from the scan's start to the right half-height crossing
    right = CENTER + math.sqrt(2 * math.log(2)) * SIGMA
    assert gap.at_least == pytest.approx(right - 0.2, abs=0.01) and gap.at_most is None
    result = observation.as_result()
    assert math.isnan(result["width"]) and result["area"] == observation.values["area"]


def test_a_baseline_stream_is_ignored(run_engine: Any, classic: dict) -> None:
    run_engine.preprocessors.append(SupplementalData(baseline=[classic["m1"], classic["m2"]]))
    spec = session(CLASSIC_VARIABLES, {"flux": {"field": "det"}})
    movers = {"pitch1": classic["m1"], "pitch2": classic["m2"]}
    run_engine(bps.mv(classic["m1"], -0.7))  # the baseline before the run reads the old position
    observation, documents = carry_out(run_engine, spec, {"pitch1": 0.35, "pitch2": 0.0}, movers, [classic["det"]])
    descriptors = {doc["name"] for name, doc in documents if name == "descriptor"}
    assert descriptors == {"baseline", "primary"}
    assert observation.status == ObservationStatus.OK, observation.error
    assert observation.readbacks["pitch1"] == pytest.approx(0.35)  # not -0.7, from the baseline
    assert observation.values["flux"] == pytest.approx(gauss(0.35))


# -- plan factories of the user's own --------------------------------------------------------------------------


def two_readings(setpoints, movers, detectors, md, *, settle: float = 0.0):
    """A user's plan: move, wait, then count twice with the standard ``count`` plan."""
    yield from bps.mv(*[part for name, value in setpoints.items() for part in (movers[name], value)])
    yield from bps.sleep(settle)
    return (yield from bp.count([*detectors, *movers.values()], num=2, md=md))


def raising(setpoints, movers, detectors, md):
    raise RuntimeError("the hutch is open")


def not_a_plan(setpoints, movers, detectors, md):
    return bp.count  # forgot to call it


def forgets_md(setpoints, movers, detectors, md):
    return bp.count(detectors)


def test_a_plan_factory_by_import_path_runs_its_plan(run_engine: Any, classic: dict) -> None:
    spec = session(CLASSIC_VARIABLES, {"flux": {"field": "det"}}, plan={"factory": f"{HERE}:two_readings"})
    movers = {"pitch1": classic["m1"], "pitch2": classic["m2"]}
    observation, documents = carry_out(run_engine, spec, {"pitch1": 0.5, "pitch2": 0.0}, movers, [classic["det"]])
    assert observation.status == ObservationStatus.OK, observation.error
    assert observation.values["flux"] == pytest.approx(gauss(0.5))
    start = documents[0][1]
    assert start["plan_name"] == f"{HERE}:two_readings"
    assert start["num_points"] == 2 and sum(name == "event" for name, _ in documents) == 2


@pytest.mark.parametrize(
    ("factory", "reason"),
    [
        ("raising", f"InstrumentError: plan.factory: {HERE}:raising raised RuntimeError: the hutch is open"),
        ("not_a_plan", f"InstrumentError: plan.factory: {HERE}:not_a_plan returned function"),
        ("forgets_md", "the run's start document names proposal None"),
    ],
)
def test_a_bad_plan_factory_is_a_failed_observation(run_engine: Any, classic: dict, factory: str, reason: str) -> None:
    spec = session(CLASSIC_VARIABLES, {"flux": {"field": "det"}}, plan={"factory": f"{HERE}:{factory}"})
    movers = {"pitch1": classic["m1"], "pitch2": classic["m2"]}
    observation, _ = carry_out(run_engine, spec, {"pitch1": 0.5, "pitch2": 0.5}, movers, [classic["det"]])
    assert observation.status == ObservationStatus.FAILED
    assert (observation.error or "").startswith(reason)
    if factory != "forgets_md":
        assert classic["m1"].position == 0.0  # nothing moved
