"""Large arrays out of the documents and into HDF5 files, as the documents stream.

:class:`ExternalArrays` sits between the RunEngine and every sink of a run's documents (the run file, the store,
0MQ, Tiled). A field whose descriptor declares an array of more than ``threshold`` elements is marked
``external: "STREAM:"`` in the descriptor; each event's value of it is appended to a dataset of an HDF5 file and
the event loses the field, which a ``stream_datum`` document (after one ``stream_resource`` per field and file)
points to instead: the documents ophyd-async's file-writing detectors make, so the same readers serve both
(:class:`~instruments.reducers.RunDocuments`, Tiled's ``TiledWriter``).

Each run and stream with such fields gets one file, ``<proposal id>-<run uid>.<stream>.h5`` in the given folder,
written in HDF5's single-writer/multiple-reader mode (readers that open it in that mode, as the reducers and Tiled
do, may read it while the run goes on, or after a kill cut it short), one dataset per field (``/<field>``, one
row per event, one chunk per row), closed at the run's stop document. Fields that are already external (an area
detector's own HDF5 files), scalars, and arrays the descriptor declares no larger than the threshold pass through
unchanged.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np
from event_model import (
    ComposeStreamResource,
    ComposeStreamResourceBundle,
    StreamRange,
    pack_event_page,
    unpack_event_page,
)

from closedloop.errors import InstrumentError

Document = tuple[str, dict[str, Any]]
MIMETYPE = "application/x-hdf5"
STREAM_EXTERNAL = "STREAM:"


@dataclass
class _Stream:
    """One descriptor's external fields and the file they go to (opened at its first event)."""

    descriptor: dict[str, Any]
    fields: list[str]
    path: Path
    start: dict[str, Any]
    file: Any = None
    rows: int = 0
    datasets: dict[str, Any] = field(default_factory=dict)
    resources: dict[str, ComposeStreamResourceBundle] = field(default_factory=dict)

    def open(self, values: dict[str, np.ndarray]) -> list[Document]:
        """Create the file and a dataset per field shaped like its first value; the stream resources to emit."""
        import h5py  # ophyd-async[sim] brings it; only sessions with large arrays need it

        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.file = h5py.File(self.path, "w", libver="latest")
        compose = ComposeStreamResource(start=self.start)  # type: ignore[arg-type]
        documents: list[Document] = []
        for name in self.fields:
            value = values[name]
            dataset = f"/{name.replace('/', '_')}"
            self.datasets[name] = self.file.create_dataset(
                dataset, shape=(0, *value.shape), maxshape=(None, *value.shape), chunks=(1, *value.shape),
                dtype=value.dtype,
            )  # fmt: skip
            parameters = {"dataset": dataset, "chunk_shape": [1, *value.shape], "swmr": True}
            bundle = compose(MIMETYPE, _file_uri(self.path), name, parameters)
            self.resources[name] = bundle
            documents.append(("stream_resource", dict(bundle.stream_resource_doc)))
        self.file.swmr_mode = True  # every dataset exists: readers may open the file from now on
        return documents

    def write(self, values: dict[str, np.ndarray], seq_num: int) -> list[Document]:
        """Append one event's arrays; the stream resources (first event) and stream datums to emit before it."""
        for name in self.fields:
            declared = tuple(self.descriptor["data_keys"][name]["shape"])
            if values[name].shape != declared:
                raise InstrumentError(
                    f"field '{name}': event {seq_num} holds an array of shape {values[name].shape}, "
                    f"its descriptor declares {declared}"
                )
        documents = self.open(values) if self.file is None else []
        row = self.rows
        for name in self.fields:
            dataset, value = self.datasets[name], values[name]
            dataset.resize(row + 1, axis=0)
            dataset[row] = value
            dataset.flush()
            datum = self.resources[name].compose_stream_datum(
                indices=StreamRange(start=row, stop=row + 1),
                seq_nums=StreamRange(start=seq_num, stop=seq_num + 1),
                descriptor=self.descriptor,  # type: ignore[arg-type]
            )
            documents.append(("stream_datum", dict(datum)))
        self.rows = row + 1
        return documents

    def close(self) -> None:
        if self.file is not None:
            self.file.close()
            self.file = None


class ExternalArrays:
    """A document filter that moves large array fields to HDF5 files as a run's documents stream.

    Call it with each ``(name, document)`` in the order the RunEngine emits them; it returns the documents to
    hand on, in order: the document itself, or a changed copy (a descriptor whose large arrays are marked
    external, an event without them), preceded by the ``stream_resource`` and ``stream_datum`` documents that
    reference the data. Documents it is given are never changed.

    Args:
        directory: the folder the HDF5 files are written to (created when the first is).
        threshold: a field is moved when its descriptor's ``shape`` has more elements than this.

    Raises:
        InstrumentError: (from a call) an event lacks a moved field, holds something other than numbers in it, or
            an array of another shape than the stream's first.
    """

    def __init__(self, directory: Path, threshold: int) -> None:
        self.directory = Path(directory)
        self.threshold = int(threshold)
        self._starts: dict[str, dict[str, Any]] = {}
        self._streams: dict[str, _Stream] = {}  # descriptor uid -> its moved fields
        self._names: set[Path] = set()

    def __call__(self, name: str, doc: dict[str, Any]) -> list[Document]:
        if name == "start":
            self._starts[doc["uid"]] = doc
        elif name == "descriptor":
            return [("descriptor", self._descriptor(doc))]
        elif name == "event" and doc.get("descriptor") in self._streams:
            return self._event(doc)
        elif name == "event_page" and doc.get("descriptor") in self._streams:
            return self._event_page(doc)
        elif name == "stop":
            self._finish(doc.get("run_start"))
        return [(name, doc)]

    @property
    def paths(self) -> list[Path]:
        """The HDF5 files written so far."""
        return sorted(self._names)

    def close(self) -> None:
        """Close every file still open (a run that never sent its stop document)."""
        for stream in self._streams.values():
            stream.close()
        self._streams.clear()
        self._starts.clear()

    def _descriptor(self, doc: dict[str, Any]) -> dict[str, Any]:
        moved = [key for key, info in doc.get("data_keys", {}).items() if self._moves(info)]
        start = self._starts.get(doc.get("run_start", ""))
        if not moved or start is None:
            return doc
        keys = {
            key: ({**info, "external": STREAM_EXTERNAL} if key in moved else info)
            for key, info in doc["data_keys"].items()
        }
        changed = {**doc, "data_keys": keys}
        self._streams[doc["uid"]] = _Stream(changed, moved, self._path_for(start, str(doc.get("name", ""))), start)
        return changed

    def _moves(self, info: dict[str, Any]) -> bool:
        shape = info.get("shape") or []
        if info.get("external") or info.get("dtype") != "array" or None in shape:
            return False
        try:
            numeric = np.dtype(info.get("dtype_numpy") or "f8").kind in "biuf"  # none declared: known at the event
        except TypeError:
            return False  # a structured (table) dtype
        if not numeric:
            return False
        return math.prod(int(n) for n in shape) > self.threshold

    def _path_for(self, start: dict[str, Any], stream: str) -> Path:
        proposal = start.get("proposal_id")
        stem = f"{proposal}-{start['uid']}" if proposal else str(start["uid"])
        path = self.directory / f"{stem}.{stream}.h5"
        count = 1
        while path in self._names:  # a second descriptor of one stream (its configuration changed)
            count += 1
            path = self.directory / f"{stem}.{stream}.{count}.h5"
        self._names.add(path)
        return path

    def _event(self, event: dict[str, Any]) -> list[Document]:
        stream = self._streams[event["descriptor"]]
        data, timestamps = dict(event["data"]), dict(event["timestamps"])
        filled = dict(event.get("filled") or {})
        values = {}
        for key in stream.fields:
            if key not in data:
                raise InstrumentError(f"field '{key}': event {event['seq_num']} does not hold it")
            values[key] = _numbers(key, data.pop(key))
            timestamps.pop(key, None)
            filled.pop(key, None)
        documents = stream.write(values, int(event["seq_num"]))
        documents.append(("event", {**event, "data": data, "timestamps": timestamps, "filled": filled}))
        return documents

    def _event_page(self, page: dict[str, Any]) -> list[Document]:
        documents: list[Document] = []
        events = []
        for event in unpack_event_page(page):  # type: ignore[arg-type]
            *references, (_, changed) = self._event(dict(event))
            documents.extend(references)
            events.append(changed)
        documents.append(("event_page", dict(pack_event_page(*events))))  # type: ignore[arg-type]
        return documents

    def _finish(self, run_uid: str | None) -> None:
        for uid, stream in list(self._streams.items()):
            if stream.start["uid"] == run_uid:
                stream.close()
                del self._streams[uid]
        self._starts.pop(run_uid or "", None)


def _numbers(key: str, value: Any) -> np.ndarray:
    array = np.asarray(value)
    if array.dtype.kind not in "biuf":
        raise InstrumentError(f"field '{key}' holds {array.dtype} values, not numbers")
    return array


def _file_uri(path: Path) -> str:
    """``file://localhost/<absolute path>``, as ophyd-async names its files."""
    return f"file://localhost{quote(str(path.resolve()))}"
