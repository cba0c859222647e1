"""Swapping planners: any gest-api generator, by import path, runs the loop (Xopt's, when xopt is installed)."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

from agent.session import Session
from agent.views.status import PLANNER_WAITS, summarize
from closedloop import ObservationStatus, SessionError
from tests.conftest import beamline_session
from tests.integration.test_pipeline import two_instruments

XOPT_EI = "xopt.generators.bayesian.expected_improvement:ExpectedImprovementGenerator"


@pytest.fixture(autouse=True)
def torch_dtype_kept() -> Iterator[None]:
    """Xopt sets torch's default dtype for the whole process: put it back for the tests after these."""
    dtype = torch.get_default_dtype()
    yield
    torch.set_default_dtype(dtype)


def test_an_xopt_generator_runs_a_session_by_import_path(tmp_path: Path, write_session) -> None:
    pytest.importorskip("xopt", reason="xopt is in the dev extras")
    data = beamline_session(
        budget={"experiments": 7},
        planner={"name": XOPT_EI, "initial_design": 4},
        seed=5,
    )
    session = Session.create(write_session(data), tmp_path / "run")
    try:
        assert session.advance() is None
        observations = session.store.observations()
        proposals = session.store.proposals()
        wrapped = session.planner.planner.planner  # WarmStart, then Foreign, then Xopt's generator
    finally:
        session.close()
    assert type(wrapped).__name__ == "ExpectedImprovementGenerator"
    assert len(observations) == 7 and all(o.status == ObservationStatus.OK for o in observations)
    # Xopt saw every result: the 4 design points and its own 3
    assert len(wrapped.data) == 7
    assert all(-1.5 <= p.setpoints["pitch1"] <= 1.5 and -1.5 <= p.setpoints["pitch2"] <= 1.5 for p in proposals)


def test_an_xopt_generator_without_a_design_fails_cleanly(tmp_path: Path, write_session) -> None:
    """Xopt's Bayesian generators cannot start without data: the session holds for an operator, saying to set the
    initial design; nothing runs, and it never dies of it."""
    pytest.importorskip("xopt", reason="xopt is in the dev extras")
    data = beamline_session(planner={"name": XOPT_EI})
    session = Session.create(write_session(data), tmp_path / "run")
    try:
        checkpoint = session.advance()
        assert checkpoint is not None and checkpoint.kind == "failures"
        assert "cannot propose without data" in checkpoint.reason and "planner.initial_design" in checkpoint.reason
        assert session.outcome == "waiting"
        assert session.store.count_observations() == 0
    finally:
        session.close()


NELDER_MEAD = "xopt.generators.sequential.neldermead:NelderMeadGenerator"


def proposed_points(session: Session) -> list[tuple[float, ...]]:
    return [tuple(p.setpoints.values()) for p in session.store.proposals()]


def test_xopts_nelder_mead_pipelined_proposes_what_it_proposes_in_turn(tmp_path: Path, write_session) -> None:
    """A generator that makes one point at a time gets each result before its next point: pipelining (the
    default) waits for the run instead of failing the session, and the points are the very same."""
    pytest.importorskip("xopt", reason="xopt is in the dev extras")
    points = {}
    for pipeline in (True, False):
        data = beamline_session(
            budget={"experiments": 9}, planner={"name": NELDER_MEAD, "initial_design": 3}, pipeline=pipeline
        )
        with Session.create(write_session(data, f"{pipeline}.yaml"), tmp_path / str(pipeline)) as session:
            assert session.advance() is None
            assert [o.status for o in session.store.observations()] == [ObservationStatus.OK] * 9
            points[pipeline] = proposed_points(session)
    assert points[True] == points[False]


def test_status_says_why_an_instrument_idles_beside_a_one_at_a_time_planner(tmp_path: Path, write_session) -> None:
    """Nelder-Mead on two instruments: one runs while the other waits for the planner's next point, and status
    (read from the folder by another thread, as ``closedloop status`` reads it) says why; while a run goes on and
    no instrument idles, nothing is said."""
    pytest.importorskip("xopt", reason="xopt is in the dev extras")
    data = two_instruments(exposure=0.3, planner={"name": NELDER_MEAD, "initial_design": 3}, seed=2)
    data["budget"] = {"experiments": 7}
    seen: list[dict[str, Any]] = []
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            with contextlib.suppress(SessionError):  # the store is still being made
                seen.append(summarize(tmp_path / "run")["instruments"])
            time.sleep(0.05)

    watcher = threading.Thread(target=watch)
    with Session.create(write_session(data), tmp_path / "run") as session:
        watcher.start()
        try:
            assert session.advance() is None
        finally:
            done.set()
            watcher.join()
    states = [sorted((lane["state"], lane["waiting"]) for lane in lanes.values()) for lanes in seen]
    # said of the idle one while the other runs (a snapshot taken as a run ends may show both idle)
    assert [("idle", PLANNER_WAITS), ("running", None)] in states, "status never said why an instrument idled"
    assert all(lane[1] is None for lanes in states for lane in lanes if lane[0] != "idle")
    assert summarize(tmp_path / "run")["instruments"]["hutch-a"]["waiting"] is None  # finished: nothing waits


def test_xopts_ei_keeps_several_instruments_busy_on_distinct_points(tmp_path: Path, write_session) -> None:
    """Four instruments: Xopt's EI, which cannot start on no data and knows nothing of the points in flight, is
    asked once the design's results are in, and never for a point that runs on another instrument."""
    pytest.importorskip("xopt", reason="xopt is in the dev extras")
    options = {"noise": 5.0, "exposure": 0.2}
    data = beamline_session(
        budget={"experiments": 11}, planner={"name": XOPT_EI, "initial_design": 6}, pipeline=True, seed=1
    )
    del data["instrument"]
    data["instruments"] = [{"name": f"hutch-{k}", "simulator": "beamline", "options": options} for k in "abcd"]
    with Session.create(write_session(data), tmp_path / "run") as session:
        assert session.advance() is None
        observations = session.store.observations()
        points = proposed_points(session)
        wrapped = session.planner.planner
    assert [o.status for o in observations] == [ObservationStatus.OK] * 11
    assert len(wrapped.data) == 11 and wrapped.out == 0  # every result reached it; none is left out
    closest = min(max(abs(a - b) for a, b in zip(p, q, strict=True)) for i, p in enumerate(points) for q in points[:i])
    assert closest > 3e-3  # SAME_POINT of the 3 mrad range: no point ran twice
