"""A user's session file as a campaign problem: the session runs for real, headless, with the task's planner.

The task writes a copy of the session file into its own folder with the campaign's planner (name and options),
seed, experiments and batch in place of the file's own, and review ``never`` (a campaign has no operator). It runs
it with ``closedloop run --yes`` in a child process, as an operator would, and reads the results back with
``closedloop results --json``. The campaign's initial design becomes the planner's ``n_initial`` when the planner
takes one, and the session's ``initial_design`` otherwise. The peers of the harness (``xopt``, ``ax``) are
adapters for analytic problems; on a session file, give a gest-api generator's import path instead (Xopt's
generators are gest-api generators).
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

from benchmarks._peers import PEER_NAMES
from benchmarks.campaign.problems import SessionProblem
from benchmarks.campaign.spec import Task
from benchmarks.planners import parse_planner_specs
from planners.registry import accepts_option

RUN_TIMEOUT = 3600.0
"""Seconds a session task may take before it is reported as an error."""


def session_file(task: Task, problem: SessionProblem, folder: Path) -> dict[str, Any]:
    """The session file of ``problem`` with the task's planner, seed, budget and batch, never reviewed."""
    data = yaml.safe_load(problem.path.read_text())
    spec = parse_planner_specs(task.planner)[0]
    options = dict(spec.options)
    initial_design = 0
    try:
        if "n_initial" not in options and accepts_option(spec.name, "n_initial"):
            options["n_initial"] = task.initial
        elif "n_initial" not in options:
            initial_design = task.initial  # a generator that cannot start alone: closedloop's Sobol points first
    except (ImportError, AttributeError, TypeError, ValueError):
        initial_design = task.initial
    planner = dict(
        data.get("planner") or {}, name=spec.name, options=options, batch_size=task.batch, initial_design=initial_design
    )
    data.update(planner=planner, seed=task.seed, budget={"experiments": task.experiments}, folder=str(folder))
    data["review"] = {"policy": "never"}
    return data


def run_session(task: Task, problem: SessionProblem) -> dict[str, Any]:
    """Run the session for ``task``; returns the task result (see :func:`benchmarks.campaign.tasks.run_task`)."""
    spec = parse_planner_specs(task.planner)[0]
    if spec.name in PEER_NAMES:
        return _result("unsupported", f"{spec.name} runs on the bundled problems only; give its generator's path")
    with tempfile.TemporaryDirectory(prefix="closedloop-bench-") as tmp:
        folder = Path(tmp) / "session"
        path = Path(tmp) / "session.yaml"
        path.write_text(yaml.safe_dump(session_file(task, problem, folder)))
        cli = [sys.executable, "-m", "agent.cli"]
        done = subprocess.run(
            [*cli, "run", str(path), "--yes", "--json"], capture_output=True, text=True, timeout=RUN_TIMEOUT
        )
        if done.returncode != 0:
            return _result("error", f"closedloop run exited {done.returncode}: {_last_line(done.stderr)}")
        shown = subprocess.run([*cli, "results", str(folder), "--json"], capture_output=True, text=True, timeout=120)
        if shown.returncode != 0:
            return _result("error", f"closedloop results exited {shown.returncode}: {_last_line(shown.stderr)}")
    return _rows(json.loads(shown.stdout)["rows"], yaml.safe_load(problem.path.read_text()))


def _rows(results: list[dict[str, Any]], session: dict[str, Any]) -> dict[str, Any]:
    objective, settings = next(iter(session["objectives"].items()))
    sign = 1.0 if (settings or {}).get("direction", "maximize") == "maximize" else -1.0
    rows, best, failed = [], -math.inf, 0
    for i, row in enumerate(results):
        value = row.get(objective) if row.get("status") == "ok" else None
        if value is None:
            failed += 1
        else:
            best = max(best, sign * float(value))
        rows.append(
            {
                "experiment": i + 1,
                "value": value,
                "feasible": row.get("status") == "ok",
                "best_so_far": sign * best if best > -math.inf else None,
                "regret": None,
                "seconds_per_proposal": None,
            }
        )
    result = _result("ok", "")
    result["run"].update(experiments=len(rows), failed=failed, best=rows[-1]["best_so_far"] if rows else None)
    result["experiments"] = rows
    return result


def _result(status: str, message: str) -> dict[str, Any]:
    return {
        "run": {"status": status, "message": message, "experiments": 0, "final_regret": None, "hit": False},
        "experiments": [],
        "regret": [],
        "proposal_seconds": [],
    }


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:200] if lines else "(no output)"
