"""One task on a worker: run a (planner, problem, seed) and return its rows.

:func:`run_task` is what the scheduler sends to a worker. It pins torch to the worker's threads (one per task on
a ``LocalCluster``), runs the task, and returns a plain dict (JSON-ready) that the campaign writes to its folder as
soon as it arrives: the run's row, one row per experiment, and the curves the summary is built from. A run that
fails is a result (status ``error`` with its message), not a task failure; a task fails only when its worker dies,
and then the scheduler runs it again elsewhere.
"""

from __future__ import annotations

import contextlib
import math
import platform
import socket
import time
from functools import cache
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from benchmarks.campaign.problems import SessionProblem, resolve
from benchmarks.campaign.spec import Task

VERSIONED = ("closedloop", "botorch", "gpytorch", "torch", "numpy", "xopt", "ax-platform")


@cache
def versions() -> dict[str, str]:
    """Python's and the packages' versions on this worker (those installed)."""
    found = {"python": platform.python_version()}
    for name in VERSIONED:
        with contextlib.suppress(PackageNotFoundError):
            found[name] = version(name)
    return found


def worker_name() -> str:
    """The Dask worker running this task (its address), or this host's name outside Dask."""
    try:
        from distributed import get_worker

        return str(get_worker().address)
    except (ImportError, ValueError):
        return socket.gethostname()


def _pin_threads() -> int:
    """torch on the worker's own threads: a worker with one thread gets one torch thread."""
    import torch

    threads = 1
    try:
        from distributed import get_worker

        threads = max(1, int(get_worker().state.nthreads))
    except (ImportError, ValueError):
        pass
    torch.set_num_threads(threads)
    return threads


def run_task(task: Task) -> dict[str, Any]:
    """Run ``task`` here; returns ``{"task", "run", "experiments", "regret", "seconds", "hypervolume"}``."""
    _pin_threads()
    problem = resolve(task.problem)
    started = time.perf_counter()
    if isinstance(problem, SessionProblem):
        from benchmarks.campaign.sessions import run_session

        result = run_session(task, problem)
    else:
        result = _run_harness(task, problem)
    result["run"].update(
        planner=task.planner,
        problem=task.problem,
        seed=task.seed,
        worker=worker_name(),
        seconds=round(time.perf_counter() - started, 3),
        versions=versions(),
    )
    result["task"] = task.model_dump()
    return result


def _run_harness(task: Task, problem: Any) -> dict[str, Any]:
    from benchmarks.planners import parse_planner_specs, run_one

    spec = parse_planner_specs(task.planner)[0]
    run = run_one(
        spec, problem, seed=task.seed, n_initial=task.initial, budget=task.experiments - task.initial, batch=task.batch
    )
    objective = problem.objective_names[0] if not problem.multi_objective else None
    sign = 1.0 if problem.maximize[0] else -1.0
    rows, best = [], -math.inf
    per_point = _seconds_per_point(run.seconds, task)
    for i, truth in enumerate(run.truths):
        value = truth[objective] if objective else None
        feasible = problem.feasible(truth)
        if value is not None and feasible:
            best = max(best, sign * value)
        rows.append(
            {
                "experiment": i + 1,
                "value": value,
                "feasible": feasible,
                "best_so_far": sign * best if objective and best > -math.inf else None,
                "regret": run.regret[i] if i < len(run.regret) else None,
                "seconds_per_proposal": per_point[i] if i < len(per_point) else None,
            }
        )
    final = run.regret[-1] if run.regret else None
    return {
        "run": {
            "status": run.status,
            "message": run.message,
            "options": spec.options,
            "experiments": len(run.truths),
            "final_regret": final,
            "hit": final is not None and final <= problem.hit_tolerance,
            "hypervolume": run.hypervolume,
            "warnings": run.warnings,
            "counters": run.counters,
            "recoveries": run.diagnostics.get("recoveries"),  # None: the contender does not report them
            "recovered_by": run.diagnostics.get("recovered_by"),
        },
        "experiments": rows,
        "regret": run.regret,
        "proposal_seconds": run.seconds,
    }


def _seconds_per_point(seconds: list[float], task: Task) -> list[float]:
    """Each experiment's share of the ``suggest`` call that proposed it."""
    shares: list[float] = []
    remaining = task.experiments
    for call in seconds:
        n = min(task.batch, remaining) if task.batch > 1 else 1
        shares.extend([call / n] * n)
        remaining -= n
    return shares
