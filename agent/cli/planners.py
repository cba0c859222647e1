"""``closedloop planners [NAME] [--json]``: the registered planners, and one planner's options with their defaults.

Reads each planner's options model (:mod:`planners.options`) without loading the planner, so it imports no torch
for our planners. A planner from another package is loaded to read its ``options_model`` (or, without one, its
constructor's parameters). Exit codes as every command: 0, or 2 for an unknown planner.
"""

from __future__ import annotations

import inspect
import json
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from agent.cli.exits import exit_code, fail
from closedloop.errors import ClosedLoopError

console = Console()


def planner_listing() -> list[dict[str, Any]]:
    """Every registered planner: ``{name, class, summary, options}`` (option names), sorted by name."""
    from planners.options import BUILTIN_OPTIONS
    from planners.registry import planner_paths

    out = []
    for name, path in planner_paths().items():
        model = BUILTIN_OPTIONS.get(path)
        out.append(
            {
                "name": name,
                "class": path,
                "summary": model.summary if model else "",
                "options": list(model.model_fields) if model else None,
            }
        )
    return out


def planner_detail(name: str) -> dict[str, Any]:
    """One planner (a registered name or an import path): ``{name, class, summary, options: [{name, type,
    default, description}]}``.

    Raises:
        PlannerError: the planner is unknown or does not import.
    """
    from planners.options import describe
    from planners.registry import options_model, planner_class, planner_paths

    registered = planner_paths()
    path = name if ":" in name else registered.get(name, name)
    model = options_model(name)  # raises for an unknown name
    if model is not None:
        return {"name": name, "class": path, "summary": model.summary, "options": describe(model)}
    factory = planner_class(name)
    options = []
    for parameter in inspect.signature(factory).parameters.values():
        if parameter.name in ("self", "vocs") or parameter.kind in (parameter.VAR_KEYWORD, parameter.VAR_POSITIONAL):
            continue
        default = None if parameter.default is inspect.Parameter.empty else parameter.default
        kind = "" if parameter.annotation is inspect.Parameter.empty else str(parameter.annotation)
        options.append({"name": parameter.name, "type": kind, "default": _jsonable(default), "description": ""})
    summary = (inspect.getdoc(factory) or "").split("\n")[0]
    return {"name": name, "class": path, "summary": summary, "options": options}


def _jsonable(value: Any) -> Any:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return repr(value)
    return value


def _shown(value: Any) -> str:
    return "-" if value is None else escape(json.dumps(value) if not isinstance(value, str) else value)


def planners(
    name: Annotated[str | None, typer.Argument(help="a planner name or import path: show its options")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print as JSON")] = False,
) -> None:
    """The registered planners; with NAME, that planner's options, their defaults and what each does."""
    if name is None:
        listing = planner_listing()
        if as_json:
            console.print_json(json.dumps(listing))
            return
        table = Table(title="Planners (closedloop planners NAME shows a planner's options)")
        for column in ("name", "what it does", "options"):
            table.add_column(column)
        for item in listing:
            options = ", ".join(item["options"]) if item["options"] is not None else "(see its class)"
            table.add_row(item["name"], escape(item["summary"] or item["class"]), options or "none")
        console.print(table)
        return
    try:
        detail = planner_detail(name)
    except ClosedLoopError as exc:
        raise fail(str(exc), exit_code(exc)) from None
    if as_json:
        console.print_json(json.dumps(detail))
        return
    table = Table(title=f"{name} ({detail['class']}): {escape(detail['summary'])}" if detail["summary"] else name)
    for column in ("option", "default", "type", "what it does"):
        table.add_column(column)
    for option in detail["options"]:
        table.add_row(option["name"], _shown(option["default"]), escape(option["type"]), escape(option["description"]))
    if not detail["options"]:
        table.add_row("(none)", "", "", "")
    console.print(table)
    console.print("Set them under planner.options in the session file.", style="dim")
