"""Everything that suggests points: gest-api generators for closedloop, and the registry that finds them.

Planners are pure math (torch, BoTorch); they never import Bluesky, LangGraph or ZeroMQ.
"""

from planners._base import PlannerBase
from planners._protocols import KnowsPosition
from planners.baselines import GridPlanner, ManualPlanner, RandomPlanner
from planners.bayes import BoTorchPlanner
from planners.registry import load_planner, planner_names
from planners.sobol import SobolPlanner
from planners.turbo import TurboPlanner
from planners.warmup import WarmStart

__all__ = [
    "BoTorchPlanner",
    "GridPlanner",
    "KnowsPosition",
    "ManualPlanner",
    "PlannerBase",
    "RandomPlanner",
    "SobolPlanner",
    "TurboPlanner",
    "WarmStart",
    "load_planner",
    "planner_names",
]
