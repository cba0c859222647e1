"""Sessions beyond one objective: two objectives, an outcome constraint, a largest step, through the real loop."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from agent.session import Session
from agent.store.documents import read_run_file
from agent.views.status import summarize
from simulators import HEAT_LIMIT
from tests.conftest import beamline_session

BOTORCH = {"name": "botorch", "options": {"n_initial": 4, "num_restarts": 2, "raw_samples": 64}}


def run(tmp_path: Path, write_session, data: dict[str, Any] | None = None, **overrides: Any) -> tuple[Any, ...]:
    session = Session.create(write_session(data or beamline_session(**overrides)), tmp_path / "run")
    try:
        assert session.advance() is None
        observations = session.store.observations()
        events = session.store.events()
    finally:
        session.close()
    return summarize(tmp_path / "run"), observations, events


def test_a_two_objective_session_reports_its_pareto_front(tmp_path: Path, write_session) -> None:
    status, observations, _ = run(
        tmp_path,
        write_session,
        objectives={
            "flux": {"direction": "maximize", "field": "det-flux"},
            "width": {"direction": "minimize", "field": "det-width"},
        },
        planner=BOTORCH,
        budget={"experiments": 8},
        seed=4,
    )
    assert status["experiments"] == 8
    front = status["pareto_front"]
    assert front
    scores = [(o.values["flux"], -o.values["width"]) for o in observations]
    on_front = {entry["proposal"] for entry in front}
    for observation, (flux, neg_width) in zip(observations, scores, strict=True):
        dominated = any(f >= flux and w >= neg_width and (f, w) != (flux, neg_width) for f, w in scores)
        assert (observation.proposal_id in on_front) == (not dominated)


def test_a_constrained_session_reports_the_best_feasible_point(tmp_path: Path, write_session) -> None:
    status, observations, _ = run(
        tmp_path,
        write_session,
        constraints={"heat": {"field": "det-heat", "less_than": HEAT_LIMIT}},
        planner=BOTORCH,
        budget={"experiments": 10},
        seed=6,
    )
    feasible = [o for o in observations if o.values["heat"] < HEAT_LIMIT]
    assert feasible
    assert status["infeasible"] == len(observations) - len(feasible)
    assert status["best_value"] == max(o.values["flux"] for o in feasible)
    assert all("heat" in o.values for o in observations)


@pytest.mark.parametrize("planner", [BOTORCH, {"name": "sobol"}])
def test_max_step_keeps_every_move_short_and_nothing_is_refused(
    tmp_path: Path, write_session, planner: dict[str, Any]
) -> None:
    data = beamline_session(planner=planner, budget={"experiments": 8}, seed=2, failures={"max_consecutive": 1000})
    for variable in data["variables"].values():
        variable["max_step"] = 0.4
    _, observations, events = run(tmp_path, write_session, data)
    refused = [message for _, kind, message in events if kind == "safety"]
    if planner["name"] == "botorch":  # botorch takes max_step as its max_travel: every move is short
        assert not refused
        position = {"pitch1": 0.0, "pitch2": 0.0}
        for observation in observations:
            for name, value in observation.readbacks.items():
                assert abs(value - position[name]) <= 0.4 + 1e-9
            position = dict(observation.readbacks)
        assert len(observations) == 8
    else:  # sobol ignores the instrument's position: its long moves are walked in steps, none is refused
        assert not refused
        assert len(observations) == 8 and all(o.status == "ok" for o in observations)
        walked = 0
        for observation in observations:
            start = dict(read_run_file(tmp_path / "run" / "runs" / f"{observation.proposal_id}.jsonl"))["start"]
            route = start["closedloop"].get("route", [])
            walked += bool(route)
            for name in ("pitch1", "pitch2"):
                path = [w[name] for w in route] + [observation.setpoints[name]]
                assert all(abs(b - a) <= 0.4 + 1e-9 for a, b in zip(path, path[1:], strict=False))
        assert walked
