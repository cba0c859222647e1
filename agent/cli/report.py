"""``closedloop report DIR`` and ``closedloop compare DIR DIR...``: a session's report, or sessions compared, as
one self-contained HTML file (or the report's figures as PNG files). Read the stores only.

Exit codes as every command: 0, or 2 for bad input (a folder that holds no session, sessions that pose different
problems, an ``--out`` that cannot be written), with one line naming what is wrong.
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from closedloop.errors import ClosedLoopError

EXIT_BAD_INPUT = 2

console = Console()
err = Console(stderr=True)


class ReportFormat(str, Enum):
    """What ``closedloop report`` writes."""

    HTML = "html"
    PNG = "png"


def _bad(message: str) -> typer.Exit:
    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    return typer.Exit(EXIT_BAD_INPUT)


def _writable(path: Path) -> None:
    """Refuse, before any work, an ``--out`` file that cannot be written: a folder, or in a missing folder."""
    if path.is_dir():
        raise _bad(f"--out: {path} is a folder; give a file name")
    if not path.parent.is_dir():
        raise _bad(f"--out: {path.parent} does not exist")


def _write(path: Path, text: str) -> None:
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise _bad(f"--out: cannot write {path}: {exc.strerror or exc}") from None


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

    try:
        if format == ReportFormat.PNG:
            target = out or folder / "figures"
            if target.exists() and not target.is_dir():
                raise _bad(f"--out: {target} is a file; --format png writes a folder of figures")
            try:
                paths = write_pngs(folder, target)
            except OSError as exc:
                raise _bad(f"--out: cannot write {target}: {exc.strerror or exc}") from None
            console.print(f"wrote {len(paths)} figures to {escape(str(target))}", highlight=False)
            return
        target = out or folder / "report.html"
        _writable(target)
        page = report_html(folder)
    except ClosedLoopError as exc:
        raise _bad(str(exc)) from None
    _write(target, page)
    console.print(f"wrote {escape(str(target))}", highlight=False)


def compare(
    folders: Annotated[list[Path], typer.Argument(help="Two session folders or more, on the same problem.")],
    out: Annotated[Path, typer.Option("--out", help="The HTML file to write.")] = Path("compare.html"),
) -> None:
    """Compare sessions on the same problem (different planners or options) in one self-contained HTML page."""
    from agent.views import compare_html

    _writable(out)
    try:
        page = compare_html(folders)
    except ClosedLoopError as exc:
        raise _bad(str(exc)) from None
    _write(out, page)
    console.print(f"wrote {escape(str(out))}", highlight=False)


def register(app: typer.Typer) -> None:
    """Mount ``report`` and ``compare`` on a Typer app."""
    app.command("report")(report)
    app.command("compare")(compare)
