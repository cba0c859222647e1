"""closedloop's simulated beamline for bluesky-queueserver: the RunEngine, its document publisher and the devices.

Loaded by ``start-re-manager --startup-dir simulators/qserver`` (``closedloop queueserver start`` does this).
Two environment variables, set by whoever starts the manager, configure it:

- ``CLOSEDLOOP_QSERVER_PUBLISH``: the in-address of a ``bluesky-0MQ-proxy`` (``tcp://127.0.0.1:5577``). The
  RunEngine publishes every document there, serialized as JSON (never pickle). Unset: documents are not published.
- ``CLOSEDLOOP_QSERVER_NOISE``: the detector's flux noise in counts (default 10, as in the demo; 0 makes every
  reading noiseless, exactly the physics of :mod:`simulators.physics`).
- ``CLOSEDLOOP_QSERVER_EXPOSURE``: seconds each detector reading takes (default 0).
- ``CLOSEDLOOP_QSERVER_TILED``: a Tiled server (or container) URL the RunEngine writes every run to, with Tiled's
  ``TiledWriter`` (needs the ``closedloop[tiled]`` extra); its API key in ``TILED_API_KEY``, as Tiled reads it.
  Unset: runs are not written to Tiled. A session names the same server in ``instrument.queueserver.tiled`` to read
  back a run the manager finished while the agent was stopped.

Devices: the mirror-pitch motors ``m1`` and ``m2`` and the detector ``det`` of :func:`simulators.beamline`
(``det-flux``, ``det-width``, ``det-heat``), its camera ``cam`` (a 40 x 40 frame per event, ``cam-image``, read
only when a session lists it among its detectors), and ``slow_m``, a motor that moves at a real velocity (for tests that
interrupt a run while it moves).
"""

import json
import os
from typing import Any

from bluesky import RunEngine
from bluesky.callbacks.zmq import Publisher
from ophyd_async.core import init_devices
from ophyd_async.sim import SimMotor

from simulators import beamline


def _json_default(value):
    """numpy scalars and arrays (and anything else with ``tolist``) as plain JSON values."""
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _to_json(document):
    return json.dumps(document, default=_json_default).encode()


RE = RunEngine({"beamline_id": "closedloop-sim"})

_publish_to = os.environ.get("CLOSEDLOOP_QSERVER_PUBLISH")
if _publish_to:
    RE.subscribe(Publisher(_publish_to, serializer=_to_json))

_tiled = os.environ.get("CLOSEDLOOP_QSERVER_TILED")
if _tiled:
    from bluesky_tiled_plugins import TiledWriter
    from tiled.client import from_uri

    RE.subscribe(TiledWriter(from_uri(_tiled), batch_size=1))

_noise = float(os.environ.get("CLOSEDLOOP_QSERVER_NOISE", "10.0"))
_quiet: dict[str, Any] = {"width_noise": 0.0, "heat_noise": 0.0} if _noise == 0 else {}
_exposure = float(os.environ.get("CLOSEDLOOP_QSERVER_EXPOSURE", "0"))
_devices = beamline(noise=_noise, exposure=_exposure, camera=40, **_quiet)  # cam: a 40 x 40 frame per event
with init_devices():
    m1 = _devices["m1"]
    m2 = _devices["m2"]
    det = _devices["det"]
    cam = _devices["cam"]
    slow_m = SimMotor(name="slow_m", instant=False)
del _devices, _noise, _quiet, _exposure
