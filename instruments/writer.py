"""One writer for an instrument's documents: each written once, as it streams, to every sink.

A :class:`DocumentWriter` is a bluesky callback (``writer(name, doc)``): subscribed to the in-process RunEngine
(``RE.subscribe(writer)``), or fed the documents of a queueserver manager's 0MQ stream as they are received. Each
document first has its large arrays moved to HDF5 files (:class:`~instruments.arrays.ExternalArrays`, when the
session asks for it), then goes, in this order, to the session's own sinks (a bluesky 0MQ ``Publisher`` as JSON,
a :class:`~instruments.tiled.TiledSink`), then to the run in progress: kept in memory (one list, the run's
:attr:`~instruments.protocols.RunRecord.documents`, which the loop ingests) and handed to that run's sink (the
agent's run file, ``runs/<proposal id>.jsonl``). The store's copy of a run is written once, from that list, when
the run ends; it is read back only after a crash.

Not bluesky's (event-model's) ``RunRouter``: the run's file is created before anything moves (before the start
document exists), and an instrument runs one proposal at a time, so the run in progress is simply the current one.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from event_model import NumpyEncoder

from closedloop.arrays import ArraysSpec
from closedloop.instrument import PublishSpec
from closedloop.tiled import TiledSpec
from instruments.arrays import ExternalArrays
from instruments.protocols import Document, DocumentSink

if TYPE_CHECKING:
    from instruments.tiled import TiledSink

log = logging.getLogger(__name__)


def json_document(doc: dict[str, Any]) -> bytes:
    """A document as JSON bytes (numpy values as plain numbers), for bluesky's 0MQ ``Publisher``; never pickle."""
    return json.dumps(doc, cls=NumpyEncoder).encode()


class DocumentWriter:
    """Hands each document of an instrument's runs, large arrays moved out, to every sink and to the run in progress.

    Args:
        sinks: every run's documents go to these, in order (a 0MQ publisher, a Tiled sink); each with a
            ``close()`` is closed by :meth:`close`.
        arrays: moves large arrays out of the documents first; None keeps them inline.
        tiled: the Tiled sink among ``sinks``, if any (the loop names each run's entry in it).
    """

    def __init__(
        self,
        sinks: Sequence[DocumentSink] = (),
        *,
        arrays: ExternalArrays | None = None,
        tiled: TiledSink | None = None,
    ) -> None:
        self.sinks = list(sinks)
        self.arrays = arrays
        self.tiled = tiled
        self._documents: list[Document] | None = None
        self._run_sink: DocumentSink | None = None

    def begin(self, sink: DocumentSink | None = None) -> list[Document]:
        """Start keeping a run (or a run's attempt): the list its documents are kept in from now on, each also
        handed to ``sink`` (the run's file). Ends the one kept before."""
        self._documents, self._run_sink = [], sink
        return self._documents

    def end(self) -> None:
        """Stop keeping the run (documents that come later go to the sinks only)."""
        self._documents, self._run_sink = None, None

    def __call__(self, name: str, doc: dict[str, Any]) -> None:
        """Write one document as the RunEngine (or the stream) emits it."""
        documents = self.arrays(name, doc) if self.arrays is not None else [(name, doc)]
        kept, run_sink = self._documents, self._run_sink
        for out in documents:
            for sink in self.sinks:
                sink(*out)
            if kept is not None:
                kept.append(out)
            if run_sink is not None:
                run_sink(*out)

    def close(self) -> None:
        """Close the HDF5 files still open and every sink that can be closed."""
        if self.arrays is not None:
            self.arrays.close()
        for sink in self.sinks:
            close = getattr(sink, "close", None)
            if callable(close):
                close()
        self.sinks.clear()


def document_writer(
    *,
    arrays: ArraysSpec | None = None,
    arrays_dir: Path | None = None,
    publish: PublishSpec | None = None,
    tiled: TiledSpec | None = None,
    on_tiled_error: Callable[[dict[str, Any]], None] | None = None,
) -> DocumentWriter:
    """The writer a session's sections ask for: arrays above ``arrays.external_above`` elements to HDF5 files in
    ``arrays_dir``, every document published as JSON to ``publish``'s 0MQ proxy and written to ``tiled``.

    Raises:
        InstrumentError: ``tiled`` is given and the ``closedloop[tiled]`` extra is not installed.
    """
    threshold = arrays.external_above if arrays is not None else None
    moved = ExternalArrays(arrays_dir, threshold) if arrays_dir is not None and threshold is not None else None
    sinks: list[DocumentSink] = []
    tiled_sink = None
    if publish is not None:
        from bluesky.callbacks.zmq import Publisher

        sinks.append(Publisher(publish.address, serializer=json_document))
    if tiled is not None:
        from instruments.tiled import TiledSink  # the tiled extra is optional: imported only when asked for

        try:
            tiled_sink = TiledSink(tiled, on_error=on_tiled_error)
        except BaseException:
            DocumentWriter(sinks, arrays=moved).close()  # what was opened so far, closed as a writer closes it
            raise
        sinks.append(tiled_sink)
    return DocumentWriter(sinks, arrays=moved, tiled=tiled_sink)
