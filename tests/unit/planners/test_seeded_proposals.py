"""The seeded proposals of every shipped planner do not move: a refactor must leave them as they are.

Each scenario of :mod:`tests.unit.planners.seeded_scenarios` (BoTorch default, scheduled refits on noisy data,
large data, constrained, two objectives, a batch with points in flight, ``pending: believe``, travel with discrete
and categorical variables; TuRBO with Thompson sampling and with qLogNEI; Sobol, random, grid) is played with its
fixed seed and compared with the proposals stored in ``data/seeded_proposals.json``, to 1e-9 relative. When a
change means to move proposals, regenerate the file on purpose and review its diff:
``python -m tests.unit.planners.regenerate_seeded [SCENARIO ...]``.
"""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

from tests.unit.planners.seeded_scenarios import GOLDEN, REGENERATE, SCENARIOS, play

RELATIVE = 1e-9


def _moved(stored: dict[str, Any], now: dict[str, Any]) -> list[str]:
    """What moved between the stored session and this one, one line each (the first few)."""
    out: list[str] = []
    names = stored["variables"]
    if len(now["rounds"]) != len(stored["rounds"]):
        out.append(f"{len(now['rounds'])} rounds, stored {len(stored['rounds'])}")
    for r, (was, got) in enumerate(zip(stored["rounds"], now["rounds"], strict=False)):
        if len(was) != len(got):
            out.append(f"round {r}: {len(got)} points, stored {len(was)}")
        for i, (a, b) in enumerate(zip(was, got, strict=False)):
            for name, x, y in zip(names, a, b, strict=True):
                same = x == y if isinstance(x, str) or isinstance(y, str) else math.isclose(x, y, rel_tol=RELATIVE)
                if not same:
                    out.append(f"round {r}, point {i}, {name}: {y!r}, stored {x!r}")
    for k, (a, b) in enumerate(zip(stored["why"], now["why"], strict=False)):
        if a != b:
            out.append(f"proposal {k} said why {b!r}, stored {a!r}")
    if stored.get("diagnostics") != now.get("diagnostics"):
        out.append(f"diagnostics {now.get('diagnostics')}, stored {stored.get('diagnostics')}")
    return out


@pytest.fixture(scope="module")
def golden() -> dict[str, Any]:
    return json.loads(GOLDEN.read_text())


def test_the_golden_file_holds_every_scenario(golden: dict[str, Any]) -> None:
    assert sorted(golden) == sorted(SCENARIOS), f"scenarios and the golden file differ; run {REGENERATE}"


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_seeded_proposals_do_not_move(name: str, golden: dict[str, Any]) -> None:
    moved = _moved(golden[name], play(SCENARIOS[name]))
    assert not moved, (
        f"the seeded proposals of scenario '{name}' moved:\n  "
        + "\n  ".join(moved[:8])
        + (f"\n  ... and {len(moved) - 8} more" if len(moved) > 8 else "")
        + f"\nIf the change means to move them, regenerate on purpose and review the diff: {REGENERATE} {name}"
    )


def test_a_moved_proposal_is_reported_with_where_it_moved(golden: dict[str, Any]) -> None:
    stored = golden["sobol"]
    nudged = json.loads(json.dumps(stored))
    nudged["rounds"][1][2][0] *= 1 + 1e-7
    nudged["why"][0] = "something else"
    moved = _moved(stored, nudged)
    assert moved[0].startswith("round 1, point 2, x1: ") and "why 'something else'" in moved[1], moved
    assert _moved(stored, json.loads(json.dumps(stored))) == []
