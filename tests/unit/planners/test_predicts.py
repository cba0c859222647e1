"""The Predicts protocol: what the model expects at a point, for an operator reviewing a proposal."""

from __future__ import annotations

import math

import pytest
from gest_api.vocs import VOCS

from planners import BoTorchPlanner, Predicts, SobolPlanner

VOCS_1D = VOCS(variables={"x": [0.0, 1.0]}, objectives={"f": "MINIMIZE"}, constants={"e": 2})
FAST = {"num_restarts": 2, "raw_samples": 32, "n_initial": 8, "maxiter": 50}


def bowl(x: float) -> float:
    return 3.0 + 10.0 * (x - 0.3) ** 2


def test_botorch_predicts_the_function_where_it_has_data_and_doubts_where_it_has_none() -> None:
    planner = BoTorchPlanner(VOCS_1D, seed=0, **FAST)
    assert isinstance(planner, Predicts) and not isinstance(SobolPlanner(VOCS_1D, seed=0), Predicts)
    with pytest.raises(ValueError, match="no model yet"):
        planner.predict([{"x": 0.5}])
    planner.ingest([{"x": x, "f": bowl(x)} for x in (0.0, 0.1, 0.2, 0.3, 0.4, 0.5)])
    (proposal,) = planner.suggest(1)
    near, far, proposed = planner.predict([{"x": 0.3}, {"x": 1.0}, proposal])
    # a minimized objective is predicted in its own sense: about 3 at its minimum, not -3
    assert near["f"]["mean"] == pytest.approx(3.0, abs=0.05)
    assert near["f"]["std"] < 0.05 < far["f"]["std"]
    assert all(math.isfinite(p["f"]["acquisition"]) for p in (near, far, proposed))
    # the proposal was chosen for its acquisition value: far above that of a point already measured
    assert proposed["f"]["acquisition"] > near["f"]["acquisition"] + 1.0


def test_prediction_after_new_data_uses_the_new_data() -> None:
    planner = BoTorchPlanner(VOCS_1D, seed=0, **FAST)
    planner.ingest([{"x": x, "f": bowl(x)} for x in (0.0, 0.2, 0.4, 0.6)])
    planner.suggest(1)
    before = planner.predict([{"x": 0.9}])[0]["f"]["mean"]
    planner.ingest([{"x": 0.9, "f": 50.0}])
    after = planner.predict([{"x": 0.9}])[0]["f"]["mean"]
    assert after == pytest.approx(50.0, abs=0.5) and abs(before - 50.0) > 5
