"""A constraint output the reducer cannot compute is kept as missing, not a failed run: a whole session on a real
RunEngine and ophyd's simulated devices (``ophyd.sim.SynAxis`` and ``SynGauss``), scanning a peak that often lies
at the edge of the scan."""

from __future__ import annotations

import math
from pathlib import Path

from botorch.models import ModelListGP

from agent.session import Session
from agent.views.audit import audit_trail
from agent.views.results import session_results
from agent.views.status import summarize
from closedloop import ObservationStatus

CENTER, SIGMA = 0.3, 0.3
FWHM = 2 * math.sqrt(2 * math.log(2)) * SIGMA


def edge_session() -> dict:
    """Maximize the area under the peak scanned around x; the peak's width must stay below 1. The scan is 2 wide:
    centred more than about 0.65 from the peak, the peak does not fall to half its height on one side inside it."""
    return {
        "name": "edge",
        "seed": 2,
        "variables": {"x": {"bounds": [-1.5, 1.5], "hard_limits": [-3.0, 3.0], "device": "mx"}},
        "objectives": {
            "area": {"direction": "maximize", "field": "gauss", "reducer": "instruments.reducers:integrated_intensity"}
        },
        "constraints": {"width": {"field": "gauss", "reducer": "instruments.reducers:fwhm", "less_than": 1.0}},
        "plan": {"name": "scan", "options": {"variable": "x", "width": 2.0, "num": 21}},
        "budget": {"experiments": 8},
        "planner": {"name": "botorch", "options": {"n_initial": 4, "num_restarts": 2, "raw_samples": 32}},
        "instrument": {
            "factory": "simulators.stock:ophyd_classic",
            "options": {"center": CENTER, "width": SIGMA, "peak": 100.0},
        },
        "review": {"policy": "never"},
        "pipeline": False,
    }


def test_a_peak_at_the_edge_keeps_the_objective_and_records_the_width_missing(tmp_path: Path, write_session) -> None:
    folder = tmp_path / "run"
    session = Session.create(write_session(edge_session()), folder)
    try:
        assert session.advance() is None
        observations = session.store.observations()
        planner = session.planner
        assert (planner.n_observed, planner.n_failed) == (8, 0)  # every run's objective reached the planner
        last = session.store.proposals()[-1]
        model = planner._last_model[1]  # the model of the last proposal
    finally:
        session.close()
    assert all(o.status == ObservationStatus.OK for o in observations), [o.error for o in observations]
    gaps = [o for o in observations if "width" in o.missing]
    measured = [o for o in observations if "width" in o.values]
    assert gaps and measured  # both kinds, or the test shows nothing
    for o in gaps:
        assert "area" in o.values and o.error is None
        assert "does not fall to half its peak" in o.missing["width"].reason
        assert abs(o.readbacks["x"] - CENTER) > 0.6  # the scan's centre was far from the peak
    for o in measured:
        assert abs(o.values["width"] - FWHM) < 0.05
    # until two widths were measured the planner filled the space; then a model made the last proposal: its
    # objective's GP fitted to every run before it, the width's only to those that measured it
    assert last.why.startswith("model"), last.why
    assert isinstance(model, ModelListGP)
    before = observations[:-1]
    assert [len(gp.train_inputs[0]) for gp in model.models] == [7, sum("width" in o.values for o in before)]
    status = summarize(folder)
    assert (status["experiments"], status["failed"], status["missing"]) == (8, 0, len(gaps))
    _, rows, _ = session_results(folder)
    by_proposal = {row["proposal"]: row for row in rows}
    for o in gaps:
        row = by_proposal[o.proposal_id]
        assert row["width"] is None and row["area"] == o.values["area"] and row["status"] == "ok"
        assert row["missing"].startswith("width: reducer instruments.reducers:fwhm could not compute it")
    logged = [e["detail"] for e in audit_trail(folder) if e["what"] == "missing"]
    assert sorted(line.split(":")[0] for line in logged) == sorted(o.proposal_id for o in gaps)
