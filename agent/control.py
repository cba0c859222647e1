"""The control channel's transport: the ZeroMQ server inside a running session (the client other terminals use is
in :mod:`agent.control_client`, and importable from here too).

A :class:`ControlServer` binds a ROUTER for requests and an XPUB for events (ephemeral TCP ports, loopback by
default) and serves them from one background thread with its own ZeroMQ context. It writes ``control.json`` into
the session folder (the two addresses, the pid, the host and, with CurveZMQ, the server's public key) and removes
it on :meth:`ControlServer.close`. The transport holds no rules: every request goes to the session's handler.

- Requests are :mod:`closedloop.control` messages. A malformed, oversized or wrong-version message gets an error
  reply naming the problem; a handler that raises gets an error reply; neither stops the server.
- Events: :meth:`ControlServer.publish` is safe from any thread. The server keeps the last :data:`BACKLOG` events
  and sends them again whenever a subscriber joins, so a new subscriber misses nothing recent (PUB/SUB drops what
  is sent while a subscriber connects); subscribers drop repeats by ``seq``.
- Off loopback, CurveZMQ is required: ``closedloop keys DIR`` makes the keys (:func:`agent.curve.make_keys`), the
  server encrypts with its key pair and admits only the client public keys in ``DIR/keys/authorized``. A client
  without an admitted key gets no reply at all, so every client call has a timeout, after which it says "not
  authorised or not running".
"""

from __future__ import annotations

import collections
import datetime
import json
import logging
import os
import socket
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import zmq
from zmq.auth.thread import ThreadAuthenticator

from agent.control_client import BACKLOG, CONTROL_FILE, ControlClient, read_control, subscribe
from agent.curve import AUTHORIZED_DIR, KEYS_DIR, load_server_keys
from closedloop.control import (
    Event,
    LateAnswerError,
    Reply,
    ReplyCode,
    Request,
    decode,
    encode,
    request_id,
    validate_request,
)
from closedloop.errors import ClosedLoopError, SessionError, SpecError

MAX_FRAME_BYTES = 1 << 20
"""A peer that sends a frame larger than this is disconnected (ZeroMQ's MAXMSGSIZE); between
:data:`~closedloop.control.MAX_MESSAGE_BYTES` and this, it gets an error reply."""

LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})
_STOP = b"\x00stop"

log = logging.getLogger(__name__)

__all__ = [
    "BACKLOG",
    "CONTROL_FILE",
    "LOOPBACK",
    "MAX_FRAME_BYTES",
    "ControlClient",
    "ControlServer",
    "Handler",
    "read_control",
    "subscribe",
]

Handler = Callable[[Request], dict[str, Any] | None]


def _endpoint(host: str) -> str:
    if host == "localhost":
        host = "127.0.0.1"
    return f"tcp://[{host}]:*" if ":" in host else f"tcp://{host}:*"


def _public_address(bound: str, host: str) -> str:
    """The address a client connects to: a wildcard bind is published under this host's name."""
    if host in ("0.0.0.0", "*", "::"):
        port = bound.rsplit(":", 1)[1]
        return f"tcp://{socket.gethostname()}:{port}"
    return bound


def _json_default(value: Any) -> Any:
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)


# The server ------------------------------------------------------------------------------------------------------
class ControlServer:
    """The control channel of one running session.

    Args:
        folder: the session folder (``control.json`` is written there; keys are read from ``folder/keys``).
        handler: called with each valid request, in the server's thread: it must return quickly (set a flag,
            enqueue), with a JSON-able result dict. A :class:`~closedloop.errors.ClosedLoopError` it raises becomes
            an error reply with its message (``late`` for :class:`~closedloop.control.LateAnswerError`, ``invalid``
            for one that is also a ``ValueError``, else ``refused``); any other exception an ``internal`` one.
        host: the interface to bind (loopback by default; ``0.0.0.0`` for every interface).
        curve: use CurveZMQ; None means on exactly when ``host`` is not loopback. Off loopback it cannot be off.

    Raises:
        SessionError: CurveZMQ is needed and the folder has no keys, or it is turned off for a non-loopback host.
    """

    def __init__(self, folder: Path, handler: Handler, host: str = "127.0.0.1", curve: bool | None = None) -> None:
        self.folder = Path(folder)
        self._handler = handler
        loopback = host in LOOPBACK
        if curve is None:
            curve = not loopback
        if not curve and not loopback:
            raise SessionError(f"control host {host}: off loopback the control channel must use CurveZMQ")
        self.curve = curve
        self._ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
        self._auth: ThreadAuthenticator | None = None
        self._lock = threading.Lock()
        self._seq = 0
        self.dropped = 0
        """Events dropped because the server thread was too far behind (never expected)."""
        self._closed = False
        try:
            server_key = self._setup_sockets(host)
            self.info = {
                "v": 1,
                "pid": os.getpid(),
                "host": socket.gethostname(),
                "requests": _public_address(self.requests_address, host),
                "events": _public_address(self.events_address, host),
                "server_key": server_key,
                "since": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
            }
            path = self.folder / CONTROL_FILE
            tmp = path.with_suffix(".json.tmp")
            tmp.write_text(json.dumps(self.info, indent=1))
            tmp.replace(path)
        except (OSError, zmq.ZMQError) as exc:
            self._teardown()
            raise SessionError(f"{self.folder}: cannot open the control channel on {host} ({exc})") from None
        except BaseException:
            self._teardown()
            raise
        self._thread = threading.Thread(target=self._serve, name="closedloop-control", daemon=True)
        self._thread.start()

    def _setup_sockets(self, host: str) -> str | None:
        server_key: str | None = None
        if self.curve:
            public, secret = load_server_keys(self.folder / KEYS_DIR)
            self._auth = ThreadAuthenticator(self._ctx)
            self._auth.start()
            self._auth.configure_curve(domain="*", location=str(self.folder / KEYS_DIR / AUTHORIZED_DIR))
            server_key = public.decode()
        self._router = self._ctx.socket(zmq.ROUTER)
        self._xpub = self._ctx.socket(zmq.XPUB)
        self._pull = self._ctx.socket(zmq.PULL)
        self._push = self._ctx.socket(zmq.PUSH)
        for sock in (self._router, self._xpub, self._pull, self._push):
            sock.linger = 0
        self._router.setsockopt(zmq.MAXMSGSIZE, MAX_FRAME_BYTES)
        self._xpub.setsockopt(zmq.XPUB_VERBOSE, 1)  # every subscriber's join, not only the first
        self._push.sndhwm = 100_000
        for sock in (self._router, self._xpub):
            if ":" in host:
                sock.setsockopt(zmq.IPV6, 1)
            if self.curve:
                sock.curve_secretkey = secret
                sock.curve_publickey = public
                sock.curve_server = True
            sock.bind(_endpoint(host))
        inproc = f"inproc://closedloop-events-{id(self)}"
        self._pull.bind(inproc)
        self._push.connect(inproc)
        self.requests_address = self._router.getsockopt_string(zmq.LAST_ENDPOINT)
        self.events_address = self._xpub.getsockopt_string(zmq.LAST_ENDPOINT)
        return server_key

    # events ------------------------------------------------------------------------------------------------------
    def publish(self, kind: str, data: dict[str, Any] | None = None) -> Event:
        """Publish an event to every subscriber (safe from any thread; never blocks).

        Returns:
            the event as sent.

        Raises:
            pydantic.ValidationError: ``kind`` is not an event kind.
        """
        with self._lock:
            self._seq += 1
            event = Event(seq=self._seq, time=datetime.datetime.now().timestamp(), kind=kind, data=data or {})  # type: ignore[arg-type]
            if self._closed:
                return event
            payload = json.dumps(event.model_dump(), default=_json_default).encode()
            try:
                self._push.send(payload, zmq.NOBLOCK)
            except zmq.Again:
                self.dropped += 1
        return event

    # requests ----------------------------------------------------------------------------------------------------
    def _reply(self, raw: bytes) -> bytes:
        rid = ""
        try:
            data = decode(raw)
            rid = request_id(data)
            request = validate_request(data)
        except SpecError as exc:
            return encode(Reply(id=rid, ok=False, error=str(exc), code="invalid"))
        code: ReplyCode
        result: dict[str, Any] = {}
        try:
            result = self._handler(request) or {}
            reply = Reply(id=rid, ok=True, result=result)
            return json.dumps(reply.model_dump(), default=_json_default).encode()
        except LateAnswerError as exc:
            code, result = "late", {"checkpoint": exc.checkpoint, "answered_by": exc.answered_by}
            error = str(exc)
        except ClosedLoopError as exc:
            code, error = ("invalid" if isinstance(exc, ValueError) else "refused"), str(exc)
        except Exception as exc:  # the session's handler failed: say so, and keep serving
            log.exception("control handler failed on a %s request", request.type)
            code, error, result = "internal", f"{type(exc).__name__}: {exc}", {}
        return encode(Reply(id=rid, ok=False, error=error, code=code, result=result))

    def _serve(self) -> None:
        backlog: collections.deque[bytes] = collections.deque(maxlen=BACKLOG)
        poller = zmq.Poller()
        for sock in (self._router, self._xpub, self._pull):
            poller.register(sock, zmq.POLLIN)
        try:
            while True:
                ready = dict(poller.poll())
                if self._pull in ready:
                    payload = self._pull.recv()
                    if payload == _STOP:
                        return
                    backlog.append(payload)
                    self._xpub.send(payload)
                if self._xpub in ready:
                    if self._xpub.recv()[:1] == b"\x01":  # a subscriber joined: send it what is recent
                        for payload in backlog:
                            self._xpub.send(payload)
                if self._router in ready:
                    frames = self._router.recv_multipart()
                    if len(frames) < 2:
                        continue
                    self._router.send_multipart([*frames[:-1], self._reply(frames[-1])])
        except zmq.ContextTerminated:
            return
        finally:
            for sock in (self._router, self._xpub, self._pull):
                sock.close(linger=0)

    def close(self) -> None:
        """Stop serving, close the sockets and remove ``control.json`` (harmless to call again)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._push.send(_STOP)
        self._thread.join(timeout=5)
        path = self.folder / CONTROL_FILE
        try:
            if json.loads(path.read_text()).get("requests") == self.info["requests"]:
                path.unlink()
        except (OSError, json.JSONDecodeError):
            pass
        if self._thread.is_alive():  # a handler that never returns: its sockets cannot be closed from here
            log.warning("the control thread did not stop within 5 s; leaving its sockets open")
            return
        self._teardown()

    def _teardown(self) -> None:
        for name in ("_router", "_xpub", "_pull", "_push"):
            sock = getattr(self, name, None)
            if sock is not None and not sock.closed:
                sock.close(linger=0)
        if self._auth is not None:
            self._auth.stop()
        self._ctx.term()

    def __enter__(self) -> ControlServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
