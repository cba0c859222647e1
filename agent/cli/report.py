"""``closedloop report DIR`` and ``closedloop compare DIR DIR...``: a session's report, or sessions compared, as
one self-contained HTML file (or the report's figures as PNG files). Read the stores only.

Exit codes as every command (:mod:`agent.cli.exits`): 0, or 2 for bad input (a folder that holds no session,
sessions that pose different problems, an ``--out`` that cannot be written), with one line naming what is wrong.
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from agent.cli.exits import guarded
from agent.store import SessionFolder
from closedloop.errors import ExitCode, SpecError

console = Console()


class ReportFormat(str, Enum):
    """What ``closedloop report`` writes."""

    HTML = "html"
    PNG = "png"


def _writable(path: Path) -> None:
    """Refuse, before any work, an ``--out`` file that cannot be written: a folder, or in a missing folder."""
    if path.is_dir():
        raise SpecError(f"--out: {path} is a folder; give a file name")
    if not path.parent.is_dir():
        raise SpecError(f"--out: {path.parent} does not exist")


def _write(path: Path, text: str) -> None:
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise SpecError(f"--out: cannot write {path}: {exc.strerror or exc}") from None


def report(
    folder: Annotated[Path, typer.Argument(help="The session folder.")],
    out: Annotated[
        Path | None,
        typer.Option(
            "--out", help="The HTML file to write (default DIR/report.html), or with --format png the folder."
        ),
    ] = None,
    format: Annotated[ReportFormat, typer.Option("--format", help="html: one page; png: the figures alone.")] = (
        ReportFormat.HTML
    ),
) -> None:
    """Write a session's report: one self-contained HTML page (or its figures as PNG files)."""
    from agent.views import report_html, write_pngs

    def body() -> int:
        if format == ReportFormat.PNG:
            target = out or SessionFolder(folder).figures_dir
            if target.exists() and not target.is_dir():
                raise SpecError(f"--out: {target} is a file; --format png writes a folder of figures")
            try:
                paths = write_pngs(folder, target)
            except OSError as exc:
                raise SpecError(f"--out: cannot write {target}: {exc.strerror or exc}") from None
            console.print(f"wrote {len(paths)} figures to {escape(str(target))}", highlight=False)
            return ExitCode.OK
        target = out or SessionFolder(folder).report_file
        _writable(target)
        _write(target, report_html(folder))
        console.print(f"wrote {escape(str(target))}", highlight=False)
        return ExitCode.OK

    guarded(body)


def compare(
    folders: Annotated[list[Path], typer.Argument(help="Two session folders or more, on the same problem.")],
    out: Annotated[Path, typer.Option("--out", help="The HTML file to write.")] = Path("compare.html"),
) -> None:
    """Compare sessions on the same problem (different planners or options) in one self-contained HTML page."""
    from agent.views import compare_html

    def body() -> int:
        _writable(out)
        _write(out, compare_html(folders))
        console.print(f"wrote {escape(str(out))}", highlight=False)
        return ExitCode.OK

    guarded(body)


def register(app: typer.Typer) -> None:
    """Mount ``report`` and ``compare`` on a Typer app."""
    app.command("report")(report)
    app.command("compare")(compare)
