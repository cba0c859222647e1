"""Talking to a bluesky-queueserver RE Manager: requests with one-line errors, waits, history, clean closing.

:class:`ManagerClient` wraps bluesky-queueserver-api's 0MQ ``REManagerAPI`` for the queueserver executor: a
manager that does not answer within the spec's ``timeout`` and a refused request become
:class:`~closedloop.errors.InstrumentError` with one line naming the address or the request.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from bluesky_queueserver_api.zmq import REManagerAPI

from closedloop.errors import InstrumentError
from closedloop.queueserver import QueueServerSpec

FINISHED = {"completed", "failed", "aborted", "halted", "stopped", "unknown"}
"""Exit statuses of an item in the manager's history."""


class ManagerClient:
    """One connection to an RE Manager, as the spec's user and user group.

    Args:
        qs: where the manager is, who we are, the timeouts and the polling interval.
    """

    def __init__(self, qs: QueueServerSpec) -> None:
        self.qs = qs
        self.api = REManagerAPI(
            zmq_control_addr=qs.control_address, timeout_recv=qs.timeout, request_fail_exceptions=False
        )
        self.api.user, self.api.user_group = qs.user, qs.user_group

    def status(self) -> dict[str, Any]:
        """The manager's status now (never a cached one)."""
        return self.request("status", reload=True)

    def request(self, method: str, *args: Any, **kwargs: Any) -> Any:
        """Call an API method; a silent manager or a refused request raises a one-line InstrumentError."""
        response = self.attempt(method, *args, **kwargs)
        if response.get("success") is False:
            raise InstrumentError(f"queueserver: {method} refused: {response.get('msg') or 'no reason given'}")
        return response

    def attempt(self, method: str, *args: Any, **kwargs: Any) -> dict[str, Any]:
        """Call an API method and return its response, refused (``success`` false) or not; a silent manager raises."""
        try:
            return dict(getattr(self.api, method)(*args, **kwargs))
        except self.api.RequestTimeoutError:
            raise InstrumentError(
                f"instrument.queueserver.control_address: no RE Manager answered at {self.qs.control_address} "
                f"within {self.qs.timeout:g} s",
                "start one with 'closedloop queueserver start', or fix the address",
            ) from None

    def wait(self, done: Callable[[dict[str, Any]], bool], timeout: float, what: str) -> dict[str, Any]:
        """Poll the status until ``done(status)``; raise naming ``what`` the manager did not do in ``timeout`` s."""
        deadline = time.monotonic() + timeout
        while True:
            status = self.status()
            if done(status):
                return status
            if time.monotonic() > deadline:
                raise InstrumentError(f"queueserver: the RE Manager did not {what} within {timeout:g} s")
            time.sleep(self.qs.poll_interval)

    def open_environment(self) -> None:
        """Open the manager's worker environment and wait until it is open (up to ``busy_timeout``)."""
        if not self.qs.open_environment:
            raise InstrumentError(
                "instrument.queueserver: the RE Manager's worker environment is closed",
                "open it (qserver environment open) or set open_environment: true",
            )
        self.request("environment_open")
        seen_busy = False

        def opened(status: dict[str, Any]) -> bool:
            nonlocal seen_busy
            seen_busy = seen_busy or status["manager_state"] != "idle"
            return bool(status["worker_environment_exists"]) or (seen_busy and status["manager_state"] == "idle")

        if not self.wait(opened, self.qs.busy_timeout, "open its worker environment")["worker_environment_exists"]:
            raise InstrumentError("queueserver: the RE Manager failed to open its worker environment (see its log)")

    def allowed(self, kind: str) -> set[str]:
        """Names of the ``plans`` or ``devices`` the manager allows our user group."""
        return set(self.request(f"{kind}_allowed", user_group=self.qs.user_group)[f"{kind}_allowed"])

    def history_result(self, uid: str) -> dict[str, Any] | None:
        """The ``result`` (exit status, run uids, message) of item ``uid`` once it is in the history."""
        for entry in reversed(self.request("history_get", reload=True)["items"]):
            if entry.get("item_uid") == uid and entry.get("result", {}).get("exit_status") in FINISHED:
                return dict(entry["result"])
        return None

    def find(self, proposal_id: str) -> tuple[str, dict[str, Any]] | None:
        """Where the manager has the item whose ``md`` names ``proposal_id``: ``("running", item)``,
        ``("queued", item)`` or ``("finished", history entry)`` (the latest), or None when it has none."""

        def ours(item: dict[str, Any] | None) -> bool:
            md = ((item or {}).get("kwargs") or {}).get("md") or {}
            return isinstance(md, dict) and md.get("proposal_id") == proposal_id

        queue = self.request("queue_get", reload=True)
        if ours(queue.get("running_item")):
            return "running", dict(queue["running_item"])
        for item in queue["items"]:
            if ours(item):
                return "queued", dict(item)
        for entry in reversed(self.request("history_get", reload=True)["items"]):
            if ours(entry):
                return "finished", dict(entry)
        return None

    def remove_requeued(self, added: dict[str, Any]) -> None:
        """Remove the copy of a failed or aborted item that the manager put back in the queue (with a new uid)."""
        for entry in self.request("queue_get", reload=True)["items"]:
            if all(entry.get(key) == added.get(key) for key in ("name", "args", "kwargs")):
                self.request("item_remove", uid=entry["item_uid"])
                return

    def close(self) -> None:
        """Close the connection and every 0MQ context the API made."""
        close_api(self.api)


def close_api(api: REManagerAPI) -> None:
    """Close a bluesky-queueserver-api client with every 0MQ context it made.

    ``api.close()`` closes the control socket only: the client's context and the console and system-info
    monitors' subscriptions (made in its constructor, even when never used) stay open until garbage collection,
    which then warns. This reaches into the client's attributes, each looked up defensively.
    """
    api.close()
    client = getattr(api, "_client", None)
    thread = getattr(client, "_zmq_receive_thread", None)
    if thread is not None:
        thread.join(timeout=1.0)  # it exits within its 0.1 s polling period once closed
    context = getattr(client, "_ctx", None)
    if context is not None:
        context.destroy(linger=0)
    for monitor in (getattr(api, "_console_monitor", None), getattr(api, "_system_info_monitor", None)):
        socket = getattr(getattr(monitor, "_rco", None), "_socket", None)
        if socket is not None:
            socket.context.destroy(linger=0)
