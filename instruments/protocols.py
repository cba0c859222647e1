"""The executor seam: what the loop asks of anything that carries out proposals as Bluesky runs.

The in-process executor and the queueserver executor both follow :class:`Executes`. The safety gate is not an
executor's job: the loop's dispatch step checks every proposal (hard limits, allowed values, ``max_step`` against
:meth:`Executes.positions`) before it calls :meth:`Executes.run`, so no executor can skip it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from closedloop.records import Proposal

Document = tuple[str, dict[str, Any]]
DocumentSink = Callable[[str, dict[str, Any]], None]
"""Called with ``(name, document)`` for every document of a run, as it is emitted (before the run returns)."""
EventSink = Callable[[str, dict[str, Any]], None]
"""Called with ``(kind, details)`` when the instrument's state changes outside a run's documents: ``"suspended"``
and ``"resumed"`` (a suspender tripped or let go), ``"retry"`` (a run is tried again after a transient fault)."""


def is_transient(exc: BaseException | None) -> bool:
    """Whether a device marked the fault as transient: an exception with ``transient = True`` in ``exc``'s chain.

    A device (or its driver) marks a fault worth retrying by raising an exception whose ``transient`` attribute is
    ``True``, directly or as the cause or context of what the RunEngine raised. Nothing else is ever retried.
    """
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        if getattr(exc, "transient", False) is True:
            return True
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return False


@dataclass
class RunRecord:
    """What executing one proposal produced.

    Attributes:
        documents: ``(name, document)`` pairs as the RunEngine emitted them.
        error: the exception the RunEngine raised, as text, if any.
        seconds: wall time spent inside the RunEngine.
        aborted_by_operator: the run was aborted on an operator's request (not a failed measurement).
        attempts: how many runs were made for the proposal (more than one after transient faults); ``documents``
            are the last attempt's, the document sink saw every attempt's.
    """

    documents: list[Document] = field(default_factory=list)
    error: str | None = None
    seconds: float = 0.0
    aborted_by_operator: bool = False
    attempts: int = 1


@dataclass
class Recovery:
    """What an executor found of a run that its process lost track of (the agent's process ended during it).

    Attributes:
        record: the run as far as it is known: the documents captured before the end and those received since,
            and the plan's failure, if it failed.
        complete: ``record.documents`` hold the whole run, start to stop: it is ingested as any run. Otherwise
            the measurement is lost and ``record.error`` says why.
    """

    record: RunRecord
    complete: bool


@runtime_checkable
class Recovers(Protocol):
    """An executor whose instrument outlives the agent's process (a queueserver RE Manager) and can say, on resume,
    what became of a run the process was waiting for."""

    def recover(
        self, proposal_id: str, captured: list[Document], on_document: DocumentSink | None = None
    ) -> Recovery | None:
        """What became of ``proposal_id``'s run, given the documents ``captured`` before the process ended; None
        when the instrument has no trace of it. A run still going is waited for (``on_document`` sees each
        document that arrives)."""


@runtime_checkable
class Executes(Protocol):
    """Carries out checked proposals as Bluesky runs, one at a time."""

    def run(
        self, proposal: Proposal, md: Mapping[str, Any] | None = None, on_document: DocumentSink | None = None
    ) -> RunRecord:
        """Carry out one proposal (already through the safety gate) as one run; faults come back in the record.

        ``md`` is merged into the start document (which always names the proposal id); ``on_document`` sees
        every document as it is emitted.
        """

    def positions(self) -> dict[str, Any]:
        """Variable name -> the read-back position of its device now, for every variable whose device reports one
        (a variable with a ``max_step`` and no position is refused by the safety gate)."""

    def abort(self, reason: str) -> None:
        """Abort the run in progress, if any, from any thread; the record then says ``aborted_by_operator``."""

    def close(self) -> None:
        """Release the RunEngine (or the connection to it) and the devices."""


@runtime_checkable
class Reaches(Protocol):
    """An executor that knows the reach of its devices (see :mod:`closedloop.reach`): their own travel limits, where
    a run leaves them, and that it makes a move longer than a variable's ``max_step`` in steps of at most that
    (so the safety gate lets such a move through instead of refusing it)."""

    def limits(self) -> dict[str, tuple[float, float]]:
        """Variable -> its device's own travel limits, as read at connect; variables without any left out."""

    def end_positions(self, setpoints: Mapping[str, Any]) -> dict[str, Any]:
        """Where a run to ``setpoints`` leaves the movers (a scan's end, not its centre)."""
