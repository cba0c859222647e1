"""What the page's API does, apart from HTTP: each call reads the session's folder or asks its process.

Every call here blocks (a file, a store, a control-channel round trip); the web app runs them in its worker threads.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from http import HTTPStatus
from pathlib import Path
from typing import Any

import zmq

from agent.loop import variables_info
from agent.operator import ControlClient, build, read_control, tell_refused
from agent.views import as_csv, folder_spec, session_results, session_store, summarize
from closedloop.control import PROTOCOL_VERSION, RefusalRequest, Request, operator_name, validate_request
from closedloop.errors import SessionError, SpecError
from closedloop.records import new_id

HISTORY = 500
"""The most lines of the audit log the page is sent."""
REPORT_EVERY = 10.0
"""Seconds between two records of requests refused for their token (see :meth:`WebGate.unadmitted`)."""


def _brief(kind: str, message: str) -> str:
    """An audit-log line for the page: a question's JSON as ``checkpoint c-...: why (p-1, p-2)``."""
    if kind != "question":
        return message
    try:
        asked = json.loads(message)
        ids = ", ".join(str(p.get("id")) for p in asked.get("proposals", []))
        return f"checkpoint {asked.get('checkpoint')}: {asked.get('reason')} ({ids})"
    except (ValueError, AttributeError):
        return message[:200]


def _process_runs(folder: Path) -> bool:
    """Whether a session process runs ``folder`` (its control addresses are there, and not a dead process's)."""
    try:
        read_control(folder)
    except SessionError:
        return False
    return True


class ForbiddenError(SpecError):
    """A request names an operator (``by``) other than the one its token stands for."""


class WebGate:
    """The page's API for one session folder.

    Args:
        folder: the session folder.
        keys_dir: the CurveZMQ client key (a folder or a key file) the page server uses; default: the owner's own, found
            in ``folder/keys`` (then every request is relayed under the name its token proves).
        timeout: seconds to wait for the session's answer to each request.
        by: the operator named in a request that names none.
    """

    def __init__(self, folder: Path, keys_dir: Path | None = None, timeout: float = 5.0, by: str | None = None):
        self.folder = Path(folder)
        self.keys_dir = keys_dir
        self.timeout = timeout
        self.by = by
        self._unadmitted: dict[str, int] = {}  # attempts without an admitted token not yet on record, by why
        self._reported = 0.0  # when the last of them went on record (monotonic seconds)
        self._reporting = threading.Lock()

    def unadmitted(self, what: str, why: str) -> None:
        """Put a request without an admitted token (``why``: no access token, or a wrong one) on the session's
        record, as refused, by ``nobody`` via web: at once, and then at most once every :data:`REPORT_EVERY`
        seconds, with the count of those refused meanwhile (so that a flood of them cannot flood the audit trail).
        Sent from a thread of its own; nothing happens when no session process answers."""
        with self._reporting:
            self._unadmitted[why] = self._unadmitted.get(why, 0) + 1
            if time.monotonic() - self._reported < REPORT_EVERY:
                return
            counts, self._unadmitted, self._reported = self._unadmitted, {}, time.monotonic()
        for reason, count in counts.items():
            said = what if count == 1 else f"{count} requests, the last {what}"
            request = RefusalRequest(what=said, why=reason, by="nobody", via="web")
            threading.Thread(target=self._tell, args=(request,), daemon=True).start()

    def _tell(self, request: Request) -> None:
        with contextlib.suppress(SessionError, OSError, zmq.ZMQError):
            self._send(request)

    def session(self) -> dict[str, Any]:
        """The session's name and id, and what an operator needs to know of its variables and objectives.

        Raises:
            SessionError: the folder holds no session.
        """
        store = session_store(self.folder)
        try:
            spec = folder_spec(self.folder, store)
            info = variables_info(spec, store.meta("reach") or {})
            units = {name: v.units for name, v in spec.variables.items()}
            return {"name": spec.name, "session_id": store.meta("session_id"), **info, "units": units}
        finally:
            store.close()

    def observations(self, last: int = 10) -> dict[str, Any]:
        """``{"observations": the last few, newest first}``: what was measured, where the instrument read back."""
        store = session_store(self.folder)
        try:
            return {"observations": [o.model_dump(mode="json") for o in store.recent_observations(last)]}
        finally:
            store.close()

    def history(self, last: int = HISTORY) -> dict[str, Any]:
        """``{"events": the last few lines of the session's audit log, oldest first}``: each ``time``, ``kind`` and
        ``message`` (a question asked at a checkpoint in a few words), read from the store (no process needed)."""
        store = session_store(self.folder)
        try:
            logged = store.events()
        finally:
            store.close()
        return {"events": [{"time": t, "kind": k, "message": _brief(k, m)} for t, k, m in logged[-last:]]}

    def belief(self, variable: str) -> tuple[HTTPStatus, dict[str, Any]]:
        """The model's belief along ``variable`` through the best point: the running session's planner's, asked
        over the control channel (``busy`` while the loop uses it); with no session process, the planner rebuilt
        from the store (:func:`agent.views.belief.rebuilt_belief_line`). ``source`` says which.

        Returns:
            200 and ``{"belief", "why", "source"}`` (``belief`` None, and why, when there is none to show), or 400
            and one line naming the variable.
        """
        try:
            reply = self._send(validate_request(self._fields({"type": "belief", "variable": variable})))
        except SpecError as exc:
            return HTTPStatus.BAD_REQUEST, {"ok": False, "error": str(exc)}
        except SessionError as exc:
            if _process_runs(self.folder):  # it did not answer in time (busy): no rebuild beside it
                return HTTPStatus.OK, {"belief": None, "why": f"no model: {exc}", "source": "session"}
            reply = None
        if reply is not None and not reply["ok"]:
            if reply.get("code") == "invalid":
                return HTTPStatus.BAD_REQUEST, {"ok": False, "error": reply["error"]}
            return HTTPStatus.OK, {"belief": None, "why": f"no model: {reply['error']}", "source": "session"}
        if reply is not None:  # (busy: the page asks again at the next checkpoint)
            return HTTPStatus.OK, {**reply["result"], "source": "session"}
        from agent.views import rebuilt_belief_line

        try:
            return HTTPStatus.OK, {**rebuilt_belief_line(self.folder, variable), "source": "rebuilt"}
        except SpecError as exc:
            return HTTPStatus.BAD_REQUEST, {"ok": False, "error": str(exc)}

    def _fields(self, body: dict[str, Any]) -> dict[str, Any]:
        return {**body, "v": PROTOCOL_VERSION, "id": new_id("r"), "via": "web", "by": self.by or operator_name()}

    def results(self) -> dict[str, Any]:
        """Every run's result: ``{"columns": [...], "rows": [...]}`` (:func:`~agent.views.session_results`)."""
        columns, rows, _ = session_results(self.folder)
        return {"columns": columns, "rows": rows}

    def results_csv(self) -> str:
        """Every run's result as CSV (:func:`~agent.views.as_csv`)."""
        return as_csv(*session_results(self.folder)[:2])

    def status(self) -> dict[str, Any]:
        """The session process's own status when one answers (it knows of a waiting checkpoint), else the folder's."""
        try:
            reply = self._send(build("status", self.by, "web"))
        except SessionError:
            return {**summarize(self.folder), "running": False}
        return {**reply["result"], "running": True} if reply["ok"] else {**summarize(self.folder), "running": True}

    def checkpoint(self) -> dict[str, Any]:
        """``{"checkpoint": the question the session waits on, or None}``."""
        try:
            reply = self._send(build("checkpoint", self.by, "web"))
        except SessionError:
            return {"checkpoint": None}
        return {"checkpoint": reply["result"].get("checkpoint") if reply["ok"] else None}

    def validate(self, body: Any, operator: str | None = None) -> Request:
        """The operator's request (decoded JSON) as the session will take it: a control request ``via="web"``, in
        the name of the token's operator, else the ``by`` it gives, else the gate's.

        The correlation id, the version and ``via`` are the server's own; what the body says of them is ignored.

        Raises:
            ForbiddenError: ``operator`` is given and the body names someone else (``by``).
            SpecError: not a JSON object, or a field of the wrong type or value (one line naming the field, as
                :func:`~closedloop.control.validate_request` words it).
        """
        if not isinstance(body, dict):
            raise SpecError(f"request: a JSON object, got {type(body).__name__}")
        by = body.get("by")
        if operator is not None and by not in (None, "", operator):
            raise ForbiddenError(f"by: this page's token is {operator}'s; it cannot answer as {by}")
        name = operator or (by if by not in (None, "") else self.by or operator_name())
        return validate_request({**body, "v": PROTOCOL_VERSION, "id": new_id("r"), "via": "web", "by": name})

    def request(self, body: Any, operator: str | None = None) -> tuple[HTTPStatus, dict[str, Any]]:
        """Send the operator's request (decoded JSON) to the session: the HTTP status and the reply.

        ``operator`` is the name the request's token stands for (:meth:`validate`). The status is 200 with the
        session's reply, 400 a malformed request, 403 one made in someone else's name (neither reaches the
        session), or 503 no session process answers.
        """
        try:
            request = self.validate(body, operator)
        except ForbiddenError as exc:
            return HTTPStatus.FORBIDDEN, {"ok": False, "error": str(exc)}
        except SpecError as exc:  # the session refuses it too, and records the attempt in its audit trail
            tell_refused(self.folder, body, operator, self.by, keys_dir=self.keys_dir)
            return HTTPStatus.BAD_REQUEST, {"ok": False, "error": str(exc), "code": "invalid"}
        try:
            return HTTPStatus.OK, self._send(request)
        except SessionError as exc:
            return HTTPStatus.SERVICE_UNAVAILABLE, {"ok": False, "error": str(exc)}

    def _send(self, request: Request) -> dict[str, Any]:
        with ControlClient(self.folder, timeout=self.timeout, keys_dir=self.keys_dir) as client:
            return client.call(request).model_dump(mode="json")
