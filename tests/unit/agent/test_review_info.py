"""What an operator is shown at a review, and the same question asked again from its stored form."""

from __future__ import annotations

import json

from agent.loop.review import checkpoint_info, shown_predictions
from agent.views.status import Tally
from closedloop.records import Proposal
from closedloop.spec import spec_from_dict
from tests.conftest import beamline_session


def test_a_stored_question_gives_back_the_predictions_it_showed() -> None:
    """A review asked again (on its answer, or after a kill) shows what it showed the first time, from the
    question in the audit log, without asking the model again."""
    spec = spec_from_dict(beamline_session())
    proposals = [
        Proposal(iteration=3, setpoints={"pitch1": 0.1, "pitch2": -0.2}),
        Proposal(iteration=3, setpoints={"pitch1": 0.3, "pitch2": 0.4}, origin="operator", why="operator"),
        Proposal(iteration=3, setpoints={"pitch1": -1.0, "pitch2": 1.0}),
    ]
    predictions = [
        {"flux": {"mean": 812.5, "std": 31.25, "acquisition": -2.5}},
        None,
        {"flux": {"mean": 5.0, "std": 0.0}, "acquisition": 0.75},
    ]
    current = {"pitch1": 0.0, "pitch2": 0.0}
    first = checkpoint_info(spec, "review", 3, proposals, current, predictions, Tally(spec), "policy", True)
    stored = json.loads(json.dumps({"proposals": first["proposals"]}))  # as the audit log keeps it
    again = checkpoint_info(
        spec, "review", 3, proposals, current, shown_predictions(stored["proposals"]), Tally(spec), "policy", True
    )
    assert again == first
    assert [p["why"] for p in first["proposals"]] == ["model", "operator", "model"]
    assert [p["acquisition"] for p in first["proposals"]] == [-2.5, None, 0.75]
