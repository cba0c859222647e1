"""The operator's commands on a running session, from any terminal: review, watch, pause, stop, budget; and keys
and audit, which need no running process.

:func:`register` mounts them on a Typer app (``closedloop`` mounts them on its own); ``python -m
agent.cli_control`` runs them alone. Each takes ``--json``; those that talk to the session take ``--by NAME`` (who
the audit trail names; default the OS user), ``--timeout S`` and ``--keys DIR`` (a CurveZMQ client key, default
``DIR/keys``). :func:`send` is the one call they share, for other commands (add, resume) to reuse.

Exit codes: 0 done; 1 no session process runs, it did not answer, or it refused (too late, not possible now);
2 bad input (one line naming the field); 3 the answer given was stop.
"""

from __future__ import annotations

import datetime
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

from agent.control import ControlClient, make_keys, subscribe
from agent.display import checkpoint_table, event_line, fmt
from closedloop.control import (
    AnswerRequest,
    CheckpointInfo,
    ProposalInfo,
    Reply,
    Request,
    operator_name,
    validate_request,
)
from closedloop.errors import ClosedLoopError, SessionError, SpecError
from closedloop.records import new_id

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_STOPPED = 0, 1, 2, 3
STORE_FILE = "store.sqlite"

console = Console(highlight=False)
err = Console(stderr=True, highlight=False)

JsonOpt = Annotated[bool, typer.Option("--json", help="print the reply as JSON")]
ByOpt = Annotated[str | None, typer.Option("--by", help="your name for the audit trail (default: the OS user)")]
TimeoutOpt = Annotated[float, typer.Option("--timeout", min=0.01, help="seconds to wait for the session's answer")]
KeysOpt = Annotated[Path | None, typer.Option("--keys", help="folder holding your CurveZMQ client key")]
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


def build(kind: str, by: str | None, **fields: Any) -> Request:
    """A request of ``kind`` from the command line's values, checked as the session would check it.

    Raises:
        SpecError: a value is out of range; the message names the field (``budget.experiments: ...``).
    """
    return validate_request(
        {"v": 1, "id": new_id("r"), "type": kind, "by": by or operator_name(), "via": "channel", **fields}
    )


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
    err.print(Text("error: ", style="bold red") + Text(message), soft_wrap=True)
    return code


def _finish(reply: Reply, as_json: bool, done: str) -> int:
    """Print a reply (``done`` when it succeeded) and return its exit code."""
    if as_json:
        print(reply.model_dump_json())
    if not reply.ok:
        err.print(Text("error: ", style="bold red") + Text(_refusal(reply)), soft_wrap=True)
    elif not as_json:
        extra = fmt(reply.result) if reply.result else ""
        console.print(Text(f"{done}: {extra}" if extra else done), soft_wrap=True)
    return exit_code(reply)


# review ----------------------------------------------------------------------------------------------------------
def _value(text: str) -> float | str:
    try:
        return float(text)
    except ValueError:
        return text


def parse_edits(words: list[str], info: CheckpointInfo) -> dict[str, dict[str, float | str]]:
    """``["[ID:]NAME=VALUE", ...]`` as ``{proposal id: {name: value}}``; the id may be left out for one proposal.

    Raises:
        SpecError: a word is malformed, or names a proposal or variable the checkpoint does not hold.
    """
    ids = [p.id for p in info.proposals]
    edits: dict[str, dict[str, float | str]] = {}
    for word in words:
        left, sep, value = word.partition("=")
        proposal_id, colon, name = left.rpartition(":")
        name, value = name.strip(), value.strip()
        if not sep or not name or not value:
            raise SpecError(f"--edit: {word!r} is not [ID:]NAME=VALUE")
        if not colon:
            if len(ids) != 1:
                raise SpecError(f"--edit: the checkpoint holds {len(ids)} proposals; write ID:NAME=VALUE ({word!r})")
            proposal_id = ids[0]
        if proposal_id not in ids:
            raise SpecError(f"--edit: no proposal {proposal_id} at this checkpoint (it holds {', '.join(ids)})")
        if info.variables and name not in info.variables:
            raise SpecError(f"--edit.{name}: not a variable of this session (one of {', '.join(info.variables)})")
        edits.setdefault(proposal_id, {})[name] = _value(value)
    return edits


def answer_from_flags(
    info: CheckpointInfo, by: str | None, approve: bool, reject: str | None, edit: list[str], stop: bool, reason: str
) -> Request:
    """The answer the non-interactive flags of ``review`` give at this checkpoint.

    ``--stop`` stops; otherwise each proposal gets its ``--edit`` if it has one, else ``--approve`` or
    ``--reject REASON``. A checkpoint without proposals is carried on with ``--approve``.

    Raises:
        SpecError: the flags contradict each other or leave a proposal unanswered.
    """
    if stop:
        if approve or reject is not None or edit:
            raise SpecError("--stop: give it alone, without --approve, --reject or --edit")
        return build("answer", by, checkpoint=info.checkpoint, stop=True, reason=reason)
    if approve and reject is not None:
        raise SpecError("--approve and --reject: give one of them")
    edits = parse_edits(edit, info)
    answers = []
    for proposal in info.proposals:
        if proposal.id in edits:
            setpoints = {**proposal.setpoints, **edits[proposal.id]}
            answers.append({"proposal_id": proposal.id, "verdict": "edit", "setpoints": setpoints, "reason": reason})
        elif approve or reject is not None:
            verdict = "approve" if approve else "reject"
            answers.append({"proposal_id": proposal.id, "verdict": verdict, "reason": reject or reason})
        else:
            raise SpecError(f"review: proposal {proposal.id} is not answered; add --approve or --reject REASON")
    return build("answer", by, checkpoint=info.checkpoint, answers=answers, reason=reason)


def _ask(prompt: str) -> str:
    try:
        return console.input(Text(prompt, style="bold")).strip()
    except EOFError:
        raise SessionError("no answer given; nothing was sent") from None


def _ask_proposal(proposal: ProposalInfo, info: CheckpointInfo) -> dict[str, Any] | None:
    """One proposal's verdict from the terminal; None for stop."""
    while True:
        answer = _ask(f"{proposal.id}: approve, reject, edit or stop? [a/r/e/s] ").lower()
        if answer in ("a", "approve"):
            return {"proposal_id": proposal.id, "verdict": "approve"}
        if answer in ("r", "reject"):
            return {"proposal_id": proposal.id, "verdict": "reject", "reason": _ask("why? ")}
        if answer in ("s", "stop"):
            return None
        if answer in ("e", "edit"):
            words = _ask("new setpoints, NAME=VALUE ...: ").split()
            try:
                edits = parse_edits([f"{proposal.id}:{w}" for w in words], info) if words else {}
            except SpecError as exc:
                err.print(Text(str(exc)))
                continue
            if edits:
                setpoints = {**proposal.setpoints, **edits[proposal.id]}
                return {"proposal_id": proposal.id, "verdict": "edit", "setpoints": setpoints}
        console.print(Text("please answer a (approve), r (reject), e (edit) or s (stop)"))


def answer_at_terminal(info: CheckpointInfo, by: str | None) -> Request:
    """Show the checkpoint and ask for a verdict per proposal (or carry on / stop when it holds none).

    Raises:
        SessionError: the input ended before an answer was complete (nothing is sent).
    """
    console.print(checkpoint_table(info))
    if not info.proposals:
        while True:
            answer = _ask(f"{info.reason or info.kind}: carry on or stop? [c/s] ").lower()
            if answer in ("c", "carry on", "continue", "a", "approve"):
                return build("answer", by, checkpoint=info.checkpoint)
            if answer in ("s", "stop"):
                return build("answer", by, checkpoint=info.checkpoint, stop=True)
    answers = []
    for proposal in info.proposals:
        verdict = _ask_proposal(proposal, info)
        if verdict is None:
            return build("answer", by, checkpoint=info.checkpoint, stop=True)
        answers.append(verdict)
    return build("answer", by, checkpoint=info.checkpoint, answers=answers)


def _describe_answer(request: AnswerRequest) -> str:
    if request.stop:
        return f"answered {request.checkpoint}: stop"
    verdicts = [f"{a.proposal_id} {a.verdict}" + (f" ({a.reason})" if a.reason else "") for a in request.answers]
    return f"answered {request.checkpoint}: " + (", ".join(verdicts) or "carry on")


def review(
    folder: FolderArg,
    approve: Annotated[bool, typer.Option("--approve", help="approve every proposal (not edited)")] = False,
    reject: Annotated[
        str | None, typer.Option("--reject", metavar="REASON", help="reject every proposal (not edited)")
    ] = None,
    edit: Annotated[
        list[str] | None, typer.Option("--edit", metavar="[ID:]NAME=VALUE", help="run this setpoint instead")
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
        interactive = not (approve or stop or reject is not None or edit)
        with ControlClient(folder, timeout=timeout, keys_dir=keys) as client:
            reply = client.call(build("checkpoint", by))
            if not reply.ok:
                return _finish(reply, as_json, "")
            if reply.result.get("checkpoint") is None:
                state = reply.result.get("state")
                raise SessionError(f"{folder}: no checkpoint is waiting" + (f" (state: {state})" if state else ""))
            info = CheckpointInfo.model_validate(reply.result["checkpoint"])
            if interactive:
                request = answer_at_terminal(info, by)
            else:
                request = answer_from_flags(info, by, approve, reject, edit or [], stop, reason)
            reply = client.call(request)
        answer = cast(AnswerRequest, request)  # build("answer", ...) makes one
        code = _finish(reply, as_json, _describe_answer(answer))
        return EXIT_STOPPED if reply.ok and answer.stop else code

    _guarded(as_json, body)


# watch, pause, stop, budget --------------------------------------------------------------------------------------
def watch(
    folder: FolderArg, as_json: JsonOpt = False, by: ByOpt = None, timeout: TimeoutOpt = 5.0, keys: KeysOpt = None
) -> None:
    """Print a running session's events as they happen (JSON lines with --json).

    It starts with the recent ones, and ends when the session process ends, or quietly on Ctrl-C.
    """

    def body() -> int:
        send(folder, build("status", by), timeout, keys)  # is it there, and does it answer us?
        try:
            for event in subscribe(folder, keys_dir=keys):
                print(event.model_dump_json() if as_json else event_line(event), flush=True)
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
    _guarded(
        as_json, lambda: _finish(send(folder, build("pause", by, reason=reason), timeout, keys), as_json, "pausing")
    )


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
        lambda: _finish(send(folder, build("stop", by, abort=abort, reason=reason), timeout, keys), as_json, done),
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
        request = build("budget", by, experiments=experiments, reason=reason)
        return _finish(send(folder, request, timeout, keys), as_json, f"budget set to {experiments}")

    _guarded(as_json, body)


# keys and audit: no process needed -------------------------------------------------------------------------------
def keys_command(
    folder: FolderArg,
    name: Annotated[str, typer.Option("--name", help="the client key's name (one per operator or machine)")] = "client",
    as_json: JsonOpt = False,
) -> None:
    """Make CurveZMQ keys for a session folder, which a control channel off loopback needs.

    The server's pair (once) and a client pair; the session admits the client's public key.
    """

    def body() -> int:
        made = {what: str(path) for what, path in make_keys(folder, name).items()}
        if as_json:
            print(json.dumps(made))
        else:
            console.print(Text(f"server public key: {made['server']}"))
            console.print(Text(f"client secret key: {made['client']} (give it to the operator; keep it private)"))
            console.print(Text(f"admitted:          {made['authorized']} (delete it to shut this client out)"))
        return EXIT_OK

    _guarded(as_json, body)


def _when(timestamp: float) -> str:
    return datetime.datetime.fromtimestamp(timestamp).astimezone().isoformat(timespec="seconds")


def audit_trail(folder: Path) -> list[dict[str, Any]]:
    """Every decision and audit-log line of a session, oldest first, read from its store (no process needed).

    Each entry has ``time`` (ISO), ``timestamp``, ``source`` (``decision`` or ``log``), ``who``, ``via``, ``what``,
    ``detail`` and ``why``; a decision's other fields are kept under ``decision``.

    Raises:
        SpecError: the folder holds no session.
    """
    from agent.store import SessionStore

    if not (Path(folder) / STORE_FILE).exists():
        raise SpecError(f"{folder}: holds no session (no {STORE_FILE})")
    store = SessionStore(Path(folder) / STORE_FILE)
    try:
        decisions, lines = store.decisions(), store.events()
    finally:
        store.close()
    trail: list[dict[str, Any]] = []
    for iteration, decision in decisions:
        fields = decision.model_dump(mode="json")
        ids = fields.get("proposal_ids") or []
        rest = {k: v for k, v in fields.items() if k not in ("verdict", "proposal_ids", "by", "reason", "at", "via")}
        detail = f"iteration {iteration}" + (f", {', '.join(ids)}" if ids else "")
        detail += "".join(f", {key}={fmt(value)}" for key, value in rest.items() if value not in (None, "", [], {}))
        trail.append(
            {
                "timestamp": decision.at,
                "source": "decision",
                "who": fields.get("by"),
                "via": fields.get("via"),
                "what": str(fields.get("verdict")),
                "detail": detail,
                "why": fields.get("reason") or "",
                "decision": {"iteration": iteration, **fields},
            }
        )
    for timestamp, kind, message in lines:
        entry: dict[str, Any] = {"timestamp": timestamp, "source": "log", "who": None, "via": None}
        trail.append({**entry, "what": kind, "detail": message, "why": ""})
    trail.sort(key=lambda entry: entry["timestamp"])
    for entry in trail:
        entry["time"] = _when(entry["timestamp"])
    return trail


def audit(folder: FolderArg, as_json: JsonOpt = False) -> None:
    """Who decided what, when, from where and why, and what the session logged (no process needed)."""

    def body() -> int:
        trail = audit_trail(folder)
        if as_json:
            print(json.dumps({"folder": str(folder), "trail": trail}))
            return EXIT_OK
        table = Table(title=Text(f"audit trail of {folder}"))
        for column in ("when", "who", "via", "what", "detail", "why"):
            table.add_column(Text(column))
        for e in trail:
            row = [e["time"], e["who"] or "-", e["via"] or "-", e["what"], e["detail"], e["why"] or "-"]
            table.add_row(*(Text(str(cell)) for cell in row), style="bold" if e["source"] == "decision" else None)
        console.print(table)
        return EXIT_OK

    _guarded(as_json, body)


COMMANDS: dict[str, Callable[..., None]] = {
    "review": review,
    "watch": watch,
    "pause": pause,
    "stop": stop_command,
    "budget": budget,
    "keys": keys_command,
    "audit": audit,
}


def register(app: typer.Typer) -> None:
    """Mount the commands on a Typer app."""
    for name, command in COMMANDS.items():
        app.command(name)(command)


app = typer.Typer(add_completion=False, no_args_is_help=True, help="Operate a running closedloop session.")
register(app)


if __name__ == "__main__":
    sys.exit(app(prog_name="closedloop"))
