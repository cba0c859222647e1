"""The position the loop gives a planner when the instrument reads back only some variables.

A planner that knows where the instrument is (``set_position``) needs every numeric variable; an executor may read
back only some (a device without a read-back in its events). The loop completes the rest from the planner's own
last position, or gives none at all, never a partial one the planner would refuse.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from agent.loop.context import LoopContext
from closedloop.spec import spec_from_dict
from planners.bayes import BoTorchPlanner

SPEC = spec_from_dict(
    {
        "variables": {"x": {"bounds": [-2.0, 2.0], "max_step": 1.0}, "y": {"bounds": [-2.0, 2.0]}},
        "objectives": {"f": {}},
        "budget": {"experiments": 5},
        "instrument": {"simulator": "branin"},
    }
)


class _Lanes:
    """Stands in for the session's lanes: only where the next run starts is asked."""

    def __init__(self, where: dict[str, Any]) -> None:
        self.where = where

    def next_positions(self) -> dict[str, Any]:
        return dict(self.where)


def _context(planner: Any, where: dict[str, Any]) -> LoopContext:
    return LoopContext(spec=SPEC, store=None, planner=planner, lanes=_Lanes(where), runs=Path("."), tally=None)  # type: ignore[arg-type]


def test_a_partial_position_is_completed_from_the_planners_own_or_not_given() -> None:
    planner = BoTorchPlanner(SPEC.vocs(), seed=1, max_travel={"x": 1.0})
    ctx = _context(planner, {"x": 0.5})
    assert ctx.planner_position() == {}  # the planner knows nothing yet: no position rather than half of one

    planner.ingest([{"x": -0.25, "y": 1.5, "f": 0.3}])
    where = ctx.planner_position()
    assert where == {"x": 0.5, "y": 1.5}  # x read back now, y where the planner last knew it
    planner.set_position(where)  # accepted: every variable has a number
    assert planner.position == {"x": 0.5, "y": 1.5}

    assert _context(planner, {"x": 0.5, "y": float("nan")}).planner_position() == {"x": 0.5, "y": 1.5}
    assert _context(planner, {"x": 0.1, "y": -0.2, "z": 3.0}).planner_position() == {"x": 0.1, "y": -0.2}
