"""``peak_box``: once a narrow peak or ridge is found, the next point is sought around it, not over the whole space.

Over the whole space a GP with short lengthscales is unsure of everything a few lengthscales from its data, and the
acquisition spends the budget on the flat background (on the harness's ``ridge3`` the best stayed at 926 of 1020).
"""

from __future__ import annotations

import inspect
import math

import numpy as np
import pytest
import torch
from gest_api.vocs import VOCS

from planners import BoTorchPlanner
from planners.gp.reading import NARROW_BELOW, lengthscales, peak_box, stood_out
from planners.sobol import sobol_points

VOCS_3D = VOCS(variables={n: [-1.5, 1.5] for n in ("x", "y", "z")}, objectives={"f": "MAXIMIZE"})
FAST = {"num_restarts": 2, "raw_samples": 64, "maxiter": 50, "n_initial": 10}
NAMES = ("x", "y", "z")
CENTRE = np.array([0.21, -0.34, 0.52])
AXIS = np.array([1.0, 0.6, -0.4]) / np.linalg.norm([1.0, 0.6, -0.4])
ACROSS = np.linalg.svd(AXIS[None])[2][1:]  # two unit vectors across the ridge


def ridge(p: np.ndarray) -> float:
    """A tilted ridge (the harness's ``ridge3``): 0.8 along, 0.1 across, 1000 counts over a background of 20."""
    d = p - CENTRE
    return 20.0 + 1000.0 * math.exp(-0.5 * ((d @ AXIS / 0.8) ** 2 + float(((ACROSS @ d) / 0.1) ** 2 @ np.ones(2))))


def found_ridge(seed: int = 0) -> list[dict]:
    """20 Sobol points on the background, then 6 near the ridge, up to 0.3 from its axis; noise sd 20."""
    rng = np.random.default_rng(seed)
    X = list(-1.5 + 3 * sobol_points(3, 20, seed=seed))
    for along, a, b in [
        (0.3, 0.1, 0.05),
        (0.25, 0.05, -0.08),
        (0.35, -0.12, 0.0),
        (0.4, 0.0, 0.15),
        (0.2, 0.2, 0.1),
        (0.3, -0.05, -0.2),
    ]:
        X.append(CENTRE + along * AXIS + a * ACROSS[0] + b * ACROSS[1])
    return [dict(zip(NAMES, map(float, x), strict=True), f=ridge(x) + 20.0 * rng.normal()) for x in X]


def test_peak_box_only_once_a_narrow_peak_stood_out() -> None:
    results = found_ridge()
    planner = BoTorchPlanner(VOCS_3D, seed=0, **FAST)
    planner.ingest(results)
    X, Y, C = planner.train_tensors()
    model = planner.fitting.fit(X, Y, C)
    ls = lengthscales(model)
    assert ls is not None and float(ls.min()) < NARROW_BELOW
    assert stood_out(Y[:, 0])
    box = peak_box(model, X, Y, half_width=2.0)
    assert box is not None and bool((box[1] - box[0] <= 4 * ls[0] + 1e-12).all())
    # nothing stood out among the background readings alone: no box, whatever the fit
    assert peak_box(model, X[:20], Y[:20], half_width=2.0) is None


def test_the_next_point_is_sought_around_the_ridge_not_over_the_background() -> None:
    """With the box the proposal lies in it, near the best reading; without it (the old default), on this seed, it
    leaves the ridge (measured: 0.10 against 1.18 away, the ridge being 0.1 across)."""
    results = found_ridge(seed=1)
    best = max(results, key=lambda r: r["f"])
    distances, boxes = {}, {}
    for option in (2.0, None):
        planner = BoTorchPlanner(VOCS_3D, seed=1, peak_box=option, **FAST)
        planner.ingest(results)
        optimize = planner._optimize

        def spy(*args: object, _option: object = option, _optimize: object = optimize, **kwargs: object) -> object:
            # the box the optimizer searches, however it is passed
            boxes[_option] = inspect.signature(_optimize).bind(*args, **kwargs).arguments.get("box")  # type: ignore[arg-type]
            return _optimize(*args, **kwargs)  # type: ignore[operator]

        planner._optimize = spy  # type: ignore[method-assign]
        (point,) = planner.suggest(1)
        distances[option] = math.dist([point[n] for n in NAMES], [best[n] for n in NAMES])
        near = "model (qLogNEI), near the peak found" if option is not None else "model (qLogNEI)"
        assert planner.why(point["_id"]) == near  # what the operator is told
        if option is not None:
            unit = torch.from_numpy(planner.to_unit([[point[n] for n in NAMES]]))[0]
            box = boxes[option]
            assert box is not None and bool(((box[0] - 1e-9 <= unit) & (unit <= box[1] + 1e-9)).all())
            assert float((box[1] - box[0]).min()) < 0.25  # narrow across the ridge
    assert boxes[None] is None
    assert distances[2.0] < 0.3
    assert distances[None] > 0.8


def test_peak_box_is_an_option_with_none_to_turn_it_off() -> None:
    assert BoTorchPlanner(VOCS_3D, seed=0).options.peak_box == 2.0
    assert BoTorchPlanner(VOCS_3D, seed=0, peak_box=None).options.peak_box is None
    with pytest.raises(ValueError, match="planner.options.peak_box"):
        BoTorchPlanner(VOCS_3D, seed=0, peak_box=0.0)
    assert torch.get_default_dtype() == torch.float32  # the planner leaves global state alone
