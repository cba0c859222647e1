"""The control channel's transport: the ZeroMQ server inside a running session (the client other terminals use is
in :mod:`agent.operator.client`, and importable from here too).

A :class:`ControlServer` binds a ROUTER for requests and an XPUB for events (ephemeral TCP ports, loopback by
default) and serves them from one background thread with its own ZeroMQ context. It writes ``control.json`` into
the session folder, readable by its owner only (the two addresses, the pid, the host and the server's public key),
and removes it on :meth:`ControlServer.close`. The transport holds no rules: every request goes to the session's
handler.

- Requests are :mod:`closedloop.control` messages. A malformed, oversized or wrong-version message gets an error
  reply naming the problem; a handler that raises gets an error reply; neither stops the server.
- Events: :meth:`ControlServer.publish` is safe from any thread. The server keeps the last :data:`BACKLOG` events
  and sends them again whenever a subscriber joins, so a new subscriber misses nothing recent (PUB/SUB drops what
  is sent while a subscriber connects); subscribers drop repeats by ``seq``.
- Who may ask: both sockets speak CurveZMQ, on loopback too (loopback is no boundary between the accounts of one
  machine), and admit only the client keys in ``DIR/keys/authorized`` (:mod:`agent.operator.keys`): the session owner's
  own key, made when the channel first opens and found by the owner's clients without being named, and the keys
  the owner issued with ``closedloop keys DIR --name NAME``, which is how an operator on another host, or another
  account, is let in. A client without an admitted key gets no reply at all, so every client call has a timeout,
  after which it says "not authorised or not running".
- Who is recorded: the name the key proves (its ZAP User-Id), not the one a request gives. A request made with an
  issued key is recorded under that key's name, via ``channel``, whatever ``by`` and ``via`` it claims. The owner's
  key vouches for the name it gives: the web page runs as the owner and relays the operator its token proves, and
  a shared instrument account names who sits at it (``--by``); the owner's account can change the session folder
  anyway, so refusing its claims would protect nothing.
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

from agent.operator.client import BACKLOG, ControlClient, read_control, subscribe
from agent.operator.keys import OWNER, KeyAuthenticator, ensure_keys, load_server_keys
from agent.store import CONTROL_FILE, SessionFolder
from closedloop.control import (
    REQUEST_TYPES,
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
from closedloop.errors import ClosedLoopError, ExitCode, SessionError, SpecError

MAX_FRAME_BYTES = 1 << 20
"""A peer that sends a frame larger than this is disconnected (ZeroMQ's MAXMSGSIZE); between
:data:`~closedloop.control.MAX_MESSAGE_BYTES` and this, it gets an error reply."""

_STOP = b"\x00stop"

log = logging.getLogger(__name__)

__all__ = [
    "BACKLOG",
    "CONTROL_FILE",
    "MAX_FRAME_BYTES",
    "ControlClient",
    "ControlServer",
    "Handler",
    "read_control",
    "subscribe",
]

Handler = Callable[[Request], dict[str, Any] | None]
Refused = Callable[[str, str, str, str, str], None]
"""Told of an invalid request of a known type: (type, what it asked, by, via, why it was refused)."""


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


def _write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically, readable by its owner only (whatever the umask)."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as file:
        file.write(text)
    tmp.replace(path)


def proven(request: Request, key_name: str) -> Request:
    """``request`` as the client's key proves it: made with an issued key, in that key's name via ``channel``;
    made with the owner's key (:data:`~agent.operator.keys.OWNER`), as it says."""
    if key_name == OWNER:
        return request
    return request.model_copy(update={"by": key_name, "via": "channel"})


# The server ------------------------------------------------------------------------------------------------------
class ControlServer:
    """The control channel of one running session.

    Args:
        folder: the session folder (``control.json`` is written there; keys are read from, and the server's and
            owner's made in, ``folder/keys``).
        handler: called with each valid request, in the server's thread, with ``by`` and ``via`` as the client's
            key proves them (see the module docstring): it must return quickly (set a flag, enqueue), with a
            JSON-able result dict. A :class:`~closedloop.errors.ClosedLoopError` it raises becomes an error reply
            with its message (``late`` for :class:`~closedloop.control.LateAnswerError`, ``invalid`` for one that
            is also a ``ValueError``, else ``refused``); any other exception an ``internal`` one.
        host: the interface to bind (loopback by default; ``0.0.0.0`` for every interface).
        refused: told of each request of a known type refused as invalid before it reached ``handler`` (for the
            audit log), with who and via as the key proves them.

    Raises:
        SessionError: the keys cannot be made or read, or the host cannot be bound.
    """

    def __init__(self, folder: Path, handler: Handler, host: str = "127.0.0.1", refused: Refused | None = None) -> None:
        self.folder = Path(folder)
        self._handler = handler
        self._refused = refused
        self.curve = True
        self._ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
        self._auth: KeyAuthenticator | None = None
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
            _write_private(SessionFolder(self.folder).control_file, json.dumps(self.info, indent=1))
        except (OSError, zmq.ZMQError) as exc:
            self._teardown()
            raise SessionError(f"{self.folder}: cannot open the control channel on {host} ({exc})") from None
        except BaseException:
            self._teardown()
            raise
        self._thread = threading.Thread(target=self._serve, name="closedloop-control", daemon=True)
        self._thread.start()

    def _setup_sockets(self, host: str) -> str:
        keys = ensure_keys(self.folder)
        public, secret = load_server_keys(keys)
        self._auth = KeyAuthenticator(self._ctx, keys)
        self._auth.start()
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
            sock.curve_secretkey = secret
            sock.curve_publickey = public
            sock.curve_server = True
            sock.bind(_endpoint(host))
        inproc = f"inproc://closedloop-events-{id(self)}"
        self._pull.bind(inproc)
        self._push.connect(inproc)
        self.requests_address = self._router.getsockopt_string(zmq.LAST_ENDPOINT)
        self.events_address = self._xpub.getsockopt_string(zmq.LAST_ENDPOINT)
        return public.decode()

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
    def _reply(self, raw: bytes, key_name: str) -> bytes:
        rid, data = "", None
        try:
            data = decode(raw)
            rid = request_id(data)
            request = proven(validate_request(data), key_name)
        except SpecError as exc:
            self._record_invalid(data if isinstance(data, dict) else None, key_name, str(exc))
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
            code, error = ("invalid" if exc.exit_code == ExitCode.BAD_INPUT else "refused"), str(exc)
        except Exception as exc:  # the session's handler failed: say so, and keep serving
            log.exception("control handler failed on a %s request", request.type)
            code, error, result = "internal", f"{type(exc).__name__}: {exc}", {}
        return encode(Reply(id=rid, ok=False, error=error, code=code, result=result))

    def _record_invalid(self, data: dict[str, Any] | None, key_name: str, why: str) -> None:
        """Tell ``refused`` of a request of a known type that was invalid (a budget out of range ...)."""
        kind = data.get("type") if data is not None else None
        if self._refused is None or data is None or kind not in REQUEST_TYPES or kind in ("status", "checkpoint"):
            return
        by = data.get("by") if key_name == OWNER else key_name
        via = data.get("via") if key_name == OWNER else "channel"
        what = f"budget {data.get('experiments')} experiments" if kind == "budget" else f"{kind} request"
        try:
            self._refused(str(kind), what, str(by)[:64], str(via)[:16], why)
        except Exception:  # the record is a courtesy: the refusal is answered whatever happens to it
            log.exception("could not record a refused %s request", kind)

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
                # a subscriber joined: send it what is recent
                if self._xpub in ready and self._xpub.recv()[:1] == b"\x01":
                    for payload in backlog:
                        self._xpub.send(payload)
                if self._router in ready:
                    frames = self._router.recv_multipart(copy=False)
                    key_name = str(frames[-1].get("User-Id")) if len(frames) >= 2 else ""
                    if not key_name:  # admitted, but its key was removed meanwhile: as if never admitted
                        continue
                    reply = self._reply(frames[-1].bytes, key_name)
                    self._router.send_multipart([*(f.bytes for f in frames[:-1]), reply])
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
        path = SessionFolder(self.folder).control_file
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
