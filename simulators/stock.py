"""Instruments made of devices closedloop did not write: ophyd classic's ``ophyd.sim`` and ophyd-async's ``sim``.

They are the factories of the session files in ``examples/`` (``instrument.factory: simulators.stock:...``), so a
new user can run a session on the devices the Bluesky project ships, as a beamline would on its own.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from ophyd.sim import SynAxis, SynGauss
from ophyd_async.core import StaticPathProvider, UUIDFilenameProvider
from ophyd_async.sim import PatternGenerator, SimBlobDetector, SimPointDetector, SimStage


def ophyd_classic(center: float = 0.3, width: float = 0.5, peak: float = 100.0) -> dict[str, Any]:
    """ophyd classic only: ``mx`` (an ``ophyd.sim.SynAxis``) and ``gauss`` (an ``ophyd.sim.SynGauss`` of ``mx``).

    ``gauss`` reads ``peak * exp(-(x - center)^2 / (2 width^2))`` with the motor at ``x``.
    """
    mx = SynAxis(name="mx")
    return {"mx": mx, "gauss": SynGauss("gauss", mx, "mx", center=center, Imax=peak, sigma=width)}


def ophyd_async_stage(folder: str | None = None) -> dict[str, Any]:
    """ophyd-async's own simulated stage and detectors, sharing one ``PatternGenerator``.

    ``stage`` is a ``SimStage`` (children ``stage.x``, ``stage.y``, moving at 1 mm/s), ``point`` a
    ``SimPointDetector`` (fields ``point-channel-1-value``...), ``blob`` a ``SimBlobDetector`` that writes its frames
    to HDF5 files in ``folder`` (a new temporary folder when none is given) and puts references to them, not values,
    in its events: an objective read from it needs a reducer such as ``instruments.reducers:frame_sum``.
    """
    where = Path(folder) if folder else Path(tempfile.mkdtemp(prefix="closedloop-blob-"))
    where.mkdir(parents=True, exist_ok=True)
    generator = PatternGenerator()
    return {
        "stage": SimStage(generator, name="stage"),
        "point": SimPointDetector(generator, name="point"),
        "blob": SimBlobDetector(StaticPathProvider(UUIDFilenameProvider(), where), generator, name="blob"),
    }
