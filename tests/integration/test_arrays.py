"""A session on a camera that reads a whole frame per event: the frames go to HDF5 files in the session folder,
the run file and the store hold references to them, and the objective read through ``frame_sum`` is the one the
frames give. Real RunEngine, ophyd-async soft-signal camera, h5py files and SQLite store."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import h5py
import numpy as np
import pytest
from event_model import DocumentNames, schema_validators

from agent.session import Session
from agent.store.documents import read_run_file
from closedloop import ObservationStatus
from simulators import beamline_flux
from tests.conftest import beamline_session

SIDE = 40  # 1,600 pixels: over the default threshold of 1,000 elements


def camera_session(**overrides: Any) -> dict[str, Any]:
    return beamline_session(
        instrument={"simulator": "beamline", "options": {"noise": 0.0, "camera": SIDE}},
        objectives={
            "flux": {"direction": "maximize", "field": "cam-image", "reducer": "instruments.reducers:frame_sum"}
        },
        budget={"experiments": 3},
        **overrides,
    )


def stored_documents(folder: Path) -> dict[str, list[tuple[str, dict[str, Any]]]]:
    with sqlite3.connect(folder / "store.sqlite") as conn:
        rows = conn.execute("SELECT proposal_id, documents FROM runs").fetchall()
    return {pid: [(name, doc) for name, doc in json.loads(text)] for pid, text in rows}


def frames(documents: list[tuple[str, dict[str, Any]]]) -> list[np.ndarray]:
    """Each event's frame, read straight from the HDF5 file its stream datum points to."""
    resources = {doc["uid"]: doc for name, doc in documents if name == "stream_resource"}
    found = []
    for name, datum in documents:
        if name == "stream_datum":
            resource = resources[datum["stream_resource"]]
            path = unquote(urlparse(resource["uri"]).path)
            with h5py.File(path, "r", swmr=True) as h5:
                found.append(np.asarray(h5[resource["parameters"]["dataset"]][datum["indices"]["start"]]))
    return found


def test_frames_go_to_hdf5_and_the_documents_hold_valid_references(tmp_path: Path, write_session) -> None:
    folder = tmp_path / "run"
    session = Session.create(write_session(camera_session()), folder)
    try:
        assert session.advance() is None
        observations = session.store.observations()
    finally:
        session.close()
    assert [o.status for o in observations] == [ObservationStatus.OK] * 3
    stored = stored_documents(folder)
    for observation in observations:
        in_file = read_run_file(folder / "runs" / f"{observation.proposal_id}.jsonl")
        in_store = stored[observation.proposal_id]
        assert in_file == in_store
        names = [name for name, _ in in_store]
        assert names == ["start", "descriptor", "stream_resource", "stream_datum", "event", "stop"]
        for name, doc in in_store:
            schema_validators[DocumentNames[name]].validate(doc)
        descriptor = next(doc for name, doc in in_store if name == "descriptor")
        assert descriptor["data_keys"]["cam-image"]["external"] == "STREAM:"
        assert descriptor["data_keys"]["cam-image"]["shape"] == [SIDE, SIDE]
        event = next(doc for name, doc in in_store if name == "event")
        assert "cam-image" not in event["data"] and "det-flux" in event["data"]
        # the objective is the frame's sum, the frame is the spot the motors' read-backs give
        (frame,) = frames(in_store)
        assert frame.shape == (SIDE, SIDE)
        assert observation.values["flux"] == pytest.approx(float(frame.sum(dtype=np.float64)), rel=1e-9)
        pitch1, pitch2 = observation.readbacks["pitch1"], observation.readbacks["pitch2"]
        assert observation.values["flux"] == pytest.approx(beamline_flux(pitch1, pitch2), rel=1e-5)
    run_files = sorted(p.name for p in (folder / "runs").iterdir())
    assert len([name for name in run_files if name.endswith(".h5")]) == 3
    # the references hold the frames, not their size: a 40 x 40 frame as JSON is about 30 KB
    assert all(p.stat().st_size < 10_000 for p in (folder / "runs").glob("*.jsonl"))


def test_with_external_above_null_frames_stay_in_the_events_and_give_the_same_objective(
    tmp_path: Path, write_session
) -> None:
    values = {}
    for label, arrays in (("inline", {"external_above": None}), ("external", {})):
        folder = tmp_path / label
        session = Session.create(write_session(camera_session(arrays=arrays), f"{label}.yaml"), folder)
        try:
            assert session.advance() is None
            values[label] = [o.values["flux"] for o in session.store.observations()]
        finally:
            session.close()
        names = [name for docs in stored_documents(folder).values() for name, _ in docs]
        assert ("stream_datum" in names) == (label == "external")
    assert values["inline"] == pytest.approx(values["external"], rel=1e-12)  # the same seed, the same points


def test_an_ophyd_classic_image_signal_is_moved_as_it_streams(tmp_path: Path, run_engine: Any) -> None:
    import bluesky.plans as bp
    from ophyd.sim import SynSignal

    from instruments.arrays import ExternalArrays
    from instruments.reducers import frame_sum

    rng = np.random.default_rng(1)
    image = SynSignal(func=lambda: rng.random((32, 32)), name="img")  # an array of shape [32, 32], no dtype_numpy
    arrays, out, inline = ExternalArrays(tmp_path, 1000), [], []
    run_engine.subscribe(lambda name, doc: inline.append((name, doc)))
    run_engine.subscribe(lambda name, doc: out.extend(arrays(name, doc)))
    run_engine(bp.count([image], num=3))
    for name, doc in out:
        schema_validators[DocumentNames[name]].validate(doc)
    assert [name for name, _ in out].count("stream_datum") == 3
    assert all("img" not in doc["data"] for name, doc in out if name == "event")
    sums = [np.sum(doc["data"]["img"]) for name, doc in inline if name == "event"]
    assert frame_sum(out, "img") == pytest.approx(np.mean(sums), rel=1e-12)
