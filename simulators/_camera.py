"""A simulated camera built from an ophyd-async soft signal: a whole frame in every reading.

:class:`SimCamera` stands for the detectors that put an image into each event as a value (a soft-signal array
detector, ``ophyd.sim``'s image signals), not into a file of their own as ophyd-async's area detectors do.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
from ophyd_async.core import AsyncStatus, SignalR, StandardReadable, StandardReadableFormat, soft_signal_r_and_setter


class SimCamera(StandardReadable):
    """A camera imaging the beam: each trigger publishes a ``rows x cols`` frame (float32) of a Gaussian spot
    whose pixels sum to ``function(**inputs)``.

    Args:
        function: maps input name -> position to the frame's total counts.
        inputs: input name -> the signal read at trigger time (a motor's ``user_readback``).
        shape: the frame's ``(rows, cols)``.
        spot: the spot's standard deviation as a fraction of the frame's side.
        name: device name.

    Signals:
        ``image``: the last frame, read as ``{name}-image`` (its descriptor declares the frame's shape).
    """

    def __init__(
        self,
        function: Callable[..., float],
        inputs: Mapping[str, SignalR[float]],
        shape: tuple[int, int] = (32, 32),
        spot: float = 0.1,
        name: str = "",
    ) -> None:
        rows, cols = (int(n) for n in shape)
        if rows < 1 or cols < 1 or not spot > 0:
            raise ValueError(f"shape {shape} and spot {spot} must be positive")
        self._function = function
        self._inputs = dict(inputs)
        profiles = [np.exp(-0.5 * ((np.arange(n) - (n - 1) / 2) / (spot * n)) ** 2) for n in (rows, cols)]
        self._spot = np.outer(*profiles).astype(np.float32)
        self._spot /= self._spot.sum(dtype=np.float64)
        with self.add_children_as_readables(StandardReadableFormat.HINTED_SIGNAL):
            self.image, self._set_image = soft_signal_r_and_setter(np.ndarray, np.zeros((rows, cols), np.float32))
        super().__init__(name=name)

    @AsyncStatus.wrap
    async def trigger(self) -> None:
        """Read the inputs and publish the frame they give."""
        positions = {key: float(await signal.get_value()) for key, signal in self._inputs.items()}
        self._set_image(self._spot * np.float32(self._function(**positions)))
