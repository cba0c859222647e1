"""The operator's commands on a running session, from any terminal: review, watch, pause, stop, budget, and web (the
same from a browser); and keys, audit and results, which need no running process.

:func:`register` mounts them on a Typer app (``closedloop`` mounts them on its own); ``python -m
agent.cli.control`` runs them alone. Each takes ``--json``; those that talk to the session take ``--by NAME`` (who
the audit trail names; default the OS user; a key issued to someone is recorded under its own name instead),
``--timeout S`` and ``--keys PATH`` (a CurveZMQ client key file or its folder; default the session owner's own, in
``DIR/keys``). :func:`send` is the one call they share, for other commands (add, resume) to reuse. keys, audit
and results are :mod:`agent.cli.records`'s.

Exit codes: 0 done; 1 no session process runs, it did not answer, or it refused (too late, not possible now);
2 bad input (one line naming the field); 3 the answer given was stop.
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, cast

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.text import Text

from agent.cli.exits import guarded
from agent.cli.options import ByOpt, FolderArg, JsonOpt, KeysOpt, TimeoutOpt
from agent.cli.records import audit, keys_command, results
from agent.operator import (
    ControlClient,
    answer_at_terminal,
    answer_from_flags,
    build,
    describe_answer,
    subscribe,
    unchecked_budget,
)
from agent.views import (
    event_lines,
    fmt,
    folder_units,
)
from closedloop.control import (
    AnswerRequest,
    CheckpointInfo,
    Reply,
    Request,
    printable,
)
from closedloop.errors import ClosedLoopError, ExitCode, RefusedError, SpecError

console = Console(highlight=False)
err = Console(stderr=True, highlight=False)


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
        return ExitCode.OK
    return ExitCode.BAD_INPUT if reply.code == "invalid" else ExitCode.FAILED


def _refusal(reply: Reply) -> str:
    if reply.code == "late":
        return f"too late: answered already by {reply.result.get('answered_by', 'someone else')}"
    return reply.error or "refused"


def _guarded(as_json: bool, body: Callable[[], int]) -> None:
    """Run a command through the one error handler (:func:`agent.cli.exits.guarded`), a reply that does not parse
    (from a session speaking another dialect) counting as a failure."""

    def parsed() -> int:
        try:
            return body()
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(part) for part in first["loc"])
            raise ClosedLoopError(f"the session's reply is not understood: {where}: {first['msg']}") from None

    guarded(parsed, as_json)


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
                raise RefusedError(f"{folder}: no checkpoint is waiting" + (f" (state: {state})" if state else ""))
            info = CheckpointInfo.model_validate(reply.result["checkpoint"])
            if interactive:
                request = answer_at_terminal(info, by)
            else:
                request = answer_from_flags(info, by, approve, reject, edits, stop, reason)
            reply = client.call(request)
        answer = cast(AnswerRequest, request)  # build("answer", ...) makes one
        code = report(reply, as_json, describe_answer(answer, info))
        return ExitCode.STOPPED if reply.ok and answer.stop else code

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
            return ExitCode.OK
        if not as_json:
            print(f"the session process for {folder} has ended", flush=True)
        return ExitCode.OK

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
    with contextlib.suppress(ClosedLoopError):
        send(folder, request, timeout, keys)


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
        return ExitCode.OK

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
