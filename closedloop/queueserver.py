"""The ``instrument.queueserver`` section of a session file: where a bluesky-queueserver RE Manager listens.

With it, proposals run on a RunEngine that a queueserver RE Manager owns (on the instrument's control host),
not in the agent's process. The manager is reached over its 0MQ control API; the run's documents come back
through the ``bluesky-0MQ-proxy`` that the manager's RunEngine publishes to.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from closedloop.tiled import TiledSpec

AUTO_PLAN = "auto"
"""``plan: auto`` picks closedloop's plan when the manager offers it, else a standard plan (see :attr:`plan`)."""
CLOSEDLOOP_PLAN = "closedloop_point"
"""The per-proposal plan that closedloop's bundled startup folder (``simulators/qserver``) defines."""


class QueueServerSpec(BaseModel):
    """How to reach a bluesky-queueserver RE Manager and its document stream, and which plan to ask it for.

    Attributes:
        control_address: the manager's 0MQ control address (``start-re-manager --zmq-control-addr``).
        documents_address: the out-address of the ``bluesky-0MQ-proxy`` the manager's RunEngine publishes to
            (``--out-address``); subscribers connect here.
        serializer: how the profile's RunEngine serializes documents for the proxy: ``json`` or ``msgpack``.
            Pickle is never accepted.
        detectors: names of the devices in the manager's namespace to trigger and read at each proposal (the
            movers, named by each variable's ``device``, are read as well).
        plan: the plan to submit. ``auto``: for the session's ``plan: measure``, ``closedloop_point`` when the
            manager allows it, else Bluesky's ``scan`` with every mover held at its setpoint for ``num`` points,
            else ``mv`` followed by ``count``; for ``plan: scan``, ``closedloop_scan`` when allowed, else
            Bluesky's ``scan`` of the scanned variable's mover over the range (the other movers held at their
            setpoints and read at every point). ``scan`` and ``count`` are called with Bluesky's standard
            signatures (``count`` after an ``mv`` item; it cannot scan); any other name is called as
            ``closedloop_point`` is: ``(detectors, movers, positions, md=...)``. The manager turns any string
            argument that names one of its devices or plans into that object, ``md`` values included, except
            where a plan's annotations say otherwise (``closedloop_point`` keeps its ``md`` and ``positions``).
        user: the user name the queue items are submitted under.
        user_group: the manager's user group (its ``user_group_permissions.yaml`` says which plans it may run).
        timeout: seconds to wait for the manager to answer a request, or for the proxy to accept a connection.
        busy_timeout: seconds to wait for a manager busy with someone else's plan before giving up (it is never
            interrupted).
        run_timeout: seconds one proposal's plan may take once it started.
        documents_timeout: seconds to wait, once the manager reports the plan finished, for the run's last
            document to arrive through the proxy.
        poll_interval: seconds between status requests while a plan runs.
        open_environment: open the manager's worker environment when it is closed.
        tiled: the Tiled server (or container on it) the manager's startup profile writes its runs to, with a
            ``TiledWriter`` subscribed to its RunEngine. closedloop only reads it: on resume, a run the manager
            finished while the agent was stopped, whose documents did not all reach the agent through the proxy,
            is read back from there by its run uid and ingested. Without it such a run is recorded
            ``interrupted`` and its measurement is lost (the manager keeps no documents).
    """

    model_config = ConfigDict(extra="forbid")

    control_address: str = "tcp://localhost:60615"
    documents_address: str = "tcp://localhost:5568"
    serializer: Literal["json", "msgpack"] = "json"
    detectors: list[str] = Field(min_length=1)
    plan: str = AUTO_PLAN
    user: str = "closedloop"
    user_group: str = "primary"
    timeout: float = Field(default=5.0, gt=0)
    busy_timeout: float = Field(default=3600.0, gt=0)
    run_timeout: float = Field(default=600.0, gt=0)
    documents_timeout: float = Field(default=30.0, gt=0)
    poll_interval: float = Field(default=0.05, gt=0, le=5.0)
    open_environment: bool = True
    tiled: TiledSpec | None = None

    @field_validator("control_address", "documents_address")
    @classmethod
    def _zmq_address(cls, value: str) -> str:
        transport, sep, rest = value.partition("://")
        if not sep or transport not in {"tcp", "ipc"} or not rest:
            raise ValueError(f"'{value}' is not a 0MQ address such as 'tcp://localhost:60615'")
        return value

    @field_validator("plan")
    @classmethod
    def _plan_name(cls, value: str) -> str:
        if not value.isidentifier():
            raise ValueError(f"'{value}' is not a plan name")
        return value
