"""The reducers: peak figures from a scan's documents, the primary stream read as columns, fields found by device."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from closedloop import InstrumentError
from instruments.reducers import RunDocuments, centroid, frame_sum, fwhm, integrated_intensity, mean, peak_position

Docs = list[tuple[str, dict[str, Any]]]


def scan_documents(x: np.ndarray, y: np.ndarray, monitor: np.ndarray | None = None, stream: str = "primary") -> Docs:
    """A scan of motor ``mx`` with detector ``det`` as the RunEngine emits it."""
    keys = {"mx": {"dtype": "number", "shape": []}, "det": {"dtype": "number", "shape": []}}
    if monitor is not None:
        keys["i0"] = {"dtype": "number", "shape": []}
    docs: Docs = [("start", {"uid": "r", "time": 0.0, "motors": ["mx"]})]
    docs.append(("descriptor", {"uid": "d", "name": stream, "data_keys": keys, "hints": {"mx": {"fields": ["mx"]}}}))
    for i, (xi, yi) in enumerate(zip(x, y, strict=True)):
        data = {"mx": float(xi), "det": float(yi)}
        if monitor is not None:
            data["i0"] = float(monitor[i])
        docs.append(("event", {"descriptor": "d", "seq_num": i + 1, "data": data}))
    docs.append(("stop", {"time": 1.0, "exit_status": "success"}))
    return docs


CENTER, SIGMA, HEIGHT = 0.123, 0.2, 50.0
X = np.linspace(-1.0, 1.0, 41)
Y = HEIGHT * np.exp(-((X - CENTER) ** 2) / (2 * SIGMA**2))


def test_peak_figures_of_a_gaussian() -> None:
    docs = scan_documents(X, Y)
    assert peak_position(docs, "det") == pytest.approx(CENTER, abs=0.005)  # points are 0.05 apart
    assert fwhm(docs, "det") == pytest.approx(2 * math.sqrt(2 * math.log(2)) * SIGMA, rel=0.02)
    assert centroid(docs, "det") == pytest.approx(CENTER, abs=1e-3)
    assert integrated_intensity(docs, "det") == pytest.approx(HEIGHT * SIGMA * math.sqrt(2 * math.pi), rel=1e-3)


def test_the_order_of_points_does_not_matter() -> None:
    order = np.random.default_rng(0).permutation(len(X))
    shuffled = scan_documents(X[order], Y[order])
    assert peak_position(shuffled, "det") == pytest.approx(peak_position(scan_documents(X, Y), "det"))
    assert integrated_intensity(shuffled, "det") == pytest.approx(integrated_intensity(scan_documents(X, Y), "det"))


def test_a_monitor_divides_each_point() -> None:
    i0 = np.linspace(1.0, 3.0, len(X))  # a falling beam would move a raw peak
    docs = scan_documents(X, Y * i0, monitor=i0)
    assert integrated_intensity(docs, "det", monitor="i0") == pytest.approx(
        integrated_intensity(scan_documents(X, Y), "det")
    )
    assert peak_position(docs, "det", monitor="i0") == pytest.approx(peak_position(scan_documents(X, Y), "det"))


def test_a_peak_outside_the_scan_is_refused() -> None:
    rising = scan_documents(X, np.exp(X))
    with pytest.raises(ValueError, match="highest at the end of the scan"):
        peak_position(rising, "det")
    with pytest.raises(ValueError, match="does not fall to half its peak on the right"):
        fwhm(rising, "det")
    with pytest.raises(ValueError, match="flat across the scan"):
        centroid(scan_documents(X, np.ones_like(X)), "det")


def test_fields_are_found_by_device_name_or_child_path() -> None:
    keys = {name: {"dtype": "number", "shape": []} for name in ("stage-x", "det-channel-1-value", "det-channel-1-mode")}
    descriptor = {
        "uid": "d",
        "name": "primary",
        "data_keys": keys,
        "hints": {"det": {"fields": ["det-channel-1-value"]}},
        "object_keys": {"stage-x": ["stage-x"], "det": ["det-channel-1-value", "det-channel-1-mode"]},
    }
    run = RunDocuments([("start", {"uid": "r"}), ("descriptor", descriptor)])
    assert run.field("det") == "det-channel-1-value"
    assert run.field("stage.x") == "stage-x"
    with pytest.raises(InstrumentError, match=r"no field 'stage\.z' in the primary stream \(its fields: det-channel"):
        run.field("stage.z")


def test_other_streams_are_not_read() -> None:
    docs = scan_documents(X, Y)
    docs[2:2] = [("descriptor", {"uid": "b", "name": "baseline", "data_keys": {"det": {}}})]
    docs.insert(3, ("event", {"descriptor": "b", "seq_num": 1, "data": {"det": 1e9, "mx": 0.0}}))
    assert len(RunDocuments(docs).events) == len(X)
    assert mean(docs, "det") == pytest.approx(float(np.mean(Y)))


def test_mean_refuses_frames_and_frame_sum_sums_them() -> None:
    frames = [np.full((2, 3), 1.0), np.full((2, 3), 3.0)]
    keys = {"cam": {"dtype": "array", "shape": [2, 3]}}
    docs: Docs = [("start", {"uid": "r"}), ("descriptor", {"uid": "d", "name": "primary", "data_keys": keys})]
    docs += [
        ("event", {"descriptor": "d", "seq_num": i + 1, "data": {"cam": f.tolist()}}) for i, f in enumerate(frames)
    ]
    assert frame_sum(docs, "cam") == 12.0  # (6 + 18) / 2
    with pytest.raises(ValueError, match="holds arrays of shape"):
        mean(docs, "cam")
