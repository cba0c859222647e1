"""The plans this profile offers: Bluesky's standard ones and closedloop's per-proposal plans.

``closedloop_point`` wraps :func:`instruments.plans.measure_point` and ``closedloop_scan``
:func:`instruments.plans.scan_point` (the plans the in-process executor runs), so a proposal is measured the same
way in both places. The queueserver passes devices by name and cannot pass a
mapping keyed by devices, so the moves come as two lists.
"""

from bluesky.plan_stubs import mv, sleep  # noqa: F401  (offered to the queue as plans)
from bluesky.plans import count, list_scan, scan  # noqa: F401
from bluesky_queueserver import parameter_annotation_decorator

import instruments.plans as _closedloop_plans


@parameter_annotation_decorator(
    {
        "description": "closedloop: move every mover to its position together, then trigger and read once.",
        "parameters": {
            "detectors": {"description": "Devices to trigger and read."},
            "movers": {"description": "Devices to move, in the order of 'positions'."},
            "positions": {"description": "Setpoint of each mover.", "convert_device_names": False},
            "num": {"description": "Readings at the point."},
            "md": {
                "description": "Metadata for the start document (closedloop's proposal id).",
                "convert_device_names": False,
                "convert_plan_names": False,
            },
        },
    }
)
def closedloop_point(detectors, movers, positions, md=None, num=1):
    """One run, ``num`` events: ``movers`` moved to ``positions``, then ``detectors`` and ``movers`` read."""
    if len(movers) != len(positions):
        raise ValueError(f"closedloop_point: {len(movers)} movers but {len(positions)} positions")
    moves = dict(zip(movers, positions, strict=True))
    return (yield from _closedloop_plans.measure_point(moves, detectors, dict(md or {}), num=num))


@parameter_annotation_decorator(
    {
        "description": "closedloop: move every mover to its position, then scan 'motor' from start to stop.",
        "parameters": {
            "detectors": {"description": "Devices to trigger and read at each point."},
            "movers": {"description": "Devices to move first, in the order of 'positions'."},
            "positions": {"description": "Setpoint of each mover.", "convert_device_names": False},
            "motor": {"description": "The device scanned."},
            "md": {
                "description": "Metadata for the start document (closedloop's proposal id).",
                "convert_device_names": False,
                "convert_plan_names": False,
            },
        },
    }
)
def closedloop_scan(detectors, movers, positions, motor, start, stop, num, md=None):
    """One run, ``num`` events: ``movers`` moved to ``positions``, then ``motor`` stepped from start to stop."""
    if len(movers) != len(positions):
        raise ValueError(f"closedloop_scan: {len(movers)} movers but {len(positions)} positions")
    moves = dict(zip(movers, positions, strict=True))
    points = [start + (stop - start) * i / (num - 1) for i in range(num)] if num > 1 else [start]
    return (yield from _closedloop_plans.scan_point(moves, detectors, dict(md or {}), motor=motor, positions=points))
