"""The options the operator's commands share (``--json``, ``--by``, ``--timeout``, ``--keys``, the folder)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

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
