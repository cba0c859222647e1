"""A running session process: one open :class:`~agent.session.Session`, the :class:`~agent.operator.Operations`
every transport calls, the ZeroMQ :class:`~agent.operator.ControlServer` that serves them, the
:class:`~agent.process.Driver` that runs the loop, and the Ctrl-C handler, wired in one place for the CLI, the tests
and the benchmarks alike.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING, Any

from rich.console import Console

from agent.operator import ControlServer, Operations
from agent.process.driver import Driver
from agent.store import publish_control

if TYPE_CHECKING:
    from agent.loop import Checkpoint
    from agent.session import Session


class SessionProcess:
    """A session served and driven: its lifecycle is :meth:`open`, :meth:`run` (or :meth:`start` in a thread),
    :meth:`close`; ``with SessionProcess(session) as process:`` opens and closes it.

    :meth:`open` serves the control channel (keys and ``control.json`` in the session folder), publishes its
    addresses in the store, and sends the loop's and the operations' events to its subscribers. :meth:`run` drives
    the loop until it ends or is left waiting; on the main thread, Ctrl-C meanwhile asks to stop after the current
    run, and a second aborts it (never a ``KeyboardInterrupt`` inside the RunEngine). :meth:`close` stops serving and
    withdraws the addresses. The session stays open: whoever opened it closes it.

    Args:
        session: the open session.
        host: the interface the control channel binds (loopback by default).
        approve_all: approve every review checkpoint (``--yes``).
        interactive: ask at the terminal (a reader thread on stdin).
        show: renders a checkpoint that is not answered automatically (default: nothing is shown).
        console: where the driver's own lines go (default: nowhere).
        wait_for_channel: when the terminal cannot answer, keep waiting for the control channel; without it the
            session is left waiting at the checkpoint and :meth:`run` returns.

    Attributes:
        operations: the operations on the session (what the channel, the terminal and Ctrl-C call).
        server: the control channel, once open.
        driver: the driver, once open.
    """

    def __init__(
        self,
        session: Session,
        *,
        host: str = "127.0.0.1",
        approve_all: bool = False,
        interactive: bool = False,
        show: Callable[[Checkpoint], Any] | None = None,
        console: Console | None = None,
        wait_for_channel: bool = True,
    ) -> None:
        self.session = session
        self.host = host
        self.approve_all = approve_all
        self.interactive = interactive
        self.show = show or (lambda checkpoint: None)
        self.console = console or Console(quiet=True)
        self.wait_for_channel = wait_for_channel
        self.operations = Operations(session)
        self.server: ControlServer | None = None
        self.driver: Driver | None = None
        self._thread: threading.Thread | None = None

    # lifecycle ------------------------------------------------------------------------------------------------
    def open(self) -> SessionProcess:
        """Serve the control channel and publish where it listens (nothing happens a second time).

        Raises:
            SessionError: the channel's keys cannot be made or read, or the host cannot be bound.
        """
        if self.server is not None:
            return self
        session, operations = self.session, self.operations
        server = ControlServer(session.folder, operations.recorded, host=self.host, refused=operations.refused)
        try:
            publish_control(session.store, server.info, session.folder)
        except BaseException:
            server.close()
            raise
        self.server = server
        session.context.emit = operations.emit = server.publish
        self.driver = Driver(
            session,
            operations,
            self.console,
            approve_all=self.approve_all,
            interactive=self.interactive,
            show=self.show,
            wait_for_channel=self.wait_for_channel,
        )
        return self

    def run(self) -> None:
        """Drive the loop until it ends or is left waiting at a checkpoint (opening the process first if need be).

        Raises:
            Exception: what the loop raised (the session records it as failed).
        """
        driver = self.open().driver
        assert driver is not None
        previous = None
        if threading.current_thread() is threading.main_thread():
            previous = signal.signal(signal.SIGINT, driver.on_sigint)
        try:
            driver.run()
        finally:
            if previous is not None:
                signal.signal(signal.SIGINT, previous)

    def start(self) -> threading.Thread:
        """:meth:`run` in a background thread (Ctrl-C stays with the caller), for a test or a benchmark that
        answers through the channel meanwhile; :meth:`join` waits for it."""
        self.open()
        self._thread = threading.Thread(target=self.run, name="closedloop-session", daemon=True)
        self._thread.start()
        return self._thread

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the thread :meth:`start` began; True once it has ended (or none was started)."""
        if self._thread is None:
            return True
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def close(self) -> None:
        """Stop serving the control channel and withdraw its addresses (the session itself stays open)."""
        server, self.server = self.server, None
        if server is None:
            return
        server.close()
        with contextlib.suppress(Exception):  # a store gone away must not hide why the session ended
            publish_control(self.session.store, None, self.session.folder)

    def __enter__(self) -> SessionProcess:
        return self.open()

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()
