"""The operator's web page: a session shown in a browser, and the operator's answers sent from it.

``closedloop web DIR`` serves one page and a small JSON API over HTTP. Like ``closedloop review`` it is a transport
and holds no rules: every request an operator makes on the page (answer a checkpoint, pause, resume, stop, add
points, change the budget) goes to the session process through its control channel as a request with
``via="web"``, and what the session answers is what the page shows. Events come from the channel's event stream,
passed on to the browser as Server-Sent Events. With no session process running the page still shows the
session's status from its folder, and picks the events up again when a process starts.

Every request must carry an access token (``?token=`` on the page's address, then the ``X-Closedloop-Token``
header): the address printed at start holds it. Either one token is shared, and each operator types the name the
audit trail records; or each operator has a token of their own (``closedloop web --operator NAME``), and the
session records the token's operator, whatever name a request gives. The server binds to loopback unless told
otherwise; it speaks plain HTTP, so off loopback put it behind an SSH tunnel or a TLS proxy.

=========================  ===================================================================================
``GET /``                  the page
``GET /api/session``       the session's name and id, its variables (units, ranges, limits) and objectives, and
                           ``operator``: the token's operator (``None`` for a shared token)
``GET /api/status``        what ``closedloop status --json`` prints, plus ``running`` (a process answers)
``GET /api/checkpoint``    ``{"checkpoint": the question waiting, or None}``
``GET /api/observations``  ``{"observations": the last ten, newest first}``
``GET /api/results``       every run's result, as ``closedloop results --json`` prints it (``columns``, ``rows``)
``GET /api/results.csv``   the same as CSV, as ``closedloop results --csv`` writes it
``POST /api/request``      a control request as JSON (``type`` and its fields; ``by`` the operator's name): the
                           session's reply, or ``{"ok": false, "error": one line}`` (400 bad input, 403 ``by``
                           not the token's operator, 503 no session process)
``GET /api/events``        the session's events as Server-Sent Events (``since=SEQ``); an ``ended`` event when
                           the session process ends or none runs
=========================  ===================================================================================
"""

from __future__ import annotations

import hmac
import json
import secrets
import sys
import threading
from collections.abc import Callable, Mapping
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from agent.control_client import ControlClient, read_control, subscribe
from agent.operator_input import build
from agent.results import as_csv, session_results
from agent.review import variables_info
from agent.status import folder_spec, session_store, summarize
from closedloop.control import MAX_MESSAGE_BYTES, decode
from closedloop.errors import SessionError, SpecError

TOKEN_HEADER = "X-Closedloop-Token"
CSP = "default-src 'self'; style-src 'unsafe-inline'; script-src 'unsafe-inline'"
"""The page's one script and style are inline; nothing else is loaded, and nothing from elsewhere."""
PAGE = resources.files("agent").joinpath("static/operator.html")


class WebGate:
    """What the page's API does, apart from HTTP: each call reads the session's folder or asks its process.

    Args:
        folder: the session folder.
        keys_dir: where the CurveZMQ client key is, for a session whose channel needs one (default ``folder/keys``).
        timeout: seconds to wait for the session's answer to each request.
        by: the operator named in a request that names none.
    """

    def __init__(self, folder: Path, keys_dir: Path | None = None, timeout: float = 5.0, by: str | None = None):
        self.folder = Path(folder)
        self.keys_dir = keys_dir
        self.timeout = timeout
        self.by = by

    def session(self) -> dict[str, Any]:
        """The session's name and id, and what an operator needs to know of its variables and objectives."""
        store = session_store(self.folder)
        try:
            spec = folder_spec(self.folder, store)
            return {"name": spec.name, "session_id": store.meta("session_id"), **variables_info(spec)}
        finally:
            store.close()

    def observations(self, last: int = 10) -> dict[str, Any]:
        """``{"observations": the last few, newest first}``: what was measured, where the instrument read back."""
        store = session_store(self.folder)
        try:
            return {"observations": [o.model_dump(mode="json") for o in store.recent_observations(last)]}
        finally:
            store.close()

    def results(self) -> dict[str, Any]:
        """Every run's result: ``{"columns": [...], "rows": [...]}`` (:func:`~agent.results.session_results`)."""
        columns, rows, _ = session_results(self.folder)
        return {"columns": columns, "rows": rows}

    def results_csv(self) -> str:
        """Every run's result as CSV (:func:`~agent.results.as_csv`)."""
        return as_csv(*session_results(self.folder)[:2])

    def status(self) -> dict[str, Any]:
        """The session process's own status when one answers (it knows of a waiting checkpoint), else the folder's."""
        try:
            reply = self._call({"type": "status"})
        except SessionError:
            return {**summarize(self.folder), "running": False}
        return {**reply["result"], "running": True} if reply["ok"] else {**summarize(self.folder), "running": True}

    def checkpoint(self) -> dict[str, Any]:
        """``{"checkpoint": the question the session waits on, or None}``."""
        try:
            reply = self._call({"type": "checkpoint"})
        except SessionError:
            return {"checkpoint": None}
        return {"checkpoint": reply["result"].get("checkpoint") if reply["ok"] else None}

    def request(self, body: Any, operator: str | None = None) -> tuple[HTTPStatus, dict[str, Any]]:
        """Send the operator's request (decoded JSON) to the session; the HTTP status and the reply.

        ``operator`` is the name the request's token stands for: the request is made in that name, and one that
        names someone else (``by``) is refused (403) before anything reaches the session.
        """
        by = body.get("by") if isinstance(body, dict) else None
        if operator is not None and by not in (None, "", operator):
            error = f"by: this page's token is {operator}'s; it cannot answer as {by}"
            return HTTPStatus.FORBIDDEN, {"ok": False, "error": error}
        try:
            return HTTPStatus.OK, self._call(body, operator)
        except SpecError as exc:
            return HTTPStatus.BAD_REQUEST, {"ok": False, "error": str(exc), "code": "invalid"}
        except SessionError as exc:
            return HTTPStatus.SERVICE_UNAVAILABLE, {"ok": False, "error": str(exc)}

    def _call(self, body: Any, operator: str | None = None) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise SpecError(f"request: a JSON object, got {type(body).__name__}")
        fields = {k: v for k, v in body.items() if k not in ("v", "id", "via", "type", "by")}
        request = build(str(body.get("type")), operator or body.get("by") or self.by, "web", **fields)
        with ControlClient(self.folder, timeout=self.timeout, keys_dir=self.keys_dir) as client:
            return client.call(request).model_dump(mode="json")

    def events(self, since: int, write: Callable[[bytes], None]) -> None:
        """Write the session's events as Server-Sent Events until its process ends (or ``write`` raises: the
        browser left); then an ``ended`` event, at once when no process runs."""
        write(b"retry: 3000\n\n")
        try:
            read_control(self.folder)
            for event in subscribe(self.folder, since, self.keys_dir, on_idle=lambda: write(b": idle\n\n")):
                write(f"id: {event.seq}\ndata: {event.model_dump_json()}\n\n".encode())
        except SessionError:
            pass
        write(b"event: ended\ndata: {}\n\n")


class _Handler(BaseHTTPRequestHandler):
    server: WebServer
    operator: str | None = None  # the admitted token's operator (None: the shared token)
    protocol_version = "HTTP/1.1"
    # headers and body go out as two writes: with Nagle's algorithm on, a kept-alive connection waited for the
    # client's delayed ACK (about 40 ms a request, measured with benchmarks/control_latency.py)
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the base class's name)
        pass  # the session's audit trail records what matters; a page polls too often for a log line each

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        if not self._admitted(query):
            return
        gate = self.server.gate
        routes: dict[str, Callable[[], Any]] = {
            "/api/session": lambda: {**gate.session(), "operator": self.operator},
            "/api/status": gate.status,
            "/api/checkpoint": gate.checkpoint,
            "/api/observations": gate.observations,
            "/api/results": gate.results,
        }
        if url.path == "/":
            self._send(HTTPStatus.OK, PAGE.read_bytes(), "text/html; charset=utf-8")
        elif url.path == "/api/results.csv":
            try:
                self._send(HTTPStatus.OK, gate.results_csv().encode(), "text/csv; charset=utf-8")
            except SessionError as exc:
                self._json(HTTPStatus.NOT_FOUND, {"ok": False, "error": str(exc)})
        elif url.path in routes:
            try:
                self._json(HTTPStatus.OK, routes[url.path]())
            except SessionError as exc:
                self._json(HTTPStatus.NOT_FOUND, {"ok": False, "error": str(exc)})
        elif url.path == "/api/events":
            since = self.headers.get("Last-Event-ID") or (query.get("since") or ["0"])[0]
            self._events(int(since) if since.isdigit() else 0)
        else:
            self._json(HTTPStatus.NOT_FOUND, {"ok": False, "error": f"{url.path}: no such page"})

    def do_POST(self) -> None:
        url = urlsplit(self.path)
        if not self._admitted(parse_qs(url.query)):
            return
        if url.path != "/api/request":
            self.close_connection = True
            self._json(HTTPStatus.NOT_FOUND, {"ok": False, "error": f"{url.path}: no such page"})
            return
        length = self.headers.get("Content-Length", "")
        if not length.isdigit() or int(length) > MAX_MESSAGE_BYTES:
            self._json(
                HTTPStatus.BAD_REQUEST,
                {"ok": False, "error": f"request: a body of at most {MAX_MESSAGE_BYTES} bytes, with its length"},
            )
            self.close_connection = True
            return
        try:
            body = decode(self.rfile.read(int(length)))
        except SpecError as exc:
            self._json(HTTPStatus.BAD_REQUEST, {"ok": False, "error": str(exc), "code": "invalid"})
            return
        self._json(*self.server.gate.request(body, self.operator))

    def _admitted(self, query: dict[str, list[str]]) -> bool:
        given = self.headers.get(TOKEN_HEADER) or (query.get("token") or [""])[0]
        for token, operator in self.server.tokens.items():
            if hmac.compare_digest(given.encode(), token.encode()):
                self.operator = operator
                return True
        error = "no access token" if not given else "wrong access token"
        self.close_connection = True  # a refused request's body is left unread
        self._json(HTTPStatus.UNAUTHORIZED, {"ok": False, "error": f"{error}: open the address closedloop web printed"})
        return False

    def _events(self, since: int) -> None:
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-store")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True

        def write(data: bytes) -> None:
            self.wfile.write(data)
            self.wfile.flush()

        try:
            self.server.gate.events(since, write)
        except ConnectionError:
            pass  # the browser left

    def _json(self, status: HTTPStatus, data: Any) -> None:
        self._send(status, json.dumps(data).encode(), "application/json")

    def _send(self, status: HTTPStatus, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Content-Security-Policy", CSP)
        self.end_headers()
        self.wfile.write(body)


class WebServer(ThreadingHTTPServer):
    """The page and its API for one session folder, on ``host:port`` (port 0: a free one).

    Args:
        gate: what the API does.
        host: the address to bind (default loopback).
        port: the port (0 picks a free one).
        token: the one access token, shared by the operators (default: a new random one); not with ``operators``.
        operators: instead, each operator's name and own token (``None``: a new random one).

    Raises:
        SpecError: both ``token`` and ``operators``, a blank or repeated name, a token shorter than
            :data:`MIN_TOKEN` characters, or one token for two operators (naming ``--token`` or ``--operator``).
    """

    daemon_threads = True

    def __init__(
        self,
        gate: WebGate,
        host: str = "127.0.0.1",
        port: int = 0,
        token: str | None = None,
        operators: Mapping[str, str | None] | None = None,
    ) -> None:
        self.gate = gate
        #: token -> the operator it stands for (``None``: the shared token)
        self.tokens: dict[str, str | None] = _tokens(token, operators)
        super().__init__((host, port), _Handler)

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

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A browser that leaves mid-answer is no error; anything else is reported as the base class does."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)

    def start(self) -> threading.Thread:
        """Serve in a daemon thread (stop with :meth:`shutdown` and :meth:`server_close`)."""
        thread = threading.Thread(target=self.serve_forever, name="closedloop-web", daemon=True)
        thread.start()
        return thread


#: The shortest token an operator may choose (a new one is 24 characters).
MIN_TOKEN = 16


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
