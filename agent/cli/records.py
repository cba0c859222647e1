"""The commands that read a session's folder and need no running process: ``keys`` (issue an operator a client
key), ``audit`` (the audit trail) and ``results`` (every run's result, as a table, CSV or JSON).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from agent.cli.exits import guarded
from agent.cli.options import FolderArg, JsonOpt
from agent.operator import make_keys
from agent.views import READ_BACK, TRAILING, as_csv, audit_table, audit_trail, fmt, folder_units, session_results
from closedloop.errors import ExitCode, SpecError

console = Console(highlight=False)


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
        return ExitCode.OK

    guarded(body, as_json)


def audit(folder: FolderArg, as_json: JsonOpt = False) -> None:
    """Who decided what, when, from where and why, and what the session logged (no process needed)."""

    def body() -> int:
        trail = audit_trail(folder)
        if as_json:
            print(json.dumps({"folder": str(folder), "trail": trail}))
            return ExitCode.OK
        console.print(audit_table(folder, trail))
        return ExitCode.OK

    guarded(body, as_json)


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
                return ExitCode.OK
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
        return ExitCode.OK

    guarded(body, as_json)


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
