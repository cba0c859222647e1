"""A session run as a :class:`~agent.process.SessionProcess` in the test's own process: the real session, loop,
RunEngine and simulated beamline, served over the real ZeroMQ control channel on loopback."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.operator import ControlClient, read_control
from agent.process import SessionProcess
from agent.session import Session
from agent.store import SessionFolder
from closedloop.control import AnswerRequest, CheckpointRequest, StatusRequest
from tests.conftest import beamline_session


@pytest.fixture
def reviewed(write_session, tmp_path: Path) -> Iterator[Session]:
    """A new session of three experiments whose every proposal waits for review."""
    path = write_session(beamline_session(review={"policy": "always"}, budget={"experiments": 3}))
    with Session.create(path, tmp_path / "run") as session:
        yield session


def pending(client: ControlClient, timeout: float = 60.0, answered: frozenset[str] = frozenset()) -> str:
    """The id of the checkpoint the session waits at, once it waits at one not in ``answered`` (an answered one is
    still shown until the session has taken its answer)."""
    deadline = time.monotonic() + timeout
    while True:
        found = client.call(CheckpointRequest(by="test")).result.get("checkpoint")
        if found is not None and str(found["checkpoint"]) not in answered:
            return str(found["checkpoint"])
        assert time.monotonic() < deadline, "no checkpoint came"
        time.sleep(0.01)


def test_open_serves_the_channel_and_close_withdraws_it(reviewed: Session) -> None:
    where = SessionFolder(reviewed.folder)
    with SessionProcess(reviewed) as process:
        assert process.server is not None
        assert where.control_file.exists()
        assert reviewed.store.meta("control") == process.server.info == read_control(reviewed.folder)
        with ControlClient(reviewed.folder, timeout=10) as client:
            reply = client.call(StatusRequest(by="test"))
        assert reply.ok and reply.result["experiments"] == 0
        assert process.open() is process  # opening again changes nothing
    assert not where.control_file.exists()
    assert reviewed.store.meta("control") is None
    assert reviewed.outcome == "new"  # served, never driven: the loop did not move


def test_a_session_answered_through_the_channel_runs_to_its_end(reviewed: Session) -> None:
    with SessionProcess(reviewed) as process:
        process.start()
        with ControlClient(reviewed.folder, timeout=10) as client:
            answered: set[str] = set()
            for _ in range(3):
                checkpoint = pending(client, answered=frozenset(answered))
                reply = client.call(AnswerRequest(by="ann", checkpoint=checkpoint))
                assert reply.ok, reply.error
                answered.add(checkpoint)
            assert process.join(timeout=120)
    assert reviewed.outcome == "finished"
    assert reviewed.store.count_observations() == 3
    decisions = [decision for _, decision in reviewed.store.decisions()]
    assert [(d.by, d.via) for d in decisions] == [("ann", "channel")] * 3


def test_without_the_channel_to_wait_for_the_session_is_left_waiting(reviewed: Session) -> None:
    shown = []
    with SessionProcess(reviewed, wait_for_channel=False, show=shown.append) as process:
        process.run()
    assert reviewed.outcome == "waiting"
    assert [checkpoint.kind for checkpoint in shown] == ["review"]
    assert reviewed.pending_checkpoint() is not None
    assert reviewed.store.count_observations() == 0


def test_ctrl_c_stops_the_session_and_the_handler_is_put_back(reviewed: Session) -> None:
    before = signal.getsignal(signal.SIGINT)
    with SessionProcess(reviewed) as process:

        def interrupt_at_the_checkpoint() -> None:
            with ControlClient(reviewed.folder, timeout=10) as client:
                pending(client)
            os.kill(os.getpid(), signal.SIGINT)

        threading.Thread(target=interrupt_at_the_checkpoint, daemon=True).start()
        process.run()  # on the main thread: Ctrl-C goes to the driver, never a KeyboardInterrupt
    assert reviewed.outcome == "stopped"
    assert signal.getsignal(signal.SIGINT) is before
    assert any(kind == "stop" and "Ctrl-C" in message for _, kind, message in reviewed.store.events())


def test_approve_all_runs_to_the_end_with_nobody_answering(reviewed: Session) -> None:
    with SessionProcess(reviewed, approve_all=True) as process:
        process.run()
    assert reviewed.outcome == "finished"
    assert [d.by for _, d in reviewed.store.decisions()] == ["--yes"] * 3
