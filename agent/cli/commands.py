"""The ``closedloop`` command line: run, resume, demo, status, add.

Exit codes: 0 success, 1 a failure while running, 2 bad input (one line naming the field), 3 stopped by an
operator (:class:`closedloop.errors.ExitCode`; every command's errors go through :func:`agent.cli.exits.guarded`).
A session run here, in the foreground, is :mod:`agent.cli.foreground`'s.
"""

from __future__ import annotations

import json
import logging
import time
from importlib import resources
from importlib.metadata import entry_points
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape

from agent.cli.exits import guarded
from agent.cli.foreground import drive, set_threads, status_table, with_driver_lock
from agent.cli.launch import Made, resume_through_channel, slug, start_detached, take_lock
from agent.store import SessionFolder, holds_session
from agent.views import folder_units, units_of
from agent.views.status import summarize
from closedloop.errors import ExitCode, SessionError, SpecError
from closedloop.resolve import resolve
from closedloop.spec import check_store_url, folder_path, load_spec

if TYPE_CHECKING:
    pass

YES_HELP = "approve every review; never read the terminal (answer other checkpoints with: closedloop review DIR)"

COMMAND_GROUP = "closedloop.commands"
"""Entry points whose ``register(app)`` mounts more commands on ``closedloop``."""
app = typer.Typer(add_completion=False, no_args_is_help=True, help="A closed-loop autonomous experiment agent.")
console = Console()


def _store_url(url: str) -> str:
    """A ``--store`` URL, checked like the session file's ``store``.

    Raises:
        SpecError: it is not a ``postgresql://`` URL (one line naming ``store``, the URL itself not shown).
    """
    try:
        return check_store_url(url)
    except ValueError as exc:
        raise SpecError(f"store: {exc}") from None


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
    prior: Annotated[
        Path | None,
        typer.Option(
            "--from",
            metavar="BUNDLE_OR_DIR",
            help="warm start: give the planner an earlier session's observations first (overrides the file's prior)",
        ),
    ] = None,
) -> None:
    """Start a new session from a session file."""

    def body() -> int:
        spec = load_spec(session_file)
        resolve(spec, str(session_file))  # what it names by import path, before anything is created or moves
        if store is not None:
            spec = spec.model_copy(update={"store": _store_url(store)})
        folder = dir or _default_folder(session_file, spec.folder, spec.name)
        from agent.session import Session  # imports torch and bluesky: only once the input is good

        set_threads(threads)

        if detach:
            where = ["--store", spec.store] if store is not None and spec.store else []
            where += ["--from", str(prior.resolve())] if prior is not None else []
            return start_detached(["run", str(session_file), "--dir", str(folder), *where], folder, yes, threads)
        # a start that fails before any run (a missing device, a factory error, a planner refusing) leaves nothing
        # behind, so the same command works once the cause is fixed; a session that ran something is kept
        made = Made(folder) if not holds_session(folder) else None
        lock = take_lock(folder, new=True)
        try:
            session = Session.create(session_file, folder, spec, prior=prior)
            if spec.store is not None:  # a copy of the folder on another host must not drive it too
                lock = with_driver_lock(lock, spec.store, session)
        except BaseException:
            lock.release()
            if made is not None:
                made.remove()
            raise
        failed = False
        try:
            if not as_json:
                console.print(f"session folder: {escape(str(folder))}")
            return drive(session, yes, as_json)
        except Exception:
            failed = True
            raise
        finally:
            session.close()
            lock.release()
            if failed and made is not None and made.ran_nothing():
                made.remove()

    guarded(body)


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
        from agent.store import holder

        where = SessionFolder(folder)
        attached = where.in_postgres and not where.session_file.exists()
        if holder(folder) is not None or attached:  # attached: `closedloop attach` made it, for a session elsewhere
            return resume_through_channel(folder, as_json)
        if detach:
            return start_detached(["resume", str(folder)], folder, yes, threads)
        from agent.session import Session

        set_threads(threads)
        lock = take_lock(folder, new=False)
        session = Session.open(folder)
        try:
            return drive(session, yes, as_json)
        finally:
            session.close()
            lock.release()

    guarded(body)


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
        run(path, folder, yes, as_json, threads, False, None, None)


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
        from agent.operator import check_points
        from agent.store import holder, open_store
        from planners.baselines import read_points

        where = SessionFolder(folder)
        if not where.has_store or not where.session_file.exists():
            raise SessionError(f"{folder} holds no session", "start one with: closedloop run SESSION.yaml")
        if bool(point) == (file is not None):
            raise SpecError("give one point as NAME=VALUE arguments, or --file, not both or neither")
        raw = [parse_point(point)] if point else read_points(file) if file is not None else []
        if not raw:
            raise SpecError(f"{file}: holds no points")
        spec = load_spec(where.session_file)  # the limits only: no planner or instrument package is imported
        checked = check_points(spec, raw)
        if holder(folder) is not None:
            # a process runs the session: through its channel, which wakes it if it waits for points
            from agent.cli.control import send
            from agent.operator import build

            reply = send(folder, build("add", by, "channel", points=checked))
            if not reply.ok:
                raise SessionError(str(reply.error))
            waiting = int(reply.result.get("waiting", 0))
        else:
            store = open_store(folder, new=False)
            try:
                store.queue_points(checked, by=by or "operator")
                from agent.views import action
                from agent.views import point as written

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
        return ExitCode.OK

    guarded(body)


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
            from agent.views import summarize_remote

            info = summarize_remote(_store_url(store), session)
        else:
            assert folder is not None
            info = summarize(folder)
        if as_json:
            console.print_json(json.dumps(info))
        else:
            console.print(status_table(info, folder_units(folder) if folder is not None else None))
        return ExitCode.OK

    guarded(body)


@app.command()
def attach(
    folder: Annotated[Path, typer.Argument(help="a new folder, on this host, to stand for the session")],
    store: Annotated[str, typer.Option("--store", metavar="URL", help="the PostgreSQL store the session is kept in")],
    session: Annotated[str, typer.Option("--session", metavar="NAME_OR_ID", help="the session: its name or id")],
) -> None:
    """Reach a session kept in PostgreSQL from a host without its folder: DIR then stands for it in status, audit,
    watch, review, pause, stop and budget (put your CurveZMQ client key in DIR/keys, or pass --keys)."""

    def body() -> int:
        from agent.store import attach as attach_folder

        session_id = attach_folder(folder, _store_url(store), session)
        console.print(f"{escape(str(folder))} stands for session {session_id}; try: closedloop status {folder}")
        return ExitCode.OK

    guarded(body)


def _mount_commands() -> None:
    from agent.cli.control import register
    from agent.cli.planners import planners
    from agent.cli.queueserver import app as queueserver_app
    from agent.cli.report import register as register_report
    from agent.cli.share import register as register_share

    register(app)
    register_report(app)
    register_share(app)
    app.command("planners")(planners)
    app.add_typer(queueserver_app, name="queueserver", help="Start a local RE Manager for the bundled profile.")
    for entry in entry_points(group=COMMAND_GROUP):  # commands other packages add (benchmarks: bench)
        entry.load()(app)


_mount_commands()


def main() -> None:
    """Entry point of the ``closedloop`` console script."""
    logging.getLogger("bluesky").setLevel(logging.CRITICAL)  # failed runs are reported in the audit log
    app(prog_name="closedloop")


if __name__ == "__main__":
    main()
