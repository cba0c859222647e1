"""The model's belief along one variable through the best point: the numbers the operator's page draws.

:func:`belief_line` asks a planner's ``predict`` (:class:`planners.Predicts`) along a grid of one numeric variable,
every other variable held at the best observation's value, and returns the grid, the posterior mean and standard
deviation of each objective there, and the ok observations to draw beside it. The running session asks its own
planner (:meth:`agent.operator.Operations.belief`); with no session process, the page's server asks the planner
rebuilt from the store (:func:`rebuilt_belief_line`).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from closedloop.errors import SpecError
from closedloop.records import Observation
from closedloop.spec import SessionSpec

#: Points along the variable.
GRID_POINTS = 60


def numeric_variables(spec: SessionSpec) -> list[str]:
    """The variables a belief can be drawn along: those with bounds (continuous ones)."""
    return [name for name, v in spec.variables.items() if v.bounds is not None]


def belief_line(
    spec: SessionSpec, planner: Any, observations: list[Observation], best: Observation | None, variable: str
) -> dict[str, Any]:
    """The model's belief along ``variable`` through ``best``'s point.

    Returns:
        ``{"belief": {...} or None, "why": why there is none ("" when there is)}``. The belief holds
        ``variable``, ``units``, ``through`` (the best point), ``x`` (the grid), ``mean`` and ``std`` (objective ->
        one value per grid point), ``observed`` (``x`` and objective -> values, the ok observations), ``best_x``
        and ``fitted_on`` (how many ok observations the planner holds).

    Raises:
        SpecError: ``variable`` is not a numeric variable of the session (the message names it).
    """
    names = numeric_variables(spec)
    if variable not in names:
        raise SpecError(f"belief.variable: '{variable}' is not a numeric variable (one of {', '.join(names)})")
    predict = getattr(planner, "predict", None)
    if not callable(predict):
        return {"belief": None, "why": f"no model: the {spec.planner.name} planner has none to show"}
    if best is None:
        return {"belief": None, "why": "no model: no ok, feasible observation yet"}
    through = {name: value for name, value in {**best.setpoints, **best.readbacks}.items() if name in spec.variables}
    bounds = spec.variables[variable].bounds
    assert bounds is not None  # (numeric_variables)
    low, high = float(bounds[0]), float(bounds[1])
    xs = [low + (high - low) * i / (GRID_POINTS - 1) for i in range(GRID_POINTS)]
    try:
        with warnings.catch_warnings():  # the libraries' numerical notes are not the operator's business here
            warnings.simplefilter("ignore")
            predicted = predict([{**through, variable: x} for x in xs])
    except Exception as exc:  # too few observations for a model, or a numerical failure
        return {"belief": None, "why": f"no model: {exc}"}
    objectives = list(spec.objectives)
    ok = [o for o in observations if o.ok and variable in {**o.setpoints, **o.readbacks}]
    observed: dict[str, list[float | None]] = {"x": [float({**o.setpoints, **o.readbacks}[variable]) for o in ok]}
    for name in objectives:
        observed[name] = [o.values.get(name) for o in ok]
    return {
        "belief": {
            "variable": variable,
            "units": spec.variables[variable].units,
            "through": through,
            "x": xs,
            "mean": {name: [float(p[name]["mean"]) for p in predicted] for name in objectives},
            "std": {name: [float(p[name]["std"]) for p in predicted] for name in objectives},
            "observed": observed,
            "best_x": float(through[variable]),
            "fitted_on": len(ok),
        },
        "why": "",
    }


def rebuilt_belief_line(folder: Path, variable: str) -> dict[str, Any]:
    """:func:`belief_line` from the planner rebuilt from the store of the session in ``folder`` (no process needed).

    Raises:
        SessionError: the folder holds no session.
        SpecError: ``variable`` is not a numeric variable of the session.
    """
    from agent.views.data import _rebuilt_planner, load_session

    data = load_session(folder)
    best = data.tally.best_observation
    if variable not in numeric_variables(data.spec):
        return belief_line(data.spec, None, [], best, variable)  # (raises, naming the variable)
    if best is None:
        return {"belief": None, "why": "no model: no ok, feasible observation yet"}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            planner = _rebuilt_planner(data, best)
    except Exception as exc:  # a planner that cannot be built here (not installed, refuses the problem)
        return {"belief": None, "why": f"no model: the planner could not be rebuilt here ({type(exc).__name__})"}
    return belief_line(data.spec, planner, data.observations, best, variable)
