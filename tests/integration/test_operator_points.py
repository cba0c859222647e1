"""Points an operator queues (``closedloop add``) run before the planner's own, through the real loop.

The sessions here use the real graph, RunEngine, simulated beamline and SQLite files; the CLI runs in its own
process, as an operator in a second terminal would run it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from agent.session import Session
from agent.views.audit import audit_trail
from closedloop import Decision, Verdict
from tests.conftest import beamline_session
from tests.integration.test_cli import closedloop

MANUAL = {"name": "manual", "options": {"points": [{"pitch1": 0.1, "pitch2": 0.2}, {"pitch1": -0.3, "pitch2": 0.4}]}}


@contextmanager
def opened(folder: Path, session_file: Path | None = None) -> Iterator[Session]:
    """A new session from ``session_file`` in ``folder``, or the one already there, closed afterwards."""
    session = Session.create(session_file, folder) if session_file else Session.open(folder)
    try:
        yield session
    finally:
        session.close()


def readbacks(session: Session) -> list[tuple[float, float]]:
    return [(round(o.readbacks["pitch1"], 6), round(o.readbacks["pitch2"], 6)) for o in session.store.observations()]


def test_a_queued_point_is_proposed_first_and_measured_where_asked(tmp_path: Path, write_session) -> None:
    path = write_session(beamline_session(review={"policy": "always"}, budget={"experiments": 3}))
    with opened(tmp_path / "run", path) as session:
        added = closedloop("add", str(tmp_path / "run"), "pitch1=0.35", "pitch2=-0.6")
        assert added.returncode == 0, added.stderr
        checkpoint = session.advance()
        assert checkpoint is not None and checkpoint.kind == "review"
        (shown,) = checkpoint.proposals
        assert shown["origin"] == "operator"
        assert shown["setpoints"] == {"pitch1": 0.35, "pitch2": -0.6}
        checkpoint = session.answer(Decision(verdict=Verdict.APPROVE))
        assert readbacks(session) == [(0.35, -0.6)]
        assert session.store.queued_points() == []  # taken, not proposed twice
        assert checkpoint is not None and checkpoint.proposals[0]["origin"] == "planner"


def test_a_manual_session_waits_for_the_operator_when_its_points_run_out(tmp_path: Path, write_session) -> None:
    path = write_session(beamline_session(planner=MANUAL, budget={"experiments": 4}))
    folder = tmp_path / "run"
    with opened(folder, path) as session:
        checkpoint = session.advance()
        assert checkpoint is not None and checkpoint.kind == "points"
        assert "0 queued point(s) left" in checkpoint.reason
        assert readbacks(session) == [(0.1, 0.2), (-0.3, 0.4)]
        # going on with nothing queued asks again, and nothing runs
        checkpoint = session.answer(Decision(verdict=Verdict.APPROVE))
        assert checkpoint is not None and checkpoint.kind == "points"
        assert session.store.count_observations() == 2

        (folder / "more.csv").write_text("pitch1,pitch2\n0.5,0.5\n-0.5,-0.25\n")
        added = closedloop("add", str(folder), "--file", str(folder / "more.csv"), "--json")
        assert added.returncode == 0, added.stderr
        assert json.loads(added.stdout)["waiting"] == 2
        assert session.answer(Decision(verdict=Verdict.APPROVE)) is None
        assert session.outcome == "finished"
        assert readbacks(session) == [(0.1, 0.2), (-0.3, 0.4), (0.5, 0.5), (-0.5, -0.25)]
        origins = [p.origin for p in session.store.proposals()]
        assert origins == ["planner", "planner", "operator", "operator"]


def test_stop_while_waiting_for_points_then_add_and_resume_carries_on(tmp_path: Path, write_session) -> None:
    path = write_session(beamline_session(planner=MANUAL, budget={"experiments": 3}))
    folder = tmp_path / "run"
    with opened(folder, path) as session:
        assert session.advance() is not None
        assert session.answer(Decision(verdict=Verdict.STOP)) is None
        assert session.outcome == "stopped"
        assert session.store.count_observations() == 2
    assert closedloop("add", str(folder), "pitch1=0.25", "pitch2=-0.5").returncode == 0
    resumed = closedloop("resume", str(folder), "--yes", "--json")
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout)["state"] == "finished"
    with opened(folder) as session:
        assert readbacks(session) == [(0.1, 0.2), (-0.3, 0.4), (0.25, -0.5)]


def test_a_session_waiting_for_points_wakes_when_they_are_added_through_the_channel(
    tmp_path: Path, write_session
) -> None:
    import time

    path = write_session(beamline_session(planner=MANUAL, budget={"experiments": 3}))
    folder = tmp_path / "run"
    # --yes and no terminal: the session process waits for points from the control channel instead of leaving
    first = closedloop("run", str(path), "--dir", str(folder), "--yes", "--detach")
    assert first.returncode == 0, first.stderr
    deadline = time.monotonic() + 120
    while True:
        status = json.loads(closedloop("status", str(folder), "--json").stdout)
        if status["state"] == "waiting":
            break
        assert time.monotonic() < deadline, status
        time.sleep(0.5)
    assert (status["experiments"], status["queued"]) == (2, 0)

    assert closedloop("add", str(folder), "pitch1=0.25", "pitch2=-0.5").returncode == 0
    while json.loads(closedloop("status", str(folder), "--json").stdout)["state"] != "finished":
        assert time.monotonic() < deadline
        time.sleep(0.5)
    with opened(folder) as session:
        assert readbacks(session) == [(0.1, 0.2), (-0.3, 0.4), (0.25, -0.5)]
    assert any(e["what"] == "queue" and e["via"] == "channel" for e in audit_trail(folder))


def test_a_point_outside_the_limits_is_refused_and_nothing_is_queued(tmp_path: Path, write_session) -> None:
    path = write_session(beamline_session(budget={"experiments": 2}))
    folder = tmp_path / "run"
    assert closedloop("run", str(path), "--dir", str(folder), "--yes").returncode == 0
    cases = [
        (["pitch1=2.5", "pitch2=0"], "setpoints.pitch1: 2.5 is outside the hard limits [-2.0, 2.0]"),
        (["pitch1=0.1"], "setpoints.pitch2: missing"),
        (["pitch1=0.1", "pitch2=0", "pitch3=1"], "setpoints.pitch3: not a variable of this session"),
        (["pitch1=abc", "pitch2=0"], "setpoints.pitch1: 'abc' is not a number"),
        (["pitch1"], "'pitch1' is not NAME=VALUE"),
    ]
    for words, message in cases:
        refused = closedloop("add", str(folder), *words)
        assert refused.returncode == 2, words
        assert message in refused.stderr, refused.stderr
        assert len(refused.stderr.strip().splitlines()) == 1
    (folder / "bad.yaml").write_text("- {pitch1: 0.1, pitch2: 0.1}\n- {pitch1: 0.1, pitch2: 9}\n")
    refused = closedloop("add", str(folder), "--file", str(folder / "bad.yaml"))
    assert refused.returncode == 2
    assert "point 2: setpoints.pitch2: 9.0 is outside the hard limits [-2.0, 2.0] (no point was queued)" in " ".join(
        refused.stderr.split()
    )
    assert json.loads(closedloop("status", str(folder), "--json").stdout)["queued"] == 0
