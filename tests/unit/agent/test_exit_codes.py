"""One error, one exit code, whichever command meets it: the codes are closedloop.errors.ExitCode's, each error
carries its own, and agent.cli.exits is the one handler that reads it.

The commands run in this process (typer's runner) against real folders: one that holds no session, and one whose
lock this test holds while no process serves its control channel.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

import closedloop.errors as module
from agent.cli import app
from agent.cli.exits import exit_code, fail, guarded
from agent.store import SessionLock
from closedloop.control import LateAnswerError
from closedloop.errors import (
    ClosedLoopError,
    ExitCode,
    InstrumentError,
    NotRunningError,
    PlannerError,
    PointsExhaustedError,
    RefusedError,
    SafetyError,
    SessionError,
    SpecError,
)

ROOT = Path(__file__).resolve().parents[3]


def test_each_error_carries_its_code() -> None:
    expected = {
        SpecError: ExitCode.BAD_INPUT,
        SafetyError: ExitCode.BAD_INPUT,
        PlannerError: ExitCode.BAD_INPUT,
        PointsExhaustedError: ExitCode.BAD_INPUT,
        SessionError: ExitCode.BAD_INPUT,
        InstrumentError: ExitCode.FAILED,
        RefusedError: ExitCode.FAILED,
        NotRunningError: ExitCode.FAILED,
        ClosedLoopError: ExitCode.FAILED,
    }
    for error, code in expected.items():
        assert exit_code(error("x")) == code, error.__name__
    assert exit_code(LateAnswerError("c-1", "bob")) == ExitCode.FAILED
    assert exit_code(KeyError("a bug")) == ExitCode.FAILED


def test_the_handler_prints_one_line_and_exits_with_the_errors_code(capsys: pytest.CaptureFixture[str]) -> None:
    def refuse() -> int:
        raise SpecError("variables.x.bounds: [nan, 1.5] is not [mrad] [/] [bold]\x1b[8m")

    with pytest.raises(typer.Exit) as ended:
        guarded(refuse, as_json=True)
    assert ended.value.exit_code == ExitCode.BAD_INPUT
    out, err = capsys.readouterr()
    assert out.strip() == '{"ok": false, "error": "variables.x.bounds: [nan, 1.5] is not [mrad] [/] [bold]\\u001b[8m"}'
    assert err.strip() == "error: variables.x.bounds: [nan, 1.5] is not [mrad] [/] [bold]\\x1b[8m"
    with pytest.raises(typer.Exit) as ended:
        guarded(lambda: ExitCode.STOPPED)
    assert ended.value.exit_code == ExitCode.STOPPED
    assert fail("x", ExitCode.FAILED).exit_code == 1


def run(*args: str | Path) -> tuple[int, str]:
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.stderr


def test_a_folder_without_a_session_is_bad_input_for_every_command(tmp_path: Path) -> None:
    for args in (["status"], ["results"], ["audit"], ["report"], ["resume"], ["add", "pitch1=0"]):
        code, err = run(args[0], tmp_path, *args[1:])
        assert (code, err.count("\n")) == (ExitCode.BAD_INPUT, 1), (args, err)
        assert str(tmp_path) in err and "holds no session" in err, args


def test_a_session_no_process_answers_for_is_a_failure_for_every_command(tmp_path: Path) -> None:
    """The lock says a process drives the session, but none serves its channel: every command that needs one
    fails alike (``add`` and ``resume`` said bad input before)."""
    shutil.copy(ROOT / "agent" / "demo" / "beamline.yaml", tmp_path / "session.yaml")
    (tmp_path / "store.sqlite").touch()
    lock = SessionLock(tmp_path)
    lock.acquire()
    try:
        quick = ["--timeout", "0.2"]  # the operator's commands wait this long for an answer
        commands = [
            ["add", "pitch1=0", "pitch2=0"],
            ["resume"],
            ["pause", *quick],
            ["stop", *quick],
            ["review", *quick],
        ]
        for name, *rest in [*commands, ["budget", "3", *quick]]:
            code, err = run(name, tmp_path, *rest)
            assert code == ExitCode.FAILED, (name, err)
            assert err.strip() == f"error: no session process is running for {tmp_path}", name
    finally:
        lock.release()


def test_the_exit_codes_page_says_what_the_code_does() -> None:
    """docs/reference/exit-codes.md lists every code by number and name, and every error with its code."""
    rows = [
        [cell.strip().strip("`") for cell in line.strip("|").split("|")]
        for line in (ROOT / "docs" / "reference" / "exit-codes.md").read_text().splitlines()
        if line.startswith("| ") and not line.startswith("| code") and not line.startswith("| error")
    ]
    codes = {name: int(number) for number, name, _ in (row for row in rows if len(row) == 3 and row[0].isdigit())}
    assert codes == {code.name: code.value for code in ExitCode}
    errors = {row[0]: int(row[1]) for row in rows if row[0].endswith("Error")}
    documented = {name: getattr(module, name).exit_code.value for name in errors}
    assert errors == documented
    defined = {name for name, value in vars(module).items() if isinstance(value, type) and name.endswith("Error")}
    assert defined - {"ClosedLoopError", "PointsExhaustedError"} <= set(errors)
