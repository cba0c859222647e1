"""Bluesky documents from a ``bluesky-0MQ-proxy``, routed to the proposal whose run they belong to.

A :class:`DocumentStream` subscribes to the proxy's out-address in a background thread and decodes each message
(``[prefix] name payload``, as :class:`bluesky.callbacks.zmq.Publisher` sends it) as JSON or msgpack; pickle is
never unpickled. A :class:`RunWatch` registered for a proposal id picks up the run whose start document carries
that ``proposal_id``, then every document that points back to it (descriptors and resources by ``run_start``,
events by ``descriptor``, datums by ``resource``, stream data by ``stream_resource``).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Sequence
from typing import Any

import zmq
from zmq.utils.monitor import recv_monitor_message

from closedloop.errors import InstrumentError

Document = tuple[str, dict[str, Any]]

_PARENT_KEYS = {
    "descriptor": "run_start",
    "resource": "run_start",
    "stream_resource": "run_start",
    "stop": "run_start",
    "event": "descriptor",
    "event_page": "descriptor",
    "datum": "resource",
    "datum_page": "resource",
    "stream_datum": "stream_resource",
}
_OWNS_UID = {"descriptor", "resource", "stream_resource"}


class RunWatch:
    """The documents of one proposal's run, as they arrive (filled by the stream's thread)."""

    def __init__(self, proposal_id: str) -> None:
        self.proposal_id = proposal_id
        self.run_uid: str | None = None
        self.stopped = False
        self._documents: list[Document] = []
        self._arrived = threading.Condition()

    def add(self, name: str, doc: dict[str, Any]) -> None:
        """Append one document (called by the stream's thread)."""
        with self._arrived:
            if name == "start":
                self.run_uid = doc["uid"]
            self._documents.append((name, doc))
            self.stopped = self.stopped or name == "stop"
            self._arrived.notify_all()

    def drain(self) -> list[Document]:
        """The documents that arrived since the last drain, in arrival order."""
        with self._arrived:
            documents, self._documents = self._documents, []
        return documents

    def wait(self, timeout: float) -> None:
        """Block until another document arrives or ``timeout`` seconds pass."""
        with self._arrived:
            if not self._documents:
                self._arrived.wait(timeout)


class DocumentStream:
    """A subscription to a 0MQ document proxy, routing each run's documents to its :class:`RunWatch`.

    Args:
        address: the proxy's out-address (``tcp://host:port``).
        serializer: ``json`` or ``msgpack``, as the publishing RunEngine serializes.
        timeout: seconds to wait for the connection to the proxy.

    Raises:
        InstrumentError: nothing accepted the connection at ``address`` within ``timeout``.
    """

    def __init__(self, address: str, serializer: str, timeout: float) -> None:
        self.address = address
        self.undecodable = 0
        self._decode = _decoder(serializer)
        self._serializer = serializer
        self._watches: dict[str, RunWatch] = {}
        self._owners: dict[str, RunWatch] = {}  # run, descriptor and resource uids -> the watch they belong to
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._context = zmq.Context()
        self._socket = self._context.socket(zmq.SUB)
        self._socket.setsockopt(zmq.SUBSCRIBE, b"")
        self._socket.setsockopt(zmq.LINGER, 0)
        monitor = self._socket.get_monitor_socket(zmq.EVENT_CONNECTED)
        try:
            self._socket.connect(address)
            connected = bool(monitor.poll(int(timeout * 1000)))
            if connected:
                recv_monitor_message(monitor)
        finally:
            self._socket.disable_monitor()
            monitor.close(linger=0)
        if not connected:
            self._socket.close(linger=0)
            self._context.term()
            raise InstrumentError(
                f"instrument.queueserver.documents_address: no 0MQ document proxy at {address} within {timeout:g} s",
                "start one (bluesky-0MQ-proxy, or 'closedloop queueserver start'), or fix the address",
            )
        self._thread = threading.Thread(target=self._receive, name="closedloop-documents", daemon=True)
        self._thread.start()

    def watch(self, proposal_id: str, captured: Sequence[Document] = (), run_uids: Sequence[str] = ()) -> RunWatch:
        """Start collecting the run whose start document names ``proposal_id``.

        ``captured``: documents of that run received earlier (by a process that has ended), and ``run_uids``:
        the uids of runs already open for it: the rest of the run, the documents that point back to them, is
        collected (its start document has been sent already).
        """
        watch = RunWatch(proposal_id)
        with self._lock:
            self._watches[proposal_id] = watch
            for uid in run_uids:
                self._owners[uid] = watch
            for name, doc in captured:
                if name == "start" or name in _OWNS_UID:
                    self._owners[str(doc.get("uid"))] = watch
                if name == "start":
                    watch.run_uid = str(doc.get("uid"))
        return watch

    def unwatch(self, proposal_id: str) -> None:
        """Stop collecting for ``proposal_id`` and forget its run."""
        with self._lock:
            watch = self._watches.pop(proposal_id, None)
            self._owners = {uid: owner for uid, owner in self._owners.items() if owner is not watch}

    def close(self) -> None:
        """Stop the receiving thread and close the socket."""
        self._closing.set()
        self._thread.join(timeout=2.0)
        self._socket.close(linger=0)
        self._context.term()

    def describe_trouble(self) -> str:
        """Why documents may be missing, for an error message ('' when nothing is known)."""
        if not self.undecodable:
            return ""
        return f"; {self.undecodable} messages were not {self._serializer} (is the RunEngine publishing with pickle?)"

    def _receive(self) -> None:
        while not self._closing.is_set():
            if not self._socket.poll(100):
                continue
            message = self._socket.recv()
            parts = message.split(b" ", 2)
            try:
                name, doc = parts[1].decode(), self._decode(parts[2])
            except (IndexError, ValueError, UnicodeDecodeError):
                self.undecodable += 1
                continue
            if isinstance(doc, dict):
                self._route(name, doc)

    def _route(self, name: str, doc: dict[str, Any]) -> None:
        with self._lock:
            if name == "start":
                watch = self._watches.get(str(doc.get("proposal_id")))
                if watch is None or watch.run_uid is not None:
                    return  # not ours, or a second run for the same proposal
                self._owners[doc["uid"]] = watch
            else:
                parent = _PARENT_KEYS.get(name)
                found = self._owners.get(str(doc.get(parent))) if parent else None
                if found is None:
                    return
                watch = found
                if name in _OWNS_UID:
                    self._owners[doc["uid"]] = watch
        watch.add(name, doc)


def _decoder(serializer: str) -> Callable[[bytes], Any]:
    if serializer == "json":
        return json.loads
    import msgpack

    return lambda payload: msgpack.unpackb(payload, raw=False)
