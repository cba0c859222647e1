"""Shared fixtures: session files on disk, a fresh RunEngine per test."""

from __future__ import annotations

import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from closedloop.execution import ExecutorArgs, executor_args
from closedloop.spec import SessionSpec, spec_from_dict
from instruments.executor import build_run_engine
from instruments.writer import DocumentWriter, document_writer

# A test run started in the background of a non-interactive shell (`make test &` in a script) inherits SIGINT
# ignored, and so would every command a test starts: the tests that end a command with Ctrl-C would then wait in
# vain. Python's own handler is reset to the default in a child at exec, so the commands get Ctrl-C as in a terminal.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


def beamline_session(**overrides: Any) -> dict[str, Any]:
    """A small session on the simulated beamline, as a dict (override any top-level key).

    It runs strictly in turn (``pipeline: false``), so that a test can count observations at each checkpoint;
    tests/integration/test_pipeline.py and the tests that pass ``pipeline=True`` run it pipelined.
    """
    data: dict[str, Any] = {
        "name": "test-beamline",
        "seed": 3,
        "variables": {
            "pitch1": {"bounds": [-1.5, 1.5], "hard_limits": [-2.0, 2.0], "device": "m1"},
            "pitch2": {"bounds": [-1.5, 1.5], "hard_limits": [-2.0, 2.0], "device": "m2"},
        },
        "objectives": {"flux": {"direction": "maximize", "field": "det-flux"}},
        "budget": {"experiments": 4},
        "planner": {"name": "sobol"},
        "instrument": {"simulator": "beamline", "options": {"noise": 5.0}},
        "review": {"policy": "never"},
        "pipeline": False,
    }
    data.update(overrides)
    return data


def args_for(session: SessionSpec | dict[str, Any], session_id: str = "s-test", index: int = 0) -> ExecutorArgs:
    """What an executor of the session's instrument ``index`` takes, from a session spec or dict, as the agent
    builds it (:func:`closedloop.execution.executor_args`)."""
    spec = session if isinstance(session, SessionSpec) else spec_from_dict(session)
    return executor_args(spec, session_id, index)


def writer_for(
    session: SessionSpec | dict[str, Any], arrays_dir: Path | None = None, events: list[Any] | None = None
) -> DocumentWriter:
    """The document writer the session's ``arrays``, ``publish`` and ``tiled`` sections ask for, as the agent builds
    it; a Tiled write that fails is appended to ``events`` as ``("tiled_failed", details)``."""
    spec = session if isinstance(session, SessionSpec) else spec_from_dict(session)
    on_tiled_error = (lambda details: events.append(("tiled_failed", details))) if events is not None else None
    return document_writer(
        arrays=spec.arrays, arrays_dir=arrays_dir, publish=spec.publish, tiled=spec.tiled, on_tiled_error=on_tiled_error
    )


@pytest.fixture
def write_session(tmp_path: Path):
    """Write a session dict to a YAML file and return its path."""

    def write(data: dict[str, Any], name: str = "session.yaml") -> Path:
        path = tmp_path / name
        path.write_text(yaml.safe_dump(data, sort_keys=False))
        return path

    return write


@pytest.fixture
def run_engine() -> Iterator[Any]:
    """A fresh RunEngine, built as the executor builds it, torn down after the test."""
    engine = build_run_engine()
    yield engine
    if engine.state != "idle":
        engine.halt()


@pytest.fixture(autouse=True)
def _torch_default_dtype() -> Iterator[None]:
    """Each test starts with the torch default dtype the one before it started with.

    Xopt's generators set torch's default dtype to float64 for the whole process; a test that runs one in process
    (a session with an Xopt planner) would change what the seeded planners of the next test file in the same
    worker compute. Nothing is imported here: torch is only looked at when a test has loaded it.
    """
    torch = sys.modules.get("torch")
    before = torch.get_default_dtype() if torch is not None else None
    yield
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_default_dtype(before if before is not None else torch.float32)
