"""Writing every run's documents to a Tiled server, off the RunEngine's thread.

:class:`TiledSink` is a document sink (subscribe it to a RunEngine, or call it with each ``(name, document)``)
that hands the documents to Tiled's own Bluesky writer (``bluesky_tiled_plugins.TiledWriter``, the maintained
home of bluesky's ``TiledWriter``) on a thread of its own, over HTTP. Each run becomes a ``BlueskyRun`` container
named by the run's uid, at :meth:`TiledSink.entry_url`.

The RunEngine never waits for Tiled and never sees its errors: a server that is down, slow, or refuses the key
fails only that run's entry, which is logged and reported through ``on_error``; the next run tries again. A run
whose data are in files (``stream_resource`` documents: an area detector's HDF5, or large arrays written out by
:class:`~instruments.arrays.ExternalArrays`) counts as written only once Tiled serves a piece of its data back: a
server that registered the files but may not read them (outside its ``--read`` locations) fails the run's entry.
Tiled runs as its own server process: its in-process (ASGI) client does not work in a process that has imported
langgraph, its HTTP client does. Needs the ``closedloop[tiled]`` extra.
"""

from __future__ import annotations

import copy
import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

from closedloop.errors import InstrumentError, one_line
from closedloop.tiled import TiledSpec

try:
    import httpx
    from bluesky_tiled_plugins import TiledWriter
    from tiled.client import from_context
    from tiled.client.context import Context
except ImportError as exc:  # the tiled extra is optional
    _MISSING: ImportError | None = exc
else:
    _MISSING = None

log = logging.getLogger(__name__)

ErrorSink = Callable[[dict[str, Any]], None]
"""Called (from the sink's thread) with ``{"run_uid", "proposal_id", "url", "error"}`` when a run's entry could
not be written; ``run_uid`` is None when the server could not be reached at start-up."""

_STOP = None


class TiledSink:
    """A document sink that writes each run to a Tiled server as it happens.

    Calling the sink only queues a copy of the document; a thread of the sink connects to the server (at
    start-up, and again at the next run after a failure) and writes the queue in order with Tiled's
    ``TiledWriter``, each event as it comes. Nothing it does raises into the caller.

    Args:
        spec: the session's ``tiled`` section.
        on_error: told about each run whose entry could not be written (see :data:`ErrorSink`); it must not
            block. Failures are logged whether or not it is given.

    Raises:
        InstrumentError: the ``closedloop[tiled]`` extra is not installed.
    """

    def __init__(self, spec: TiledSpec, *, on_error: ErrorSink | None = None) -> None:
        if _MISSING is not None:
            raise InstrumentError(
                f"tiled: writing runs to Tiled needs the tiled extra ({_MISSING.name or _MISSING} is missing)",
                "pip install 'closedloop[tiled]'",
            )
        self.spec = spec
        self._base = spec.metadata_url()
        self._on_error = on_error
        self._queue: queue.Queue[tuple[str, dict[str, Any]] | None] = queue.Queue()
        self._errors: dict[str, str] = {}
        self._written: set[str] = set()
        self._client: Any = None
        self._writer: Any = None
        self._run: str | None = None  # uid of the run being written; None: skip documents until the next start
        self._proposal: str | None = None
        self._streams: dict[str, str] = {}  # this run's descriptor uid -> stream name
        self._resources: dict[str, tuple[str, str]] = {}  # this run's stream resource uid -> (data key, file uri)
        self._sample: tuple[str, str, str] | None = None  # (stream, data key, file uri) of its first data in a file
        self._closed = False
        self._handled = 0  # documents taken off the queue so far
        self._connected_once = threading.Event()  # the first attempt to connect is over
        self._thread = threading.Thread(target=self._work, name="closedloop-tiled", daemon=True)
        self._thread.start()

    def __call__(self, name: str, doc: dict[str, Any]) -> None:
        """Queue one document for writing (a copy: the writer may change what it is given). Never raises."""
        try:
            if not self._closed:
                self._queue.put((name, copy.deepcopy(doc)))
        except Exception:
            log.exception("tiled: could not queue a %s document", name)

    def entry_url(self, run_uid: str) -> str:
        """The run's entry in Tiled: a URL on Tiled's metadata endpoint that ``tiled.client.from_uri`` opens.

        It is known before the run is written; :meth:`written` and :meth:`error` say whether it was.
        """
        return f"{self._base}/{run_uid}"

    def written(self, run_uid: str) -> bool:
        """Whether the run's entry was written whole (its stop document included)."""
        return run_uid in self._written

    def error(self, run_uid: str) -> str | None:
        """Why the run's entry could not be written, or None (written, still queued, or never seen)."""
        return self._errors.get(run_uid)

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until the first attempt to connect is over and the queue is empty (every document written or
        given up on).

        Returns:
            Whether that happened within ``timeout`` seconds (None: wait as long as it takes).
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        if not self._connected_once.wait(timeout):
            return False
        with self._queue.all_tasks_done:
            while self._queue.unfinished_tasks:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._queue.all_tasks_done.wait(remaining)
        return True

    def close(self) -> None:
        """Write what is queued, then stop the thread and disconnect.

        It waits as long as the server keeps taking documents, and gives up once none was handled for
        ``spec.timeout`` seconds; runs still queued then are logged and reported as not written.
        """
        if self._closed:
            return
        self._closed = True
        drained = False
        while not drained:
            before = self._handled
            drained = self.flush(self.spec.timeout)
            if self._handled == before:
                break  # nothing written for `timeout` seconds: Tiled is not answering
        self._queue.put(_STOP)
        if drained:
            self._thread.join(self.spec.timeout)
        else:
            with self._queue.mutex:
                queued = [item for item in self._queue.queue if item is not _STOP]
            pending = {doc["uid"] for name, doc in queued if name == "start"}
            for uid in sorted(pending | ({self._run} if self._run else set())):
                self._fail(uid, None, f"not written: Tiled took nothing for {self.spec.timeout:g} s while closing")

    def _work(self) -> None:
        try:
            self._connect(None, None)
        finally:
            self._connected_once.set()
        while True:
            item = self._queue.get()
            try:
                if item is _STOP:
                    self._disconnect()
                    return
                self._handle(*item)
            except Exception:  # _handle reports its own failures; this is a last resort
                log.exception("tiled: the writer thread failed on a document")
            finally:
                self._handled += 1
                self._queue.task_done()

    def _handle(self, name: str, doc: dict[str, Any]) -> None:
        if name == "start":
            self._run, self._proposal = doc["uid"], doc.get("proposal_id")
            self._streams, self._resources, self._sample = {}, {}, None
            if self._writer is None and not self._connect(self._run, self._proposal):
                self._run = None
                return
        if self._run is None:
            return  # this run failed (or began before the sink): skip the rest of it
        try:
            self._writer(name, doc)
        except Exception as exc:
            self._fail(self._run, self._proposal, f"{type(exc).__name__}: {exc}")
            self._run = None
            self._disconnect()  # the writer's state for this run is broken; start afresh at the next run
            return
        self._note_external(name, doc)
        if name == "stop":
            problem = self._read_back(self._run)
            if problem is not None:
                self._fail(self._run, self._proposal, problem)
            else:
                self._written.add(self._run)
            self._run = None

    def _note_external(self, name: str, doc: dict[str, Any]) -> None:
        """Remember where the run's first data in a file is, to read it back at the stop document."""
        if name == "descriptor":
            self._streams[doc["uid"]] = str(doc.get("name"))
        elif name == "stream_resource":
            self._resources[doc["uid"]] = (str(doc.get("data_key")), str(doc.get("uri")))
        elif name == "stream_datum" and self._sample is None:
            stream, resource = self._streams.get(doc.get("descriptor", "")), self._resources.get(doc["stream_resource"])
            if stream is not None and resource is not None:
                self._sample = (stream, *resource)

    def _read_back(self, run_uid: str) -> str | None:
        """Why Tiled cannot serve the run's first data in a file (one element of it), or None (it can, or the run
        has none)."""
        if self._sample is None:
            return None
        stream, key, uri = self._sample
        try:
            node = self._client[run_uid][stream][key]
            node[tuple(slice(0, 1) for _ in node.shape)]
        except Exception as exc:
            return (
                f"written, but Tiled cannot read back its data '{key}' from {uri}: {type(exc).__name__}: "
                f"{_reason(exc)} (is the file's folder among the server's readable locations, tiled serve --read?)"
            )
        return None

    def _connect(self, run_uid: str | None, proposal_id: str | None) -> bool:
        """Reach the server (a quick probe first, so a server that is down costs no retries), then open a client."""
        key = self.spec.api_key.get_secret_value() if self.spec.api_key is not None else None
        api = self._base.partition("/metadata")[0]
        context = None
        try:
            response = httpx.get(f"{api}/", timeout=self.spec.timeout, follow_redirects=True)
            if response.status_code != 200 or "api_version" not in response.text:
                raise ConnectionError(f"{api}/ answered {response.status_code}, not as a Tiled server does")
            context, path = Context.from_any_uri(self._base, api_key=key, timeout=httpx.Timeout(self.spec.timeout))
            self._client = from_context(context, node_path_parts=path, remember_me=False)
            self._writer = TiledWriter(self._client, batch_size=1)
        except Exception as exc:
            self._disconnect()
            if context is not None:
                context.close()
            self._fail(run_uid, proposal_id, f"Tiled at {self.spec.url} not usable: {type(exc).__name__}: {exc}")
            return False
        return True

    def _disconnect(self) -> None:
        client, self._client, self._writer = self._client, None, None
        if client is not None:
            try:
                client.context.close()
            except Exception:
                log.exception("tiled: closing the client failed")

    def _fail(self, run_uid: str | None, proposal_id: str | None, error: str) -> None:
        error = one_line(error)
        url = self.entry_url(run_uid) if run_uid else self._base
        if run_uid is not None:
            self._errors[run_uid] = error
        log.warning("tiled: run %s not written to %s: %s", run_uid or "(none yet)", url, error)
        if self._on_error is not None:
            try:
                self._on_error({"run_uid": run_uid, "proposal_id": proposal_id, "url": url, "error": error})
            except Exception:
                log.exception("tiled: on_error raised")


def _reason(exc: Exception) -> str:
    """The server's own explanation of a refused request (its ``detail``), else the exception's text."""
    response = getattr(exc, "response", None)
    try:
        detail = response.json().get("detail") if response is not None else None
    except Exception:
        detail = None
    return str(detail or exc)


def read_run(spec: TiledSpec, run_uid: str) -> list[tuple[str, dict[str, Any]]]:
    """A run as documents, read back from the Tiled server ``spec`` names (its ``BlueskyRun`` entry ``run_uid``).

    What a run's entry keeps is rebuilt: its start and stop documents, and per stream a descriptor (data keys,
    hints, configuration) and one event per row of the stream's table, arrays a detector wrote to a file included
    (read through Tiled, so put in the events). Enough for :func:`~instruments.ingest.observation_from_documents`;
    event and descriptor uids are new.

    Raises:
        InstrumentError: the extra is missing, the server cannot be reached, or it has no whole run ``run_uid``
            (no entry, or no stop document: the run had not ended when it was written).
    """
    if _MISSING is not None:
        raise InstrumentError(
            f"reading a run from Tiled needs the tiled extra ({_MISSING.name or _MISSING} is missing)"
        )
    key = spec.api_key.get_secret_value() if spec.api_key is not None else None
    context = None
    try:
        context, path = Context.from_any_uri(spec.metadata_url(), api_key=key, timeout=httpx.Timeout(spec.timeout))
        client = from_context(context, node_path_parts=path, remember_me=False)
    except Exception as exc:
        if context is not None:
            context.close()
        raise InstrumentError(f"Tiled at {spec.url} not usable: {type(exc).__name__}: {one_line(str(exc))}") from None
    try:
        if run_uid not in client:
            raise InstrumentError(f"Tiled at {spec.url} has no run {run_uid}")
        run = client[run_uid]
        start, stop = run.metadata.get("start"), run.metadata.get("stop")
        if not start or not stop:
            raise InstrumentError(f"Tiled at {spec.url} holds run {run_uid} without its stop document: not whole")
        documents: list[tuple[str, dict[str, Any]]] = [("start", dict(start))]
        for stream in run:
            documents += _stream_documents(start["uid"], stream, run[stream])
        documents.append(("stop", dict(stop)))
        return documents
    except InstrumentError:
        raise
    except Exception as exc:
        raise InstrumentError(
            f"Tiled at {spec.url}: reading run {run_uid}: {type(exc).__name__}: {_reason(exc)}"
        ) from None
    finally:
        client.context.close()


def _stream_documents(run_start: str, name: str, stream: Any) -> list[tuple[str, dict[str, Any]]]:
    """One stream of a run's Tiled entry as a descriptor and its events (the data read into them)."""
    import uuid

    meta = stream.metadata
    data_keys = {k: {f: v for f, v in dk.items() if f != "external"} for k, dk in (meta.get("data_keys") or {}).items()}
    object_keys: dict[str, list[str]] = {}
    for field, key in data_keys.items():
        object_keys.setdefault(str(key.get("object_name", field)), []).append(field)
    descriptor = {
        "uid": str(uuid.uuid4()),
        "run_start": run_start,
        "name": name,
        "time": meta.get("time", 0.0),
        "data_keys": data_keys,
        "hints": meta.get("hints") or {},
        "configuration": meta.get("configuration") or {},
        "object_keys": object_keys,
    }
    table = stream.read()
    times = table["time"].values.tolist() if "time" in table.coords or "time" in table else []
    columns = {field: table[field].values for field in data_keys if field in table}
    documents: list[tuple[str, dict[str, Any]]] = [("descriptor", descriptor)]
    for row in range(len(times)):
        data = {field: values[row].tolist() for field, values in columns.items()}
        event = {"uid": str(uuid.uuid4()), "descriptor": descriptor["uid"], "seq_num": row + 1, "time": times[row]}
        documents.append(("event", {**event, "data": data, "timestamps": dict.fromkeys(data, times[row])}))
    return documents
