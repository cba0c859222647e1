"""The page's HTTP side: a Starlette app that admits a request by its token, routes it, and answers in JSON.

Each route calls :class:`~agent.web.gate.WebGate` in a worker thread (it blocks on files and the control channel);
the event stream is served on the event loop from :class:`~agent.web.events.EventHub`, with no thread of its own.
Every bad input gets a 400 with one line naming the field (``since: ...``, ``budget.experiments: ...``); every
other failure an answer too (JSON ``{"ok": false, "error": one line}``), never a dropped connection.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Callable, Mapping
from http import HTTPStatus
from importlib import resources
from typing import Any

import anyio
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from sse_starlette import EventSourceResponse, ServerSentEvent
from sse_starlette.sse import SendTimeoutError
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from agent.web.events import EventHub, Stream, StreamsFullError
from agent.web.gate import WebGate
from closedloop.control import MAX_MESSAGE_BYTES, decode
from closedloop.errors import SessionError, SpecError, one_line

TOKEN_HEADER = "X-Closedloop-Token"
CSP = "default-src 'self'; style-src 'unsafe-inline'; script-src 'self'"
"""The page's style is inline and its one script is served from here (``/operator.js``); nothing else is loaded,
and nothing from elsewhere."""
PAGE = resources.files("agent.web").joinpath("static/operator.html")
SCRIPT = resources.files("agent.web").joinpath("static/operator.js")
PUBLIC = frozenset({"/operator.js"})
"""What is served without a token."""
HEADERS = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff", "Content-Security-Policy": CSP}
"""What every answer carries."""


class EventsQuery(BaseModel):
    """What ``GET /api/events`` takes: ``since``, the last event's ``seq`` the page has (the ``Last-Event-ID``
    header, else the query parameter), in ASCII digits."""

    model_config = ConfigDict(extra="ignore")

    since: int = Field(default=0, ge=0)

    @field_validator("since", mode="before")
    @classmethod
    def _ascii_digits(cls, value: Any) -> Any:
        if isinstance(value, str) and not (value.isascii() and value.isdigit() and len(value) <= 18):
            raise ValueError(f"an event's seq in digits 0-9, got {value[:40]!r}")
        return value


def _json(status: int, data: Any) -> Response:
    """JSON as ``json.dumps`` writes it (the page's status may hold a NaN, which Starlette's encoder refuses)."""
    return Response(json.dumps(data), status, media_type="application/json")


def _error(status: int, error: str, **more: Any) -> Response:
    return _json(status, {"ok": False, "error": one_line(error), **more})


class _Guard:
    """ASGI middleware: every answer carries :data:`HEADERS`; a request without an admitted token gets a 401 and
    nothing else (but for :data:`PUBLIC`); an admitted one carries its token's operator in
    ``scope["state"]["operator"]``."""

    def __init__(
        self, app: ASGIApp, tokens: Mapping[str, str | None], on_refused: Callable[[str, str], None] | None = None
    ) -> None:
        self.app = app
        self.tokens = [(token.encode(), operator) for token, operator in tokens.items()]
        self.on_refused = on_refused  # told (what, why) of each request refused for its token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_headed(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in HEADERS.items():
                    headers.setdefault(name, value)
            await send(message)

        request = Request(scope)
        if request.url.path in PUBLIC:  # the page's script: the same for every session, it holds nothing of one
            await self.app(scope, receive, send_headed)
            return
        given = request.headers.get(TOKEN_HEADER) or request.query_params.get("token", "")
        for token, operator in self.tokens:
            if hmac.compare_digest(given.encode(), token):
                scope.setdefault("state", {})["operator"] = operator
                await self.app(scope, receive, send_headed)
                return
        error = "no access token" if not given else "wrong access token"
        if self.on_refused is not None:
            self.on_refused(f"{request.method} {request.url.path}", error)
        refused = _error(HTTPStatus.UNAUTHORIZED, f"{error}: open the address closedloop web printed")
        refused.headers["Connection"] = "close"  # a refused request's body is left unread
        await refused(scope, receive, send_headed)


def build_app(gate: WebGate, tokens: Mapping[str, str | None], hub: EventHub, body_timeout: float = 10.0) -> Starlette:
    """The page and its API for ``gate``'s session, admitting ``tokens`` (token -> its operator, or None).

    Args:
        gate: what the API does.
        tokens: the access tokens, each with the operator it stands for (None: a shared token).
        hub: the event streams.
        body_timeout: seconds a request's body may take to arrive.
    """
    api = _Endpoints(gate, hub, body_timeout)
    routes = [
        Route("/", api.page),
        Route("/operator.js", api.script),
        Route("/api/session", api.session),
        Route("/api/status", api.reading(gate.status)),
        Route("/api/checkpoint", api.reading(gate.checkpoint)),
        Route("/api/observations", api.reading(gate.observations)),
        Route("/api/results", api.reading(gate.results)),
        Route("/api/history", api.reading(gate.history)),
        Route("/api/belief", api.belief),
        Route("/api/results.csv", api.results_csv),
        Route("/api/request", api.post_request, methods=["POST"]),
        Route("/api/events", api.events),
    ]
    app = Starlette(routes=routes, exception_handlers={HTTPException: api.refused, Exception: api.refused})
    app.add_middleware(_Guard, tokens=tokens, on_refused=gate.unadmitted)
    return app


class _Endpoints:
    """The API's endpoints over one session's gate and event hub."""

    def __init__(self, gate: WebGate, hub: EventHub, body_timeout: float) -> None:
        self.gate = gate
        self.hub = hub
        self.body_timeout = body_timeout

    @staticmethod
    def reading(call: Callable[[], Any]) -> Callable[[Request], Any]:
        """An endpoint answering with what ``call`` returns, 404 when the session is gone."""

        async def endpoint(request: Request) -> Response:
            try:
                return _json(HTTPStatus.OK, await run_in_threadpool(call))
            except SessionError as exc:
                return _error(HTTPStatus.NOT_FOUND, str(exc))

        return endpoint

    async def page(self, request: Request) -> Response:
        return Response(PAGE.read_bytes(), media_type="text/html; charset=utf-8")

    async def script(self, request: Request) -> Response:
        return Response(SCRIPT.read_bytes(), media_type="text/javascript; charset=utf-8")

    async def belief(self, request: Request) -> Response:
        variable = request.query_params.get("variable", "")
        try:
            status, found = await run_in_threadpool(self.gate.belief, variable)
        except SessionError as exc:
            return _error(HTTPStatus.NOT_FOUND, str(exc))
        return _json(status, found)

    async def session(self, request: Request) -> Response:
        try:
            found = await run_in_threadpool(self.gate.session)
        except SessionError as exc:
            return _error(HTTPStatus.NOT_FOUND, str(exc))
        return _json(HTTPStatus.OK, {**found, "operator": request.scope["state"]["operator"]})

    async def results_csv(self, request: Request) -> Response:
        try:
            return Response(await run_in_threadpool(self.gate.results_csv), media_type="text/csv; charset=utf-8")
        except SessionError as exc:
            return _error(HTTPStatus.NOT_FOUND, str(exc))

    async def post_request(self, request: Request) -> Response:
        try:
            body = decode(await _body(request, self.body_timeout))
        except SpecError as exc:
            return _error(HTTPStatus.BAD_REQUEST, str(exc), code="invalid")
        except TimeoutError:
            return _error(
                HTTPStatus.REQUEST_TIMEOUT, f"request: the body did not arrive within {self.body_timeout:g} s"
            )
        status, reply = await run_in_threadpool(self.gate.request, body, request.scope["state"]["operator"])
        return _json(status, reply)

    async def events(self, request: Request) -> Response:
        since = request.headers.get("Last-Event-ID") or request.query_params.get("since", "0")
        try:
            query = EventsQuery.model_validate({"since": since})
        except ValidationError as exc:
            return _error(HTTPStatus.BAD_REQUEST, _field_error(exc))
        try:
            stream = self.hub.open(query.since)
        except StreamsFullError as exc:
            return _error(HTTPStatus.SERVICE_UNAVAILABLE, str(exc))
        return _EventStream(self.hub, stream)

    async def refused(self, request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else HTTPStatus.INTERNAL_SERVER_ERROR
        what = {404: "no such page", 405: f"{request.method} is not served here"}.get(status, "failed")
        return _error(status, f"{request.url.path}: {what}" + ("" if status < 500 else f" ({exc!r})"))


async def _body(request: Request, timeout: float) -> bytes:
    """The request's body, refused when it states no length or a length over :data:`MAX_MESSAGE_BYTES`.

    Raises:
        SpecError: no length, or too long.
        TimeoutError: it did not all arrive within ``timeout`` seconds.
    """
    length = request.headers.get("Content-Length", "")
    if not (length.isascii() and length.isdigit()) or int(length) > MAX_MESSAGE_BYTES:
        raise SpecError(f"request: a body of at most {MAX_MESSAGE_BYTES} bytes, with its length")
    with anyio.fail_after(timeout):
        return await request.body()


def _field_error(exc: ValidationError) -> str:
    """A query's first bad field, in one line: ``since: ...``."""
    error = exc.errors()[0]
    field = ".".join(str(part) for part in error["loc"]) or "query"
    return f"{field}: {str(error['msg']).removeprefix('Value error, ')}"


class _EventStream(EventSourceResponse):
    """A page's event stream: ``retry``, the events (``id`` their seq), then ``ended``; its place in the hub is
    given back however it ends."""

    def __init__(self, hub: EventHub, stream: Stream) -> None:
        self.hub = hub
        self.stream = stream
        super().__init__(self._events(), ping=5, send_timeout=30)

    async def _events(self) -> Any:
        yield ServerSentEvent(retry=3000)
        async for event in self.stream.events():
            yield ServerSentEvent(event.model_dump_json(), id=str(event.seq))
        yield ServerSentEvent("{}", event="ended")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        except SendTimeoutError:
            pass  # a page that stopped reading: its connection is closed
        finally:
            self.hub.close(self.stream)
