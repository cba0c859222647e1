"""What an operator sees at a checkpoint and in ``watch``: everything the decision needs, and brackets kept."""

from __future__ import annotations

import io

from rich.console import Console

from agent.views.display import checkpoint_table, event_line, event_lines
from closedloop.control import CheckpointInfo, Event


def render(renderable, width: int = 200) -> str:
    console = Console(file=io.StringIO(), width=width, color_system=None)
    console.print(renderable)
    return console.file.getvalue()


INFO = CheckpointInfo.model_validate(
    {
        "checkpoint": "c-7",
        "kind": "review",
        "iteration": 4,
        "reason": "policy [always]",
        "proposals": [
            {
                "id": "p-aaa",
                "setpoints": {"pitch1": 0.5, "crystal": "Si311"},
                "why": "model",
                "current": {"pitch1": 0.25, "crystal": "Si111"},
                "prediction": {"flux": {"mean": 912.25, "std": 14.5}},
                "acquisition": 2.75,
            },
            {
                "id": "p-bbb",
                "setpoints": {"pitch1": 1.95, "crystal": "Si111"},
                "origin": "operator",
                "why": "operator",
                "current": {"pitch1": None, "crystal": "Si111"},
            },
        ],
        "variables": {
            "pitch1": {"units": "mrad", "bounds": [-1.5, 1.5], "hard_limits": [-2, 2], "max_step": 0.2},
            "crystal": {"values": ["Si111", "Si311"]},
        },
        "objectives": {"flux": "maximize"},
        "last": {"proposal_id": "p-zzz", "values": {"flux": 870.5}, "point": {"pitch1": 0.25}, "ok": True},
        "best": {"value": 990.0, "objective": "flux", "point": {"pitch1": 0.3}},
        "choices": ["approve", "reject", "edit", "stop"],
    }
)


def test_the_checkpoint_table_shows_what_a_decision_needs() -> None:
    text = render(checkpoint_table(INFO))
    assert "pitch1 [mrad]" in text  # units in brackets survive Rich
    assert "policy [always]" in text
    assert "Checkpoint c-7: iteration 4" in text
    assert "flux 912.2 ± 14" in text  # prediction per objective
    assert "no prediction" in text  # the operator's point has none
    assert "acquisition 2.75" in text
    assert "+0.25 > max step" in text  # the move, over max_step (0.2)
    assert "-1.5 to 1.5" in text and "-2 to 2, step <= 0.2" in text  # search range, hard limits and step
    assert "one of Si111, Si311" in text and "from Si111" in text and "none" in text
    assert "model" in text and "operator" in text  # why each point
    assert "last: flux=870.5 at pitch1=0.25 (p-zzz)" in text
    assert "best so far: flux=990 at pitch1=0.3" in text
    assert "choices: approve, reject, edit, stop" in text
    row = next(line for line in text.splitlines() if "p-bbb" in line)
    assert "?" in row  # current position unknown: no move shown as a number


def test_a_checkpoint_without_proposals_still_renders() -> None:
    info = CheckpointInfo(checkpoint="c-1", kind="points", iteration=2, reason="the grid is exhausted")
    text = render(checkpoint_table(info))
    assert "the planner has no points left (the grid is exhausted)" in text
    assert "last: -" in text


def test_an_event_line_is_plain_text_with_ids_first() -> None:
    event = Event(
        seq=12,
        time=0.0,
        kind="observation",
        data={
            "proposal_id": "p-1",
            "status": "ok",
            "values": {"flux": 950.123456},
            "readbacks": {"pitch1": 0.000012345, "pitch2": -0.58},
            "duration": 0.06395812,
            "run_uid": "6c00eef8",
        },
    )
    line = event_line(event, {"pitch1": "mrad", "pitch2": "[a/r/s]"})
    assert "#12" not in line and " observation " in line
    assert line.index("p-1") < line.index("flux=950.12")
    assert "pitch1=1.2345×10⁻⁵ mrad" in line and "pitch2=-0.58 [a/r/s]" in line  # plain text, units as written
    assert "(0.064 s)" in line
    assert not any(mark in line for mark in "{}'\"") and "e-05" not in line and "\n" not in line


def test_event_lines_name_the_zone_and_a_proposal_reads_as_one_sentence() -> None:
    events = [
        Event(
            seq=1,
            time=1_800_000_000.0,
            kind="proposal",
            data={"id": "p-1a2b", "setpoints": {"pitch1": 0.31, "pitch2": -0.58}, "why": "model (qLogNEI)"},
        ),
        Event(seq=2, time=1_800_000_001.0, kind="resumed", data={"by": "ada"}),
        Event(seq=3, time=1_800_090_000.0, kind="failure", data={"instrument": "m", "reason": {"a": [1, 2]}}),
    ]
    first, proposal, resumed, next_day, failure = event_lines(events, {"pitch1": "mrad", "pitch2": "mrad"})
    assert first.startswith("-- ") and "UTC" in first  # the date, the zone and its offset from UTC
    assert next_day.startswith("-- ") and next_day != first
    assert proposal.endswith(" proposal     p-1a2b  pitch1=0.31 mrad  pitch2=-0.58 mrad  (model (qLogNEI))")
    assert resumed.endswith("resumed      by ada")
    assert failure.endswith("instrument=m reason.a=1,2")  # flat words, not a nested repr
