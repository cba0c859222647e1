"""The queueserver executor against real processes: Redis, bluesky-0MQ-proxy and an RE Manager on loopback ports.

One module-scoped manager (the bundled startup folder ``simulators/qserver``, detector noise 0, so every value
can be checked against the physics) serves every test; its fixture ends every process it started, even when a
test fails. Its user groups stand in for beamline profiles without closedloop's plan (see the folder's
``user_group_permissions.yaml``).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from bluesky_queueserver_api import BPlan
from bluesky_queueserver_api.zmq import REManagerAPI

from agent.cli.queueserver import LocalQueueServer, QueueServerAddresses, free_port
from closedloop.errors import InstrumentError
from closedloop.records import ObservationStatus, Proposal
from closedloop.spec import SessionSpec, spec_from_dict
from instruments.ingest import observation_from_documents
from instruments.protocols import Executes
from instruments.queueserver import QueueServerExecutor, close_api
from planners.sobol import SobolPlanner
from simulators.physics import beamline_flux, mirror_heat
from tests.conftest import args_for

pytestmark = [pytest.mark.system, pytest.mark.timeout(120)]
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def qserver() -> Iterator[QueueServerAddresses]:
    """A running Redis, document proxy and RE Manager (environment open); all ended afterwards."""
    server = LocalQueueServer(noise=0.0)
    try:
        yield server.start()
    finally:
        server.stop()


@pytest.fixture
def manager(qserver: QueueServerAddresses) -> Iterator[REManagerAPI]:
    """A second client of the manager ("someone else"); the queue is left empty after each test."""
    api = REManagerAPI(zmq_control_addr=qserver.control, request_fail_exceptions=False)
    api.user, api.user_group = "someone-else", "primary"
    try:
        yield api
    finally:
        api.wait_for_idle(timeout=30)
        api.queue_clear()
        close_api(api)


def _spec(qserver: QueueServerAddresses, variables: dict[str, Any] | None = None, **qs: Any) -> SessionSpec:
    queueserver = {"control_address": qserver.control, "documents_address": qserver.documents, "detectors": ["det"]}
    queueserver.update(qs)
    return spec_from_dict(
        {
            "variables": variables
            or {
                "pitch1": {"bounds": [-1.5, 1.5], "device": "m1", "max_step": 5.0},
                "pitch2": {"bounds": [-1.5, 1.5], "device": "m2"},
            },
            "objectives": {"flux": {"direction": "maximize", "field": "det-flux"}},
            "constraints": {"heat": {"less_than": 3.0, "field": "det-heat"}},
            "budget": {"experiments": 10},
            "instrument": {"queueserver": queueserver},
        }
    )


def _history(api: REManagerAPI) -> list[dict[str, Any]]:
    return list(api.history_get(reload=True)["items"])


def _appender(documents: list[tuple[str, dict[str, Any]]]) -> Any:
    return lambda name, doc: documents.append((name, doc))


def _check_physics(spec: SessionSpec, proposal: Proposal, documents: list[tuple[str, dict[str, Any]]]) -> None:
    observation = observation_from_documents(spec, proposal, documents)
    assert observation.status == ObservationStatus.OK, observation.error
    for name, value in proposal.setpoints.items():
        assert observation.readbacks[name] == pytest.approx(value, abs=1e-9)
    p1, p2 = observation.readbacks["pitch1"], observation.readbacks["pitch2"]
    assert observation.values["flux"] == pytest.approx(beamline_flux(p1, p2), rel=1e-12)
    assert observation.values["heat"] == pytest.approx(mirror_heat(p1, p2), rel=1e-12)


def test_ten_proposals_run_on_the_manager_and_match_the_physics(qserver, manager) -> None:
    spec = _spec(qserver)
    executor = QueueServerExecutor(args_for(spec, "s-qs"))
    try:
        assert isinstance(executor, Executes)
        assert executor.plan == "closedloop_point"
        manager.item_execute(BPlan("mv", "m1", 0.25, "m2", -0.5))  # someone else leaves the mirrors somewhere
        manager.wait_for_idle(timeout=30)
        assert executor.positions() == {"pitch1": pytest.approx(0.25), "pitch2": pytest.approx(-0.5)}  # by a count

        planner = SobolPlanner(spec.vocs(), seed=11)
        history_before = len(_history(manager))
        for iteration, point in enumerate(planner.suggest(10)):
            setpoints = {name: float(point[name]) for name in spec.variables}
            proposal = Proposal(iteration=iteration, setpoints=setpoints)
            streamed: list[tuple[str, dict[str, Any]]] = []
            record = executor.run(proposal, md={"operator": "qs-test"}, on_document=_appender(streamed))
            assert record.error is None and not record.aborted_by_operator
            assert streamed == record.documents
            assert [name for name, _ in record.documents] == ["start", "descriptor", "event", "stop"]
            start = record.documents[0][1]
            assert (start["proposal_id"], start["session_id"], start["operator"]) == (proposal.id, "s-qs", "qs-test")
            _check_physics(spec, proposal, record.documents)
            assert executor.positions() == {name: pytest.approx(value) for name, value in setpoints.items()}
            entry = _history(manager)[-1]  # the manager's own record names the proposal and the run
            assert entry["kwargs"]["md"]["proposal_id"] == proposal.id
            assert entry["result"]["exit_status"] == "completed"
            assert entry["result"]["run_uids"] == [start["uid"]]
        assert len(_history(manager)) == history_before + 10  # positions came from the runs: no extra counts
    finally:
        executor.close()


@pytest.mark.parametrize(
    ("group", "plan", "names"), [("standard_plans", "scan", ["scan"]), ("move_and_count", "count", ["mv", "count"])]
)
def test_a_profile_without_closedloops_plan_gets_standard_plans(qserver, manager, group, plan, names) -> None:
    spec = _spec(qserver, user_group=group)
    executor = QueueServerExecutor(args_for(spec, "s-std"))
    try:
        assert executor.plan == plan
        proposal = Proposal(iteration=0, setpoints={"pitch1": -0.4, "pitch2": 0.7})
        history_before = len(_history(manager))
        record = executor.run(proposal)
        assert record.error is None
        _check_physics(spec, proposal, record.documents)
        assert record.documents[0][1]["plan_name"] == plan
        assert [entry["name"] for entry in _history(manager)[history_before:]] == names
    finally:
        executor.close()


@pytest.mark.parametrize(("group", "plan"), [("primary", "closedloop_scan"), ("standard_plans", "scan")])
def test_plan_scan_is_one_whole_scan_on_the_manager(qserver, manager, group, plan) -> None:
    """plan: scan becomes closedloop's own scan plan where the profile has it, else Bluesky's scan; either way one
    run of ``num`` events with both mirrors read at every point, the scanned one across the range."""
    spec = _spec(qserver, user_group=group)
    data = spec.model_dump(mode="json", exclude_none=True)
    data["plan"] = {"name": "scan", "options": {"variable": "pitch1", "width": 0.8, "num": 5}}
    data["objectives"]["flux"]["reducer"] = "instruments.reducers:integrated_intensity"
    spec = spec_from_dict(data)
    executor = QueueServerExecutor(args_for(spec, "s-scan"))
    try:
        assert executor.plan == plan
        proposal = Proposal(iteration=0, setpoints={"pitch1": 0.2, "pitch2": -0.3})
        record = executor.run(proposal)
        assert record.error is None
        observation = observation_from_documents(spec, proposal, record.documents)
        assert observation.status == ObservationStatus.OK, observation.error
        events = [doc["data"] for name, doc in record.documents if name == "event"]
        assert [round(e["m1"], 9) for e in events] == [-0.2, 0.0, 0.2, 0.4, 0.6]
        assert all(e["m2"] == pytest.approx(-0.3) for e in events)
        assert _history(manager)[-1]["name"] == plan
        assert executor.positions() == {"pitch1": pytest.approx(0.6), "pitch2": pytest.approx(-0.3)}
    finally:
        executor.close()


def test_a_plan_or_device_the_manager_lacks_is_named(qserver) -> None:
    with pytest.raises(InstrumentError, match=r"queueserver.plan: .*no plan 'tune_everything'"):
        QueueServerExecutor(args_for(_spec(qserver, plan="tune_everything"), "s"))
    with pytest.raises(InstrumentError, match=r"none of 'closedloop_point', 'scan', or 'mv' with 'count'"):
        QueueServerExecutor(args_for(_spec(qserver, user_group="count_only"), "s"))
    with pytest.raises(InstrumentError, match=r"queueserver.detectors.0: the RE Manager has no device 'diode'"):
        QueueServerExecutor(args_for(_spec(qserver, detectors=["diode"]), "s"))


def test_a_manager_or_proxy_that_is_not_there_fails_in_one_line_within_the_timeout(qserver) -> None:
    nobody = f"tcp://127.0.0.1:{free_port()}"
    for field, expected in (
        ("control_address", "no RE Manager answered"),
        ("documents_address", "no 0MQ document proxy"),
    ):
        started = time.monotonic()
        with pytest.raises(InstrumentError, match=f"queueserver.{field}: {expected} at {nobody}") as caught:
            QueueServerExecutor(args_for(_spec(qserver, timeout=1.0, **{field: nobody}), "s"))
        assert time.monotonic() - started < 5.0
        assert "\n" not in str(caught.value)


def test_a_failing_plan_is_a_failed_record_and_is_not_run_again(qserver, manager) -> None:
    spec = _spec(qserver)
    executor = QueueServerExecutor(args_for(spec, "s-fail"))
    try:
        assert manager.item_execute(BPlan("mv", "det.fail_next", 1))["success"]  # the next trigger fails
        manager.wait_for_idle(timeout=30)
        proposal = Proposal(iteration=0, setpoints={"pitch1": 0.3, "pitch2": 0.3})
        record = executor.run(proposal)
        assert not record.aborted_by_operator
        assert record.error is not None and "injected detector fault" in record.error
        assert dict(record.documents)["stop"]["exit_status"] == "fail"
        observation = observation_from_documents(spec, proposal, record.documents, record.error)
        assert observation.status == ObservationStatus.FAILED
        assert _history(manager)[-1]["result"]["exit_status"] == "failed"
        assert manager.status(reload=True)["items_in_queue"] == 0  # the manager re-queued it; we removed it
        assert executor.run(Proposal(iteration=1, setpoints={"pitch1": 0.3, "pitch2": 0.3})).error is None
    finally:
        executor.close()


@pytest.mark.parametrize(
    ("verb", "exit_status", "stop_status"), [("abort", "aborted", "abort"), ("stop", "stopped", "success")]
)
def test_abort_and_stop_end_the_run_and_the_item_never_runs_again(
    qserver, manager, verb, exit_status, stop_status
) -> None:
    spec = _spec(qserver, variables={"x": {"bounds": [0.0, 20.0], "device": "slow_m"}})
    executor = QueueServerExecutor(args_for(spec, "s-abort"))
    started = threading.Event()
    try:
        proposal = Proposal(iteration=0, setpoints={"x": 10.0})  # slow_m moves at 1 unit/s: a 10 s move

        def on_document(name: str, doc: dict[str, Any]) -> None:
            if name == "start":
                started.set()

        interrupt = getattr(executor, verb)
        aborter = threading.Thread(target=lambda: started.wait(10) and interrupt("operator: wrong sample"))
        aborter.start()
        began = time.monotonic()
        record = executor.run(proposal, on_document=on_document)
        aborter.join()
        assert time.monotonic() - began < 8.0
        assert record.aborted_by_operator and "operator: wrong sample" in (record.error or "")
        stop = dict(record.documents)["stop"]
        assert stop["exit_status"] == stop_status  # a stopped run closes as a success, with no event
        assert observation_from_documents(spec, proposal, record.documents, record.error).status == "failed"
        assert _history(manager)[-1]["result"]["exit_status"] == exit_status
        status = manager.status(reload=True)
        assert status["items_in_queue"] == 0 and status["manager_state"] == "idle"  # the re-queued copy is gone

        after = executor.run(Proposal(iteration=1, setpoints={"x": 0.5}))  # the next proposal runs as usual
        assert after.error is None and not after.aborted_by_operator
    finally:
        executor.close()


def test_a_busy_manager_is_waited_for_and_others_items_are_left_alone(qserver, manager) -> None:
    spec = _spec(qserver)
    executor = QueueServerExecutor(args_for(spec, "s-busy"))
    try:
        manager.item_add(BPlan("count", ["det"], num=12, delay=0.1, md={"owner": "someone-else"}))
        manager.queue_start()
        manager.wait_for_idle_or_running(timeout=10)
        proposal = Proposal(iteration=0, setpoints={"pitch1": 0.1, "pitch2": -0.2})
        record = executor.run(proposal)
        assert record.error is None
        theirs, ours = _history(manager)[-2:]
        assert theirs["kwargs"]["md"] == {"owner": "someone-else"}
        assert theirs["result"]["exit_status"] == "completed"  # not interrupted
        assert ours["result"]["time_start"] >= theirs["result"]["time_stop"]
        _check_physics(spec, proposal, record.documents)

        waiting = manager.item_add(BPlan("count", ["det"], num=1, md={"owner": "someone-else"}))["item"]
        record = executor.run(Proposal(iteration=1, setpoints={"pitch1": 0.2, "pitch2": -0.3}))
        assert record.error is None
        assert [item["item_uid"] for item in manager.queue_get(reload=True)["items"]] == [waiting["item_uid"]]
        assert _history(manager)[-1]["kwargs"]["md"]["proposal_id"] == record.documents[0][1]["proposal_id"]
    finally:
        executor.close()


def test_an_abort_while_waiting_for_a_busy_manager_submits_nothing(qserver, manager) -> None:
    executor = QueueServerExecutor(args_for(_spec(qserver), "s-wait"))
    try:
        manager.item_add(BPlan("count", ["det"], num=15, delay=0.1, md={"owner": "someone-else"}))
        manager.queue_start()
        manager.wait_for_idle_or_running(timeout=10)
        threading.Timer(0.3, executor.abort, args=("operator: not now",)).start()
        record = executor.run(Proposal(iteration=0, setpoints={"pitch1": 0.0, "pitch2": 0.0}))
        assert record.aborted_by_operator and "operator: not now" in (record.error or "") and not record.documents
        manager.wait_for_idle(timeout=30)
        history = _history(manager)
        assert history[-1]["kwargs"]["md"] == {"owner": "someone-else"}  # theirs ran to the end; ours never ran
        assert history[-1]["result"]["exit_status"] == "completed"
        assert manager.status(reload=True)["items_in_queue"] == 0
    finally:
        executor.close()


def test_the_start_command_prints_the_addresses_and_ends_what_it_started(tmp_path) -> None:
    ports = [str(free_port()) for _ in range(4)]
    options = ["--control-port", "--info-port", "--proxy-in-port", "--proxy-out-port"]
    command = [sys.executable, "-m", "agent.cli.queueserver", "start", "--json", "--noise", "0"]
    command += [part for pair in zip(options, ports, strict=True) for part in pair]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=tmp_path)
    pids: dict[str, int] = {}
    try:
        assert process.stdout is not None
        printed = json.loads(process.stdout.readline())
        pids = printed["pids"]
        assert set(pids) == {"redis", "proxy", "manager"}
        assert printed["control"] == f"tcp://127.0.0.1:{ports[0]}"
        assert printed["documents"] == f"tcp://127.0.0.1:{ports[3]}"
        api = REManagerAPI(zmq_control_addr=printed["control"], timeout_recv=2.0)
        try:
            assert api.status()["worker_environment_exists"] is True
        finally:
            close_api(api)
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        finally:
            if process.poll() is None:
                process.kill()
            process.communicate()
    assert process.returncode == 0
    for name, pid in pids.items():  # each was started in its own process group, led by it
        assert not _group_alive(pid), f"{name} (process group {pid}) still runs"


def _group_alive(pgid: int) -> bool:
    """Whether any live (not zombie) process is left in process group ``pgid`` (the RE worker included)."""
    for stat_file in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat_file.read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            return True
    return False


def test_a_ten_experiment_session_runs_through_the_manager_from_the_cli(qserver, tmp_path: Path) -> None:
    """The whole loop (planner, review, safety gate, store, resume) with the manager as the instrument."""
    import yaml

    queueserver = {"control_address": qserver.control, "documents_address": qserver.documents, "detectors": ["det"]}
    session = {
        "name": "qserver-session",
        "seed": 4,
        "variables": {
            "pitch1": {"bounds": [-1.5, 1.5], "hard_limits": [-2.0, 2.0], "device": "m1", "max_step": 4.0},
            "pitch2": {"bounds": [-1.5, 1.5], "hard_limits": [-2.0, 2.0], "device": "m2"},
        },
        "objectives": {"flux": {"field": "det-flux"}},
        "budget": {"experiments": 10},
        "planner": {"name": "sobol"},
        "instrument": {"queueserver": queueserver},
        "review": {"policy": "never"},
    }
    path = tmp_path / "session.yaml"
    path.write_text(yaml.safe_dump(session))
    folder = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, "-m", "agent.cli", "run", str(path), "--dir", str(folder), "--json"],
        capture_output=True,
        text=True,
        timeout=110,
        env=env,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert (summary["state"], summary["experiments"], summary["failed"]) == ("finished", 10, 0)
    from agent.session import Session

    with Session.open(folder, executor=_NoInstrument()) as opened:
        for observation in opened.store.observations():
            point = observation.readbacks
            assert observation.values["flux"] == pytest.approx(beamline_flux(point["pitch1"], point["pitch2"]))
            name, start = json.loads((folder / "runs" / f"{observation.proposal_id}.jsonl").read_text().splitlines()[0])
            assert name == "start" and start["proposal_id"] == observation.proposal_id


class _NoInstrument:
    """Opens a finished session's store without reconnecting to the manager (nothing runs)."""

    def positions(self) -> dict[str, Any]:
        return {}

    def close(self) -> None:
        return None


def test_one_session_keeps_two_managers_busy(qserver, tmp_path: Path) -> None:
    """Two RE Managers (one per control host at a beamline; here a second one on other loopback ports), one model:
    both run at once, each one item at a time, and every run is in the history of the manager that ran it."""
    from agent.session import Session

    def section(name: str, addresses: QueueServerAddresses) -> dict[str, Any]:
        qs = {"control_address": addresses.control, "documents_address": addresses.documents, "detectors": ["det"]}
        return {"name": name, "queueserver": qs}

    with LocalQueueServer(noise=0.0, exposure=1.0) as second:  # its runs last a second: the other runs meanwhile
        data = _spec(qserver).model_dump(mode="json", exclude_none=True)
        del data["instrument"]
        data.update(
            planner={"name": "sobol"},
            review={"policy": "never"},
            budget={"experiments": 6},
            instruments=[section("hutch-a", qserver), section("hutch-b", second.addresses)],
            pipeline=True,
        )
        path = tmp_path / "session.yaml"
        path.write_text(json.dumps(data))
        with Session.create(path, tmp_path / "run") as session:
            assert session.advance() is None
            runs = []
            for observation in session.store.observations():
                assert observation.ok, observation.error
                stored = session.store.run(observation.proposal_id)
                assert stored is not None
                docs = {name: doc for name, doc in stored[0] if name in ("start", "stop")}
                runs.append((docs["start"]["instrument"], docs["start"]["time"], docs["stop"]["time"], observation))
        apis = {}
        for name, addresses in (("hutch-a", qserver), ("hutch-b", second.addresses)):
            apis[name] = REManagerAPI(zmq_control_addr=addresses.control, request_fail_exceptions=False)
        try:
            histories = {name: _history(api) for name, api in apis.items()}
        finally:
            for api in apis.values():
                close_api(api)
    assert {run[0] for run in runs} == {"hutch-a", "hutch-b"}
    for name in ("hutch-a", "hutch-b"):
        mine = [run[3].proposal_id for run in runs if run[0] == name]
        logged = [item.get("kwargs", {}).get("md", {}).get("proposal_id") for item in histories[name]]
        assert set(mine) <= set(logged)  # each proposal in the history of the manager that ran it
        spans = sorted((begin, end) for who, begin, end, _ in runs if who == name)
        assert all(end <= begin for (_, end), (begin, _) in zip(spans, spans[1:], strict=False))
    a = [(b, e) for who, b, e, _ in runs if who == "hutch-a"]
    b = [(s, e) for who, s, e, _ in runs if who == "hutch-b"]
    assert any(a0 < b1 and b0 < a1 for a0, a1 in a for b0, b1 in b)  # the two ran at once


def test_recover_says_what_the_manager_did_with_an_item_the_agent_lost_track_of(qserver, manager) -> None:
    """Finished with every document captured: the whole run, complete. Finished with only its start captured:
    lost, saying why. Queued but never started: taken off the queue. Unknown to the manager: None."""
    spec = _spec(qserver)
    executor = QueueServerExecutor(args_for(spec, "s-recover"))
    try:
        proposal = Proposal(iteration=0, setpoints={"pitch1": 0.3, "pitch2": -0.1})
        record = executor.run(proposal)
        assert record.error is None
        whole = executor.recover(proposal.id, record.documents)
        assert whole is not None and whole.complete and whole.record.error is None
        assert whole.record.documents == record.documents

        partial = executor.recover(proposal.id, record.documents[:1])
        assert partial is not None and not partial.complete
        run_uid = record.documents[0][1]["uid"]
        assert f"the RE Manager finished it (completed, run {run_uid})" in (partial.record.error or "")

        manager.queue_stop()
        waiting = manager.item_add(BPlan("count", ["det"], num=1, md={"proposal_id": "p-never-started"}))["item"]
        queued = executor.recover("p-never-started", [])
        assert queued is not None and not queued.complete and "taken off its queue" in (queued.record.error or "")
        assert waiting["item_uid"] not in [i["item_uid"] for i in manager.queue_get(reload=True)["items"]]

        assert executor.recover("p-unknown-to-the-manager", []) is None
    finally:
        executor.close()


def test_a_cameras_frames_from_the_manager_go_to_hdf5_in_the_session_folder(qserver, tmp_path: Path) -> None:
    """The manager's documents carry each 40 x 40 frame inline; the session writes them to HDF5 as they arrive, and
    the store keeps references (stream_resource, stream_datum) that read back to the frames."""
    import h5py
    import yaml

    from agent.session import Session
    from simulators.physics import beamline_flux

    queueserver = {"control_address": qserver.control, "documents_address": qserver.documents, "detectors": ["cam"]}
    session = {
        "name": "qserver-camera",
        "seed": 2,
        "variables": {
            "pitch1": {"bounds": [-1.5, 1.5], "device": "m1"},
            "pitch2": {"bounds": [-1.5, 1.5], "device": "m2"},
        },
        "objectives": {"flux": {"field": "cam-image", "reducer": "instruments.reducers:frame_sum"}},
        "budget": {"experiments": 3},
        "planner": {"name": "sobol"},
        "instrument": {"queueserver": queueserver},
        "review": {"policy": "never"},
    }
    path = tmp_path / "session.yaml"
    path.write_text(yaml.safe_dump(session))
    folder = tmp_path / "run"
    with Session.create(path, folder) as opened:
        assert opened.advance() is None
        observations = opened.store.observations()
        stored = {o.proposal_id: opened.store.run_with_status(o.proposal_id) for o in observations}
    assert [o.status for o in observations] == [ObservationStatus.OK] * 3
    for observation in observations:
        documents = stored[observation.proposal_id][0]
        names = [name for name, _ in documents]
        assert "stream_resource" in names and "stream_datum" in names
        event = next(doc for name, doc in documents if name == "event")
        assert "cam-image" not in event["data"]  # the frame is in the file, not in the event
        resource = next(doc for name, doc in documents if name == "stream_resource")
        with h5py.File(folder / "runs" / Path(resource["uri"]).name, "r") as h5:
            frame = h5[resource["parameters"]["dataset"]][0]
        point = observation.readbacks
        assert frame.shape == (40, 40)
        assert observation.values["flux"] == pytest.approx(float(frame.sum()), rel=1e-5)
        assert float(frame.sum()) > 0 and beamline_flux(point["pitch1"], point["pitch2"]) > 0
