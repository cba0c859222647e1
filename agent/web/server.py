"""The page's server: :func:`~agent.web.app.build_app` on uvicorn, with its tokens, its limits and its address.

Limits, so that no client holds the server: at most ``max_streams`` event streams (more get a 503), at most
``max_connections`` connections (more get uvicorn's 503), and a connection with no request under way is closed
``idle_timeout`` seconds after it opened or its last answer ended, whatever it trickles in meanwhile.
"""

from __future__ import annotations

import asyncio
import secrets
import socket
import threading
from collections.abc import Mapping
from typing import Any

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from agent.web.app import build_app
from agent.web.events import EventHub
from agent.web.gate import WebGate
from closedloop.errors import SpecError

MIN_TOKEN = 16
"""The shortest token an operator may choose (a new one is 24 characters)."""


class _IdleDeadline(H11Protocol):
    """uvicorn's h11 protocol, plus a deadline: a connection with no request under way is closed
    ``timeout_keep_alive`` seconds after it opened or after its last answer, even if it sends a byte now and then
    (uvicorn's own keep-alive timer starts only after an answer, and any byte stops it)."""

    _deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
        super().connection_lost(exc)

    def _arm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
        self._deadline = self.loop.call_later(self.timeout_keep_alive, self._expire)

    def _expire(self) -> None:
        self._deadline = None
        idle = self.cycle is None or self.cycle.response_complete
        if idle and not self.transport.is_closing():
            self.transport.close()


class WebServer:
    """The page and its API for one session folder, on ``host:port`` (port 0: a free one), bound at once.

    Args:
        gate: what the API does.
        host: the address to bind (default loopback).
        port: the port (0 picks a free one).
        token: the one access token, shared by the operators (default: a new random one); not with ``operators``.
        operators: instead, each operator's name and own token (``None``: a new random one).
        max_streams: the most event streams open at once.
        idle_timeout: seconds a connection may stay without a request under way (and a request's body may take).
        max_connections: the most connections open at once.

    Raises:
        SpecError: both ``token`` and ``operators``, a blank or repeated name, a token shorter than
            :data:`MIN_TOKEN` characters, or one token for two operators (naming ``--token`` or ``--operator``).
        OSError: the address cannot be bound.
    """

    def __init__(
        self,
        gate: WebGate,
        host: str = "127.0.0.1",
        port: int = 0,
        token: str | None = None,
        operators: Mapping[str, str | None] | None = None,
        max_streams: int = 50,
        idle_timeout: float = 10.0,
        max_connections: int = 500,
    ) -> None:
        self.gate = gate
        #: token -> the operator it stands for (``None``: the shared token)
        self.tokens: dict[str, str | None] = _tokens(token, operators)
        self.hub = EventHub(gate.folder, gate.keys_dir, max_streams)
        app = build_app(gate, self.tokens, self.hub, body_timeout=idle_timeout)
        config = uvicorn.Config(
            app,
            http=_IdleDeadline,
            ws="none",
            lifespan="off",
            timeout_keep_alive=idle_timeout,  # type: ignore[arg-type]  # (uvicorn schedules it as a float)
            limit_concurrency=max_connections,
            timeout_graceful_shutdown=3,
            log_config=None,
            log_level="warning",
            access_log=False,
        )
        self._server = uvicorn.Server(config)
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._socket = socket.socket(family, socket.SOCK_STREAM)
        try:
            self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self._socket.bind((host, port))
            self._socket.listen(128)
        except OSError:
            self._socket.close()
            raise
        self._socket.setblocking(False)
        self._thread: threading.Thread | None = None

    @property
    def server_address(self) -> tuple[Any, ...]:
        """``(host, port)`` as bound."""
        return tuple(self._socket.getsockname())

    @property
    def token(self) -> str:
        """The first access token (the shared one, when there is one)."""
        return next(iter(self.tokens))

    @property
    def url(self) -> str:
        """The page's address with the first access token."""
        return self.url_with(self.token)

    @property
    def operator_urls(self) -> dict[str, str]:
        """Each operator's own address (empty with a shared token)."""
        return {name: self.url_with(token) for token, name in self.tokens.items() if name is not None}

    def url_with(self, token: str) -> str:
        """The page's address with ``token``."""
        host, port = self.server_address[:2]
        shown = f"[{host}]" if ":" in str(host) else str(host)
        return f"http://{shown}:{port}/?token={token}"

    def serve_forever(self) -> None:
        """Serve until Ctrl-C (SIGINT or SIGTERM: open event streams are ended, then it returns)."""
        try:
            self._server.run(sockets=[self._socket])
        finally:
            self.hub.stop()

    def start(self) -> threading.Thread:
        """Serve in a daemon thread (stop with :meth:`shutdown` and :meth:`server_close`)."""
        self._thread = threading.Thread(target=self.serve_forever, name="closedloop-web", daemon=True)
        self._thread.start()
        return self._thread

    def shutdown(self) -> None:
        """Stop serving (ending open event streams), and wait for the server thread."""
        self.hub.stop()
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)

    def server_close(self) -> None:
        """Close the listening socket."""
        self._socket.close()


def _tokens(token: str | None, operators: Mapping[str, str | None] | None) -> dict[str, str | None]:
    """``{token: operator}`` for :class:`WebServer` (see its arguments)."""
    if not operators:
        return {token or secrets.token_urlsafe(18): None}
    if token is not None:
        raise SpecError("--token: give one shared --token, or an --operator each, not both")
    tokens: dict[str, str | None] = {}
    for name, chosen in operators.items():
        if not name.strip() or name != name.strip():
            raise SpecError(f"--operator: {name!r} is not a name (blank, or spaces around it)")
        if chosen is not None and len(chosen) < MIN_TOKEN:
            raise SpecError(f"--operator: {name}'s token is shorter than {MIN_TOKEN} characters")
        own = chosen or secrets.token_urlsafe(18)
        if own in tokens:
            raise SpecError(f"--operator: {name}'s token is {tokens[own]}'s too")
        tokens[own] = name
    return tokens
