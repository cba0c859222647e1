"""Swapping planners: any gest-api generator, by import path, runs the loop (Xopt's, when xopt is installed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.session import Session
from closedloop import ObservationStatus
from tests.conftest import beamline_session

XOPT_EI = "xopt.generators.bayesian.expected_improvement:ExpectedImprovementGenerator"


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
        wrapped = session.planner.planner
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
