"""The simulated instruments: real ophyd-async devices whose readings follow the known physics."""

from __future__ import annotations

import asyncio
import math
from typing import Any

import bluesky.plan_stubs as bps
import pytest
from bluesky.run_engine import call_in_bluesky_event_loop

import simulators
from simulators.physics import beamline_flux, branin, hartmann6


def connect(devices: dict[str, Any]) -> None:
    async def _connect() -> None:
        await asyncio.gather(*(device.connect() for device in devices.values()))

    call_in_bluesky_event_loop(_connect())


def test_known_optima_are_the_optima() -> None:
    assert beamline_flux(**simulators.BEAMLINE_OPTIMUM.point) == pytest.approx(simulators.BEAMLINE_OPTIMUM.value)
    assert branin(**simulators.BRANIN_OPTIMUM.point) == pytest.approx(simulators.BRANIN_OPTIMUM.value, abs=1e-5)
    assert hartmann6(**simulators.HARTMANN6_OPTIMUM.point) == pytest.approx(
        simulators.HARTMANN6_OPTIMUM.value, abs=1e-4
    )
    # the beamline's peak is off the centre of its search box, and the centre is far below it
    centre = beamline_flux(0.0, 0.0)
    assert centre < 0.5 * simulators.BEAMLINE_OPTIMUM.value
    # nothing on a grid over the box beats the stated optimum
    grid = [-1.5 + 3.0 * i / 60 for i in range(61)]
    assert max(beamline_flux(a, b) for a in grid for b in grid) <= simulators.BEAMLINE_OPTIMUM.value + 1e-9


@pytest.mark.parametrize(
    ("factory", "moves", "expected"),
    [
        ("beamline", {"m1": 0.35, "m2": -0.6}, {"det-flux": 1020.0, "det-width": 32.1, "det-heat": 2.38333}),
        ("beamline", {"m1": 0.9, "m2": -0.1}, {"det-width": 15.0, "det-heat": 1.0 + 2.0 * 0.8 + 0.5 * 1.4 / 3}),
        ("branin", {"x1": math.pi, "x2": 2.275}, {"det-value": 0.397887}),
        ("hartmann6", dict(simulators.HARTMANN6_OPTIMUM.point), {"det-value": -3.32237}),
    ],
)
def test_devices_read_the_function_at_the_motor_positions(
    run_engine: Any, factory: str, moves: dict[str, float], expected: dict[str, float]
) -> None:
    options = {"width_noise": 0.0, "heat_noise": 0.0} if factory == "beamline" else {}
    devices = getattr(simulators, factory)(noise=0.0, **options)
    connect(devices)
    detector = devices["det"]
    readings: dict[str, Any] = {}

    def plan():
        args: list[Any] = []
        for name, value in moves.items():
            args += [devices[name], value]
        yield from bps.mv(*args)
        yield from bps.trigger(detector, wait=True)
        readings.update((yield from bps.read(detector)))

    run_engine(plan())
    for key, value in expected.items():
        assert readings[key]["value"] == pytest.approx(value, abs=1e-4), key


def test_noise_is_seeded_and_has_the_asked_spread(run_engine: Any) -> None:
    def sample(seed: int) -> list[float]:
        devices = simulators.beamline(noise=10.0, seed=seed)
        connect(devices)
        detector = devices["det"]
        values: list[float] = []

        def plan():
            for _ in range(200):
                yield from bps.trigger(detector, wait=True)
                reading = yield from bps.read(detector)
                values.append(reading["det-flux"]["value"])

        run_engine(plan())
        return values

    first, again, other = sample(1), sample(1), sample(2)
    assert first == again and first != other
    truth = beamline_flux(0.0, 0.0)
    mean = sum(first) / len(first)
    spread = math.sqrt(sum((v - mean) ** 2 for v in first) / (len(first) - 1))
    assert abs(mean - truth) < 3 * 10.0 / math.sqrt(200)
    assert 8.0 < spread < 12.0
