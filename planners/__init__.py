"""Everything that suggests points: gest-api generators for closedloop, and the registry that finds them.

Planners are pure math; they never import Bluesky, LangGraph or ZeroMQ. Importing this package, its registry
and its options imports no torch: the names below resolve on first use (module ``__getattr__``), so a command
that needs no model (``closedloop add``, ``status``, ``planners``) starts fast, and the space-filling and
operator planners (``sobol``, ``random``, ``grid``, ``manual``) run on numpy. torch and BoTorch load when a
model-based planner (``botorch``, ``turbo``) is built.

Failed points, one policy. A point is *failed* when a result for it has any objective or constraint output
missing, ``None`` or not finite. That is how the agent tells a planner about a run that failed, was aborted or
interrupted, and about a proposal an operator rejected: it ingests the point as a failed result (with its ``_id``
when the planner made it), live and again when the planner is rebuilt on resume (then without ``_id``). A failed
point is kept, never fit as a number, and never proposed again:

- ``botorch`` and ``turbo`` keep failed points as permanent pending points (``X_pending`` for qLogNEI and
  qLogNEHVI; conditioned on for Thompson sampling), and replace any proposal within ``SAME_POINT`` (a thousandth
  of every variable's range) of a failed point, a pending point or another point of the batch.
- ``sobol`` and ``random`` continue their sequences after every point they know of, failed ones included.
- ``grid`` counts a grid point done once it is pending or ingested, failed or not.
- ``manual`` takes a queued point off its queue when it is suggested, or ingested without ``_id`` on resume.
- :class:`WarmStart` passes failed points on and replaces a wrapped generator's proposal that repeats one.
- A generator not of this package (:mod:`planners.foreign`) is given them as they come.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from planners._base import PlannerBase
    from planners._protocols import Explains, KnowsPosition, LimitsInFlight, Predicts, RestoresPending
    from planners.baselines import GridPlanner, ManualPlanner, RandomPlanner
    from planners.bayes import BoTorchPlanner
    from planners.points_file import read_points
    from planners.registry import load_planner, planner_names
    from planners.sobol import SobolPlanner
    from planners.turbo import TurboPlanner
    from planners.warmup import WarmStart

#: Each public name and the module that defines it (imported on first use).
_LAZY = {
    "BoTorchPlanner": "planners.bayes",
    "Explains": "planners._protocols",
    "GridPlanner": "planners.baselines",
    "KnowsPosition": "planners._protocols",
    "LimitsInFlight": "planners._protocols",
    "ManualPlanner": "planners.baselines",
    "PlannerBase": "planners._base",
    "Predicts": "planners._protocols",
    "RandomPlanner": "planners.baselines",
    "RestoresPending": "planners._protocols",
    "SobolPlanner": "planners.sobol",
    "TurboPlanner": "planners.turbo",
    "WarmStart": "planners.warmup",
    "load_planner": "planners.registry",
    "planner_names": "planners.registry",
    "read_points": "planners.points_file",
}

__all__ = [
    "BoTorchPlanner",
    "Explains",
    "GridPlanner",
    "KnowsPosition",
    "LimitsInFlight",
    "ManualPlanner",
    "PlannerBase",
    "Predicts",
    "RandomPlanner",
    "RestoresPending",
    "SobolPlanner",
    "TurboPlanner",
    "WarmStart",
    "load_planner",
    "planner_names",
    "read_points",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'planners' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # resolve once
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
