"""``closedloop bench``: campaigns on a real Dask LocalCluster (worker processes on loopback), run as a user would."""

from __future__ import annotations

import json
import os
import platform
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

CLI = [sys.executable, "-m", "agent.cli", "bench"]
SMALL = ["--seeds", "2", "--experiments", "9", "--initial", "5"]


def bench(*args: str, env: dict[str, str] | None = None, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=timeout, env=env)


def experiments(out: Path) -> list[dict]:
    rows = pq.read_table(out / "experiments.parquet").to_pylist()
    return sorted(rows, key=lambda r: (r["problem"], r["planner"], r["seed"], r["experiment"]))


def test_a_campaign_writes_its_dataset_and_gives_the_same_numbers_on_one_worker_or_two(tmp_path: Path) -> None:
    planners = "botorch,sobol"
    one, two = tmp_path / "one", tmp_path / "two"
    for out, workers in ((one, "1"), (two, "2")):
        done = bench("--planners", planners, "--problems", "branin", *SMALL, "--workers", workers, "--out", str(out))
        assert done.returncode == 0, done.stderr
    runs = pq.read_table(two / "runs.parquet").to_pylist()
    assert sorted((r["planner"], r["seed"]) for r in runs) == [
        ("botorch", 0),
        ("botorch", 1),
        ("sobol", 0),
        ("sobol", 1),
    ]
    assert all(r["status"] == "ok" and r["experiments"] == 9 for r in runs)
    assert {json.loads(r["versions"])["python"] for r in runs} == {platform.python_version()}
    assert len({r["worker"] for r in runs}) == 2  # both workers took tasks
    rows = experiments(two)
    assert len(rows) == 4 * 9 and [r["experiment"] for r in rows[:9]] == list(range(1, 10))
    best = [r["best_so_far"] for r in rows[:9]]
    assert best == sorted(best, reverse=True)  # Branin is minimized: the best so far never rises
    # seeded planners give the same numbers bit for bit whatever the number of workers
    keys = ("planner", "seed", "experiment", "value", "best_so_far", "regret")
    assert [tuple(r[k] for k in keys) for r in experiments(one)] == [tuple(r[k] for k in keys) for r in rows]
    card = (two / "CAMPAIGN.md").read_text()
    assert "closedloop bench --planners botorch,sobol" in card and "best_branin.png" in card
    assert (two / "best_branin.png").stat().st_size > 0 and (two / "experiments.csv").exists()
    assert "| branin | botorch | 2/2 |" in done.stdout
    # the page's table from the dataset: both planners' rows, and where they came from
    page = subprocess.run([*CLI, "page", str(two)], capture_output=True, text=True, timeout=120)
    assert page.returncode == 0, page.stderr
    assert page.stdout.splitlines()[2].startswith("| branin | botorch | ") and "| branin | sobol | " in page.stdout
    assert "- `two`: branin; seeds 0-1, 9 experiments (5 initial Sobol points)" in page.stdout


def test_a_killed_campaign_resumes_with_only_what_is_missing(tmp_path: Path) -> None:
    out = tmp_path / "c"
    args = ["--planners", "sobol,random", "--problems", "branin,beamline", "--seeds", "3", "--experiments", "40"]
    args += ["--initial", "4", "--workers", "2", "--out", str(out)]
    process = subprocess.Popen([*CLI, *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and len(list((out / "tasks").glob("*.json"))) < 2:
            time.sleep(0.1)
        process.send_signal(signal.SIGKILL)
        process.wait(30)
    finally:
        if process.poll() is None:
            process.kill()
    done_before = len(list((out / "tasks").glob("*.json")))
    assert 2 <= done_before < 12 and not (out / "runs.parquet").exists()
    again = bench(*args)
    assert again.returncode == 2 and "add --resume" in again.stderr
    resumed = bench(*args, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert f"12 tasks, {done_before} done before, {12 - done_before} to run" in resumed.stderr
    assert len(pq.read_table(out / "runs.parquet")) == 12
    # more seeds later: the same campaign with a fourth seed keeps its 12 tasks and runs the new seed's 4
    grown = [*args[:5], "4", *args[6:]]
    more = bench(*grown, "--resume")
    assert more.returncode == 0, more.stderr
    assert "16 tasks, 12 done before, 4 to run" in more.stderr
    assert len(pq.read_table(out / "runs.parquet")) == 16
    fewer = bench(*[*args[:5], "2", *args[6:]], "--resume")
    assert fewer.returncode == 2 and "--seeds: " in fewer.stderr and "holds this campaign with 4 seeds" in fewer.stderr


def test_a_task_whose_worker_dies_is_run_again(tmp_path: Path) -> None:
    marker = tmp_path / "died"
    env = {**os.environ, "CAMPAIGN_DIE_MARKER": str(marker)}
    problem = "tests.integration.campaign_problems:dying_branin"
    out = tmp_path / "c"
    done = bench("--planners", "sobol", "--problems", problem, *SMALL, "--out", str(out), env=env)
    assert done.returncode == 0, done.stderr
    assert marker.exists()  # a worker process did die inside a task
    runs = pq.read_table(out / "runs.parquet").to_pylist()
    assert [r["status"] for r in runs] == ["ok", "ok"]


def test_a_session_file_is_a_problem_run_for_real(tmp_path: Path) -> None:
    session = Path("examples/beamline.yaml").resolve()
    out = tmp_path / "c"
    args = ["--planners", "sobol", "--problems", str(session), "--seeds", "1", "--experiments", "4", "--initial", "2"]
    done = bench(*args, "--workers", "1", "--out", str(out))
    assert done.returncode == 0, done.stderr
    (run,) = pq.read_table(out / "runs.parquet").to_pylist()
    assert run["status"] == "ok" and run["experiments"] == 4
    values = [r["value"] for r in experiments(out)]
    assert len(values) == 4 and all(v is not None and v > 0 for v in values)  # fluxes as the store recorded them


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--planners", "nosuch"], "--planners: unknown planner 'nosuch'"),
        (["--planners", "botorch[", "--problems", "branin"], "--planners: unbalanced '['"),
        (["--problems", "nosuch"], "--problems: unknown problem 'nosuch'"),
        (["--problems", "tests.integration.campaign_problems:NOT_A_PROBLEM"], "not a benchmarks Problem"),
        (["--problems", "missing.yaml"], "--problems: no session file missing.yaml"),
        (["--initial", "50", "--experiments", "10"], "--initial: 50 initial points exceed --experiments 10"),
        (["--scheduler", "tcp://127.0.0.1:9"], "--scheduler: cannot reach tcp://127.0.0.1:9"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_nothing_started(tmp_path: Path, args: list[str], named: str) -> None:
    out = tmp_path / "c"
    done = bench(*args, "--out", str(out), timeout=120)
    assert done.returncode == 2, done.stderr
    assert named in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert not out.exists()


def test_an_out_folder_holding_another_campaign_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "c"
    (out / "tasks").mkdir(parents=True)
    (out / "campaign.json").write_text(json.dumps({"fingerprint": "someone-else"}))
    done = bench("--planners", "sobol", "--problems", "branin", "--out", str(out), "--resume", timeout=120)
    assert done.returncode == 2 and "holds a different campaign" in done.stderr
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "x.txt").write_text("mine")
    done = bench("--planners", "sobol", "--problems", "branin", "--out", str(tmp_path / "notes"), timeout=120)
    assert done.returncode == 2 and "is not a campaign folder" in done.stderr
    assert (tmp_path / "notes" / "x.txt").read_text() == "mine"


def test_peers_and_generators_by_import_path_run_through_the_same_tasks(tmp_path: Path) -> None:
    xopt_ei = "xopt.generators.bayesian.expected_improvement:ExpectedImprovementGenerator"
    out = tmp_path / "c"
    args = ["--planners", f"xopt,{xopt_ei},planners.sobol:SobolPlanner", "--problems", "branin"]
    done = bench(*args, "--seeds", "1", "--experiments", "8", "--initial", "5", "--workers", "1", "--out", str(out))
    assert done.returncode == 0, done.stderr
    runs = {r["planner"]: r for r in pq.read_table(out / "runs.parquet").to_pylist()}
    assert [runs[p]["status"] for p in ("xopt", xopt_ei, "planners.sobol:SobolPlanner")] == ["ok"] * 3
    assert all(r["experiments"] == 8 for r in runs.values())
    assert "x" in done.stdout.split(f"| branin | {xopt_ei} |")[1].splitlines()[0].split("|")[-2]  # ratio to xopt
