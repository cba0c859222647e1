"""Everything that suggests points: gest-api generators for closedloop, and the registry that finds them.

Planners are pure math (torch, BoTorch); they never import Bluesky, LangGraph or ZeroMQ.
"""

from planners._base import PlannerBase
from planners.bayes import BoTorchPlanner
from planners.registry import load_planner, planner_names
from planners.sobol import SobolPlanner

__all__ = ["BoTorchPlanner", "PlannerBase", "SobolPlanner", "load_planner", "planner_names"]
