"""MkDocs hooks: the reference pages generated from the code, so that they cannot drift from it.

A page holds a marker comment where a generated part goes:

- ``<!-- generated: session-file -->``: every field of the session file, section by section, with its type, its
  default and its meaning, from the pydantic models in ``closedloop/`` (the meaning is the field's ``description``,
  or its entry in the model's ``Attributes:`` docstring section);
- ``<!-- generated: cli -->``: every ``closedloop`` command with its arguments and options, from the typer app;
- ``<!-- generated: planner-options -->``: every shipped planner's options, from ``planners/options.py``;
- ``<!-- generated: problem-set -->``: the bundled problems of ``closedloop bench``, from ``benchmarks/``.

A model field without a meaning, or a marker with no generator, fails the (strict) build.
"""

from __future__ import annotations

import inspect
import re
import types
import typing
from collections.abc import Iterator
from typing import Any

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

MARKER = re.compile(r"<!-- generated: ([a-z-]+) -->")


def attribute_docs(model: type[BaseModel]) -> dict[str, str]:
    """The ``Attributes:`` entries of ``model``'s docstring (and its bases'), name -> text on one line."""
    found: dict[str, str] = {}
    for cls in reversed(model.__mro__):
        doc = inspect.getdoc(cls) or ""
        section = re.search(r"^Attributes:\n(.*?)(?:\n\S|\Z)", doc, flags=re.S | re.M)
        if not section:
            continue
        current = None
        for line in section.group(1).splitlines():
            entry = re.match(r"^    (\w+)(?: \([^)]*\))?: (.*)$", line)
            if entry:
                current = entry.group(1)
                found[current] = entry.group(2).strip()
            elif current and line.startswith("        "):
                found[current] += " " + line.strip()
    return found


def type_name(annotation: Any) -> str:
    """A reader's name for a field's type: ``number``, ``list of VariableSpec``, ``a | b``..."""
    origin = typing.get_origin(annotation)
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if origin in (typing.Union, types.UnionType):
        names = " or ".join(type_name(a) for a in args)
        return names
    if origin is typing.Literal:
        return " or ".join(f"`{a}`" for a in typing.get_args(annotation))
    if origin is list:
        return f"list of {type_name(args[0])}" if args else "list"
    if origin is dict:
        return f"map of name to {type_name(args[1])}" if len(args) == 2 else "map"
    if origin is typing.Annotated:
        return type_name(args[0])
    simple = {int: "integer", float: "number", str: "text", bool: "true or false", Any: "any"}
    if annotation in simple:
        return simple[annotation]
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return f"[{annotation.__name__}](#{annotation.__name__.lower()})"
    if isinstance(annotation, type) and hasattr(annotation, "__members__"):  # an Enum
        return " or ".join(f"`{m.value}`" for m in annotation.__members__.values())
    return getattr(annotation, "__name__", str(annotation))


def default_of(field: Any) -> str:
    if field.is_required():
        return "required"
    if field.default_factory is not None:
        value = field.default_factory()
        return "empty" if value in ({}, []) else "see its section"
    if field.default is None:
        return "none"
    if field.default is PydanticUndefined:
        return "required"
    value = getattr(field.default, "value", field.default)
    return f"`{value}`"


def nested_models(annotation: Any) -> Iterator[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation
    for arg in typing.get_args(annotation):
        yield from nested_models(arg)


def session_file() -> str:
    """One table per section of the session file, from :class:`closedloop.spec.SessionSpec` down."""
    from closedloop.spec import SessionSpec

    out: list[str] = []
    seen: set[type[BaseModel]] = set()
    queue: list[tuple[type[BaseModel], str]] = [(SessionSpec, "the top level of the file")]
    while queue:
        model, where = queue.pop(0)
        if model in seen:
            continue
        seen.add(model)
        docs = attribute_docs(model)
        summary = (inspect.getdoc(model) or "").split("\n\n")[0].replace("\n", " ")
        out += [f"### {model.__name__}", "", f"{summary} Used at: {where}.", ""]
        out += ["| field | type | default | meaning |", "|---|---|---|---|"]
        for name, field in model.model_fields.items():
            meaning = field.description or docs.get(name)
            if not meaning:
                raise ValueError(f"{model.__name__}.{name} has no description: document it in the model")
            meaning = meaning.replace("|", "\\|").replace("\n", " ")
            out.append(f"| `{name}` | {type_name(field.annotation)} | {default_of(field)} | {meaning} |")
            for inner in nested_models(field.annotation):
                queue.append((inner, f"`{name}` of {model.__name__}"))
        out.append("")
    return "\n".join(out)


def cli() -> str:
    """Every command of ``closedloop``, with its help, arguments and options, from the typer app."""
    import typer.main

    from agent.cli import app

    root: Any = typer.main.get_command(app)  # a click group (typer carries its own copy of click)
    out: list[str] = []
    ctx = root.context_class(root, info_name="closedloop")
    for name in sorted(root.list_commands(ctx)):
        out += command_section(root.get_command(ctx, name), f"closedloop {name}", ctx)
    return "\n".join(out)


def command_section(command: Any, path: str, parent: Any) -> list[str]:
    """The section of one command (and of each subcommand of a group), as Markdown lines."""
    if command is None or command.hidden:
        return []
    ctx = command.context_class(command, info_name=path.rpartition(" ")[2], parent=parent)
    if hasattr(command, "list_commands"):
        # a group that runs on its own too (``closedloop bench``) has its own section, then its subcommands'
        out = _own_section(command, path, ctx) if command.invoke_without_command else []
        for name in sorted(command.list_commands(ctx)):
            out += command_section(command.get_command(ctx, name), f"{path} {name}", ctx)
        return out
    return _own_section(command, path, ctx)


def _own_section(command: Any, path: str, ctx: Any) -> list[str]:
    usage = " ".join(piece for piece in command.collect_usage_pieces(ctx) if piece != "COMMAND [ARGS]...")
    out = [f"### {path}", "", f"`{path} {usage}`", "", (command.help or "").strip().replace("\b\n", ""), ""]
    rows = []
    for param in command.params:
        if param.name == "help":
            continue
        if param.param_type_name == "option":
            names = ", ".join(f"`{n}`" for n in param.opts)
        else:
            names = f"`{param.name.upper()}`"
        text = (getattr(param, "help", None) or "").replace("|", "\\|").replace("\n", " ")
        rows.append(f"| {names} | {text} |")
    if rows:
        out += ["| argument or option | meaning |", "|---|---|", *rows, ""]
    return out


def planner_options() -> str:
    """Each shipped planner's options, with default and description, from ``planners/options.py``."""
    from planners.options import BUILTIN_OPTIONS

    out: list[str] = []
    for path, model in sorted(BUILTIN_OPTIONS.items()):
        out += [f"### `{path}`", "", model.summary or (inspect.getdoc(model) or ""), ""]
        if not model.model_fields:
            out += ["No options beyond the session's `seed`.", ""]
            continue
        out += ["| option | default | meaning |", "|---|---|---|"]
        for name, field in model.model_fields.items():
            text = (field.description or "").replace("|", "\\|").replace("\n", " ")
            if not text:
                raise ValueError(f"{model.__name__}.{name} has no description")
            out.append(f"| `{name}` | {default_of(field)} | {text} |")
        out.append("")
    return "\n".join(out)


def problem_set() -> str:
    """The bundled problem set of ``closedloop bench``, one row per problem, from ``benchmarks._problems``."""
    from benchmarks.campaign.problems import HARD, PROBLEM_SET, bundled

    out = [
        f"Problem set **{PROBLEM_SET}**.",
        "",
        "| problem | dimensions | objectives | constraints | noise sd | optimum | what makes it hard |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, problem in bundled().items():
        pairs = zip(problem.objective_names, problem.maximize, strict=True)
        senses = ", ".join(f"{n} ({'max' if up else 'min'})" for n, up in pairs)
        optimum = f"{problem.optimum:.6g}" if problem.optimum is not None else f"hypervolume {problem.max_hv or 0:.6g}"
        out.append(
            f"| `{name}` | {problem.dim} | {senses} | {len(problem.vocs.constraints)} | {problem.noise:g} "
            f"| {optimum} | {HARD.get(name, '-')} |"
        )
    return "\n".join(out)


GENERATORS = {
    "session-file": session_file,
    "cli": cli,
    "planner-options": planner_options,
    "problem-set": problem_set,
}


def on_page_markdown(markdown: str, **kwargs: Any) -> str:
    def generated(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in GENERATORS:
            raise ValueError(f"no generator for '<!-- generated: {name} -->'")
        return GENERATORS[name]()

    return MARKER.sub(generated, markdown)
