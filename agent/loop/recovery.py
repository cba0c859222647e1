"""On resume, what became of a run the session's process was waiting for when it ended.

The loop stores a proposal's intent before anything moves; a proposal with an intent but no run is one the process
died during. An instrument that outlives the process (a queueserver RE Manager, :class:`~instruments.protocols.
Recovers`) is asked about it: a run it still carries out is followed to its end, a run it finished is ingested
when its documents reached ``runs/<id>.jsonl`` in full or the instrument can read it back (from the Tiled server
its RunEngine writes to), and otherwise the run is recorded ``interrupted`` with the reason the instrument gives
(the measurement is lost) or, from an instrument that cannot say, the loop's own.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from agent.loop.lanes import Lanes
from agent.store import dumps, read_run_file
from closedloop.errors import InstrumentError
from instruments.protocols import Recovers

Document = tuple[str, dict[str, Any]]


def recover_run(lanes: Lanes, runs: Path, proposal_id: str, interrupted: str) -> tuple[list[Document], str | None, str]:
    """The run of ``proposal_id`` as far as the instruments know it: ``(documents, error, status)``.

    ``status`` is ``done`` (the whole run is known: ingest it; ``error`` is the plan's failure, if any) or
    ``interrupted`` (``error`` says why the measurement is lost; ``interrupted`` when no instrument can say).
    Documents that arrive meanwhile are appended to ``runs/<proposal_id>.jsonl``.
    """
    path = runs / f"{proposal_id}.jsonl"
    captured = read_run_file(path)
    reason = interrupted
    for lane in lanes.usable():
        executor = lane.executor
        if not isinstance(executor, Recovers):
            continue
        with path.open("a", encoding="utf-8") as file:

            def append(name: str, doc: dict[str, Any]) -> None:
                file.write(dumps([name, doc]) + "\n")
                file.flush()

            try:
                recovery = executor.recover(proposal_id, captured, append)
            except InstrumentError as exc:
                reason = f"{interrupted} ({lane.name} could not say what became of it: {exc})"
                continue
        if recovery is None:
            continue
        if recovery.complete:
            return recovery.record.documents, recovery.record.error, "done"
        return recovery.record.documents, f"interrupted: {recovery.record.error}", "interrupted"
    return captured, reason, "interrupted"
