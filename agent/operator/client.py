"""The client side of the control channel: find a running session, send it requests, follow its events.

:func:`read_control` reads the addresses a session's :class:`~agent.operator.ControlServer` wrote into
``control.json``; :class:`ControlClient` sends requests and matches replies by correlation id, with a timeout on
every call; :func:`subscribe` follows the events. Both present a CurveZMQ client key
(:func:`agent.operator.keys.client_key`: by default the session owner's own, from ``DIR/keys``, so the owner names
none). A client the server does not admit gets no reply at all, so every timeout says "the session is not running,
or this client is not authorised".
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import zmq

from agent.operator.keys import client_curve
from agent.store import SessionFolder, process_alive
from closedloop.control import Event, Reply, Request, encode, operator_name
from closedloop.errors import NotRunningError, SessionError

BACKLOG = 100
"""Events a server sends again to each subscriber that joins."""


def read_control(folder: Path) -> dict[str, Any]:
    """The addresses of the session process running ``folder``: from its ``control.json``, or, for a session kept
    in PostgreSQL (perhaps run on another host), as the process published them in the store.

    Raises:
        NotRunningError: no process runs it (no ``control.json``, or one left by a process on this host that died).
        SessionError: ``control.json`` is there but only the session's owner may read it.
    """
    folder = Path(folder)
    not_running = NotRunningError(f"no session process is running for {folder}")
    try:
        info = json.loads(SessionFolder(folder).control_file.read_text())
    except PermissionError:
        raise SessionError(
            f"{SessionFolder(folder).control_file}: only the session's owner may read it",
            f"ask the owner for a key (closedloop keys {folder} --name YOU) and a copy of this file; put both in a "
            "folder of yours (the key in its keys/) and name that folder instead",
        ) from None
    except (OSError, json.JSONDecodeError):
        from agent.store import published_control

        info = published_control(folder)  # a folder for a session in PostgreSQL, perhaps run from another host
        if info is None:
            raise not_running from None
    if not isinstance(info, dict) or not isinstance(info.get("requests"), str):
        raise not_running
    if info.get("host") == socket.gethostname() and isinstance(info.get("pid"), int) and not process_alive(info["pid"]):
        raise not_running
    return info


class ControlClient:
    """A connection to a running session's control channel.

    Args:
        folder: the session folder (its ``control.json`` names the addresses).
        timeout: seconds to wait for each reply.
        keys_dir: this client's CurveZMQ secret key file, or the folder holding it (default ``folder/keys``,
            where the owner's own key is).
        key_name: the client key's name in ``keys_dir`` (``<key_name>.key_secret``), as ``closedloop keys --name``
            made it; None: the owner's, or the one key there (:func:`agent.operator.keys.client_key`).

    Raises:
        NotRunningError: no session process is running for ``folder``.
    """

    def __init__(
        self, folder: Path, timeout: float = 5.0, keys_dir: Path | None = None, key_name: str | None = None
    ) -> None:
        self.folder = Path(folder)
        self.timeout = timeout
        self.info = read_control(self.folder)
        self._ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
        self._sock = self._ctx.socket(zmq.DEALER)
        self._sock.linger = 0
        self.key: Path | None = None
        """The secret key file this client presents (None: none found; the session will not answer)."""
        if self.info.get("server_key"):
            keys = Path(keys_dir or SessionFolder(self.folder).keys_dir)
            self.key = client_curve(self._sock, keys, key_name, self.info["server_key"])
            self._keys = keys
        self._sock.connect(self.info["requests"])
        self._early: dict[str, Reply] = {}

    def send(self, request: Request, timeout: float | None = None) -> str:
        """Send a request without waiting for its reply; returns its id, for :meth:`receive`.

        Raises:
            NotRunningError: it could not even be handed over within the timeout (no connection was made).
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
            NotRunningError: no reply within the timeout: the session is not running, or this client is not
                authorised.
        """
        timeout = self.timeout if timeout is None else timeout
        return self._await(request_id, time.monotonic() + timeout, timeout)

    def call(self, request: Request, timeout: float | None = None) -> Reply:
        """Send a request and wait for its reply; ``timeout`` (default the client's) covers both.

        Raises:
            NotRunningError: no reply within the timeout: the session is not running, or this client is not
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

    def _silence(self, timeout: float) -> NotRunningError:
        hint = "" if self.key is not None or not self.info.get("server_key") else f" (no key found in {self._keys})"
        return NotRunningError(
            f"{self.folder}: no answer within {timeout:g} s: the session is not running, or this client is not "
            f"authorised{hint}"
        )

    def close(self) -> None:
        """Close the connection."""
        self._sock.close(linger=0)
        self._ctx.term()

    def __enter__(self) -> ControlClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def tell_refused(
    folder: Path,
    body: Any,
    operator: str | None,
    fallback: str | None = None,
    via: str = "web",
    timeout: float = 1.0,
    keys_dir: Path | None = None,
) -> None:
    """Send a request refused here as invalid (a budget out of range ...) to the session all the same, as it is, so
    that the session refuses it too and records the attempt in its audit trail: by ``operator`` (the one a token
    stands for), else the name the body gives, else ``fallback``, else the OS user; via ``via``.

    Nothing happens for a body that is not a JSON object, and nothing is raised when no session answers within
    ``timeout`` seconds. Only for requests that failed the same checks the session makes: it never acts on them.
    """
    if not isinstance(body, dict):
        return
    by = operator or body.get("by") or fallback or operator_name()
    data = {**body, "v": 1, "id": f"r-refused-{time.monotonic_ns()}", "by": by, "via": via}
    try:
        with ControlClient(folder, timeout=timeout, keys_dir=keys_dir) as client:
            client._sock.sndtimeo = max(1, int(timeout * 1000))
            client._sock.send(json.dumps(data, default=str).encode())
            client._await(data["id"], time.monotonic() + timeout, timeout)
    except (SessionError, zmq.ZMQError, OSError, ValueError):
        pass


def subscribe(
    folder: Path,
    since: int = 0,
    keys_dir: Path | None = None,
    key_name: str | None = None,
    idle: float = 0.5,
    on_idle: Callable[[], None] | None = None,
) -> Iterator[Event]:
    """The events of the session running ``folder``, as they happen; ends when that session process ends.

    The first events are the server's recent backlog (up to :data:`BACKLOG`), then live ones; each is yielded once,
    in the order sent (except that a live event sent while this subscriber joins may come before the backlog).

    Args:
        folder: the session folder.
        since: yield only events with a larger ``seq``.
        keys_dir: this client's CurveZMQ secret key file, or the folder holding it (default ``folder/keys``).
        key_name: the client key's name in ``keys_dir`` (None: the owner's, or the one key there).
        idle: seconds without an event after which it checks that the session still runs.
        on_idle: called after each such check that finds it running (a web page's keep-alive); what it raises
            ends the iteration.

    Raises:
        NotRunningError: no session process is running for ``folder`` (when the iteration starts).
    """
    info = read_control(Path(folder))
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    sock = ctx.socket(zmq.SUB)
    sock.linger = 0
    try:
        if info.get("server_key"):
            client_curve(sock, Path(keys_dir or SessionFolder(folder).keys_dir), key_name, info["server_key"])
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
            elif on_idle is not None:
                on_idle()
    finally:
        sock.close(linger=0)
        ctx.term()


def _still_serving(folder: Path, info: dict[str, Any]) -> bool:
    try:
        now = read_control(folder)
    except SessionError:
        return False
    return now.get("events") == info.get("events") and now.get("pid") == info.get("pid")
