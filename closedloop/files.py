"""Reading the files an operator hands in (session files, point files) safely: capped, UTF-8 only, strict YAML.

Every refusal is a :class:`~closedloop.errors.SpecError` whose one-line message starts with the file's name:

- :func:`read_text` refuses a file larger than its cap before reading it whole, and any text that is not UTF-8
  (a UTF-16 or UTF-32 byte-order mark, NUL bytes, or an invalid byte), naming what it found.
- :func:`parse_yaml` is PyYAML's safe loader with four limits: a key given twice in one mapping is refused
  (naming its path and both lines), at most :data:`MAX_ALIASES` alias uses, aliases may add at most
  :data:`MAX_ALIAS_NODES` nodes to the document once expanded (a "billion laughs" file is refused before anything
  is built from it), and collections nest at most :data:`MAX_DEPTH` deep.
- :func:`parse_json` refuses duplicate keys and the non-standard ``NaN`` and ``Infinity``.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from closedloop.errors import SpecError

#: The largest session file read (bytes).
SESSION_FILE_LIMIT = 1 << 20
#: The largest point file read (bytes).
POINTS_FILE_LIMIT = 16 << 20
#: The most alias uses (``*name``) a YAML file may hold.
MAX_ALIASES = 100
#: The most nodes that aliases may add to a YAML document once every alias is expanded.
MAX_ALIAS_NODES = 10_000
#: The deepest nesting of collections in a YAML document (PyYAML's time per token grows with the depth).
MAX_DEPTH = 64

_MERGE_TAG = "tag:yaml.org,2002:merge"
_BOMS = (  # UTF-32 first: its little-endian mark starts with UTF-16's
    (b"\xff\xfe\x00\x00", "UTF-32 BOM"),
    (b"\x00\x00\xfe\xff", "UTF-32 BOM"),
    (b"\xff\xfe", "UTF-16 BOM"),
    (b"\xfe\xff", "UTF-16 BOM"),
)


def _size_text(limit: int) -> str:
    return f"{limit // (1 << 20)} MiB" if limit % (1 << 20) == 0 else f"{limit} bytes"


def read_text(path: str | Path, limit: int, what: str = "file") -> str:
    """The text of a UTF-8 file of at most ``limit`` bytes (a UTF-8 byte-order mark is dropped).

    Args:
        path: the file.
        limit: the largest size accepted, in bytes; a larger file is refused without being read whole.
        what: what the file is, for messages (``"session file"``, ``"points file"``).

    Raises:
        SpecError: the file cannot be read, is too large, or is not UTF-8 text; the message names the file.
    """
    path = Path(path)
    try:
        with path.open("rb") as handle:
            info = os.fstat(handle.fileno())
            if stat.S_ISREG(info.st_mode) and info.st_size > limit:
                raise SpecError(f"{path}: the {what} is {info.st_size} bytes, over the {_size_text(limit)} cap")
            data = handle.read(limit + 1)  # a pipe or device has no size to check beforehand
    except OSError as exc:
        raise SpecError(f"{path}: cannot read the {what} ({exc.strerror or exc})") from None
    if len(data) > limit:
        raise SpecError(f"{path}: the {what} is over the {_size_text(limit)} cap")
    return decode_utf8(data, str(path))


def decode_utf8(data: bytes, source: str) -> str:
    """``data`` as UTF-8 text (a UTF-8 byte-order mark is dropped).

    Raises:
        SpecError: a UTF-16 or UTF-32 byte-order mark, a NUL byte, or bytes that are not UTF-8, named.
    """
    for mark, name in _BOMS:
        if data.startswith(mark):
            raise SpecError(f"{source}: not UTF-8 text ({name} found); save it as UTF-8")
    if b"\x00" in data:
        where = data.index(b"\x00")
        raise SpecError(f"{source}: not UTF-8 text (a NUL byte at offset {where}: UTF-16?); save it as UTF-8")
    try:
        return data.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as exc:
        byte = data[exc.start]
        raise SpecError(
            f"{source}: not UTF-8 text (byte 0x{byte:02x} at offset {exc.start}); save it as UTF-8"
        ) from None


class _Refused(Exception):
    """A limit of :class:`_StrictLoader` was hit (turned into a SpecError by :func:`parse_yaml`)."""


class _StrictLoader(yaml.SafeLoader):
    """PyYAML's safe loader, counting alias uses and nesting depth as it composes."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.alias_uses = 0
        self.depth = 0

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        if self.check_event(yaml.AliasEvent):
            self.alias_uses += 1
            if self.alias_uses > MAX_ALIASES:
                raise _Refused(f"line {self.peek_event().start_mark.line + 1}: more than {MAX_ALIASES} aliases")
        self.depth += 1
        try:
            if self.depth > MAX_DEPTH:
                raise _Refused(
                    f"line {self.peek_event().start_mark.line + 1}: nested more than {MAX_DEPTH} levels deep"
                )
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


def _children(node: Node) -> list[tuple[str, Node]]:
    """A node's children with the path segment that leads to each (keys of a mapping, indices of a sequence)."""
    if isinstance(node, MappingNode):
        out: list[tuple[str, Node]] = []
        for key, value in node.value:
            label = str(key.value) if isinstance(key, ScalarNode) else "?"
            out += [(label + "(key)", key), (label, value)]
        return out
    if isinstance(node, SequenceNode):
        return [(str(i), child) for i, child in enumerate(node.value)]
    return []


def _join(path: str, segment: str) -> str:
    return f"{path}.{segment}" if path else segment


def _check_graph(loader: _StrictLoader, root: Node) -> None:
    """Refuse duplicate keys and aliases that expand too far, on the composed graph, before anything is built.

    Raises:
        _Refused: a duplicate key (its path and lines), a recursive alias, or an expansion over the budget.
    """
    paths: dict[int, str] = {id(root): ""}
    order = [root]
    stack = [root]
    while stack:  # each distinct node once, with the first path that reaches it
        node = stack.pop()
        if isinstance(node, MappingNode):
            _refuse_duplicate_keys(loader, node, paths[id(node)])
        for segment, child in _children(node):
            if id(child) not in paths:
                paths[id(child)] = _join(paths[id(node)], segment)
                order.append(child)
                stack.append(child)
    budget = len(order) + MAX_ALIAS_NODES
    sizes: dict[int, int] = {}
    active: set[int] = set()

    def expanded(node: Node) -> int:
        if id(node) in sizes:
            return sizes[id(node)]
        if id(node) in active:
            raise _Refused(f"line {node.start_mark.line + 1}: an alias refers to itself")
        active.add(id(node))
        total = 1
        for _, child in _children(node):
            total += expanded(child)
            if total > budget:
                raise _Refused(
                    f"{paths[id(node)] or '(top level)'}: aliases expand to more than {MAX_ALIAS_NODES} extra nodes"
                )
        active.discard(id(node))
        sizes[id(node)] = total
        return total

    expanded(root)


def _refuse_duplicate_keys(loader: _StrictLoader, node: MappingNode, path: str) -> None:
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        if not isinstance(key_node, ScalarNode) or key_node.tag == _MERGE_TAG:
            continue  # merged keys may be overridden; a complex key is the constructor's to refuse
        key = loader.construct_object(key_node)
        line = key_node.start_mark.line + 1
        try:
            first = seen.get(key)
        except TypeError:
            continue
        if first is not None:
            raise _Refused(f"{_join(path, str(key))}: duplicate key (line {line}, first given on line {first})")
        seen[key] = line


def parse_yaml(text: str, source: str) -> Any:
    """Parse one YAML document with PyYAML's safe loader and this module's limits.

    Raises:
        SpecError: not YAML, a duplicate key, too many aliases or too large an expansion, or too deep a nesting;
            one line starting with ``source``.
    """
    loader = _StrictLoader(text)
    try:
        root = loader.get_single_node()
        if root is None:
            return None
        _check_graph(loader, root)
        return loader.construct_document(root)
    except _Refused as exc:
        raise SpecError(f"{source}: {exc}") from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}: " if mark is not None else ""
        raise SpecError(f"{source}: not valid YAML ({where}{exc.problem or exc.context})") from None
    except yaml.YAMLError as exc:
        raise SpecError(f"{source}: not valid YAML ({str(exc).splitlines()[0]})") from None
    except RecursionError:
        raise SpecError(f"{source}: nested too deeply") from None
    finally:
        loader.dispose()


def _no_duplicates(source: str) -> Any:
    def hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in pairs:
            if key in out:
                raise SpecError(f"{source}: duplicate key {key!r}")
            out[key] = value
        return out

    return hook


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a finite number")


def parse_json(text: str, source: str) -> Any:
    """Parse JSON, refusing duplicate keys and ``NaN``/``Infinity``.

    Raises:
        SpecError: not JSON, a duplicate key, or a non-finite number; one line starting with ``source``.
    """
    try:
        return json.loads(text, object_pairs_hook=_no_duplicates(source), parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        raise SpecError(f"{source}: not valid JSON (line {exc.lineno}: {exc.msg})") from None
    except ValueError as exc:
        if isinstance(exc, SpecError):
            raise
        raise SpecError(f"{source}: {exc}") from None
    except RecursionError:
        raise SpecError(f"{source}: nested too deeply") from None


def load_yaml_file(path: str | Path, limit: int = SESSION_FILE_LIMIT, what: str = "file") -> Any:
    """Read and parse a YAML file with :func:`read_text`'s and :func:`parse_yaml`'s checks.

    Raises:
        SpecError: see :func:`read_text` and :func:`parse_yaml`.
    """
    return parse_yaml(read_text(path, limit, what), str(path))
