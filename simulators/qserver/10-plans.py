"""The plans this profile offers: Bluesky's standard ones and closedloop's per-proposal plan.

``closedloop_point`` wraps :func:`instruments.plans.measure_point` (the plan the in-process executor runs), so a
proposal is measured the same way in both places. The queueserver passes devices by name and cannot pass a
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
            "md": {
                "description": "Metadata for the start document (closedloop's proposal id).",
                "convert_device_names": False,
                "convert_plan_names": False,
            },
        },
    }
)
def closedloop_point(detectors, movers, positions, md=None):
    """One run, one event: ``movers`` moved to ``positions``, then ``detectors`` and ``movers`` read."""
    if len(movers) != len(positions):
        raise ValueError(f"closedloop_point: {len(movers)} movers but {len(positions)} positions")
    moves = dict(zip(movers, positions, strict=True))
    return (yield from _closedloop_plans.measure_point(moves, detectors, dict(md or {})))
