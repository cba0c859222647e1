"""Numbers from a run's documents: the ``primary`` stream as columns, and the bundled reducers.

:class:`RunDocuments` reads one run's documents: the start and stop documents, the ``primary`` stream's events
(other streams, such as ``baseline`` or a monitor stream, are ignored), and data a detector wrote to a file and
referenced with ``stream_resource``/``stream_datum`` documents (HDF5, as ophyd-async's StandardDetectors write
it), read from the file when asked for.

A reducer turns a run into one outcome value. Name one on an objective or a constraint as
``reducer: instruments.reducers:peak_position``; it is called as ``reducer(documents, field=..., monitor=...)``
(see :func:`closedloop.problem.check_reducer`). The bundled reducers:

- :func:`mean`: the mean of ``field`` over the events, from the event or from the detector's file;
- :func:`frame_sum`: each event's frame summed over its pixels, then the mean over the events (area detectors);
- :func:`peak_position`, :func:`fwhm`, :func:`centroid`, :func:`integrated_intensity`: ``field`` against the
  scanned motor's read-back, for the ``scan`` plan (or any run whose start document names its ``motors``).

Every reducer divides ``field`` by ``monitor`` event by event when a monitor is given, and raises ``ValueError``
(or :class:`~closedloop.errors.InstrumentError` for a missing field) when the run cannot give the value. When the
data bound the value all the same (a peak at the end of the scan lies beyond it; a width whose half height is
beyond the scan's end is at least what was scanned), it raises :class:`CensoredValue`, a ``ValueError`` that
carries the bound: the ingest keeps it with the output's reason (:class:`~closedloop.records.MissingValue`).
A reducer of the user's own may raise it too.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, cast
from urllib.parse import unquote, urlparse

import numpy as np
from event_model import EventPage, unpack_event_page

from closedloop.errors import InstrumentError

Document = tuple[str, dict[str, Any]]
PRIMARY = "primary"


class CensoredValue(ValueError):
    """The run cannot give the value, but it bounds it: raised by a reducer with ``at_least`` or ``at_most``.

    Args:
        message: why there is no value (the reducer's reason, for the operator).
        at_least: the value is at least this.
        at_most: the value is at most this.
    """

    def __init__(self, message: str, *, at_least: float | None = None, at_most: float | None = None) -> None:
        super().__init__(message)
        self.at_least = at_least
        self.at_most = at_most


class RunDocuments:
    """One run's documents, read for its ``primary`` stream.

    Args:
        documents: ``(name, document)`` pairs as the RunEngine emitted them (``event_page`` documents are
            unpacked into events).
        stream: the stream to read (``primary`` by default).

    Attributes:
        starts: every start document (one run makes one).
        start: the first start document, or None.
        stop: the first stop document, or None.
        events: the stream's events, in ``seq_num`` order.
        data_keys: field name -> its data key (from the stream's descriptors).
    """

    def __init__(self, documents: Iterable[Document], stream: str = PRIMARY) -> None:
        self.stream = stream
        self.starts: list[dict[str, Any]] = []
        self.stop: dict[str, Any] | None = None
        self.data_keys: dict[str, dict[str, Any]] = {}
        self._hints: dict[str, Any] = {}
        self._object_keys: dict[str, list[str]] = {}
        descriptors: set[str] = set()
        events: list[dict[str, Any]] = []
        self._resources: dict[str, dict[str, Any]] = {}
        self._datums: list[dict[str, Any]] = []
        for name, doc in documents:
            if name == "start":
                self.starts.append(doc)
            elif name == "stop" and self.stop is None:
                self.stop = doc
            elif name == "descriptor" and doc.get("name") == stream:
                descriptors.add(doc["uid"])
                self.data_keys.update(doc.get("data_keys", {}))
                self._hints.update(doc.get("hints") or {})
                self._object_keys.update(doc.get("object_keys") or {})
            elif name == "event":
                events.append(doc)
            elif name == "event_page":
                events.extend(unpack_event_page(cast(EventPage, doc)))  # a page as the RunEngine emitted it
            elif name == "stream_resource":
                self._resources[doc["uid"]] = doc
            elif name == "stream_datum":
                self._datums.append(doc)
        self.events = sorted((e for e in events if e.get("descriptor") in descriptors), key=lambda e: e["seq_num"])
        self._datums = [d for d in self._datums if d.get("descriptor") in descriptors]

    @property
    def start(self) -> dict[str, Any] | None:
        """The run's start document (the first, if a plan made several runs)."""
        return self.starts[0] if self.starts else None

    def field(self, name: str) -> str:
        """The stream's field for ``name``: a field itself, or a device's hinted (or only) field.

        A device path such as ``stage.x`` is also looked up by the names devices give their children
        (``stage-x`` in ophyd-async, ``stage_x`` in ophyd).

        Raises:
            InstrumentError: no such field or device in the stream; the message names ``name``.
        """
        for candidate in dict.fromkeys([name, name.replace(".", "-"), name.replace(".", "_")]):
            if candidate in self.data_keys:
                return candidate
            hinted = [f for f in (self._hints.get(candidate) or {}).get("fields", []) if f in self.data_keys]
            if hinted:
                return hinted[0]
            owned = [f for f in self._object_keys.get(candidate, []) if f in self.data_keys]
            if len(owned) == 1:
                return owned[0]
        fields = ", ".join(sorted(self.data_keys)) or "none"
        raise InstrumentError(f"no field '{name}' in the {self.stream} stream (its fields: {fields})")

    def is_external(self, field: str) -> bool:
        """Whether the field's data is in a file the detector wrote, not in the events."""
        return "external" in self.data_keys.get(field, {})

    def values(self, field: str) -> list[Any]:
        """The field's value in each event, in order (read from the detector's file for external data).

        Raises:
            InstrumentError: an event lacks the field, or its file cannot be read.
        """
        if self.is_external(field):
            return self._external_values(field)
        found = []
        for event in self.events:
            if field not in event["data"]:
                raise InstrumentError(f"event {event['seq_num']} of the {self.stream} stream has no field '{field}'")
            found.append(event["data"][field])
        return found

    def column(self, field: str, monitor: str | None = None) -> np.ndarray:
        """The field's values as floats (events first, then each value's own shape), divided by ``monitor``.

        Raises:
            InstrumentError: a value is not a number.
        """
        try:
            data = np.asarray(self.values(field), dtype=float)
        except (TypeError, ValueError):
            raise InstrumentError(f"field '{field}' does not hold numbers") from None
        if monitor is None:
            return data
        norm = np.asarray(self.values(monitor), dtype=float).reshape((-1,) + (1,) * (data.ndim - 1))
        with np.errstate(divide="ignore", invalid="ignore"):
            return data / norm

    def scan_axis(self) -> str:
        """The field of the motor the run scanned (``closedloop.scan.motor`` or ``motors[0]`` in the start).

        Raises:
            InstrumentError: the start document names no motor.
        """
        start = self.start or {}
        motor = ((start.get("closedloop") or {}).get("scan") or {}).get("motor")
        if motor is None and start.get("motors"):
            motor = start["motors"][0]
        if motor is None:
            raise InstrumentError("the run names no scanned motor (no 'motors' in its start document)")
        return self.field(str(motor))

    def _external_values(self, field: str) -> list[Any]:
        import h5py  # ophyd-async[sim] brings it; only runs with file-backed detectors need it

        by_seq: dict[int, Any] = {}
        for datum in self._datums:
            resource = self._resources.get(datum["stream_resource"])
            if resource is None or resource.get("data_key") != field:
                continue
            path = _resource_path(resource)
            dataset = (resource.get("parameters") or {}).get("dataset")
            if resource.get("mimetype") != "application/x-hdf5" or not dataset:
                raise InstrumentError(f"field '{field}' is in a {resource.get('mimetype')} file: no reader for it")
            seq, index = datum["seq_nums"], datum["indices"]
            events = seq["stop"] - seq["start"]
            per_event = (index["stop"] - index["start"]) // max(events, 1)
            try:
                with h5py.File(path, "r", swmr=True) as h5:
                    block = np.asarray(h5[dataset][index["start"] : index["stop"]])
            except (OSError, KeyError) as exc:
                raise InstrumentError(f"field '{field}': cannot read {dataset} in {path}: {exc}") from None
            for k in range(events):
                chunk = block[k * per_event : (k + 1) * per_event]
                by_seq[seq["start"] + k] = chunk[0] if per_event == 1 else chunk
        missing = [e["seq_num"] for e in self.events if e["seq_num"] not in by_seq]
        if missing:
            raise InstrumentError(f"field '{field}' has no data for event {missing[0]} of the {self.stream} stream")
        return [by_seq[e["seq_num"]] for e in self.events]


def _resource_path(resource: dict[str, Any]) -> Path:
    uri = resource.get("uri")
    if uri:
        return Path(unquote(urlparse(uri).path))
    return Path(resource.get("root", "/")) / resource.get("resource_path", "")


# -- the bundled reducers -------------------------------------------------------------------------------------


def mean(documents: Sequence[Document], field: str, monitor: str | None = None) -> float:
    """The mean of a scalar field over the run's ``primary`` events (from the events or the detector's file)."""
    run = RunDocuments(documents)
    data = run.column(run.field(field), monitor and run.field(monitor))
    if data.ndim != 1:
        raise ValueError(f"field '{field}' holds arrays of shape {data.shape[1:]}: use frame_sum")
    return _finite(float(np.mean(data)), field)


def frame_sum(documents: Sequence[Document], field: str, monitor: str | None = None) -> float:
    """Each event's frame (an image from an area detector) summed over its pixels, then the mean over events."""
    run = RunDocuments(documents)
    data = run.column(run.field(field), monitor and run.field(monitor))
    sums = data.reshape(data.shape[0], -1).sum(axis=1)
    return _finite(float(np.mean(sums)), field)


def peak_position(documents: Sequence[Document], field: str, monitor: str | None = None) -> float:
    """Where ``field`` peaks along the scanned motor: the vertex of a parabola through the highest reading and
    its two neighbours.

    Raises:
        CensoredValue: the highest reading is at an end of the scan: the peak lies beyond it, at least the scan's
            high end or at most its low end.
    """
    x, y = _profile(documents, field, monitor)
    i = int(np.argmax(y))
    if i in (0, len(y) - 1):
        bound = {"at_most": float(x[0])} if i == 0 else {"at_least": float(x[-1])}
        raise CensoredValue(
            f"'{field}' is highest at the end of the scan (x={x[i]:g}): the peak is not inside it", **bound
        )
    a, b, _ = np.polyfit(x[i - 1 : i + 2] - x[i], y[i - 1 : i + 2], 2)
    return float(x[i] - b / (2 * a)) if a < 0 else float(x[i])


def fwhm(documents: Sequence[Document], field: str, monitor: str | None = None) -> float:
    """The full width at half maximum of the peak: where ``field`` crosses halfway between its lowest and
    highest reading on each side of the highest one, interpolated linearly.

    Raises:
        CensoredValue: the peak does not fall to half its height on a side inside the scan. When the highest
            reading is inside the scan, the width is at least the distance from the one crossing found (or the
            scan's other end) to the scan's end (by the scan's own half height); with the highest reading at an
            end the height itself is unknown, and no bound is given.
    """
    x, y = _profile(documents, field, monitor)
    i = int(np.argmax(y))
    half = y.min() + (y[i] - y.min()) / 2
    left = next((j for j in range(i, -1, -1) if y[j] < half), None)
    right = next((j for j in range(i, len(y)) if y[j] < half), None)
    x_left = x[0] if left is None else np.interp(half, [y[left], y[left + 1]], [x[left], x[left + 1]])
    x_right = x[-1] if right is None else np.interp(half, [y[right], y[right - 1]], [x[right], x[right - 1]])
    if left is None or right is None:
        sides = " and ".join(s for s, j in (("left", left), ("right", right)) if j is None)
        inside = 0 < i < len(y) - 1
        raise CensoredValue(
            f"'{field}' does not fall to half its peak on the {sides} of the scan",
            at_least=float(x_right - x_left) if inside else None,
        )
    return float(x_right - x_left)


def centroid(documents: Sequence[Document], field: str, monitor: str | None = None) -> float:
    """The centre of mass of ``field`` above its lowest reading, along the scanned motor."""
    x, y = _profile(documents, field, monitor)
    weight = y - y.min()
    if not weight.sum() > 0:
        raise ValueError(f"'{field}' is flat across the scan: it has no centroid")
    return float(np.sum(x * weight) / np.sum(weight))


def integrated_intensity(documents: Sequence[Document], field: str, monitor: str | None = None) -> float:
    """The area under ``field`` against the scanned motor (trapezoidal rule, background included)."""
    x, y = _profile(documents, field, monitor)
    return float(np.trapezoid(y, x))


def _profile(documents: Sequence[Document], field: str, monitor: str | None) -> tuple[np.ndarray, np.ndarray]:
    """The scanned motor's read-backs and ``field`` (per ``monitor``), sorted by position."""
    run = RunDocuments(documents)
    x = run.column(run.scan_axis())
    y = run.column(run.field(field), monitor and run.field(monitor))
    if y.ndim != 1:
        raise ValueError(f"field '{field}' holds arrays of shape {y.shape[1:]}, not one number per point")
    if len(y) < 3:
        raise ValueError(f"a peak needs at least 3 points, the scan has {len(y)}")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        raise ValueError(f"'{field}' or the motor read back a value that is not a finite number")
    order = np.argsort(x, kind="stable")
    return x[order], y[order]


def _finite(value: float, field: str) -> float:
    if not math.isfinite(value):
        raise ValueError(f"'{field}' gives {value}, not a finite number")
    return value
