"""The Bluesky plan that carries out one proposal as one run."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import bluesky.plan_stubs as bps
import bluesky.preprocessors as bpp
from bluesky.protocols import Movable, Readable
from bluesky.utils import MsgGenerator


def measure_point(
    moves: Mapping[Movable, float],
    detectors: Sequence[Readable],
    md: Mapping[str, Any],
) -> MsgGenerator[str]:
    """Move every device to its setpoint together, then trigger and read the detectors and the movers.

    One run, one event in the ``primary`` stream, holding the detector readings and the positions the movers
    read back.

    Args:
        moves: device -> setpoint.
        detectors: devices to trigger and read once the moves are done.
        md: metadata for the start document (proposal id, session id, iteration).

    Returns:
        The run's uid.
    """

    @bpp.run_decorator(md=dict(md))
    def _run() -> MsgGenerator[None]:
        args: list[Any] = []
        for device, value in moves.items():
            args += [device, value]
        yield from bps.mv(*args)
        readables = list(detectors) + [device for device in moves if isinstance(device, Readable)]
        yield from bps.trigger_and_read(readables)

    return (yield from _run())
