"""``closedloop bench page``: a fixed small campaign dataset renders to the expected Markdown, and fills a page."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from benchmarks.campaign.cli import bench_app
from benchmarks.campaign.errors import CampaignError
from benchmarks.campaign.pages import fill, load, render

VERSIONS = json.dumps({"python": "3.11.9", "closedloop": "0.1"})
COMMAND = "closedloop bench --planners botorch,ax --problems p --seeds 2 --experiments 4 --initial 2 --out tiny"
# (planner, seed): status, regret per experiment, seconds per proposal, feasible, seconds of the run, hit
RUNS: dict[tuple[str, int], tuple[str, list[float], list[float], list[bool], float, bool]] = {
    ("botorch", 0): ("ok", [5, 3, 1, 0.5], [0.01, 0.01, 0.2, 0.4], [False, True, True, True], 3.0, False),
    ("botorch", 1): ("ok", [4, 2, 0.2, 0.1], [0.01, 0.01, 0.3, 0.5], [False, False, True, True], 5.0, True),
    ("ax", 0): ("ok", [6, 6, 2, 2], [0.01, 0.01, 1.0, 1.2], [False] * 4, 10.0, False),
    ("ax", 1): ("error", [7, 7, 7], [0.01, 0.01, 0.9], [False] * 3, 4.0, False),
}

RECOVERIES = [
    {"recoveries": json.dumps({"cholesky": 1, "nan": 0}), "recovered_by": json.dumps({"jitter": 1})},
    {"recoveries": json.dumps({"cholesky": 2}), "recovered_by": json.dumps({"jitter": 1, "refit": 1})},
]


def write_campaign(out: Path, runs_given: dict[tuple[str, int], Any] | None = None) -> Path:
    """A finished campaign folder as ``closedloop bench`` writes it, with made-up numbers."""
    out.mkdir()
    given = RUNS if runs_given is None else runs_given
    planners = list(dict.fromkeys(planner for planner, _ in given))
    definition = {"planners": planners, "problems": ["p"], "seeds": 2, "experiments": 4, "initial": 2}
    (out / "campaign.json").write_text(json.dumps({"fingerprint": "f", **definition, "batch": 1, "problem_set": "t1"}))
    (out / "CAMPAIGN.md").write_text(f"# Campaign\n\n## Reproduce\n\n    {COMMAND}\n\nEvery run's rows...\n")
    runs: list[dict[str, Any]] = []
    experiments: list[dict[str, Any]] = []
    for (planner, seed), (status, regret, seconds, feasible, run_seconds, hit) in given.items():
        shared = {"planner": planner, "problem": "p", "seed": seed}
        message = {"error": "ValueError: boom\nTraceback...", "skipped": "xopt is not installed"}.get(status, "")
        runs.append(
            shared
            | {"status": status, "message": message, "final_regret": regret[-1] if regret else None, "hit": hit}
            | {"seconds": run_seconds, "versions": VERSIONS}
            | (RECOVERIES[seed] if planner == "botorch" else {})  # the peers record none
        )
        for i, (r, s, f) in enumerate(zip(regret, seconds, feasible, strict=True)):
            experiments.append(shared | {"experiment": i + 1, "regret": r, "seconds_per_proposal": s, "feasible": f})
    pq.write_table(pa.Table.from_pylist(runs), out / "runs.parquet")
    pq.write_table(pa.Table.from_pylist(experiments), out / "experiments.parquet")
    return out


PROVENANCE = f"""Made by `closedloop bench page` from:

- `tiny`: p; seeds 0-1, 4 experiments (2 initial Sobol points), 1 per proposal, problem set t1; python 3.11.9, \
closedloop 0.1.  \n  `{COMMAND}`
"""
NOTES = "Runs that did not finish:\n\n- p, ax: 1 error of 2 runs (ValueError: boom)\n\n"


def test_the_regret_table_of_a_fixed_dataset(tmp_path: Path) -> None:
    campaign = load(write_campaign(tmp_path / "tiny"))
    # botorch: finals 0.5, 0.1 (median 0.3, IQR by linear interpolation 0.2-0.4), one hit, model-based seconds
    # 0.2, 0.4, 0.3, 0.5 (median 0.35); ax: only seed 0 finished (2, 1.0 and 1.2 s); ours / ax: 0.15, 0.35 / 1.1
    assert render([campaign], "regret") == (
        "| problem | planner | median [IQR] | worst | hit | s/proposal | ours / planner: median, s/proposal |\n"
        "|---|---|---|---|---|---|---|\n"
        "| p | botorch | 0.3 [0.2, 0.4] | 0.5 | 50% | 0.35 |  |\n"
        "| p | ax (1 of 2 runs) | 2 [2, 2] | 2 | 0% | 1.10 | x0.15, x0.32 |\n\n" + NOTES + PROVENANCE
    )


def test_the_constrained_table_counts_every_run_that_has_a_regret_and_the_proposals_lost(tmp_path: Path) -> None:
    campaign = load(write_campaign(tmp_path / "tiny"))
    table = render([campaign], "constrained").split("\n\n")[0]
    # botorch first feasible at 2 and 3; ax never feasible, seed 1 lost a proposal (its regret 7 still counts)
    assert table.splitlines()[2:] == [
        "| p | botorch | 0 of 2 | 2.5 | 0.3 [0.2, 0.4] | 0.5 | 1 of 2 | cholesky 3 | jitter 2, refit 1 | 0 | 4 |",
        "| p | ax | 2 of 2 | - | 4.5 [3.25, 5.75] | 7 | 0 of 2 | - | - | 1 | 7 |",
    ]
    assert "seeds with no feasible point" in table.splitlines()[0]


def test_the_multi_objective_table_names_the_hypervolume_gap(tmp_path: Path) -> None:
    table = render([load(write_campaign(tmp_path / "tiny"))], "multi-objective").splitlines()
    assert table[0].startswith("| problem | planner | hypervolume gap: median [IQR] | worst | hit (99 %) |")
    assert table[2] == "| p | botorch | 0.3 [0.2, 0.4] | 0.5 | 50% | 0.35 |  |"


def test_a_page_keeps_its_prose_and_only_the_marked_section_changes() -> None:
    page = "# Title\n\nProse.\n\n<!-- bench:results -->\nold table\n<!-- /bench:results -->\n\nMore prose.\n"
    filled = fill(page, "results", "| new |\n")
    assert filled == "# Title\n\nProse.\n\n<!-- bench:results -->\n| new |\n<!-- /bench:results -->\n\nMore prose.\n"
    assert fill(filled, "results", "| new |") == filled  # filling again changes nothing
    with pytest.raises(CampaignError, match="--into: the page needs '<!-- bench:other -->'"):
        fill(page, "other", "x")


def test_the_command_fills_a_page_and_refuses_a_folder_with_no_campaign(tmp_path: Path) -> None:
    out = write_campaign(tmp_path / "tiny")
    page = tmp_path / "page.md"
    page.write_text("Intro.\n\n<!-- bench:constrained -->\n<!-- /bench:constrained -->\n")
    done = CliRunner().invoke(bench_app, ["page", str(out), "--table", "constrained", "--into", str(page)])
    assert done.exit_code == 0, done.output
    text = page.read_text()
    assert text.startswith("Intro.\n\n<!-- bench:constrained -->\n| problem | planner | seeds with no feasible")
    assert "| p | ax | 2 of 2 |" in text and text.endswith(f"`{COMMAND}`\n<!-- /bench:constrained -->\n")
    done = CliRunner().invoke(bench_app, ["page", str(tmp_path / "nothing")])
    assert done.exit_code == 2 and "holds no finished campaign" in done.output and "CAMPAIGNS:" in done.output
    done = CliRunner().invoke(bench_app, ["page", str(out), "--table", "nosuch"])
    assert done.exit_code == 2 and "--table: unknown table 'nosuch'" in done.output


def test_the_targets_read_a_campaign_folder(tmp_path: Path) -> None:
    from benchmarks.targets import load as load_targets

    out = write_campaign(tmp_path / "tiny")
    found = load_targets([out])
    ours, source = found["p"]["botorch"]
    assert source == str(out) and ours["final_regret_worst"] == 0.5 and ours["hit_rate"] == 0.5
    assert found["p"]["ax"][0]["seconds_per_proposal"] == pytest.approx(1.1)


def test_a_contender_that_did_not_run_has_a_row_that_says_why(tmp_path: Path) -> None:
    skipped = ("skipped", [], [], [], 0.0, False)
    out = write_campaign(tmp_path / "tiny", {**RUNS, ("xopt", 0): skipped, ("xopt", 1): skipped})
    text = render([load(out)], "regret")
    assert "| p | xopt | 2 skipped: xopt is not installed | | | | |" in text.splitlines()
    assert "- p, xopt: 2 skipped of 2 runs (xopt is not installed)" in text
    assert "| p | xopt | 2 skipped: xopt is not installed |" in render([load(out)], "constrained")
