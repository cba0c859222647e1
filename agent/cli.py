"""The ``closedloop`` command line: run, resume, demo, status, add.

Exit codes: 0 success, 1 a failure while running, 2 bad input (one line naming the field), 3 stopped by an
operator.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import time
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from agent.folder import holds_session
from agent.launch import Made, resume_through_channel, slug, start_detached, take_lock
from agent.numbers import folder_units, units_of
from agent.status import SESSION_FILE, STORE_FILE, SessionState, summarize, summary, waiting_text
from agent.stores import STORE_RECORD, publish_control
from closedloop.errors import ClosedLoopError, InstrumentError, PlannerError, SafetyError, SessionError, SpecError
from closedloop.plugins import imports_unchecked
from closedloop.records import Observation
from closedloop.spec import check_store_url, folder_path, load_spec

if TYPE_CHECKING:
    from agent.session import Checkpoint, Session

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_STOPPED = 0, 1, 2, 3
YES_HELP = "approve every review; never read the terminal (answer other checkpoints with: closedloop review DIR)"

app = typer.Typer(add_completion=False, no_args_is_help=True, help="A closed-loop autonomous experiment agent.")
console = Console()
err = Console(stderr=True)


def _fail(code: int, message: str) -> typer.Exit:
    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


def _show(checkpoint: Checkpoint, folder: Path, out: Console) -> None:
    """Show a checkpoint at the session's own terminal, with the keys that answer it (on ``out``: stderr when the
    summary goes to stdout as JSON)."""
    from agent.display import checkpoint_table
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


def _reads_terminal(yes: bool) -> bool:
    """Whether the session process asks at its terminal: never with ``--yes``, never when stdin is not a terminal
    (a pipe, a file, nothing), and never from a shell's background (reading would stop it with SIGTTIN)."""
    if yes or sys.stdin is None or sys.stdin.closed:
        return False
    try:
        descriptor = sys.stdin.fileno()
        return os.isatty(descriptor) and os.tcgetpgrp(descriptor) == os.getpgrp()
    except (OSError, ValueError):
        return False


def _show_elsewhere(checkpoint: Checkpoint, folder: Path, out: Console) -> None:
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


def _drive(session: Session, approve_all: bool, as_json: bool, host: str = "127.0.0.1") -> int:
    """Run a session to its end (waiting at checkpoints for the terminal or the control channel); the exit code."""
    from agent.control import ControlServer
    from agent.driver import Driver
    from agent.operations import Operations

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
    operations = Operations(session)
    server = ControlServer(session.folder, operations.recorded, host=host, refused=operations.refused)
    publish_control(session.store, server.info, session.folder)
    session.context.emit = operations.emit = lambda kind, data: server.publish(kind, data)

    reads_terminal = _reads_terminal(approve_all)

    def show(checkpoint: Checkpoint) -> None:
        progress.stop()
        shown = _show if reads_terminal else _show_elsewhere
        shown(checkpoint, session.folder, err if as_json else console)

    driver = Driver(
        session,
        operations,
        console,
        approve_all=approve_all,
        interactive=reads_terminal,
        show=show,
        wait_for_channel=True,
    )
    try:
        # with --json, stdout holds the summary only: what else is printed meanwhile (bluesky's "Aborting: ..." at a
        # run timeout or an abort) goes to stderr
        with progress, contextlib.redirect_stdout(sys.stderr) if as_json else contextlib.nullcontext():
            driver.run()
    finally:
        server.close()
        with contextlib.suppress(Exception):  # a store gone away must not hide why the session ended
            publish_control(session.store, None, session.folder)
    return _report(session, as_json)


def _with_driver_lock(lock: Any, url: str, session: Session) -> Any:
    """``lock`` and the store's lock on driving the session, let go together (the session is closed if that
    lock is refused)."""
    from agent.launch import both
    from agent.store_postgres import DriverLock

    driver = DriverLock(url, session.session_id)
    try:
        driver.acquire()
    except BaseException:
        session.close()
        raise
    return both(lock, driver)


def _store_url(url: str) -> str:
    """A ``--store`` URL, checked like the session file's ``store``.

    Raises:
        SpecError: it is not a ``postgresql://`` URL (one line naming ``store``, the URL itself not shown).
    """
    try:
        return check_store_url(url)
    except ValueError as exc:
        raise SpecError(f"store: {exc}") from None


def _fmt(value: float | str | None, units: str | None = None) -> str:
    from agent.numbers import quantity

    return quantity(value, units)


def _report(session: Session, as_json: bool) -> int:
    status = summary(session.folder, session.spec, session.store, session.tally, session.store.observations())
    if as_json:
        console.print_json(json.dumps(status))
    else:
        console.print(_status_table(status, units_of(session.spec)))
        checkpoint = session.pending_checkpoint()
        if checkpoint is not None and checkpoint.kind == "points":
            console.print(f"waiting for points: {checkpoint.reason}")
            folder = session.folder
            console.print(f"queue some with: closedloop add {folder} NAME=VALUE ..., then: closedloop resume {folder}")
        elif status["state"] == SessionState.WAITING.value:
            console.print(f"waiting at a checkpoint; answer it with: closedloop resume {session.folder}")
    return {
        SessionState.STOPPED.value: EXIT_STOPPED,
        SessionState.FAILED.value: EXIT_FAILED,
    }.get(status["state"], EXIT_OK)


def _missing(status: dict[str, Any]) -> str:
    """``, N with an output missing`` when some ok experiments lack a constraint output, else nothing."""
    return f", {status['missing']} with an output missing" if status.get("missing") else ""


def _status_table(status: dict[str, Any], units: dict[str, str | None] | None = None) -> Table:
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
    if status.get("error"):
        rows.append(("error", status["error"]))
    for row in rows:
        table.add_row(*row)
    return table


def _guarded(action: Any) -> None:
    """Run a command body, turning closedloop errors into one line and an exit code."""
    try:
        code = action()
    except SpecError as exc:
        raise _fail(EXIT_BAD_INPUT, str(exc)) from None
    except (SessionError, PlannerError, SafetyError) as exc:
        raise _fail(EXIT_BAD_INPUT, str(exc)) from None
    except InstrumentError as exc:
        raise _fail(EXIT_FAILED, str(exc)) from None
    except ClosedLoopError as exc:
        raise _fail(EXIT_FAILED, str(exc)) from None
    except Exception as exc:  # a planner or device error while running: the session is marked failed
        raise _fail(EXIT_FAILED, f"{type(exc).__name__}: {exc}") from None
    raise typer.Exit(code)


def _set_threads(threads: int) -> None:
    """Give torch this many threads: the planner's matrices are small, and on a few cores more threads fight the
    RunEngine and the instrument's own processes (one thread was up to 10x faster per proposal on 2 loaded cores).
    """
    import torch

    torch.set_num_threads(threads)


def _default_folder(spec_path: Path, folder: str | None, name: str) -> Path:
    """The session folder: the file's ``folder`` (see :func:`closedloop.spec.folder_path`), or
    ``sessions/<name>-<time>``, where the name is made safe first, so that no session name (``..``, ``/``, an
    absolute path) leaves ``sessions/``.
    """
    if folder is not None:
        return folder_path(spec_path, folder)
    return Path("sessions") / f"{slug(name)}-{time.strftime('%Y%m%d-%H%M%S')}"


@app.command()
def run(
    session_file: Annotated[Path, typer.Argument(help="the session file (YAML)")],
    dir: Annotated[Path | None, typer.Option("--dir", help="session folder (default: from the file)")] = None,
    yes: Annotated[bool, typer.Option("--yes", help=YES_HELP)] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print the summary as JSON")] = False,
    threads: Annotated[int, typer.Option("--threads", min=1, help="torch threads for the planner")] = 1,
    detach: Annotated[bool, typer.Option("--detach", help="run in the background (output in DIR/session.log)")] = False,
    store: Annotated[
        str | None, typer.Option("--store", metavar="URL", help="keep the session in PostgreSQL (overrides the file)")
    ] = None,
) -> None:
    """Start a new session from a session file."""

    def body() -> int:
        spec = load_spec(session_file)
        if store is not None:
            spec = spec.model_copy(update={"store": _store_url(store)})
        folder = dir or _default_folder(session_file, spec.folder, spec.name)
        from agent.session import Session  # imports torch and bluesky: only once the input is good

        _set_threads(threads)

        if detach:
            where = ["--store", spec.store] if store is not None and spec.store else []
            return start_detached(["run", str(session_file), "--dir", str(folder), *where], folder, yes, threads)
        # a start that fails before any run (a missing device, a factory error, a planner refusing) leaves nothing
        # behind, so the same command works once the cause is fixed; a session that ran something is kept
        made = Made(folder) if not holds_session(folder) else None
        lock = take_lock(folder, new=True)
        try:
            session = Session.create(session_file, folder, spec)
            if spec.store is not None:  # a copy of the folder on another host must not drive it too
                lock = _with_driver_lock(lock, spec.store, session)
        except BaseException:
            lock.release()
            if made is not None:
                made.remove()
            raise
        failed = False
        try:
            if not as_json:
                console.print(f"session folder: {escape(str(folder))}")
            return _drive(session, yes, as_json)
        except Exception:
            failed = True
            raise
        finally:
            session.close()
            lock.release()
            if failed and made is not None and made.ran_nothing():
                made.remove()

    _guarded(body)


@app.command()
def resume(
    folder: Annotated[Path, typer.Argument(help="the session folder")],
    yes: Annotated[bool, typer.Option("--yes", help=YES_HELP)] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print the summary as JSON")] = False,
    threads: Annotated[int, typer.Option("--threads", min=1, help="torch threads for the planner")] = 1,
    detach: Annotated[bool, typer.Option("--detach", help="run in the background (output in DIR/session.log)")] = False,
) -> None:
    """Continue a session: a paused one through its running process, or a stopped, killed or waiting one in a new
    process."""

    def body() -> int:
        from agent.lock import holder

        attached = (folder / STORE_RECORD).exists() and not (folder / SESSION_FILE).exists()
        if holder(folder) is not None or attached:  # attached: `closedloop attach` made it, for a session elsewhere
            return resume_through_channel(folder, as_json)
        if detach:
            return start_detached(["resume", str(folder)], folder, yes, threads)
        from agent.session import Session

        _set_threads(threads)
        lock = take_lock(folder, new=False)
        session = Session.open(folder)
        try:
            return _drive(session, yes, as_json)
        finally:
            session.close()
            lock.release()

    _guarded(body)


@app.command()
def demo(
    dir: Annotated[Path | None, typer.Option("--dir", help="session folder")] = None,
    yes: Annotated[bool, typer.Option("--yes", help=YES_HELP)] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print the summary as JSON")] = False,
    threads: Annotated[int, typer.Option("--threads", min=1, help="torch threads for the planner")] = 1,
) -> None:
    """Run the bundled demo: align two mirrors on a simulated beamline."""
    source = resources.files("agent") / "demo" / "beamline.yaml"
    with resources.as_file(source) as path:
        folder = dir or Path("sessions") / f"demo-{time.strftime('%Y%m%d-%H%M%S')}"
        run(path, folder, yes, as_json, threads, False, None)


def parse_point(words: list[str]) -> dict[str, str]:
    """``["a=1", "b=x"]`` as ``{"a": "1", "b": "x"}`` (values checked later, against the session).

    Raises:
        SpecError: a word is not NAME=VALUE, or names a variable twice.
    """
    point: dict[str, str] = {}
    for word in words:
        name, sep, value = word.partition("=")
        if not sep or not name.strip() or not value.strip():
            raise SpecError(f"point: {word!r} is not NAME=VALUE")
        if name.strip() in point:
            raise SpecError(f"point.{name.strip()}: given twice")
        point[name.strip()] = value.strip()
    return point


@app.command()
def add(
    folder: Annotated[Path, typer.Argument(help="the session folder")],
    point: Annotated[list[str] | None, typer.Argument(help="one point as NAME=VALUE for every variable")] = None,
    file: Annotated[
        Path | None, typer.Option("--file", help="points to queue: CSV with a header row, or a YAML/JSON list")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print what was queued as JSON")] = False,
    by: Annotated[str | None, typer.Option("--by", help="your name for the audit trail")] = None,
) -> None:
    """Queue points for a session to measure next, before its planner's own: while it runs, waits or is stopped.

    Each point is checked against the session's hard limits and allowed values first; if any is refused, none is
    queued. A point further than a variable's max_step from where the instrument then is is reached in steps.
    """

    def body() -> int:
        from agent.folder import open_store
        from agent.lock import holder
        from agent.operations import check_points
        from planners.baselines import read_points

        has_store = (folder / STORE_FILE).exists() or (folder / STORE_RECORD).exists()
        if not has_store or not (folder / SESSION_FILE).exists():
            raise SessionError(f"{folder} holds no session", "start one with: closedloop run SESSION.yaml")
        if bool(point) == (file is not None):
            raise SpecError("give one point as NAME=VALUE arguments, or --file, not both or neither")
        raw = [parse_point(point)] if point else read_points(file) if file is not None else []
        if not raw:
            raise SpecError(f"{file}: holds no points")
        with imports_unchecked():  # the limits only: no planner or instrument package is needed to queue a point
            spec = load_spec(folder / SESSION_FILE)
        checked = check_points(spec, raw)
        if holder(folder) is not None:
            # a process runs the session: through its channel, which wakes it if it waits for points
            from agent.cli_control import send
            from agent.operator_input import build

            reply = send(folder, build("add", by, "channel", points=checked))
            if not reply.ok:
                raise SessionError(str(reply.error))
            waiting = int(reply.result.get("waiting", 0))
        else:
            store = open_store(folder, new=False)
            try:
                store.queue_points(checked, by=by or "operator")
                from agent.audit import action
                from agent.numbers import point as written

                queued = f"{len(checked)} point(s) queued in the store: " + "; ".join(
                    written(p, units_of(spec), ", ") for p in checked
                )
                store.log("queue", action(queued, by or "operator", "terminal"))
                waiting = store.count_queued()
            finally:
                store.close()
        if as_json:
            console.print_json(json.dumps({"queued": checked, "waiting": waiting}))
        else:
            console.print(f"queued {len(checked)} point(s); {waiting} waiting to be measured")
        return EXIT_OK

    _guarded(body)


@app.command()
def status(
    folder: Annotated[Path | None, typer.Argument(help="the session folder (or --store and --session)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print as JSON")] = False,
    store: Annotated[
        str | None, typer.Option("--store", metavar="URL", help="read the session from this PostgreSQL store")
    ] = None,
    session: Annotated[
        str | None, typer.Option("--session", metavar="NAME_OR_ID", help="the session in --store: its name or id")
    ] = None,
) -> None:
    """Where a session is: state, experiments done and failed, budget, best point so far.

    From its folder, or, on a host without the folder, from its PostgreSQL store: --store URL --session NAME_OR_ID.
    """

    def body() -> int:
        if (folder is None) == (store is None) or (store is None) != (session is None):
            raise SpecError("give the session folder, or --store URL and --session NAME_OR_ID")
        if store is not None and session is not None:
            from agent.status import summarize_remote

            info = summarize_remote(_store_url(store), session)
        else:
            assert folder is not None
            info = summarize(folder)
        if as_json:
            console.print_json(json.dumps(info))
        else:
            console.print(_status_table(info, folder_units(folder) if folder is not None else None))
        return EXIT_OK

    _guarded(body)


@app.command()
def attach(
    folder: Annotated[Path, typer.Argument(help="a new folder, on this host, to stand for the session")],
    store: Annotated[str, typer.Option("--store", metavar="URL", help="the PostgreSQL store the session is kept in")],
    session: Annotated[str, typer.Option("--session", metavar="NAME_OR_ID", help="the session: its name or id")],
) -> None:
    """Reach a session kept in PostgreSQL from a host without its folder: DIR then stands for it in status, audit,
    watch, review, pause, stop and budget (put your CurveZMQ client key in DIR/keys, or pass --keys)."""

    def body() -> int:
        from agent.stores import attach as attach_folder

        session_id = attach_folder(folder, _store_url(store), session)
        console.print(f"{escape(str(folder))} stands for session {session_id}; try: closedloop status {folder}")
        return EXIT_OK

    _guarded(body)


def _mount_commands() -> None:
    from agent.cli_control import register
    from agent.cli_planners import planners
    from agent.cli_queueserver import app as queueserver_app
    from agent.cli_report import register as register_report

    register(app)
    register_report(app)
    app.command("planners")(planners)
    app.add_typer(queueserver_app, name="queueserver", help="Start a local RE Manager for the bundled profile.")


_mount_commands()


def main() -> None:
    """Entry point of the ``closedloop`` console script."""
    logging.getLogger("bluesky").setLevel(logging.CRITICAL)  # failed runs are reported in the audit log
    app(prog_name="closedloop")


if __name__ == "__main__":
    sys.exit(main())
