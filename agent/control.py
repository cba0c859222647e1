"""The control channel's transport: a ZeroMQ server inside a running session, and the client other terminals use.

A :class:`ControlServer` binds a ROUTER for requests and an XPUB for events (ephemeral TCP ports, loopback by
default) and serves them from one background thread with its own ZeroMQ context. It writes ``control.json`` into
the session folder (the two addresses, the pid, the host and, with CurveZMQ, the server's public key) and removes
it on :meth:`ControlServer.close`. The transport holds no rules: every request goes to the session's handler.

- Requests are :mod:`closedloop.control` messages. A malformed, oversized or wrong-version message gets an error
  reply naming the problem; a handler that raises gets an error reply; neither stops the server.
- Events: :meth:`ControlServer.publish` is safe from any thread. The server keeps the last :data:`BACKLOG` events
  and sends them again whenever a subscriber joins, so a new subscriber misses nothing recent (PUB/SUB drops what
  is sent while a subscriber connects); subscribers drop repeats by ``seq``.
- Off loopback, CurveZMQ is required: ``closedloop keys DIR`` makes the keys (:func:`make_keys`), the server
  encrypts with its key pair and admits only the client public keys in ``DIR/keys/authorized``. A client without
  an admitted key gets no reply at all, so every client call has a timeout, after which it says "not authorised or
  not running".
"""

from __future__ import annotations

import collections
import datetime
import json
import logging
import os
import re
import shutil
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import zmq
import zmq.auth
from zmq.auth.thread import ThreadAuthenticator

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

CONTROL_FILE = "control.json"
KEYS_DIR = "keys"
AUTHORIZED_DIR = "authorized"
BACKLOG = 100
"""Events a server sends again to each subscriber that joins."""

MAX_FRAME_BYTES = 1 << 20
"""A peer that sends a frame larger than this is disconnected (ZeroMQ's MAXMSGSIZE); between
:data:`~closedloop.control.MAX_MESSAGE_BYTES` and this, it gets an error reply."""

LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})
_STOP = b"\x00stop"

log = logging.getLogger(__name__)

Handler = Callable[[Request], dict[str, Any] | None]


# Keys ------------------------------------------------------------------------------------------------------------
def make_keys(folder: Path, name: str = "client") -> dict[str, Path]:
    """Make CurveZMQ keys for a session folder: the server's pair (once) and a client pair named ``name``.

    The client's public key is copied into ``keys/authorized``, which is what the server admits; give the client's
    secret key file to the operator who connects from elsewhere, and delete a public key there to shut one out.

    Returns:
        ``{"server": public key file, "client": secret key file, "authorized": its admitted public key}``.

    Raises:
        SpecError: ``name`` is not a plain name.
    """
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", name) or name == "server":
        raise SpecError(f"keys.name: {name!r} must be a plain name (letters, digits, _ . -), not 'server'")
    keys = Path(folder) / KEYS_DIR
    authorized = keys / AUTHORIZED_DIR
    authorized.mkdir(parents=True, exist_ok=True)
    if not (keys / "server.key_secret").exists():
        zmq.auth.create_certificates(keys, "server")
    public, secret = (Path(p) for p in zmq.auth.create_certificates(keys, name))
    for path in (keys / "server.key_secret", secret):
        path.chmod(0o600)
    shutil.copyfile(public, authorized / public.name)
    return {"server": keys / "server.key", "client": secret, "authorized": authorized / public.name}


def _load_server_keys(keys: Path) -> tuple[bytes, bytes]:
    secret_file = keys / "server.key_secret"
    authorized = keys / AUTHORIZED_DIR
    if not secret_file.exists() or not any(authorized.glob("*.key")):
        raise SessionError(
            "the control channel off loopback needs CurveZMQ keys, and there are none in " + str(keys),
            f"make them with: closedloop keys {keys.parent}",
        )
    public, secret = zmq.auth.load_certificate(secret_file)
    if secret is None:
        raise SessionError(f"{secret_file}: holds no secret key", f"make new keys with: closedloop keys {keys.parent}")
    return public, secret


def _client_curve(sock: zmq.Socket[bytes], keys: Path, name: str, server_key: str) -> None:
    """Set a client socket up for CurveZMQ if this client has keys; without them it will not be answered."""
    secret_file = keys / f"{name}.key_secret"
    if not secret_file.exists():
        return
    public, secret = zmq.auth.load_certificate(secret_file)
    if secret is None:
        return
    sock.curve_secretkey = secret
    sock.curve_publickey = public
    sock.curve_serverkey = server_key.encode()


# control.json ----------------------------------------------------------------------------------------------------
def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def read_control(folder: Path) -> dict[str, Any]:
    """The addresses of the session process running ``folder``.

    Raises:
        SessionError: no process runs it (no ``control.json``, or one left by a process on this host that died).
    """
    folder = Path(folder)
    not_running = SessionError(f"no session process is running for {folder}")
    try:
        info = json.loads((folder / CONTROL_FILE).read_text())
    except (OSError, json.JSONDecodeError):
        raise not_running from None
    if not isinstance(info, dict) or not isinstance(info.get("requests"), str):
        raise not_running
    if info.get("host") == socket.gethostname() and isinstance(info.get("pid"), int) and not _pid_alive(info["pid"]):
        raise not_running
    return info


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
            public, secret = _load_server_keys(self.folder / KEYS_DIR)
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


# The client ------------------------------------------------------------------------------------------------------
class ControlClient:
    """A connection to a running session's control channel.

    Args:
        folder: the session folder (its ``control.json`` names the addresses).
        timeout: seconds to wait for each reply.
        keys_dir: where this client's CurveZMQ key is (default ``folder/keys``); used when the session has
            CurveZMQ on.
        key_name: the client key's name (``<key_name>.key_secret``), as ``closedloop keys --name`` made it.

    Raises:
        SessionError: no session process is running for ``folder``.
    """

    def __init__(
        self, folder: Path, timeout: float = 5.0, keys_dir: Path | None = None, key_name: str = "client"
    ) -> None:
        self.folder = Path(folder)
        self.timeout = timeout
        self.info = read_control(self.folder)
        self._ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
        self._sock = self._ctx.socket(zmq.DEALER)
        self._sock.linger = 0
        if self.info.get("server_key"):
            _client_curve(self._sock, Path(keys_dir or self.folder / KEYS_DIR), key_name, self.info["server_key"])
        self._sock.connect(self.info["requests"])
        self._early: dict[str, Reply] = {}

    def send(self, request: Request, timeout: float | None = None) -> str:
        """Send a request without waiting for its reply; returns its id, for :meth:`receive`.

        Raises:
            SessionError: it could not even be handed over within the timeout (no connection was made).
        """
        timeout = self.timeout if timeout is None else timeout
        self._sock.sndtimeo = max(1, int(timeout * 1000))
        try:
            self._sock.send(encode(request))
        except zmq.Again:
            raise self._silence(timeout) from None
        return request.id

    def receive(self, request_id: str, timeout: float | None = None) -> Reply:
        """The reply to the request with this id; replies to other requests that arrive first are kept for later.

        Raises:
            SessionError: no reply within the timeout: the session is not running, or this client is not
                authorised.
        """
        timeout = self.timeout if timeout is None else timeout
        return self._await(request_id, time.monotonic() + timeout, timeout)

    def call(self, request: Request, timeout: float | None = None) -> Reply:
        """Send a request and wait for its reply; ``timeout`` (default the client's) covers both.

        Raises:
            SessionError: no reply within the timeout: the session is not running, or this client is not
                authorised.
        """
        timeout = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        self.send(request, timeout)
        return self._await(request.id, deadline, timeout)

    def _await(self, request_id: str, deadline: float, timeout: float) -> Reply:
        if request_id in self._early:
            return self._early.pop(request_id)
        while (left := deadline - time.monotonic()) > 0:
            if not self._sock.poll(max(1, int(left * 1000))):
                break
            try:
                reply = Reply.model_validate_json(self._sock.recv())
            except ValueError:
                continue  # not a reply of ours
            if reply.id == request_id:
                return reply
            self._early[reply.id] = reply
        raise self._silence(timeout)

    def _silence(self, timeout: float) -> SessionError:
        return SessionError(
            f"{self.folder}: no answer within {timeout:g} s: the session is not running, or this client is not "
            "authorised"
        )

    def close(self) -> None:
        """Close the connection."""
        self._sock.close(linger=0)
        self._ctx.term()

    def __enter__(self) -> ControlClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def subscribe(
    folder: Path,
    since: int = 0,
    keys_dir: Path | None = None,
    key_name: str = "client",
    idle: float = 0.5,
) -> Iterator[Event]:
    """The events of the session running ``folder``, as they happen; ends when that session process ends.

    The first events are the server's recent backlog (up to :data:`BACKLOG`), then live ones; each is yielded once,
    in the order sent (except that a live event sent while this subscriber joins may come before the backlog).

    Args:
        folder: the session folder.
        since: yield only events with a larger ``seq``.
        keys_dir: where this client's CurveZMQ key is (default ``folder/keys``).
        key_name: the client key's name.
        idle: seconds without an event after which it checks that the session still runs.

    Raises:
        SessionError: no session process is running for ``folder`` (when the iteration starts).
    """
    info = read_control(Path(folder))
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    sock = ctx.socket(zmq.SUB)
    sock.linger = 0
    try:
        if info.get("server_key"):
            _client_curve(sock, Path(keys_dir or Path(folder) / KEYS_DIR), key_name, info["server_key"])
        sock.setsockopt(zmq.SUBSCRIBE, b"")
        sock.connect(info["events"])
        seen: set[int] = set()
        while True:
            if sock.poll(max(1, int(idle * 1000))):
                try:
                    event = Event.model_validate_json(sock.recv())
                except ValueError:
                    continue
                if event.seq > since and event.seq not in seen:
                    seen.add(event.seq)
                    if len(seen) > 20 * BACKLOG:  # forget what no replay can bring again
                        seen = {seq for seq in seen if seq > event.seq - 2 * BACKLOG}
                    yield event
            elif not _still_serving(Path(folder), info):
                return
    finally:
        sock.close(linger=0)
        ctx.term()


def _still_serving(folder: Path, info: dict[str, Any]) -> bool:
    try:
        now = read_control(folder)
    except SessionError:
        return False
    return now.get("events") == info.get("events") and now.get("pid") == info.get("pid")
