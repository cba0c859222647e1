"""A run the RE Manager finished while the agent was away, read back from Tiled: real Redis, 0MQ proxy, RE Manager
(the bundled profile, writing every run to Tiled with ``TiledWriter``) and ``tiled serve`` on loopback ports.

The documents the agent captured before it stopped listening hold only the run's start; the manager keeps none.
With ``instrument.queueserver.tiled`` naming the server the profile writes to, the whole run is read back from there
and gives the observation the documents would have; without it, the record says why the measurement is lost and
what to configure.
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from bluesky_queueserver_api.zmq import REManagerAPI

from agent.cli.queueserver import LocalQueueServer, QueueServerAddresses
from closedloop.records import ObservationStatus, Proposal
from closedloop.spec import SessionSpec, spec_from_dict
from instruments.ingest import observation_from_documents
from instruments.queueserver import QueueServerExecutor, close_api
from tests.conftest import args_for
from tests.system.test_queueserver_stock import _kill_when_ours_runs, _start_killable
from tests.system.test_tiled import TiledServer, tiled_server  # noqa: F401 (the fixture)

pytestmark = [
    pytest.mark.system,
    pytest.mark.timeout(180),
    pytest.mark.skipif(
        any(importlib.util.find_spec(name) is None for name in ("tiled", "uvicorn", "bluesky_tiled_plugins")),
        reason="the tiled-server extra is not installed (pip install -e '.[tiled-server]')",
    ),
]


@pytest.fixture(scope="module")
def qserver_to_tiled(tiled_server: TiledServer) -> Iterator[QueueServerAddresses]:  # noqa: F811
    """A queueserver whose profile writes every run to the Tiled server (its key in the manager's environment)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TILED_API_KEY", tiled_server.api_key)
        server = LocalQueueServer(noise=0.0, tiled=tiled_server.url)
        try:
            addresses = server.start()
        except BaseException:
            server.stop()
            raise
    try:
        yield addresses
    finally:
        server.stop()


def _spec(qserver: QueueServerAddresses, tiled: dict | None) -> SessionSpec:
    queueserver = {"control_address": qserver.control, "documents_address": qserver.documents, "detectors": ["det"]}
    if tiled is not None:
        queueserver["tiled"] = tiled
    return spec_from_dict(
        {
            "variables": {
                "pitch1": {"bounds": [-1.5, 1.5], "device": "m1"},
                "pitch2": {"bounds": [-1.5, 1.5], "device": "m2"},
            },
            "objectives": {"flux": {"direction": "maximize", "field": "det-flux"}},
            "constraints": {"heat": {"less_than": 3.0, "field": "det-heat"}},
            "budget": {"experiments": 2},
            "instrument": {"queueserver": queueserver},
        }
    )


def test_a_run_finished_while_the_agent_was_away_is_read_back_from_tiled(
    qserver_to_tiled: QueueServerAddresses,
    tiled_server: TiledServer,  # noqa: F811
) -> None:
    spec = _spec(qserver_to_tiled, {"url": tiled_server.url, "api_key": tiled_server.api_key})
    executor = QueueServerExecutor(args_for(spec, "s-tiled-recover"))
    try:
        proposal = Proposal(iteration=0, setpoints={"pitch1": 0.3, "pitch2": -0.1})
        record = executor.run(proposal)
        assert record.error is None
        live = observation_from_documents(spec, proposal, record.documents)
        # the agent stopped listening after the start document: the rest comes from Tiled
        recovered = executor.recover(proposal.id, record.documents[:1])
        assert recovered is not None and recovered.complete, recovered and recovered.record.error
        again = observation_from_documents(spec, proposal, recovered.record.documents)
        assert again.status == ObservationStatus.OK, again.error
        assert again.run_uid == live.run_uid
        assert again.readbacks == pytest.approx(live.readbacks) and again.values == pytest.approx(live.values)
    finally:
        executor.close()


def test_without_tiled_the_lost_run_says_what_to_configure(qserver_to_tiled: QueueServerAddresses) -> None:
    executor = QueueServerExecutor(args_for(_spec(qserver_to_tiled, None), "s-no-tiled"))
    try:
        proposal = Proposal(iteration=0, setpoints={"pitch1": 0.1, "pitch2": 0.0})
        record = executor.run(proposal)
        lost = executor.recover(proposal.id, record.documents[:1])
        assert lost is not None and not lost.complete
        assert "no Tiled to read it back from" in (lost.record.error or "")
        assert "instrument.queueserver.tiled" in (lost.record.error or "")
        assert (lost.record.error or "").endswith("the measurement is lost")
    finally:
        executor.close()


def test_a_tiled_that_lacks_the_run_says_so(qserver_to_tiled: QueueServerAddresses, tiled_server: TiledServer) -> None:  # noqa: F811
    tiled = {"url": f"{tiled_server.url}/api/v1/metadata/elsewhere", "api_key": tiled_server.api_key}
    executor = QueueServerExecutor(args_for(_spec(qserver_to_tiled, tiled), "s-wrong-tiled"))
    try:
        proposal = Proposal(iteration=0, setpoints={"pitch1": -0.2, "pitch2": 0.0})
        record = executor.run(proposal)
        lost = executor.recover(proposal.id, record.documents[:1])
        assert lost is not None and not lost.complete
        assert "nor could it be read back from Tiled" in (lost.record.error or "")
    finally:
        executor.close()


def test_a_session_killed_while_the_manager_runs_ingests_the_run_from_tiled_on_resume(
    qserver_to_tiled: QueueServerAddresses,
    tiled_server: TiledServer,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """SIGKILL the session while the manager moves ``slow_m`` (1 unit/s), let the manager finish, resume: the run,
    whose documents after the start no agent heard, is read back from Tiled and ingested."""
    from agent.session import Session

    monkeypatch.setenv("TILED_API_KEY", tiled_server.api_key)  # the key, for the killed process and the resume
    data = {
        "name": "killed",
        "seed": 1,
        "variables": {"x": {"bounds": [5.0, 8.0], "device": "slow_m"}, "y": {"bounds": [-1.0, 1.0], "device": "m2"}},
        "objectives": {"flux": {"direction": "maximize", "field": "det-flux"}},
        "budget": {"experiments": 1},
        "planner": {"name": "sobol"},
        "review": {"policy": "never"},
        "instrument": {
            "queueserver": {
                "control_address": qserver_to_tiled.control,
                "documents_address": qserver_to_tiled.documents,
                "detectors": ["det"],
                "tiled": {"url": tiled_server.url},
            }
        },
    }
    path = tmp_path / "session.yaml"
    path.write_text(yaml.safe_dump(data))
    folder = tmp_path / "run"
    api = REManagerAPI(zmq_control_addr=qserver_to_tiled.control, request_fail_exceptions=False)
    process = _start_killable(path, folder)
    try:
        proposal_id = _kill_when_ours_runs(process, api, folder / "runs")
        api.wait_for_idle(timeout=60)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        close_api(api)
    with Session.open(folder) as session:
        assert session.advance() is None
        observation = session.store.observation(proposal_id)
        audit = [kind for _, kind, _ in session.store.events()]
    assert observation is not None and observation.status == ObservationStatus.OK, observation and observation.error
    assert 5.0 <= observation.readbacks["x"] <= 8.0 and "flux" in observation.values
    assert "recovered" in audit
    heard = [json.loads(line)[0] for line in (folder / "runs" / f"{proposal_id}.jsonl").read_text().splitlines()]
    assert "stop" not in heard  # the agent heard only the run's beginning: the rest came from Tiled
