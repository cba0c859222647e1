"""The status table ``closedloop status`` and the end of a session print: one row per instrument."""

from __future__ import annotations

import datetime
from typing import Any

import pytest
from rich.console import Console

from agent.cli.foreground import status_table


def lane(state: str, proposal: str | None = None, error: str | None = None) -> dict[str, Any]:
    """One instrument's entry, as ``agent.views.summarize`` gives it."""
    return {"state": state, "proposal": proposal, "error": error}


def rendered(instruments: dict[str, Any], reach: dict[str, Any] | None = None) -> list[str]:
    status = {
        "name": "t",
        "session_id": "s-1",
        "state": "running",
        "experiments": 3,
        "budget": 10,
        "failed": 0,
        "objective": "flux",
        "infeasible": 0,
        "best_value": 1.0,
        "best_point": {"x": 0.5},
        "decisions": 3,
        "queued": 0,
        "store": "store.sqlite",
        "folder": "run",
        "instruments": instruments,
        "pareto_front": [],
        "reach": reach or {},
    }
    console = Console(width=100, record=True)
    console.print(status_table(status))
    return [" ".join(line.replace("│", " ").split()) for line in console.export_text().splitlines()]


@pytest.mark.parametrize(
    ("instruments", "rows"),
    [
        ({"instrument": lane("idle")}, ["instrument idle"]),
        (
            {"hutch-a": lane("running", proposal="p-1"), "hutch-b": lane("failed", error="gone")},
            ["instrument hutch-a running p-1", "instrument hutch-b failed: gone"],
        ),
    ],
)
def test_each_instrument_has_a_row_named_only_when_there_are_several(instruments: dict, rows: list[str]) -> None:
    lines = rendered(instruments)
    assert [line for line in lines if line.startswith("instrument")] == rows


def test_a_device_s_own_limits_are_shown_beside_the_hard_limits() -> None:
    reach = {
        "x": {"hard_limits": [-2.0, 2.0], "device_limits": [-1.0, 1.0], "limits": [-1.0, 1.0]},
        "y": {"hard_limits": [0.0, 3.0], "device_limits": None, "limits": [0.0, 3.0]},
    }
    lines = rendered({"instrument": lane("idle")}, reach)
    assert [line for line in lines if line.startswith("reach")] == [
        "reach x -1 to 1 (hard limits -2 to 2, device limits -1 to 1)"
    ]


def test_a_waiting_session_says_for_what_and_since_when() -> None:
    from agent.cli.foreground import status_table as table
    from agent.views.status import waiting_text

    since = datetime.datetime(2026, 1, 2, 14, 2, 11, tzinfo=datetime.UTC)
    waiting = {"checkpoint": "review-3", "kind": "review", "proposals": ["p-1", "p-2"], "since": since.isoformat()}
    now = since.timestamp() + 4 * 60 + 30
    expected = "waiting for the review of p-1, p-2 since "
    assert waiting_text(waiting, now=now).startswith(expected) and waiting_text(waiting, now=now).endswith("(4 min)")
    paused = {**waiting, "kind": "paused", "proposals": []}
    assert waiting_text(paused, now=now).startswith("waiting for a resume (paused) since")
    assert waiting_text(None) == ""
    status = {
        "name": "t",
        "session_id": "s-1",
        "state": "waiting",
        "waiting": waiting,
        "experiments": 3,
        "budget": 10,
        "failed": 0,
        "objective": "flux",
        "infeasible": 0,
        "best_value": 1.0,
        "best_point": {"x": 0.5},
        "decisions": 3,
        "queued": 0,
        "store": "store.sqlite",
        "folder": "run",
        "instruments": {},
        "pareto_front": [],
        "reach": {},
    }
    console = Console(width=200, record=True)
    console.print(table(status))
    assert "state waiting: waiting for the review of p-1, p-2 since" in " ".join(
        console.export_text().replace("│", " ").split()
    )
