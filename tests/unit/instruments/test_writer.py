"""The DocumentWriter: one subscriber of a real RunEngine, each document to every sink once, the run kept once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import bluesky.plans as bp
from ophyd.sim import SynAxis, SynGauss

from instruments.arrays import ExternalArrays
from instruments.writer import DocumentWriter, document_writer

Document = tuple[str, dict[str, Any]]


class Sink:
    """A sink that records what it is given and whether it was closed."""

    def __init__(self, log: list[tuple[str, str]], label: str) -> None:
        self.log, self.label = log, label
        self.documents: list[Document] = []
        self.closed = False

    def __call__(self, name: str, doc: dict[str, Any]) -> None:
        self.documents.append((name, doc))
        self.log.append((self.label, name))

    def close(self) -> None:
        self.closed = True


def devices() -> tuple[SynAxis, SynGauss]:
    motor = SynAxis(name="motor")
    return motor, SynGauss("det", motor, "motor", center=0, Imax=1, sigma=1)


def test_each_document_goes_once_to_every_sink_in_order_then_to_the_run(run_engine: Any) -> None:
    order: list[tuple[str, str]] = []
    first, second, run_file = Sink(order, "0mq"), Sink(order, "tiled"), Sink(order, "file")
    writer = DocumentWriter([first, second])
    run_engine.subscribe(writer)
    motor, det = devices()
    kept = writer.begin(run_file)
    run_engine(bp.count([det], num=2))
    writer.end()
    names = ["start", "descriptor", "event", "event", "stop"]
    assert [name for name, _ in kept] == names
    assert first.documents == second.documents == run_file.documents == kept  # the same documents, not copies
    assert all(a[1] is b[1] for a, b in zip(kept, first.documents, strict=True))
    assert order[:3] == [("0mq", "start"), ("tiled", "start"), ("file", "start")]
    run_engine(bp.count([det], num=1))  # no run kept: the sinks still get it, the kept list and the file do not
    assert len(first.documents) == 9 and len(kept) == 5 and len(run_file.documents) == 5
    writer.close()
    assert first.closed and second.closed and not run_file.closed  # the run's file is the loop's to close


def test_a_new_attempt_keeps_a_new_list_and_the_file_sees_both(run_engine: Any) -> None:
    file_log: list[tuple[str, str]] = []
    run_file = Sink(file_log, "file")
    writer = DocumentWriter()
    run_engine.subscribe(writer)
    _, det = devices()
    first = writer.begin(run_file)
    run_engine(bp.count([det], num=1))
    second = writer.begin(run_file)
    run_engine(bp.count([det], num=1))
    assert first is not second and len(first) == len(second) == 4
    assert first[0][1]["uid"] != second[0][1]["uid"]
    assert len(run_file.documents) == 8


def test_large_arrays_move_out_before_any_sink_sees_them(tmp_path: Path) -> None:
    from tests.unit.instruments.test_arrays import frames, run_documents

    order: list[tuple[str, str]] = []
    sink = Sink(order, "0mq")
    writer = DocumentWriter([sink], arrays=ExternalArrays(tmp_path, 1000))
    kept = writer.begin()
    for name, doc in run_documents(frames(2)):
        writer(name, doc)
    writer.close()
    assert [name for name, _ in kept] == [name for name, _ in sink.documents]
    assert "stream_resource" in [name for name, _ in kept]
    event = next(doc for name, doc in kept if name == "event")
    assert "cam-image" not in event["data"] and "det" in event["data"]
    assert list(tmp_path.glob("*.h5"))


def test_the_session_sections_build_the_sinks(tmp_path: Path) -> None:
    from closedloop.arrays import ArraysSpec
    from closedloop.instrument import PublishSpec

    bare = document_writer()
    assert bare.sinks == [] and bare.arrays is None and bare.tiled is None
    writer = document_writer(
        arrays=ArraysSpec(external_above=10), arrays_dir=tmp_path, publish=PublishSpec(address="127.0.0.1:5577")
    )
    try:
        assert [type(sink).__name__ for sink in writer.sinks] == ["Publisher"]
        assert writer.arrays is not None and writer.arrays.threshold == 10
    finally:
        writer.close()
    assert writer.sinks == []
