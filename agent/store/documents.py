"""Each run's documents in ``runs/<proposal id>.jsonl``, written once, as they stream.

One ``[name, document]`` JSON array per line, the form suitcase-jsonl writes. The file is created before
anything moves, so every run that started has one; a line is flushed as soon as its document arrives, so a run
cut short by a kill leaves what it emitted. Reading tolerates a last line cut in half.

A :class:`RunFile` is the run's own sink of the instrument's :class:`~instruments.writer.DocumentWriter`, which
keeps the run's documents in memory (once); the file is read back only after a crash.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from agent.store.sqlite import dumps


class RunFile:
    """A document sink writing one run's documents to its JSON-lines file (use as a context manager)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: IO[str] | None = None

    def open(self) -> RunFile:
        """Create the file (empty) and return the sink."""
        self._file = self.path.open("w", encoding="utf-8")
        return self

    def close(self) -> None:
        """Close the file; documents that come later are not written."""
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> RunFile:
        return self.open()

    def __call__(self, name: str, doc: dict[str, Any]) -> None:
        if self._file is not None:
            self._file.write(dumps([name, doc]) + "\n")
            self._file.flush()

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()


def read_run_file(path: Path) -> list[tuple[str, dict[str, Any]]]:
    """The documents in a run's file (none if it is missing); a torn last line is left out."""
    if not path.exists():
        return []
    documents = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            name, doc = json.loads(line)
        except (ValueError, TypeError):
            continue
        documents.append((str(name), doc))
    return documents
