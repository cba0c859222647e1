"""Optional planner abilities, each a small runtime-checkable protocol the agent checks with ``isinstance``.

No torch here: checking an ability never loads a model.
"""

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


@runtime_checkable
class Predicts(Protocol):
    """A planner whose model predicts the outcome at points, for an operator reviewing proposals.

    Each prediction is ``{objective: {"mean": ..., "std": ..., "acquisition": ...}}`` in the objective's own
    units and sense (a minimized objective's mean is the predicted value, not its negative): the posterior mean
    and standard deviation of the measured value (noise not included), and the value of the acquisition function
    the planner would use for one point now (the same number for every objective of a point; larger is better).
    """

    def predict(self, points: list[dict[str, object]]) -> list[dict[str, dict[str, float]]]:
        """One prediction per point (each point needs every variable); raises ``ValueError`` without a model."""


@runtime_checkable
class Explains(Protocol):
    """A planner that says why it proposed each of its points, for the operator (the proposal's ``why``):
    ``initial design``, ``model (qLogNEI)`` and the like."""

    def why(self, point_id: int) -> str | None:
        """Why the point with this ``_id`` was proposed, in a few words; None when the planner does not say."""


@runtime_checkable
class LimitsInFlight(Protocol):
    """A planner that can have only so many of its points out at once (one that makes one point at a time wants
    each result before its next point; see :mod:`planners.foreign`).

    The agent asks it for at most :attr:`room` points (None: no limit) and, at 0, waits for a run to end first.
    """

    @property
    def room(self) -> int | None:
        """How many more points it can give now; None for no limit."""


@runtime_checkable
class RestoresPending(Protocol):
    """A planner that can be told, when it is rebuilt on resume, of its earlier instance's points still out
    (proposed, not yet measured nor rejected), so that it continues its sequence instead of giving them again.

    The agent tells it every stored result first (:meth:`ingest`), then calls :meth:`restore_pending` once with
    the points still out, and uses the returned ``_id`` for each when its result comes.
    """

    def restore_pending(self, points: list[dict[str, object]]) -> list[int]:
        """Take ``points`` as pending, in order; returns the ``_id`` each now has."""
