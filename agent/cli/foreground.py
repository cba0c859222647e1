"""A session run in the foreground of a terminal (``closedloop run`` and ``resume``): its control channel served
beside it, a progress bar, each checkpoint shown at the terminal (or, where nobody reads it, where to answer it),
and the status it ends with.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from agent.views import units_of
from agent.views.status import SessionState, recoveries_text, summary, waiting_text
from closedloop.errors import ExitCode
from closedloop.records import Observation

if TYPE_CHECKING:
    from agent.loop import Checkpoint
    from agent.session import Session

console = Console()
err = Console(stderr=True)


def show_here(checkpoint: Checkpoint, folder: Path, out: Console) -> None:
    """Show a checkpoint at the session's own terminal, with the keys that answer it (on ``out``: stderr when the
    summary goes to stdout as JSON)."""
    from agent.views import checkpoint_table
    from closedloop.control import CheckpointInfo

    console = out
    if checkpoint.kind == "review":
        console.print(checkpoint_table(CheckpointInfo.model_validate(checkpoint.info)))
        console.print(escape("approve, approve all, reject, edit or stop? [a/A/r/e/s]"), style="bold")
    elif checkpoint.kind == "points":
        console.print(f"[bold]The planner has no points left:[/] {escape(checkpoint.reason)}")
        console.print(f"queue some from another terminal with: closedloop add {folder} NAME=VALUE ...")
        console.print("[bold]press Enter once they are queued, or s to stop[/]")
    else:
        console.print(f"[bold]{checkpoint.kind}:[/] {escape(checkpoint.reason)}")
        console.print("[bold]press Enter to go on, or s to stop[/]")


def reads_terminal(yes: bool) -> bool:
    """Whether the session process asks at its terminal: never with ``--yes``, never when stdin is not a terminal
    (a pipe, a file, nothing), and never from a shell's background (reading would stop it with SIGTTIN)."""
    if yes or sys.stdin is None or sys.stdin.closed:
        return False
    try:
        descriptor = sys.stdin.fileno()
        return os.isatty(descriptor) and os.tcgetpgrp(descriptor) == os.getpgrp()
    except (OSError, ValueError):
        return False


def show_elsewhere(checkpoint: Checkpoint, folder: Path, out: Console) -> None:
    """Say, where nothing reads the terminal, that the session waits and how to answer it from another one."""
    what = escape(checkpoint.reason) if checkpoint.reason else "proposals wait for review"
    out.print(f"[bold]{checkpoint.kind}:[/] {what}", soft_wrap=True)
    if checkpoint.kind == "points":
        out.print(f"queue points with: closedloop add {escape(str(folder))} NAME=VALUE ...", soft_wrap=True)
    out.print(
        f"nobody reads this terminal (--yes, no terminal, or in the background); answer from another terminal "
        f"with: closedloop review {escape(str(folder))}",
        soft_wrap=True,
    )


def drive(session: Session, approve_all: bool, as_json: bool, host: str = "127.0.0.1") -> int:
    """Run a session to its end (waiting at checkpoints for the terminal or the control channel); the exit code."""
    from agent.process import SessionProcess

    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("best {task.fields[best]}"),
        TimeElapsedColumn(),
        console=console,
        disable=as_json,
    )
    tally = session.tally
    task = progress.add_task(
        escape(session.spec.name),
        total=session.context.budget(),
        completed=tally.experiments,
        best=_fmt(tally.best_value),
    )

    def observed(observation: Observation) -> None:
        # the running tally: no store read per observation, so the cost stays flat over a long session
        progress.update(task, completed=tally.experiments, total=session.context.budget(), best=_fmt(tally.best_value))
        if not observation.ok and not as_json:
            what = f"{observation.proposal_id}: {escape(str(observation.error))}"
            progress.console.print(f"[yellow]{observation.status.value}[/] {what}")

    session.on_observation = observed
    at_terminal = reads_terminal(approve_all)

    def show(checkpoint: Checkpoint) -> None:
        progress.stop()
        shown = show_here if at_terminal else show_elsewhere
        shown(checkpoint, session.folder, err if as_json else console)

    process = SessionProcess(
        session, host=host, approve_all=approve_all, interactive=at_terminal, show=show, console=console
    )
    # with --json, stdout holds the summary only: what else is printed meanwhile (bluesky's "Aborting: ..." at a
    # run timeout or an abort) goes to stderr
    with process, progress, contextlib.redirect_stdout(sys.stderr) if as_json else contextlib.nullcontext():
        process.run()
    return session_summary(session, as_json)


def with_driver_lock(lock: Any, url: str, session: Session) -> Any:
    """``lock`` and the store's lock on driving the session, let go together (the session is closed if that
    lock is refused)."""
    from agent.cli.launch import both
    from agent.store import DriverLock

    driver = DriverLock(url, session.session_id)
    try:
        driver.acquire()
    except BaseException:
        session.close()
        raise
    return both(lock, driver)


def _fmt(value: float | str | None, units: str | None = None) -> str:
    from agent.views import quantity

    return quantity(value, units)


def session_summary(session: Session, as_json: bool) -> int:
    status = summary(session.folder, session.spec, session.store, session.tally, session.store.observations())
    if as_json:
        console.print_json(json.dumps(status))
    else:
        console.print(status_table(status, units_of(session.spec)))
        checkpoint = session.pending_checkpoint()
        if checkpoint is not None and checkpoint.kind == "points":
            console.print(f"waiting for points: {checkpoint.reason}")
            folder = session.folder
            console.print(f"queue some with: closedloop add {folder} NAME=VALUE ..., then: closedloop resume {folder}")
        elif status["state"] == SessionState.WAITING.value:
            console.print(f"waiting at a checkpoint; answer it with: closedloop resume {session.folder}")
    return {
        SessionState.STOPPED.value: ExitCode.STOPPED,
        SessionState.FAILED.value: ExitCode.FAILED,
    }.get(status["state"], ExitCode.OK)


def _missing(status: dict[str, Any]) -> str:
    """``, N with an output missing`` when some ok experiments lack a constraint output, else nothing."""
    return f", {status['missing']} with an output missing" if status.get("missing") else ""


def status_table(status: dict[str, Any], units: dict[str, str | None] | None = None) -> Table:
    """The status for a terminal: numbers in plain notation, each variable's with its ``units``."""
    units = units or {}
    table = Table(title=f"closedloop session {status['name']} ({status['session_id']})", show_header=False)
    table.add_column("what", style="bold")
    table.add_column("value")
    best_point = status["best_point"] or {}
    rows = [
        ("state", status["state"] + (f": {waiting_text(status['waiting'])}" if status.get("waiting") else "")),
        ("experiments", f"{status['experiments']} of {status['budget']} ({status['failed']} failed{_missing(status)})"),
        (f"best {status['objective']}" + (" (feasible)" if status["infeasible"] else ""), _fmt(status["best_value"])),
        ("best point", ", ".join(f"{k}={_fmt(v, units.get(k))}" for k, v in best_point.items()) or "-"),
        ("decisions", str(status["decisions"])),
        ("queued points", str(status["queued"])),
        *([("prior observations", str(status["prior_observations"]))] if status.get("prior_observations") else []),
        ("data", f"{status['store']}, {status['folder']}/runs/*.jsonl"),
    ]
    several = len(status["instruments"]) > 1
    for name, lane in status["instruments"].items():
        doing = {
            "running": f"running {lane['proposal']}",
            "failed": f"failed: {lane['error']}",
            "suspended": f"suspended ({lane.get('suspended')})"
            + (f", holding {lane['proposal']}" if lane.get("proposal") else ""),
        }
        shown = doing.get(lane["state"], lane["state"]) + (f" ({lane['waiting']})" if lane.get("waiting") else "")
        rows.append((f"instrument {name}" if several else "instrument", shown))
    for name, reach in status.get("reach", {}).items():
        if reach["device_limits"] is not None:  # the device's own limits, next to the session file's
            unit = units.get(name)
            hard, device, limits = (
                " to ".join(_fmt(x, unit) for x in reach[k]) for k in ("hard_limits", "device_limits", "limits")
            )
            rows.append((f"reach {name}", f"{limits} (hard limits {hard}, device limits {device})"))
    if status["pareto_front"]:
        rows.append(("pareto front", f"{len(status['pareto_front'])} point(s)"))
        for entry in status["pareto_front"]:
            rows.append(("", ", ".join(f"{k}={_fmt(v)}" for k, v in entry["values"].items())))
    if recovered := recoveries_text(status.get("planner_recoveries")):
        rows.append(("planner", recovered))
    if status.get("error"):
        rows.append(("error", status["error"]))
    for row in rows:
        table.add_row(*row)
    return table


def set_threads(threads: int) -> None:
    """Give torch this many threads: the planner's matrices are small, and on a few cores more threads fight the
    RunEngine and the instrument's own processes (one thread was up to 10x faster per proposal on 2 loaded cores).
    """
    import torch

    torch.set_num_threads(threads)
