"""Simulated instruments as real ophyd-async devices, and the analytic problems behind them.

Each factory returns ``{device name: device}``, the form a session's ``instrument`` section loads: devices that
move a variable are motors, the rest are triggered and read as detectors. Session files name them as
``instrument: {simulator: beamline}``; ``instrument.options`` are the factory's keyword arguments, among them
``exposure`` (seconds per reading) and ``faults`` (see :mod:`simulators.faults`). Library code never imports this
package.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ophyd_async.core import Device

from simulators._camera import SimCamera
from simulators._devices import SimFieldDetector
from simulators._motor import SimFaultyMotor
from simulators._ring import SimRing
from simulators.faults import Faults, FaultSpec, SimLimitSwitchError, SimTransientError
from simulators.physics import (
    BEAMLINE_BOUNDS,
    BEAMLINE_OPTIMUM,
    BRANIN_BOUNDS,
    BRANIN_OPTIMUM,
    HARTMANN6_BOUNDS,
    HARTMANN6_OPTIMUM,
    HEAT_LIMIT,
    Optimum,
    beam_width,
    beamline_flux,
    mirror_heat,
)
from simulators.physics import branin as branin_function
from simulators.physics import hartmann6 as hartmann6_function

__all__ = [
    "BEAMLINE_BOUNDS",
    "BEAMLINE_OPTIMUM",
    "BRANIN_BOUNDS",
    "BRANIN_OPTIMUM",
    "HARTMANN6_BOUNDS",
    "HARTMANN6_OPTIMUM",
    "HEAT_LIMIT",
    "FaultSpec",
    "Faults",
    "Optimum",
    "SimCamera",
    "SimFaultyMotor",
    "SimFieldDetector",
    "SimLimitSwitchError",
    "SimRing",
    "SimTransientError",
    "beam_width",
    "beamline",
    "beamline_flux",
    "branin",
    "branin_function",
    "hartmann6",
    "hartmann6_function",
    "mirror_heat",
]


def _motors_and_detector(
    function: Callable[..., float],
    motor_names: dict[str, str],
    field: str,
    noise: float,
    seed: int | None,
    instant: bool,
    exposure: float,
    faults: dict[str, Any] | None,
    extra: dict[str, tuple[Callable[..., float], float]] | None = None,
    ring: SimRing | None = None,
) -> dict[str, Device]:
    injected = Faults(faults, seed)
    motors = {arg: SimFaultyMotor(name=motor, faults=injected, instant=instant) for arg, motor in motor_names.items()}
    detector = SimFieldDetector(
        function,
        {arg: motor.user_readback for arg, motor in motors.items()},
        field=field,
        noise=noise,
        seed=seed,
        name="det",
        extra=extra,
        exposure=exposure,
        beam=ring.current if ring is not None else None,
        nominal_beam=ring.nominal if ring is not None else 1.0,
        faults=injected,
    )
    devices: dict[str, Device] = {motor.name: motor for motor in motors.values()}
    devices["det"] = detector
    if ring is not None:
        devices[ring.name] = ring
    return devices


def beamline(
    noise: float = 10.0,
    seed: int | None = None,
    instant: bool = True,
    width_noise: float = 0.2,
    heat_noise: float = 0.01,
    exposure: float = 0.0,
    ring_current: float = 400.0,
    faults: dict[str, Any] | None = None,
    camera: int | None = None,
) -> dict[str, Device]:
    """A simulated beamline: two mirror-pitch motors ``m1``, ``m2``, a detector ``det`` and the ring ``ring``
    (and a camera ``cam``, when ``camera`` is given).

    The detector reads ``det-flux``: the flux of a beam focused through a slit (see
    :func:`simulators.physics.beamline_flux`), peak 1020 counts at pitch1=0.35, pitch2=-0.6 mrad at the nominal
    ring current, in proportion to the ring current averaged over the exposure, plus Gaussian noise of ``noise``
    counts. It also reads ``det-width``, the spot width in micrometres (:func:`~simulators.physics.beam_width`, a
    second objective to minimize), and ``det-heat``, the first mirror's heat load in watts
    (:func:`~simulators.physics.mirror_heat`, for an outcome constraint). The ring reads ``ring-current`` (mA) and
    can lose its beam for a while (:meth:`SimRing.dump`), for a suspender to hold the run.

    Args:
        noise: flux noise (standard deviation, counts).
        seed: seed of the noise and of faults given as rates.
        instant: motors move instantly (``False``: at a real velocity, seconds per move).
        width_noise: spot-width noise (standard deviation, micrometres).
        heat_noise: heat-load noise (standard deviation, watts).
        exposure: seconds each detector reading takes.
        ring_current: the ring's nominal current, mA.
        faults: faults to inject (:class:`~simulators.faults.FaultSpec`).
        camera: the side, in pixels, of a square camera ``cam`` (a :class:`SimCamera`) that reads ``cam-image``:
            a frame of the beam spot whose pixels sum to the noiseless flux, a whole array in every event (read
            its objective with ``reducer: instruments.reducers:frame_sum``).
    """
    extra = {"width": (beam_width, width_noise), "heat": (mirror_heat, heat_noise)}
    ring = SimRing(current=ring_current, name="ring")
    devices = _motors_and_detector(
        beamline_flux,
        {"pitch1": "m1", "pitch2": "m2"},
        "flux",
        noise,
        seed,
        instant,
        exposure,
        faults,
        extra=extra,
        ring=ring,
    )
    if camera is not None:
        inputs = {"pitch1": devices["m1"].user_readback, "pitch2": devices["m2"].user_readback}  # type: ignore[attr-defined]
        devices["cam"] = SimCamera(beamline_flux, inputs, shape=(camera, camera), name="cam")
    return devices


def branin(
    noise: float = 0.0,
    seed: int | None = None,
    instant: bool = True,
    exposure: float = 0.0,
    faults: dict[str, Any] | None = None,
) -> dict[str, Device]:
    """Branin as an instrument: motors ``x1``, ``x2`` and detector ``det`` reading ``det-value``."""
    return _motors_and_detector(
        branin_function, {"x1": "x1", "x2": "x2"}, "value", noise, seed, instant, exposure, faults
    )


def hartmann6(
    noise: float = 0.0,
    seed: int | None = None,
    instant: bool = True,
    exposure: float = 0.0,
    faults: dict[str, Any] | None = None,
) -> dict[str, Device]:
    """Hartmann6 as an instrument: motors ``x1`` .. ``x6`` and detector ``det`` reading ``det-value``."""
    names = {f"x{i}": f"x{i}" for i in range(1, 7)}
    return _motors_and_detector(hartmann6_function, names, "value", noise, seed, instant, exposure, faults)
