"""Who may operate a real session process, and who the audit trail says did: the control channel's authentication.

One detached session process (``closedloop run --detach``, waiting at its review checkpoints) serves these tests;
strangers try to stop it and must get nothing done, an issued key is recorded under its own name, and the files
that let anyone in are readable by the owner only. A stranger is also played by another local account
(``runuser -u nobody``) with a client written in the standard library alone, when the tests run as root.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.operator.client import ControlClient
from agent.operator.keys import make_keys
from agent.views.audit import audit_trail
from closedloop.control import StopRequest
from closedloop.errors import SessionError
from tests.conftest import beamline_session
from tests.integration.test_cli import closedloop, detached_session, meta
from tests.integration.test_operator_session import wait_for

NULL_CLIENT = Path(__file__).with_name("zmtp_null_client.py")
FORGED = json.dumps({"v": 1, "id": "r-forged", "type": "stop", "by": "ada", "via": "terminal", "reason": "forged"})


def log_lines(folder: Path) -> list[str]:
    with sqlite3.connect(folder / "store.sqlite") as conn:
        return [row[0] for row in conn.execute("SELECT message FROM events ORDER BY seq")]


def actions(folder: Path, what: str = "budget") -> list[tuple[str, str, str]]:
    """(who, via, what was done) of each operator's action ``what`` in the session's audit trail."""
    return [(e["who"], e["via"], e["detail"]) for e in audit_trail(folder) if e["what"] == what]


def decisions(folder: Path) -> list[dict[str, object]]:
    with sqlite3.connect(folder / "store.sqlite") as conn:
        return [json.loads(row[0]) for row in conn.execute("SELECT body FROM decisions")]


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A session process waiting at its review checkpoints for the channel; stopped at the end."""
    data = beamline_session(review={"policy": "always"}, budget={"experiments": 20})
    with detached_session(data, tmp_path_factory.mktemp("auth")) as folder:
        wait_for(lambda: meta(folder, "state") == "waiting", timeout=120)
        yield folder


def _as_nobody(address: str) -> str | None:
    """What the standard-library client gets when another local account runs it (None when it cannot be run)."""
    python = Path("/usr/bin/python3")
    if os.geteuid() != 0 or shutil.which("runuser") is None or not python.exists():
        return None
    with tempfile.TemporaryDirectory() as scratch:  # a copy of nothing secret, readable by that account
        os.chmod(scratch, 0o755)
        script = Path(scratch) / NULL_CLIENT.name
        shutil.copyfile(NULL_CLIENT, script)
        script.chmod(0o644)
        done = subprocess.run(
            ["runuser", "-u", "nobody", "--", str(python), str(script), address, FORGED, "3"],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_a_client_without_the_owners_key_gets_nothing_done(running: Path, tmp_path: Path) -> None:
    before_log, before_decisions = log_lines(running), decisions(running)
    address = json.loads((running / "control.json").read_text())["requests"]
    # no key at all
    with (
        ControlClient(running, timeout=1, keys_dir=tmp_path / "no-keys") as client,
        pytest.raises(SessionError, match="not authorised"),
    ):
        client.call(StopRequest(by="ada", via="terminal", reason="forged"))
    make_keys(tmp_path / "elsewhere", "ada")  # a well-formed key the session never admitted
    with (
        ControlClient(running, timeout=1, keys_dir=tmp_path / "elsewhere" / "keys", key_name="ada") as client,
        pytest.raises(SessionError, match="not authorised"),
    ):
        client.call(StopRequest(by="ada", via="terminal", reason="forged"))
    from tests.integration.zmtp_null_client import ask

    assert ask(address, FORGED.encode(), 3.0) == "silent"  # ZMTP by hand, with no key: no reply at all
    # the session is still waiting, and nothing was recorded
    assert meta(running, "state") == "waiting"
    assert json.loads(closedloop("status", str(running), "--json").stdout)["state"] == "waiting"
    assert log_lines(running) == before_log and decisions(running) == before_decisions


def test_another_local_account_gets_nothing_done(running: Path) -> None:
    before_log, before_decisions = log_lines(running), decisions(running)
    nobody = _as_nobody(json.loads((running / "control.json").read_text())["requests"])
    if nobody is None:
        pytest.skip("another local account cannot be played here (not root, or no runuser or /usr/bin/python3)")
    assert nobody == "silent"
    assert meta(running, "state") == "waiting"
    assert log_lines(running) == before_log and decisions(running) == before_decisions


def test_an_issued_key_is_recorded_under_its_own_name_whatever_it_claims(running: Path, tmp_path: Path) -> None:
    made = closedloop("keys", str(running), "--name", "carol", "--json")  # issued while the session runs
    assert made.returncode == 0, made.stderr
    key = Path(json.loads(made.stdout)["client"])
    assert key.stat().st_mode & 0o777 == 0o600
    moved = closedloop("budget", str(running), "30", "--keys", str(key), "--by", "ada", "--json")
    assert moved.returncode == 0, moved.stderr
    huge = closedloop("budget", str(running), str(10**40), "--keys", str(key))
    assert huge.returncode == 2 and "budget.experiments: Input should be less than or equal to" in huge.stderr
    lines = log_lines(running)
    assert ("carol", "channel", "budget 20 -> 30 experiments") in actions(running)
    assert not any("ada" in line for line in lines)
    assert ("carol", "channel", f"budget {10**40} experiments") in actions(running, "refused")  # as refused
    assert meta(running, "budget") == 30
    mine = tmp_path / "carols"  # what carol gets from the owner: the key and a copy of control.json
    (mine / "keys").mkdir(parents=True)
    shutil.copyfile(running / "control.json", mine / "control.json")
    shutil.copyfile(key, mine / "keys" / key.name)
    assert closedloop("budget", str(mine), "31", "--by", "ada").returncode == 0
    assert ("carol", "channel", "budget 30 -> 31 experiments") in actions(running)
    (running / "keys" / "authorized" / "carol.key").unlink()  # shut carol out: her next command gets nothing
    refused = closedloop("budget", str(running), "40", "--keys", str(key), "--timeout", "1")
    assert refused.returncode == 1 and "not authorised" in refused.stderr
    assert meta(running, "budget") == 31


def test_the_files_that_let_anyone_in_are_readable_by_the_owner_only(running: Path) -> None:
    keys = running / "keys"
    assert (running / "control.json").stat().st_mode & 0o777 == 0o600
    assert keys.stat().st_mode & 0o777 == 0o700 and (keys / "authorized").stat().st_mode & 0o777 == 0o700
    assert {"owner.key_secret", "server.key_secret"} <= {p.name for p in keys.glob("*.key_secret")}
    assert all(p.stat().st_mode & 0o077 == 0 for p in keys.glob("*.key_secret"))
