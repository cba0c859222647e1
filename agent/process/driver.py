"""The session process's driver: runs the loop, and at each checkpoint waits for the first answer from the
terminal, the control channel, or the review policy's timeout.

Ctrl-C never reaches the RunEngine: :meth:`Driver.on_sigint` (installed by :class:`~agent.process.SessionProcess`)
asks to stop after the current run at the first, and aborts the run at a second.
"""

from __future__ import annotations

import contextlib
import queue
import sys
import threading
from collections.abc import Callable
from types import FrameType
from typing import IO, Any

from rich.console import Console
from rich.markup import escape

from agent.loop import Checkpoint
from agent.operator import Operations
from agent.session import Session
from closedloop.control import operator_name
from closedloop.errors import ClosedLoopError
from closedloop.records import Decision, Verdict

_LETTERS = {"a": Verdict.APPROVE, "r": Verdict.REJECT, "s": Verdict.STOP, "e": Verdict.EDIT}
HELP = (
    "a approve, A approve this and all later ones, r [reason] reject, e NAME=VALUE ... edit, s stop; "
    "for a batch, one letter per proposal (a r a)"
)


class TerminalReader(threading.Thread):
    """Reads the terminal's lines in the background, so that an answer can come from it or from the channel."""

    def __init__(self, stream: IO[str]) -> None:
        super().__init__(daemon=True, name="closedloop-terminal")
        self.stream = stream
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.closed = False  # set once the end of input has been taken from ``lines``

    def run(self) -> None:
        for line in self.stream:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)


def parse_terminal_answer(text: str, checkpoint: Checkpoint, by: str) -> tuple[list[Decision], bool] | str:
    """An operator's line at a review checkpoint as decisions (and whether it approves all later ones too), or
    the reason it is not an answer."""
    text = text.strip()
    ids = [p["id"] for p in checkpoint.proposals]
    if text == "A" or text.lower() == "all":
        return [Decision(verdict=Verdict.APPROVE, by=by, reason="approve all")], True
    if not text:
        return HELP
    head, _, rest = text.partition(" ")
    verdict = _LETTERS.get(head.lower()) or {v.value: v for v in Verdict}.get(head.lower())
    if verdict == Verdict.EDIT:
        setpoints: dict[str, Any] = {}
        for word in rest.split():
            name, sep, value = word.partition("=")
            if not sep:
                return f"'{word}' is not NAME=VALUE"
            setpoints[name] = value
        if len(ids) != 1:
            return "edit a batch through: closedloop review DIR --edit"
        return [Decision(verdict=Verdict.EDIT, proposal_ids=ids, setpoints=setpoints, by=by)], False
    if verdict in (Verdict.REJECT, Verdict.STOP, Verdict.APPROVE) and (len(ids) <= 1 or not rest.strip()):
        return [Decision(verdict=verdict, by=by, reason=rest.strip())], False
    words = text.split()
    if len(words) == len(ids) and all(w.lower() in ("a", "r") for w in words):
        return [
            Decision(verdict=_LETTERS[w.lower()], proposal_ids=[pid], by=by) for w, pid in zip(words, ids, strict=True)
        ], False
    return HELP


class Driver:
    """Drives one session to its end, or until nobody can answer.

    Args:
        session: the open session.
        operations: the operations the channel also calls.
        console: where the terminal output goes.
        approve_all: approve every review checkpoint (``--yes``).
        interactive: ask at the terminal (a reader thread on stdin).
        show: renders a checkpoint that is not answered automatically (whether or not the terminal is read).
        wait_for_channel: when the terminal cannot answer, keep waiting for the control channel (a process with a
            channel); without one, the session is left waiting and the driver returns.
    """

    def __init__(
        self,
        session: Session,
        operations: Operations,
        console: Console,
        approve_all: bool,
        interactive: bool,
        show: Callable[[Checkpoint], Any],
        wait_for_channel: bool,
    ) -> None:
        self.session = session
        self.ops = operations
        self.console = console
        self.approve_all = approve_all
        self.show = show
        self.wait_for_channel = wait_for_channel
        self.by = operator_name()
        self.reader: TerminalReader | None = TerminalReader(sys.stdin) if interactive else None
        if self.reader is not None:
            self.reader.start()
        self._interrupts = 0

    # Ctrl-C -------------------------------------------------------------------------------------------------
    def on_sigint(self, signum: int, frame: FrameType | None) -> None:
        """First Ctrl-C: stop after the current run. Second: abort the run now. Never a KeyboardInterrupt."""
        self._interrupts += 1
        abort = self._interrupts > 1
        with contextlib.suppress(ClosedLoopError):
            self.ops.stop(self.by, "terminal", abort=abort, reason="Ctrl-C")
        message = "aborting the run" if abort else "stopping after the current run (Ctrl-C again aborts it)"
        self.console.print(f"[yellow]{message}[/]")

    def run(self) -> None:
        """Run the loop until it ends or is left waiting."""
        try:
            checkpoint = self.session.pending_checkpoint()
            if checkpoint is None:
                checkpoint = self.session.advance()
            while checkpoint is not None:
                self.ops.holding(checkpoint)
                decisions = self._wait(checkpoint)
                if decisions is None:
                    return  # left waiting at the checkpoint: resume picks it up
                self.ops.holding(None)
                checkpoint = self.session.answer(decisions)
        finally:
            self.ops.holding(None)

    # waiting at a checkpoint ----------------------------------------------------------------------------------
    def _wait(self, checkpoint: Checkpoint) -> list[Decision] | None:
        auto = self._automatic(checkpoint)
        if auto is not None:
            return auto
        asking = self.reader is not None and not self.reader.closed
        self.show(checkpoint)  # where nobody reads the terminal, it says how to answer from another one
        review = self.session.spec.review
        deadline = review.timeout if checkpoint.kind == "review" else None
        waited = 0.0
        while True:
            answer = self.ops.next_answer(timeout=0.05)
            if answer is not None:
                if asking and answer[0].via != "terminal":
                    self.console.print(f"answered by {escape(answer[0].by)} via {answer[0].via}")
                return answer
            waited += 0.05
            if round(waited / 0.05) % 5 == 0:  # runs that end during a review are counted and shown meanwhile
                self.session.collect_ended(checkpoint)
            if deadline is not None and waited >= deadline:
                deadline = None
                if review.on_timeout == "approve":
                    self.session.store.log("timeout", f"checkpoint {checkpoint.id} unanswered: approved")
                    return [Decision(verdict=Verdict.APPROVE, by="timeout", via="policy", reason="review timeout")]
                # pause: the question stays open, and the session says it is paused until someone answers
                self.session.store.log("timeout", f"checkpoint {checkpoint.id} unanswered: paused")
                self.session.store.set_meta(state="paused")
                self.ops.emit("paused", {"reason": "review timeout", "checkpoint": checkpoint.id})
            if asking and self.reader is not None:
                self._read_terminal(checkpoint)
                if self.reader.closed and not self.wait_for_channel:
                    return None
            elif not self.wait_for_channel:
                return None

    def _automatic(self, checkpoint: Checkpoint) -> list[Decision] | None:
        if checkpoint.kind == "review" and self.approve_all:
            return [Decision(verdict=Verdict.APPROVE, by="--yes", via="terminal")]
        if checkpoint.kind == "points" and self.session.store.count_queued():
            return [Decision(verdict=Verdict.APPROVE, by=self.by, via="terminal", reason="points queued")]
        return None

    def _read_terminal(self, checkpoint: Checkpoint) -> None:
        assert self.reader is not None
        try:
            line = self.reader.lines.get_nowait()
        except queue.Empty:
            return
        if line is None:
            self.reader.closed = True
            return
        if checkpoint.kind != "review":
            self._read_hold_answer(checkpoint, line)
            return
        parsed = parse_terminal_answer(line, checkpoint, self.by)
        if isinstance(parsed, str):
            self.console.print(escape(parsed))
            return
        decisions, approve_all = parsed
        try:
            self.ops.answer(checkpoint.id, decisions)
        except ClosedLoopError as exc:
            self.console.print(f"[red]{escape(str(exc))}[/]")
            return
        self.approve_all = self.approve_all or approve_all

    def _read_hold_answer(self, checkpoint: Checkpoint, line: str) -> None:
        word = line.strip().lower()
        verdict = Verdict.STOP if word in ("s", "stop") else Verdict.APPROVE
        if verdict == Verdict.APPROVE and checkpoint.kind == "points" and not self.session.store.count_queued():
            self.console.print("no points are queued yet")
            return
        try:
            self.ops.answer(checkpoint.id, [Decision(verdict=verdict, by=self.by, via="terminal")])
        except ClosedLoopError as exc:
            self.console.print(f"[red]{escape(str(exc))}[/]")
