"""The operator's web page: a session shown in a browser, and the operator's answers sent from it.

``closedloop web DIR`` serves one page and a small JSON API over HTTP. Like ``closedloop review`` it is a transport
and holds no rules: every request an operator makes on the page (answer a checkpoint, pause, resume, stop, add
points, change the budget) goes to the session process through its control channel as a request with
``via="web"``, and what the session answers is what the page shows. Events come from the channel's event stream,
passed on to the browser as Server-Sent Events. With no session process running the page still shows the
session's status from its folder, and picks the events up again when a process starts.

It is a Starlette app (:mod:`agent.web.app`) served by uvicorn (:mod:`agent.web.server`); the events come from one
subscription per session process, shared by every page (:mod:`agent.web.events`); what each route does, apart from
HTTP, is :class:`WebGate`'s (:mod:`agent.web.gate`). Bad input gets a 400 with one line naming the field; the server
holds at most ``--max-streams`` event streams and closes a connection idle for ``--idle-timeout`` seconds.

Every request must carry an access token (``?token=`` on the page's address, then the ``X-Closedloop-Token``
header): the address printed at start holds it. Either one token is shared, and each operator types the name the
audit trail records; or each operator has a token of their own (``closedloop web --operator NAME``), and the
session records the token's operator, whatever name a request gives. The server binds to loopback unless told
otherwise; it speaks plain HTTP, so off loopback put it behind an SSH tunnel or a TLS proxy.

=========================  ===================================================================================
``GET /``                  the page (and ``GET /operator.js``, its script)
``GET /api/session``       the session's name and id, its variables (units, ranges, limits) and objectives, and
                           ``operator``: the token's operator (``None`` for a shared token)
``GET /api/status``        what ``closedloop status --json`` prints, plus ``running`` (a process answers)
``GET /api/checkpoint``    ``{"checkpoint": the question waiting, or None}``
``GET /api/observations``  ``{"observations": the last ten, newest first}``
``GET /api/results``       every run's result, as ``closedloop results --json`` prints it (``columns``, ``rows``)
``GET /api/results.csv``   the same as CSV, as ``closedloop results --csv`` writes it
``GET /api/history``       ``{"events": the session's audit log from its store, oldest first}`` (no process needed)
``GET /api/belief``        ``?variable=NAME``: the model's belief along it through the best point (the running
                           session's planner, else the planner rebuilt from the store): ``{"belief", "why",
                           "source"}``; 400 for a variable that is not a numeric one of the session
``POST /api/request``      a control request as JSON (``type`` and its fields; ``by`` the operator's name): the
                           session's reply, or ``{"ok": false, "error": one line}`` (400 bad input, 403 ``by``
                           not the token's operator, 503 no session process)
``GET /api/events``        the session's events as Server-Sent Events (``since=SEQ`` or ``Last-Event-ID``, in
                           digits 0-9); an ``ended`` event when the session process ends or none runs; 503 when
                           ``--max-streams`` streams are open
=========================  ===================================================================================
"""

from agent.web.app import CSP, TOKEN_HEADER, EventsQuery, build_app
from agent.web.events import EventHub, StreamsFullError
from agent.web.gate import ForbiddenError, WebGate
from agent.web.server import MIN_TOKEN, WebServer

__all__ = [
    "CSP",
    "MIN_TOKEN",
    "TOKEN_HEADER",
    "EventHub",
    "EventsQuery",
    "ForbiddenError",
    "StreamsFullError",
    "WebGate",
    "WebServer",
    "build_app",
]
