"""Runs written to a real Tiled server: ``tiled serve catalog`` started on a free loopback port, with its own
catalog in a temporary folder and an API key, and killed afterwards.

A session run from the CLI writes each run to it, and the runs read back over HTTP (in this process, with Tiled's
HTTP client) hold what the session's store holds. The server may read files in one folder only (``--read``): a
camera's frames written to HDF5 there read back through Tiled; written elsewhere, the run is reported
``tiled_failed``. A server that refuses the key, or that does not answer and then
comes back, fails no run: each unwritten run is reported, and the next run after the server is back is written.
Skipped only when the ``tiled-server`` extra (Tiled's server and the ``tiled`` extra) is not installed.
"""

from __future__ import annotations

import importlib.util
import json
import os
import secrets
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from closedloop import Proposal, spec_from_dict
from tests.conftest import beamline_session

pytestmark = [
    pytest.mark.system,
    pytest.mark.skipif(
        any(importlib.util.find_spec(name) is None for name in ("tiled", "uvicorn", "bluesky_tiled_plugins")),
        reason="the tiled-server extra is not installed (pip install -e '.[tiled-server]')",
    ),
]

ROOT = Path(__file__).resolve().parents[2]
# `tiled serve` starts in ~10 s on an idle 2-core machine, ~55 s under a load of 27: a start-up limit, not a timing
# claim
START_TIMEOUT = 240.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class TiledServer:
    """A ``tiled serve catalog`` process and how to reach it."""

    def __init__(self, process: subprocess.Popen[bytes], url: str, api_key: str, log: Path, readable: Path) -> None:
        self.process, self.url, self.api_key, self.log = process, url, api_key, log
        self.readable = readable  # the folder it may read detectors' files from

    def client(self, uri: str | None = None, api_key: str | None = None) -> Any:
        from tiled.client import from_uri

        return from_uri(uri or self.url, api_key=api_key or self.api_key)


def wait_until_serving(server: TiledServer) -> None:
    import httpx

    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"tiled serve exited with {server.process.returncode}:\n{server.log.read_text()}")
        try:
            if httpx.get(f"{server.url}/api/v1/", timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"tiled serve did not answer within {START_TIMEOUT} s:\n{server.log.read_text()}")


@pytest.fixture(scope="module")
def tiled_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TiledServer]:
    folder = tmp_path_factory.mktemp("tiled")
    port, api_key = free_port(), secrets.token_hex(16)
    readable = folder / "readable"
    readable.mkdir()
    command = [
        sys.executable,
        "-m",
        "tiled",
        "serve",
        "catalog",
        str(folder / "catalog.db"),
        "--init",
        "--write",
        str(folder / "data"),
        "--write",
        f"duckdb:///{folder / 'data.duckdb'}",
        "--read",
        str(readable),
        "--api-key",
        api_key,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    log = folder / "serve.log"
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    server = TiledServer(process, f"http://127.0.0.1:{port}", api_key, log, readable)
    try:
        wait_until_serving(server)
        yield server
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGCONT)  # in case a test left it stopped
        process.kill()
        process.wait(timeout=30)


def stored_runs(folder: Path) -> list[dict[str, Any]]:
    """Each observation in a session's store with the det-flux values of its run's stored event documents."""
    with sqlite3.connect(folder / "store.sqlite") as conn:
        observations = [json.loads(row[0]) for row in conn.execute("SELECT body FROM observations ORDER BY seq")]
        documents = dict(conn.execute("SELECT proposal_id, documents FROM runs").fetchall())
        events = [(kind, message) for kind, message in conn.execute("SELECT kind, message FROM events")]
    for observation in observations:
        run = json.loads(documents[observation["proposal_id"]])
        observation["stored_flux"] = [doc["data"]["det-flux"] for name, doc in run if name == "event"]
    assert not [message for kind, message in events if kind == "tiled_failed"]
    return observations


def test_every_run_of_a_cli_session_is_in_tiled_with_the_values_the_store_holds(
    tiled_server: TiledServer, tmp_path: Path
) -> None:
    session = beamline_session(
        budget={"experiments": 3},
        tiled={"url": tiled_server.url, "api_key": tiled_server.api_key},
    )
    path = tmp_path / "session.yaml"
    path.write_text(yaml.safe_dump(session, sort_keys=False))
    folder = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    result = subprocess.run(
        [sys.executable, "-m", "agent.cli", "run", str(path), "--dir", str(folder), "--json"],
        capture_output=True,
        text=True,
        timeout=180,
        env=env,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["experiments"] == 3

    observations = stored_runs(folder)
    assert len(observations) == 3
    from closedloop.tiled import TiledSpec
    from instruments.tiled import TiledSink

    spec = TiledSpec(url=tiled_server.url, api_key=tiled_server.api_key)
    catalog = tiled_server.client()
    try:
        assert sorted(catalog) == sorted(observation["run_uid"] for observation in observations)
        for observation in observations:
            uid = observation["run_uid"]
            run = catalog[uid]
            assert run.metadata["start"]["proposal_id"] == observation["proposal_id"]
            assert run.metadata["stop"]["exit_status"] == "success"
            flux = run["primary"]["det-flux"].read()
            assert list(flux) == observation["stored_flux"]
            assert flux[-1] == observation["values"]["flux"]
            assert run.uri == f"{spec.metadata_url()}/{uid}"
    finally:
        catalog.context.close()

    # the link each observation carries opens its run directly
    sink = TiledSink(spec)
    try:
        uid = observations[1]["run_uid"]
        assert all(o["tiled"] == sink.entry_url(o["run_uid"]) for o in observations)
        linked = tiled_server.client(observations[1]["tiled"])
        try:
            assert list(linked["primary"]["det-flux"].read()) == observations[1]["stored_flux"]
        finally:
            linked.context.close()
    finally:
        sink.close()


def executor_for(tiled: dict[str, Any], run_engine: Any, events: list[tuple[str, dict[str, Any]]]) -> Any:
    from instruments import InProcessExecutor

    spec = spec_from_dict(
        beamline_session(instrument={"simulator": "beamline", "options": {"noise": 0.0}}, tiled=tiled)
    )
    return InProcessExecutor(spec, "s-tiled", run_engine=run_engine, on_event=lambda kind, d: events.append((kind, d)))


def run_point(executor: Any, iteration: int) -> tuple[str, list[float]]:
    """Run one point; returns the run's uid and the det-flux of its events."""
    record = executor.run(Proposal(iteration=iteration, setpoints={"pitch1": 0.1 * iteration, "pitch2": 0.0}))
    assert record.error is None
    flux = [doc["data"]["det-flux"] for name, doc in record.documents if name == "event"]
    return str(record.documents[0][1]["uid"]), flux


def test_a_refused_key_fails_no_run_and_each_run_is_reported(tiled_server: TiledServer, run_engine: Any) -> None:
    events: list[tuple[str, dict[str, Any]]] = []
    executor = executor_for({"url": tiled_server.url, "api_key": "not-the-key"}, run_engine, events)
    try:
        uids = [run_point(executor, i)[0] for i in range(2)]
        assert executor.tiled is not None and executor.tiled.flush(30)
        for uid in uids:
            assert not executor.tiled.written(uid)
            assert "API key" in (executor.tiled.error(uid) or "")
    finally:
        executor.close()
    reported = [details for kind, details in events if kind == "tiled_failed"]
    assert [details["run_uid"] for details in reported] == [None, *uids]  # start-up, then each run
    assert all(details["url"].startswith(tiled_server.url) for details in reported)
    catalog = tiled_server.client()
    try:
        assert not set(uids) & set(catalog)
    finally:
        catalog.context.close()


def test_a_server_that_stops_answering_is_skipped_and_used_again_when_it_is_back(
    tiled_server: TiledServer, run_engine: Any
) -> None:
    events: list[tuple[str, dict[str, Any]]] = []
    tiled_server.process.send_signal(signal.SIGSTOP)  # accepts connections, answers nothing
    try:
        executor = executor_for(
            {"url": tiled_server.url, "api_key": tiled_server.api_key, "timeout": 1.0}, run_engine, events
        )
        started = time.monotonic()
        missed, _ = run_point(executor, 0)
        assert time.monotonic() - started < 5  # the RunEngine did not wait for Tiled
        assert executor.tiled is not None and executor.tiled.flush(10)
    finally:
        tiled_server.process.send_signal(signal.SIGCONT)
    try:
        written, flux = run_point(executor, 1)
        assert executor.tiled.flush(30)
        assert "not usable" in (executor.tiled.error(missed) or "")
        assert executor.tiled.written(written) and executor.tiled.error(written) is None
    finally:
        executor.close()
    assert [details["run_uid"] for kind, details in events if kind == "tiled_failed"] == [None, missed]
    catalog = tiled_server.client()
    try:
        assert written in catalog and missed not in catalog
        assert list(catalog[written]["primary"]["det-flux"].read()) == flux
    finally:
        catalog.context.close()


def test_closing_while_the_server_hangs_gives_up_and_reports_the_run(
    tiled_server: TiledServer, run_engine: Any
) -> None:
    events: list[tuple[str, dict[str, Any]]] = []
    executor = executor_for(
        {"url": tiled_server.url, "api_key": tiled_server.api_key, "timeout": 1.0}, run_engine, events
    )
    sink = executor.tiled
    assert sink is not None and sink.flush(30) and not events  # connected
    tiled_server.process.send_signal(signal.SIGSTOP)
    try:
        started = time.monotonic()
        uid, _ = run_point(executor, 0)
        executor.close()
        assert time.monotonic() - started < 20  # neither the run nor closing waited out Tiled's own retries
        assert not sink.written(uid) and sink.error(uid)
        assert [details["run_uid"] for kind, details in events if kind == "tiled_failed"][-1] == uid
    finally:
        tiled_server.process.send_signal(signal.SIGCONT)
        sink._thread.join(90)  # let the writer thread finish its retries against the server now back, and disconnect
    assert not sink._thread.is_alive()


def camera_executor(server: TiledServer, run_engine: Any, arrays_dir: Path, events: list[Any]) -> Any:
    """An executor on the beamline with a 40 x 40 camera, its frames written to HDF5 files in ``arrays_dir``."""
    from instruments import InProcessExecutor

    session = beamline_session(
        instrument={"simulator": "beamline", "options": {"noise": 0.0, "camera": 40}},
        objectives={
            "flux": {"direction": "maximize", "field": "cam-image", "reducer": "instruments.reducers:frame_sum"}
        },
        tiled={"url": server.url, "api_key": server.api_key},
    )
    return InProcessExecutor(
        spec_from_dict(session), "s-tiled", run_engine=run_engine, arrays_dir=arrays_dir,
        on_event=lambda kind, details: events.append((kind, details)),
    )  # fmt: skip


def test_frames_written_to_hdf5_read_back_through_tiled(tiled_server: TiledServer, run_engine: Any) -> None:
    from instruments.reducers import RunDocuments, frame_sum

    events: list[tuple[str, dict[str, Any]]] = []
    executor = camera_executor(tiled_server, run_engine, tiled_server.readable / "session" / "runs", events)
    try:
        record = executor.run(Proposal(iteration=0, setpoints={"pitch1": 0.3, "pitch2": -0.5}))
        assert record.error is None
        uid = str(record.documents[0][1]["uid"])
        assert executor.tiled is not None and executor.tiled.flush(60)
        assert executor.tiled.written(uid) and executor.tiled.error(uid) is None
    finally:
        executor.close()
    assert not [details for kind, details in events if kind == "tiled_failed"]
    (frame,) = RunDocuments(record.documents).values("cam-image")  # from the HDF5 file, as the reducer reads it
    catalog = tiled_server.client()
    try:
        served = catalog[uid]["primary"]["cam-image"].read()
    finally:
        catalog.context.close()
    assert served.shape == (1, 40, 40)
    np.testing.assert_array_equal(served[0], frame)
    assert float(served.sum(dtype=np.float64)) == pytest.approx(frame_sum(record.documents, "cam-image"), rel=1e-12)


def test_frames_the_server_may_not_read_are_reported_tiled_failed(
    tiled_server: TiledServer, run_engine: Any, tmp_path: Path
) -> None:
    events: list[tuple[str, dict[str, Any]]] = []
    executor = camera_executor(tiled_server, run_engine, tmp_path / "runs", events)  # outside its --read folder
    try:
        record = executor.run(Proposal(iteration=0, setpoints={"pitch1": 0.3, "pitch2": -0.5}))
        assert record.error is None  # the run itself is fine: only its copy in Tiled is not
        uid = str(record.documents[0][1]["uid"])
        assert executor.tiled is not None and executor.tiled.flush(60)
        assert not executor.tiled.written(uid)
        assert "cannot read back its data 'cam-image'" in (executor.tiled.error(uid) or "")
    finally:
        executor.close()
    reported = [details for kind, details in events if kind == "tiled_failed"]
    assert [details["run_uid"] for details in reported] == [uid]


def test_an_area_detectors_own_hdf5_frames_read_back_through_tiled(tiled_server: TiledServer, run_engine: Any) -> None:
    """ophyd-async's SimBlobDetector writes its own HDF5 files (in the server's --read folder): left as they are,
    written to Tiled, and its frames served back equal to those the reducer reads."""
    from instruments import InProcessExecutor
    from instruments.reducers import RunDocuments

    session = yaml.safe_load((ROOT / "examples" / "area-detector.yaml").read_text())
    session["instrument"]["options"] = {"folder": str(tiled_server.readable / "blob")}
    session["tiled"] = {"url": tiled_server.url, "api_key": tiled_server.api_key}
    events: list[tuple[str, dict[str, Any]]] = []
    executor = InProcessExecutor(
        spec_from_dict(session), "s-tiled", run_engine=run_engine, arrays_dir=tiled_server.readable / "runs",
        on_event=lambda kind, details: events.append((kind, details)),
    )  # fmt: skip
    try:
        record = executor.run(Proposal(iteration=0, setpoints={"x": 0.05, "y": -0.05}))
        assert record.error is None
        uid = str(record.documents[0][1]["uid"])
        assert executor.tiled is not None and executor.tiled.flush(60)
        assert executor.tiled.written(uid) and executor.tiled.error(uid) is None
    finally:
        executor.close()
    assert not [details for kind, details in events if kind == "tiled_failed"]
    assert not (tiled_server.readable / "runs").exists()  # the detector's files are its own: nothing moved
    (frame,) = RunDocuments(record.documents).values("blob")
    catalog = tiled_server.client()
    try:
        served = catalog[uid]["primary"]["blob"].read()
    finally:
        catalog.context.close()
    np.testing.assert_array_equal(np.asarray(served).reshape(frame.shape), frame)
