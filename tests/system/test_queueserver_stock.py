"""The queueserver executor on bluesky-queueserver's OWN simulated profile, as a beamline's profile would be.

The profile (``profile_collection_sim``: ophyd.sim's ``motor1``, ``motor2``, ``motor3``, ``det4``... and Bluesky's
standard plans, none of closedloop's) is copied into a temporary startup folder as it ships, its own
``user_group_permissions.yaml`` included, with two files added: the one a beamline's profile needs for closedloop
(the RunEngine publishes its documents, as JSON, to a 0MQ proxy; see ``stock_startup_dir``), and one that gives
``motor3`` a move time (ophyd.sim's ``delay``), standing in for a slow motor so that a run is still going while
the test kills the agent. One module-scoped Redis, proxy and RE Manager serve every test and are ended afterwards.

``det4`` is a 2-D Gaussian of ``motor1`` and ``motor2`` centred at (0, 0) with height 1 and width 1.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from bluesky_queueserver_api import BPlan
from bluesky_queueserver_api.zmq import REManagerAPI

from agent.cli.queueserver import LocalQueueServer, QueueServerAddresses, stock_startup_dir
from closedloop.errors import SpecError
from closedloop.records import ObservationStatus, Proposal
from closedloop.spec import spec_from_dict
from instruments.ingest import observation_from_documents
from instruments.queueserver import QueueServerExecutor, close_api
from tests.conftest import args_for

pytestmark = [pytest.mark.system, pytest.mark.timeout(180)]
ROOT = Path(__file__).resolve().parents[2]
SLOW_MOVE = 8.0  # seconds motor3 takes to move: longer than opening the session again takes


def _det4(x: float, y: float) -> float:
    return math.exp(-(x**2 + y**2) / 2)


@pytest.fixture(scope="module")
def stock(tmp_path_factory: pytest.TempPathFactory) -> Iterator[QueueServerAddresses]:
    """Redis, the document proxy and an RE Manager on the stock simulated profile; all ended afterwards."""
    startup = stock_startup_dir(tmp_path_factory.mktemp("startup"))
    (startup / "90-slow-motor3.py").write_text(f"motor3.delay = {SLOW_MOVE}\n")
    server = LocalQueueServer(startup)
    try:
        yield server.start()
    finally:
        server.stop()


@pytest.fixture
def manager(stock: QueueServerAddresses) -> Iterator[REManagerAPI]:
    api = REManagerAPI(zmq_control_addr=stock.control, request_fail_exceptions=False)
    api.user, api.user_group = "someone-else", "primary"
    try:
        yield api
    finally:
        api.wait_for_idle(timeout=60)
        close_api(api)


def _session(addresses: QueueServerAddresses, **extra: Any) -> dict[str, Any]:
    queueserver = {"control_address": addresses.control, "documents_address": addresses.documents}
    return {
        "name": "stock-profile",
        "seed": 3,
        "variables": {
            "x": {"bounds": [-2.0, 2.0], "device": "motor1", "max_step": 1.5},
            "y": {"bounds": [-2.0, 2.0], "device": "motor2"},
        },
        "objectives": {"intensity": {"field": "det4"}},
        "budget": {"experiments": 3},
        "planner": {"name": "botorch"},
        "review": {"policy": "never"},
        "instrument": {"queueserver": {**queueserver, "detectors": ["det4"]}},
        **extra,
    }


def test_max_step_on_one_variable_every_position_is_known_and_the_session_runs(stock, manager, tmp_path) -> None:
    """positions() reads back both motors (not only the one with a max_step); the planner, which needs the whole
    position, gets it, and the session runs instead of holding at iteration 0."""
    from agent.session import Session

    manager.item_execute(BPlan("mv", "motor1", 0.4, "motor2", -0.3))
    manager.wait_for_idle(timeout=30)
    data = _session(stock)
    executor = QueueServerExecutor(args_for(spec_from_dict(data), "s-positions"))
    try:
        assert executor.positions() == {"x": pytest.approx(0.4), "y": pytest.approx(-0.3)}
    finally:
        executor.close()

    path = tmp_path / "session.yaml"
    path.write_text(yaml.safe_dump(data))
    with Session.create(path, tmp_path / "run") as session:
        assert session.advance() is None
        observations = session.store.observations()
    assert [o.status for o in observations] == [ObservationStatus.OK] * 3
    previous = {"x": 0.4}
    for observation in observations:  # each move within max_step of where motor1 was
        assert abs(observation.readbacks["x"] - previous["x"]) <= 1.5 + 1e-9
        previous = observation.readbacks
        point = observation.readbacks
        assert observation.values["intensity"] == pytest.approx(_det4(point["x"], point["y"]), rel=1e-6)


def test_a_move_longer_than_max_step_is_walked_in_mv_items_not_refused(stock, manager) -> None:
    """From x = 0.4 to -1.9 (2.3 with max_step 1.5): the gate lets it through, the manager gets one ``mv`` to the
    midpoint, then the run at the setpoint."""
    from instruments.safety import gate

    manager.item_execute(BPlan("mv", "motor1", 0.4, "motor2", -0.3))
    manager.wait_for_idle(timeout=30)
    spec = spec_from_dict(_session(stock))
    executor = QueueServerExecutor(args_for(spec, "s-walk"))
    try:
        setpoints = gate(spec, {"x": -1.9, "y": 0.2}, executor)  # refused before: a move of 2.3 exceeds max_step
        before = len(manager.history_get(reload=True)["items"])
        proposal = Proposal(iteration=0, setpoints=setpoints)
        record = executor.run(proposal)
        assert record.error is None
        observation = observation_from_documents(spec, proposal, record.documents)
        assert observation.status == ObservationStatus.OK, observation.error
        assert observation.readbacks == pytest.approx({"x": -1.9, "y": 0.2})
    finally:
        executor.close()
    items = manager.history_get(reload=True)["items"][before:]
    moves = [(item["name"], item["args"]) for item in items if item["name"] == "mv"]
    assert moves == [("mv", ["motor1", pytest.approx(-0.75)])]  # one waypoint, halfway: two legs of 1.15
    assert items[-1]["kwargs"]["md"]["proposal_id"] == proposal.id


def test_plan_scan_with_a_reducer_submits_the_whole_scan(stock, manager) -> None:
    """plan: scan becomes Bluesky's scan of motor1 over the range, motor2 held at its setpoint and read at every
    point; the peak reducer finds det4's centre, and the motor is left at the scan's end."""
    data = _session(
        stock,
        objectives={"centre": {"field": "det4", "reducer": "instruments.reducers:peak_position"}},
        plan={"name": "scan", "options": {"variable": "x", "width": 1.5, "num": 11}},
    )
    spec = spec_from_dict(data)
    executor = QueueServerExecutor(args_for(spec, "s-scan"))
    try:
        assert executor.plan == "scan"  # the stock profile has no closedloop_scan
        proposal = Proposal(iteration=0, setpoints={"x": 0.1, "y": 0.5})
        record = executor.run(proposal)
        assert record.error is None
        observation = observation_from_documents(spec, proposal, record.documents, record.error)
        assert observation.status == ObservationStatus.OK, observation.error
        events = [doc for name, doc in record.documents if name == "event"]
        assert len(events) == 11
        assert [e["data"]["motor2"] for e in events] == [pytest.approx(0.5)] * 11
        assert events[0]["data"]["motor1"] == pytest.approx(-0.65) and events[-1]["data"]["motor1"] == pytest.approx(
            0.85
        )
        assert abs(observation.values["centre"]) < 0.05  # det4 peaks at motor1 = 0
        entry = manager.history_get(reload=True)["items"][-1]
        assert (entry["name"], entry["kwargs"]["num"], entry["result"]["exit_status"]) == ("scan", 11, "completed")
        assert executor.positions() == {"x": pytest.approx(0.85), "y": pytest.approx(0.5)}
    finally:
        executor.close()


@pytest.mark.parametrize("section", ["suspenders", "publish", "tiled"])
def test_run_engine_options_with_a_queueserver_are_refused_naming_where_they_belong(stock, section) -> None:
    """Suspenders, publishing and Tiled are the RunEngine's, and the manager owns it: refused at load, never
    silently ignored."""
    given = {
        "suspenders": [{"signal": "ring.current", "below": 100.0}],
        "publish": {"address": "localhost:5577"},
        "tiled": {"url": "http://localhost:8000"},
    }[section]
    expected = {
        "suspenders": r"suspenders: with a queueserver instrument, install suspenders in the manager's startup profile",
        "publish": r"publish: with a queueserver instrument, the manager's RunEngine already publishes",
        "tiled": r"tiled: with a queueserver instrument, subscribe a Tiled writer",
    }[section]
    with pytest.raises(SpecError, match=expected) as caught:
        spec_from_dict(_session(stock, **{section: given}))
    assert "\n" not in str(caught.value)


def _start_killable(path: Path, folder: Path) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "agent.cli", "run", str(path), "--dir", str(folder), "--yes"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
        start_new_session=True,
    )  # fmt: skip


def _kill_when_ours_runs(process: subprocess.Popen[bytes], api: REManagerAPI, runs: Path) -> str:
    """SIGKILL the session process once the manager runs its item and the run's start document has reached the
    run's file (the motor is moving); the proposal id of that item."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        running = api.queue_get(reload=True).get("running_item") or {}
        proposal = ((running.get("kwargs") or {}).get("md") or {}).get("proposal_id")
        run_file = runs / f"{proposal}.jsonl"
        if proposal and running.get("name") != "count" and run_file.exists() and run_file.read_text().strip():
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
            return str(proposal)
        assert process.poll() is None, "the session process ended before its run started"
        time.sleep(0.05)
    raise AssertionError("the manager never ran the session's item")


@pytest.mark.parametrize("resume_when", ["still running", "finished"])
def test_a_run_the_manager_carries_on_with_after_the_agent_is_killed(stock, manager, tmp_path, resume_when) -> None:
    """SIGKILL the session while the manager moves motor3; resume. Still running: the rest of the run's documents
    are collected and the measurement is ingested. Finished meanwhile: the documents sent while no one listened
    are gone (the manager keeps none), and the run is recorded interrupted saying so, with the manager's result."""
    from agent.session import Session

    data = _session(stock, planner={"name": "sobol"}, budget={"experiments": 1})
    data["variables"] = {
        "z": {"bounds": [1.0, 2.0], "device": "motor3"},
        "y": {"bounds": [-1.0, 1.0], "device": "motor2"},
    }
    data["objectives"] = {"intensity": {"field": "det4"}}
    path = tmp_path / "session.yaml"
    path.write_text(yaml.safe_dump(data))
    folder = tmp_path / "run"
    process = _start_killable(path, folder)
    try:
        proposal_id = _kill_when_ours_runs(process, manager, folder / "runs")
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    if resume_when == "finished":
        manager.wait_for_idle(timeout=60)
    with Session.open(folder) as session:
        assert session.advance() is None
        observation = session.store.observation(proposal_id)
        audit = [(kind, text) for _, kind, text in session.store.events()]
    assert observation is not None
    history = manager.history_get(reload=True)["items"]
    ours = [e for e in history if (e.get("kwargs") or {}).get("md", {}).get("proposal_id") == proposal_id]
    assert len(ours) == 1 and ours[0]["result"]["exit_status"] == "completed"  # it ran once, to the end
    if resume_when == "still running":
        assert observation.status == ObservationStatus.OK, observation.error
        assert observation.run_uid == ours[0]["result"]["run_uids"][0]
        assert 0.0 < observation.values["intensity"] <= 1.0
        assert any(kind == "recovered" for kind, _ in audit)
        lines = (folder / "runs" / f"{proposal_id}.jsonl").read_text().splitlines()
        assert [json.loads(line)[0] for line in lines] == ["start", "descriptor", "event", "stop"]
    else:
        assert observation.status == ObservationStatus.INTERRUPTED
        run_uid = ours[0]["result"]["run_uids"][0]
        assert f"the RE Manager finished it (completed, run {run_uid})" in (observation.error or "")
        assert "the measurement is lost" in (observation.error or "")
