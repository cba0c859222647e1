"""The session's planner, built from its spec over what its instruments' devices can reach (:func:`build_planner`);
on resume it is then told everything the store holds (:func:`~agent.loop.replay_into_planner`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from closedloop.reach import Limits, reachable_vocs
from closedloop.spec import SessionSpec
from planners.registry import accepts_option, load_planner
from planners.warmup import WarmStart


def build_planner(spec: SessionSpec, device_limits: Mapping[str, Limits] | None = None) -> Any:
    """The session's planner, built from its spec, searching what the devices can reach.

    The session seed is passed when the planner takes one, and variables' ``max_step`` become the planner's
    ``max_travel`` when it takes that and the options do not set it.

    Args:
        spec: the session spec.
        device_limits: variable -> its devices' own limits (:meth:`Lanes.device_limits`): the planner's VOCS
            has each variable's domain cut to them (:func:`closedloop.reach.reachable_vocs`).

    Raises:
        PlannerError: the planner refuses the problem or its options.
        InstrumentError: a variable's search range lies outside its device's limits.
    """
    vocs = reachable_vocs(spec, device_limits or {})
    options = dict(spec.planner.options)
    steps = {name: v.max_step for name, v in spec.variables.items() if v.max_step is not None}
    if steps and "max_travel" not in options and accepts_option(spec.planner.name, "max_travel"):
        # keep proposals within reach of the safety gate's max_step; in a batch, run one after another, two
        # points each within max_step/2 of the start are within max_step of each other
        share = 1.0 if spec.planner.batch_size == 1 else 2.0
        options["max_travel"] = {name: step / share for name, step in steps.items()}
    planner = load_planner(spec.planner.name, vocs, default_seed=spec.seed, **options)
    if spec.planner.initial_design:
        planner = WarmStart(vocs, planner=planner, initial=spec.planner.initial_design, seed=spec.seed)
    return planner
