"""The operator's commands on a running session, from any terminal: review, watch, pause, stop, budget, and web (the
same from a browser); and keys, audit and results, which need no running process.

:func:`register` mounts them on a Typer app (``closedloop`` mounts them on its own); ``python -m
agent.cli.control`` runs them alone. Each takes ``--json``; those that talk to the session take ``--by NAME`` (who
the audit trail names; default the OS user; a key issued to someone is recorded under its own name instead),
``--timeout S`` and ``--keys PATH`` (a CurveZMQ client key file or its folder; default the session owner's own, in
``DIR/keys``). :func:`send` is the one call they share, for other commands (add, resume) to reuse.

Exit codes: 0 done; 1 no session process runs, it did not answer, or it refused (too late, not possible now);
2 bad input (one line naming the field); 3 the answer given was stop.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, cast

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table
from rich.text import Text

from agent.operator import (
    ControlClient,
    answer_at_terminal,
    answer_from_flags,
    build,
    describe_answer,
    make_keys,
    subscribe,
    unchecked_budget,
)
from agent.views import (
    READ_BACK,
    TRAILING,
    as_csv,
    audit_table,
    audit_trail,
    event_lines,
    fmt,
    folder_units,
    session_results,
)
from closedloop.control import (
    AnswerRequest,
    CheckpointInfo,
    Reply,
    Request,
    printable,
)
from closedloop.errors import ClosedLoopError, SessionError, SpecError

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_STOPPED = 0, 1, 2, 3
STORE_FILE = "store.sqlite"

console = Console(highlight=False)
err = Console(stderr=True, highlight=False)

JsonOpt = Annotated[bool, typer.Option("--json", help="print the reply as JSON")]
ByOpt = Annotated[
    str | None,
    typer.Option("--by", help="your name for the audit trail (default: the OS user; an issued key records its own)"),
]
TimeoutOpt = Annotated[float, typer.Option("--timeout", min=0.01, help="seconds to wait for the session's answer")]
KeysOpt = Annotated[
    Path | None,
    typer.Option("--keys", help="your CurveZMQ client key file, or its folder (default: the owner's, in DIR/keys)"),
]
FolderArg = Annotated[Path, typer.Argument(help="the session folder")]


class _Done(Exception):
    """End a command with an exit code (after its output is printed)."""

    def __init__(self, code: int) -> None:
        self.code = code


def send(folder: Path, request: Request, timeout: float = 5.0, keys_dir: Path | None = None) -> Reply:
    """Send one request to the session running ``folder`` and return its reply.

    Raises:
        SessionError: no session process runs there, or none answered within ``timeout`` seconds.
    """
    with ControlClient(folder, timeout=timeout, keys_dir=keys_dir) as client:
        return client.call(request)


def exit_code(reply: Reply) -> int:
    """The exit code for a reply: 0 done, 2 an invalid request, 1 any other refusal."""
    if reply.ok:
        return EXIT_OK
    return EXIT_BAD_INPUT if reply.code == "invalid" else EXIT_FAILED


def _refusal(reply: Reply) -> str:
    if reply.code == "late":
        return f"too late: answered already by {reply.result.get('answered_by', 'someone else')}"
    return reply.error or "refused"


def _guarded(as_json: bool, body: Callable[[], int]) -> None:
    """Run a command; closedloop errors become one line (and a JSON object with --json) and an exit code."""
    try:
        code = body()
    except _Done as done:
        code = done.code
    except SpecError as exc:
        code = _error(as_json, str(exc), EXIT_BAD_INPUT)
    except ClosedLoopError as exc:
        code = _error(as_json, str(exc), EXIT_FAILED)
    except ValidationError as exc:  # a reply from a session speaking another dialect
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        code = _error(as_json, f"the session's reply is not understood: {where}: {first['msg']}", EXIT_FAILED)
    raise typer.Exit(code)


def _error(as_json: bool, message: str, code: int) -> int:
    if as_json:
        print(json.dumps({"ok": False, "error": message}))
    err.print(Text("error: ", style="bold red") + Text(printable(message)), soft_wrap=True)
    return code


def report(reply: Reply, as_json: bool, done: str | Callable[[dict[str, Any]], str]) -> int:
    """Print a reply and return its exit code: the JSON reply with ``as_json``; else ``done``, a sentence for a
    person (or a function of the reply's result that writes it), when it succeeded; the refusal on stderr when not.
    """
    if as_json:
        print(reply.model_dump_json())
    if not reply.ok:
        err.print(Text("error: ", style="bold red") + Text(printable(_refusal(reply))), soft_wrap=True)
    elif not as_json:
        said = done(reply.result) if callable(done) else done
        console.print(Text(printable(said)), soft_wrap=True)
    return exit_code(reply)


# review ----------------------------------------------------------------------------------------------------------
def review(
    folder: FolderArg,
    pairs: Annotated[
        list[str] | None,
        typer.Argument(metavar="[NAME=VALUE]...", help="more setpoints for --edit", show_default=False),
    ] = None,
    approve: Annotated[bool, typer.Option("--approve", help="approve every proposal (not edited)")] = False,
    reject: Annotated[
        str | None, typer.Option("--reject", metavar="REASON", help="reject every proposal (not edited)")
    ] = None,
    edit: Annotated[
        list[str] | None,
        typer.Option(
            "--edit",
            metavar="[ID:]NAME=VALUE ...",
            help="run these setpoints instead: --edit pitch1=0.3 pitch2=-0.5 (or --edit repeated)",
        ),
    ] = None,
    stop: Annotated[bool, typer.Option("--stop", help="stop the session")] = False,
    reason: Annotated[str, typer.Option("--reason", help="why, for the audit trail")] = "",
    as_json: JsonOpt = False,
    by: ByOpt = None,
    timeout: TimeoutOpt = 5.0,
    keys: KeysOpt = None,
) -> None:
    """Answer the checkpoint a running session waits at.

    At the terminal, a verdict per proposal; or at once with --approve, --reject, --edit or --stop.
    """

    def body() -> int:
        if pairs and not edit:
            raise SpecError(f"review: {pairs[0]!r}: setpoints go after --edit (--edit NAME=VALUE ...)")
        edits = [word for given in [*(edit or []), *(pairs or [])] for word in given.split()]
        interactive = not (approve or stop or reject is not None or edits)
        with ControlClient(folder, timeout=timeout, keys_dir=keys) as client:
            reply = client.call(build("checkpoint", by))
            if not reply.ok:
                return report(reply, as_json, "")
            if reply.result.get("checkpoint") is None:
                state = reply.result.get("state")
                raise SessionError(f"{folder}: no checkpoint is waiting" + (f" (state: {state})" if state else ""))
            info = CheckpointInfo.model_validate(reply.result["checkpoint"])
            if interactive:
                request = answer_at_terminal(info, by)
            else:
                request = answer_from_flags(info, by, approve, reject, edits, stop, reason)
            reply = client.call(request)
        answer = cast(AnswerRequest, request)  # build("answer", ...) makes one
        code = report(reply, as_json, describe_answer(answer, info))
        return EXIT_STOPPED if reply.ok and answer.stop else code

    _guarded(as_json, body)


# watch, pause, stop, budget --------------------------------------------------------------------------------------
def watch(
    folder: FolderArg, as_json: JsonOpt = False, by: ByOpt = None, timeout: TimeoutOpt = 5.0, keys: KeysOpt = None
) -> None:
    """Print a running session's events as they happen, a line each (JSON lines with --json).

    It starts with the recent ones, and ends when the session process ends, or quietly on Ctrl-C. Times are local
    (a line before the first event, and at each new day, names the date and the zone); setpoints carry their units.
    """

    def body() -> int:
        send(folder, build("status", by), timeout, keys)  # is it there, and does it answer us?
        events = subscribe(folder, keys_dir=keys)
        try:
            lines = (e.model_dump_json() for e in events) if as_json else event_lines(events, folder_units(folder))
            for line in lines:
                print(line, flush=True)
        except KeyboardInterrupt:
            return EXIT_OK
        if not as_json:
            print(f"the session process for {folder} has ended", flush=True)
        return EXIT_OK

    _guarded(as_json, body)


def pause(
    folder: FolderArg,
    reason: Annotated[str, typer.Option("--reason", help="why, for the audit trail")] = "",
    as_json: JsonOpt = False,
    by: ByOpt = None,
    timeout: TimeoutOpt = 5.0,
    keys: KeysOpt = None,
) -> None:
    """Hold a running session after its current run; the motors stay where they are."""
    said = "will pause after the current run (closedloop resume carries on)"
    _guarded(as_json, lambda: report(send(folder, build("pause", by, reason=reason), timeout, keys), as_json, said))


def stop_command(
    folder: FolderArg,
    abort: Annotated[bool, typer.Option("--abort", help="abort the current run now")] = False,
    reason: Annotated[str, typer.Option("--reason", help="why, for the audit trail")] = "",
    as_json: JsonOpt = False,
    by: ByOpt = None,
    timeout: TimeoutOpt = 5.0,
    keys: KeysOpt = None,
) -> None:
    """End a running session after its current run, or abort the run now with --abort."""
    done = "aborting the current run" if abort else "stopping after the current run"
    _guarded(
        as_json,
        lambda: report(send(folder, build("stop", by, abort=abort, reason=reason), timeout, keys), as_json, done),
    )


def budget(
    folder: FolderArg,
    experiments: Annotated[int, typer.Argument(help="successful experiments to run in all")],
    reason: Annotated[str, typer.Option("--reason", help="why, for the audit trail")] = "",
    as_json: JsonOpt = False,
    by: ByOpt = None,
    timeout: TimeoutOpt = 5.0,
    keys: KeysOpt = None,
) -> None:
    """Change how many successful experiments a running session runs."""

    def body() -> int:
        try:
            request = build("budget", by, experiments=experiments, reason=reason)
        except SpecError:
            _tell_refused(folder, unchecked_budget(by, experiments, reason), timeout, keys)
            raise
        return report(
            send(folder, request, timeout, keys),
            as_json,
            lambda result: f"budget: {experiments} experiments (was {fmt(result.get('was'))})",
        )

    _guarded(as_json, body)


def _tell_refused(folder: Path, request: Request, timeout: float, keys: Path | None) -> None:
    """Send a request refused here to the session all the same, unchecked, so that the session refuses it too and
    its audit trail records the attempt (nothing happens when no session process answers)."""
    try:
        send(folder, request, timeout, keys)
    except ClosedLoopError:
        pass


# keys and audit: no process needed -------------------------------------------------------------------------------
def keys_command(
    folder: FolderArg,
    name: Annotated[
        str, typer.Option("--name", help="who the key is for: what the audit trail records for its requests")
    ] = "client",
    as_json: JsonOpt = False,
) -> None:
    """Issue a CurveZMQ client key for a session, to let in an operator on another host or account.

    The session admits the key's public half; requests made with it are recorded under NAME. The session's owner
    needs no key of their own: it is made when the session starts.
    """

    def body() -> int:
        made = {what: str(path) for what, path in make_keys(folder, name).items()}
        if as_json:
            print(json.dumps(made))
        else:
            console.print(Text(f"server public key: {made['server']}"))
            console.print(Text(f"client secret key: {made['client']} (give it to {name}; use it with --keys FILE)"))
            console.print(Text(f"admitted:          {made['authorized']} (delete it to shut this client out)"))
        return EXIT_OK

    _guarded(as_json, body)


def audit(folder: FolderArg, as_json: JsonOpt = False) -> None:
    """Who decided what, when, from where and why, and what the session logged (no process needed)."""

    def body() -> int:
        trail = audit_trail(folder)
        if as_json:
            print(json.dumps({"folder": str(folder), "trail": trail}))
            return EXIT_OK
        console.print(audit_table(folder, trail))
        return EXIT_OK

    _guarded(as_json, body)


def results(
    folder: FolderArg,
    csv_file: Annotated[
        Path | None,
        typer.Option("--csv", metavar="FILE", help="write the table as CSV to FILE ('-': print it)", allow_dash=True),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Every run's result, in the order read: asked and read back, measured, how it ended, where and when it ran,
    its Bluesky run uid, who released it, and its lineage: which planner (version, seed) made it knowing how many
    observations, and what its model predicted there (no process needed). --csv FILE writes it as CSV."""

    def body() -> int:
        columns, rows, variables = session_results(folder)
        if csv_file is not None:
            text = as_csv(columns, rows)
            if str(csv_file) == "-":
                sys.stdout.write(text)
                return EXIT_OK
            try:
                csv_file.write_text(text)
            except OSError as exc:
                raise SpecError(f"--csv: cannot write {csv_file} ({exc.strerror or exc})") from None
            if not as_json:
                console.print(Text(f"{len(rows)} run(s) written to {csv_file}"))
        if as_json:
            print(json.dumps({"folder": str(folder), "columns": columns, "rows": rows}))
        elif csv_file is None:
            console.print(_results_table(folder, columns, rows, variables))
        return EXIT_OK

    _guarded(as_json, body)


def _results_table(folder: Path, columns: list[str], rows: list[dict[str, Any]], variables: list[str]) -> Table:
    """The table of :func:`results` for a terminal: each variable where the instrument read it back (asked when it
    read nothing back), the outputs, and how each run ended; the rest is in --csv and --json."""
    several = len({row["instrument"] for row in rows}) > 1
    outputs = columns[columns.index("status") + 1 + 2 * len(variables) : columns.index(TRAILING[0])]
    table = Table(title=Text(f"results of {folder}: {len(rows)} run(s)"), caption=Text(RESULTS_CAPTION))
    units = folder_units(folder)
    headed = [f"{v} ({units[v]})" if units.get(v) else v for v in variables]
    for column in ["#", "why", *(["instrument"] if several else []), "status", *headed, *outputs, "error"]:
        table.add_column(Text(column))
    for row in rows:
        cells = [row["experiment"], row["why"], *([row["instrument"]] if several else []), row["status"]]
        cells += [row[v + READ_BACK] if row[v + READ_BACK] is not None else row[v] for v in variables]
        cells += [row[name] for name in outputs] + [row["error"]]
        table.add_row(*(Text(fmt(cell)) for cell in cells))
    return table


RESULTS_CAPTION = (
    "variables as read back; --csv FILE or --json for all: asked and read back, scan id, start time, seconds, "
    "who released each run, the run's uid, and its lineage (planner, seed, observations known, prediction)"
)


# web: the operator's page ----------------------------------------------------------------------------------------
def web(
    folder: FolderArg,
    host: Annotated[str, typer.Option("--host", help="the address to serve on (plain HTTP: keep it on loopback)")] = (
        "127.0.0.1"
    ),
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="the port (0: any free one)")] = 8765,
    token: Annotated[
        str | None, typer.Option("--token", help="the access token the page needs (default: a new random one)")
    ] = None,
    operator: Annotated[
        list[str] | None,
        typer.Option(
            "--operator",
            metavar="NAME[=TOKEN]",
            help="give this operator an address of their own, with their own token (default: a new random one), "
            "and record what they do in their name; repeat it for each operator (instead of --token)",
        ),
    ] = None,
    max_streams: Annotated[
        int, typer.Option("--max-streams", min=1, help="the most live event streams (open pages) served at once")
    ] = 50,
    idle_timeout: Annotated[
        float,
        typer.Option("--idle-timeout", min=0.1, help="seconds after which a connection with no request is closed"),
    ] = 10.0,
    as_json: JsonOpt = False,
    by: ByOpt = None,
    timeout: TimeoutOpt = 5.0,
    keys: KeysOpt = None,
) -> None:
    """Serve the operator's web page for a session: its status, its instruments, the checkpoint to answer, pause,
    resume, stop, add points, budget, and its live events. Prints the page's address (with its access token), or
    each operator's own address (--operator)."""

    def body() -> int:
        from agent.web import WebGate, WebServer

        operators = _operators(operator or [])
        gate = WebGate(folder, keys_dir=keys, timeout=timeout, by=by)
        gate.session()  # a folder that holds no session is refused here, in one line
        try:
            server = WebServer(gate, host, port, token, operators, max_streams, idle_timeout)
        except OSError as exc:
            raise SpecError(f"--port: cannot serve on {host}:{port} ({exc.strerror or exc})") from None
        urls = server.operator_urls
        if as_json:
            print(json.dumps({"url": server.url, "operators": urls}), flush=True)
        elif urls:
            console.print(Text(f"the operator's page for {folder}, an address for each operator:"))
            for name, url in urls.items():
                console.print(Text(f"  {name}: {url}"), soft_wrap=True)
            console.print(Text("Ctrl-C ends it (the session goes on)"))
        else:
            console.print(Text(f"the operator's page for {folder}: {server.url}"), soft_wrap=True)
            console.print(Text("Ctrl-C ends it (the session goes on)"))
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            server.server_close()
        return EXIT_OK

    _guarded(as_json, body)


def _operators(given: list[str]) -> dict[str, str | None]:
    """``--operator NAME[=TOKEN]`` options as ``{name: token or None}``.

    Raises:
        SpecError: a name given twice.
    """
    operators: dict[str, str | None] = {}
    for item in given:
        name, _, chosen = item.partition("=")
        if name in operators:
            raise SpecError(f"--operator: {name} is given twice")
        operators[name] = chosen or None
    return operators


COMMANDS: dict[str, Callable[..., None]] = {
    "review": review,
    "watch": watch,
    "pause": pause,
    "stop": stop_command,
    "budget": budget,
    "keys": keys_command,
    "audit": audit,
    "results": results,
    "web": web,
}


def register(app: typer.Typer) -> None:
    """Mount the commands on a Typer app."""
    for name, command in COMMANDS.items():
        app.command(name)(command)


app = typer.Typer(add_completion=False, no_args_is_help=True, help="Operate a running closedloop session.")
register(app)


if __name__ == "__main__":
    sys.exit(app(prog_name="closedloop"))
