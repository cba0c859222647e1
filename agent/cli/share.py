"""The commands that share sessions (:mod:`agent.provenance`): ``sessions``, ``export``, ``replay``. Each reads
stores and bundles only.

Exit codes as every command: 0 success; 1 a replay whose proposals do not all match, or a bundle refused by
replay; 2 bad input (a missing, truncated, altered or newer bundle, an OUT that exists, a PATH that is not a
folder), with one line naming what is wrong, and nothing half-written.
"""

from __future__ import annotations

import datetime
import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from agent.cli.exits import fail, guarded
from closedloop.errors import ClosedLoopError, ExitCode

console = Console()


class ReplayFailed(ClosedLoopError, RuntimeError):
    """A replay that could not be carried out, or whose bundle was refused: exit 1 (elsewhere, as ``--from``, the
    same bundle is bad input)."""

    exit_code = ExitCode.FAILED


def _when(timestamp: Any) -> str:
    if not isinstance(timestamp, int | float):
        return "-"
    return datetime.datetime.fromtimestamp(timestamp).astimezone().strftime("%Y-%m-%d %H:%M")


def sessions(
    path: Annotated[Path, typer.Argument(help="a folder to search for sessions (its sub-folders too)")],
    as_json: Annotated[bool, typer.Option("--json", help="print as JSON")] = False,
) -> None:
    """Every session under a folder: name, id, state, experiments, best value, planner and last activity, newest
    first (read from the stores: safe while sessions run)."""
    from agent.provenance.sessions import list_sessions
    from agent.views.display import fmt

    def body() -> int:
        rows = list_sessions(path)
        if as_json:
            print(json.dumps({"path": str(path), "sessions": rows}))
            return ExitCode.OK
        shown = ("name", "state", "experiments", "best_value", "planner", "last_activity")
        table = Table(title=Text(f"sessions under {path}: {len(rows)}"), caption="ids and folders: --json")
        for column in shown:
            table.add_column(Text(column.replace("_", " ")), overflow="fold")
        for row in rows:
            cells = [row[c] if c != "last_activity" else _when(row[c]) for c in shown]
            table.add_row(*(Text(fmt(cell) if isinstance(cell, float) else str(cell or "-")) for cell in cells))
        console.print(table)
        return ExitCode.OK

    guarded(body)


def export(
    folder: Annotated[Path, typer.Argument(help="the session folder (running, stopped or finished)")],
    out: Annotated[Path, typer.Argument(help="the bundle to write: a new folder, or a file ending in .zip")],
    as_json: Annotated[bool, typer.Option("--json", help="print what was written as JSON")] = False,
) -> None:
    """Write a session as one shareable RO-Crate bundle: the session file, every run's documents, the observations
    with their lineage (CSV and Parquet), decisions and audit trail, the software versions, a SESSION.md card, and
    every file's checksum. The session is only read."""
    from agent.provenance.export import export_session

    def body() -> int:
        written = export_session(folder, out)
        if as_json:
            print(json.dumps(written))
        else:
            console.print(
                Text(
                    f"wrote {out}: {written['observations']} observation(s), {written['files']} files, "
                    f"{written['bytes']} bytes"
                )
            )
        return ExitCode.OK

    guarded(body)


def replay(
    bundle: Annotated[Path, typer.Argument(help="a bundle written by closedloop export (a folder or a .zip)")],
    as_json: Annotated[bool, typer.Option("--json", help="print the comparison as JSON")] = False,
) -> None:
    """Rebuild the planner from a bundle and re-derive every proposal it made from the data it had then; exit 0
    when all match (within a millionth of each variable's range), 1 otherwise, naming the first mismatch. A bundle
    whose files do not match their checksums is refused (exit 1) before anything is replayed."""
    from agent.provenance.bundle import BundleAltered
    from agent.provenance.replay import NotReplayable, replay_bundle

    def body() -> int:
        try:
            found = replay_bundle(bundle)
        except (BundleAltered, NotReplayable) as exc:
            raise ReplayFailed(str(exc)) from None
        if as_json:
            print(json.dumps(found))
        else:
            console.print(
                Text(
                    f"{found['reproduced']} of {found['proposals']} planner proposals reproduced"
                    f" ({found['operator']} by an operator, not replayed)"
                )
            )
        if found["mismatches"]:
            first = found["mismatches"][0]
            raise fail(
                f"{len(found['mismatches'])} mismatch(es); the first: {first['proposal']} "
                f"({first['why']}) recorded {first['recorded']}, replayed {first['replayed']}",
                ExitCode.FAILED,
            )
        return ExitCode.OK

    guarded(body)


def register(app: typer.Typer) -> None:
    """Mount ``sessions``, ``export`` and ``replay`` on a Typer app."""
    app.command("sessions")(sessions)
    app.command("export")(export)
    app.command("replay")(replay)
