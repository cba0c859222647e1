"""Optional planner abilities, each a small runtime-checkable protocol the agent checks with ``isinstance``."""

from __future__ import annotations

from typing import Protocol, runtime_checkable


@runtime_checkable
class KnowsPosition(Protocol):
    """A planner that takes the instrument's current position into account (travel cost, maximum travel).

    The agent calls :meth:`set_position` with where the instrument is before asking for points; without it,
    such a planner takes the last ingested point as the position.
    """

    def set_position(self, position: dict[str, float]) -> None:
        """Tell the planner where the instrument is now: a value for every non-categorical variable."""
