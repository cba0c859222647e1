"""ExternalArrays on documents composed with event-model: which fields move, what the references say, what is
left alone, and bad events refused with the field named."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from event_model import DocumentNames, compose_run, pack_event_page, schema_validators

from closedloop import spec_from_dict
from closedloop.errors import InstrumentError, SpecError
from instruments.arrays import ExternalArrays
from instruments.reducers import RunDocuments, frame_sum, mean
from tests.conftest import beamline_session

Document = tuple[str, dict[str, Any]]


def run_documents(frames: list[np.ndarray], extra_keys: dict[str, Any] | None = None) -> list[Document]:
    """A run with a ``cam-image`` array, a small ``spectrum`` and a scalar ``det``, one event per frame."""
    bundle = compose_run(metadata={"proposal_id": "p-1"})
    keys = {
        "cam-image": {"source": "sim", "dtype": "array", "shape": list(frames[0].shape), "dtype_numpy": "<f4"},
        "spectrum": {"source": "sim", "dtype": "array", "shape": [4], "dtype_numpy": "<f8"},
        "det": {"source": "sim", "dtype": "number", "shape": []},
        **(extra_keys or {}),
    }
    descriptor = bundle.compose_descriptor(name="primary", data_keys=keys)
    documents: list[Document] = [("start", bundle.start_doc), ("descriptor", descriptor.descriptor_doc)]
    for i, frame in enumerate(frames):
        data = {"cam-image": frame, "spectrum": [1.0, 2.0, 3.0, float(i)], "det": float(i)}
        event = descriptor.compose_event(data=data, timestamps=dict.fromkeys(data, 0.0), seq_num=i + 1)
        documents.append(("event", event))
    documents.append(("stop", bundle.compose_stop()))
    return documents


def through(arrays: ExternalArrays, documents: list[Document]) -> list[Document]:
    return [out for name, doc in documents for out in arrays(name, doc)]


def frames(n: int, side: int = 40) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.random((side, side), dtype=np.float32) for _ in range(n)]


def test_a_large_array_moves_to_hdf5_and_the_references_validate_and_read_back(tmp_path: Path) -> None:
    given = frames(3)
    original = run_documents(given)
    untouched = copy.deepcopy(original)
    out = through(ExternalArrays(tmp_path, 1000), original)
    assert [name for name, _ in out] == [
        "start", "descriptor", "stream_resource", "stream_datum", "event",
        "stream_datum", "event", "stream_datum", "event", "stop",
    ]  # fmt: skip
    for name, doc in out:
        schema_validators[DocumentNames[name]].validate(doc)
    keys = out[1][1]["data_keys"]
    assert keys["cam-image"]["external"] == "STREAM:"
    assert "external" not in keys["spectrum"] and "external" not in keys["det"]
    events = [doc for name, doc in out if name == "event"]
    assert all(set(e["data"]) == set(e["timestamps"]) == {"spectrum", "det"} for e in events)
    resource = out[2][1]
    assert resource["data_key"] == "cam-image" and resource["run_start"] == out[0][1]["uid"]
    assert resource["uri"].startswith("file://localhost/") and resource["uri"].endswith(".primary.h5")
    assert "p-1-" in resource["uri"]
    # what the reducers read is what the events held
    read = RunDocuments(out).values("cam-image")
    assert all(np.array_equal(a, b) for a, b in zip(read, given, strict=True))
    assert frame_sum(out, "cam-image") == pytest.approx(np.mean([f.sum(dtype=np.float64) for f in given]), rel=1e-6)
    assert mean(out, "det") == 1.0
    assert np.array_equal(np.asarray(original[2][1]["data"]["cam-image"]), untouched[2][1]["data"]["cam-image"])
    assert original[1][1] == untouched[1][1]  # the given documents are not changed


def test_the_threshold_is_the_largest_size_kept_inline(tmp_path: Path) -> None:
    documents = run_documents(frames(1, side=10))  # 100 elements
    kept = through(ExternalArrays(tmp_path / "a", 100), documents)
    moved = through(ExternalArrays(tmp_path / "b", 99), documents)
    assert [name for name, _ in kept] == ["start", "descriptor", "event", "stop"]
    assert "cam-image" in kept[2][1]["data"]
    assert "stream_datum" in [name for name, _ in moved]
    assert not (tmp_path / "a").exists()


def test_fields_already_in_files_are_left_alone(tmp_path: Path) -> None:
    extra = {
        "blob": {"source": "f", "dtype": "array", "shape": [1, 64, 64], "dtype_numpy": "|u1", "external": "STREAM:"},
    }
    documents = run_documents(frames(1), extra_keys=extra)
    out = through(ExternalArrays(tmp_path, 1000), documents)
    assert out[1][1]["data_keys"]["blob"] == extra["blob"]
    assert [doc["data_key"] for name, doc in out if name == "stream_resource"] == ["cam-image"]


def test_an_event_page_is_moved_as_its_events_are(tmp_path: Path) -> None:
    documents = run_documents(frames(2))
    events = [doc for name, doc in documents if name == "event"]
    paged = [*documents[:2], ("event_page", pack_event_page(*events)), documents[-1]]
    out = through(ExternalArrays(tmp_path, 1000), paged)
    assert [name for name, _ in out] == [
        "start", "descriptor", "stream_resource", "stream_datum", "stream_datum", "event_page", "stop",
    ]  # fmt: skip
    for name, doc in out:
        schema_validators[DocumentNames[name]].validate(doc)
    assert "cam-image" not in out[5][1]["data"]
    assert frame_sum(out, "cam-image") == pytest.approx(frame_sum(documents, "cam-image"), rel=1e-9)


def test_a_frame_of_another_shape_than_declared_is_refused_naming_the_field(tmp_path: Path) -> None:
    documents = run_documents(frames(1))
    documents[2][1]["data"]["cam-image"] = np.zeros((41, 40), np.float32)
    arrays = ExternalArrays(tmp_path, 1000)
    with pytest.raises(InstrumentError, match=r"field 'cam-image': event 1 holds an array of shape \(41, 40\)"):
        through(arrays, documents)
    arrays.close()


def test_external_above_must_be_a_whole_number_or_null() -> None:
    assert spec_from_dict(beamline_session()).arrays.external_above == 1000
    assert spec_from_dict(beamline_session(arrays={"external_above": None})).arrays.external_above is None
    for bad in (-1, 1.5, "many"):
        with pytest.raises(SpecError, match=r"arrays\.external_above"):
            spec_from_dict(beamline_session(arrays={"external_above": bad}))
