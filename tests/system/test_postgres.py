"""Sessions kept in a real PostgreSQL server: the store and LangGraph's checkpoints shared across hosts.

One module-scoped cluster of Debian's ``postgresql`` (``initdb`` into a temporary folder, ``pg_ctl`` on a free
loopback port, password login), run as the ``postgres`` user when the tests run as root (PostgreSQL refuses root),
stopped and removed afterwards. Sessions run on the simulated beamline through the real CLI in their own processes;
one is SIGKILLed and resumed while another runs into the same database.
"""

from __future__ import annotations

import glob
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from agent.store.postgres import DriverLock, PostgresStore
from agent.store.sqlite import SessionStore
from agent.views import report_html
from agent.web import WebGate
from closedloop import Decision, Observation, ObservationStatus, Proposal, ProposalStatus, SessionError, Verdict
from tests.conftest import beamline_session
from tests.integration.test_cli import CLI, closedloop
from tests.integration.test_reliability import start_documents

pytestmark = [pytest.mark.system, pytest.mark.timeout(120)]
SECRET = "s3cret-Pw"


def _bin_dir() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    assert found, "Debian's postgresql is not installed: run `make system-deps`"
    return Path(found[-1]).parent


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    """A running PostgreSQL cluster on loopback, as a URL with a password; stopped and removed afterwards."""
    bin_dir = _bin_dir()
    root = Path(tempfile.mkdtemp(prefix="closedloop-pg-"))
    as_user: list[str] = []
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root
        postgres = pwd.getpwnam("postgres")
        os.chown(root, postgres.pw_uid, postgres.pw_gid)
        as_user = ["runuser", "-u", "postgres", "--"]
    (root / "pw").write_text(SECRET)
    if as_user:
        os.chown(root / "pw", pwd.getpwnam("postgres").pw_uid, -1)
    data, port = root / "data", _free_port()
    run = lambda *args: subprocess.run([*as_user, *args], check=True, capture_output=True, timeout=60)  # noqa: E731
    started = False
    try:
        run(str(bin_dir / "initdb"), "-D", str(data), "-U", "closedloop", "--auth=scram-sha-256",
            f"--pwfile={root / 'pw'}", "--no-sync")  # fmt: skip
        options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off"
        run(str(bin_dir / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(root / "log"), "-w", "start")
        started = True
        yield f"postgresql://closedloop:{SECRET}@127.0.0.1:{port}/postgres"
    finally:
        if started:
            run(str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(root, ignore_errors=True)


def _sql(url: str, query: str, *params: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(url, autocommit=True) as conn:
        if not conn.execute("SELECT to_regclass('meta') IS NOT NULL").fetchone()[0]:  # type: ignore[index]
            return []
        return list(conn.execute(query, params).fetchall())  # type: ignore[arg-type]


def _session_of(url: str, name: str) -> str | None:
    rows = _sql(url, "SELECT session FROM meta WHERE key = 'name' AND value = %s", json.dumps(name))
    return str(rows[0][0]) if rows else None


def _observed(url: str, session_id: str) -> list[tuple[str, str]]:
    return [
        (str(proposal), str(status))
        for proposal, status in _sql(
            url, "SELECT proposal_id, status FROM observations WHERE session = %s ORDER BY seq", session_id
        )
    ]


# the store's API, the same on both databases -----------------------------------------------------------------
FIRST = Proposal(id="p-1", iteration=0, setpoints={"pitch1": 0.5, "pitch2": 0.1}, origin="operator")
SECOND = Proposal(id="p-2", iteration=1, setpoints={"pitch1": 0.0, "pitch2": 0.0})
OK = Observation(proposal_id="p-1", status=ObservationStatus.OK, setpoints={"pitch1": 0.5}, values={"flux": 3.0})
FAILED = Observation(proposal_id="p-2", status=ObservationStatus.FAILED, setpoints={"pitch1": 0.0}, error="x")
APPROVED = Decision(verdict=Verdict.APPROVE, proposal_ids=["p-1"], by="ann")
STOPPED = Decision(verdict=Verdict.STOP, by="bob")


def _exercise(store: Any) -> list[Any]:
    """Every store method, in an order the loop uses them; what each returned (times left out)."""
    store.set_meta(session_id="s-x", name="same", state="new")
    store.set_meta(state="running")
    out: list[Any] = [store.meta("state"), store.meta("missing", 7)]
    seqs = store.queue_points([{"pitch1": 0.5, "pitch2": 0.1}, {"pitch1": -0.5, "pitch2": 0.2}], by="ann")
    out += [len(seqs), [point for _, point in store.queued_points(1)], store.count_queued()]
    first, second = FIRST, SECOND
    store.add_proposals([first], taken={seqs[0]: first.id})
    store.add_proposals([first, second])  # first again: nothing doubled
    store.set_status([second.id, "p-none"], ProposalStatus.APPROVED)
    out += [[p.id for p in store.proposals()], [p.status.value for p in store.proposals(ids=["p-2", "p-1"])]]
    out += [[p.id for p in store.proposals(iteration=1)], store.count_proposals(), store.max_iteration()]
    out += [store.count_queued(), store.was_dispatched("p-1")]
    store.mark_dispatched("p-1", {"pitch1": 0.5, "pitch2": 0.1})
    store.mark_dispatched("p-1", {"pitch1": 9.0, "pitch2": 9.0})
    store.add_run("p-1", [("start", {"uid": "u", "n": 1})], None, 0.25)
    store.add_run("p-1", [("start", {"uid": "other"})], "later", 9.0, status="aborted")
    out += [store.was_dispatched("p-1"), store.has_run("p-1"), store.has_run("p-2"), store.run("p-1")]
    out += [store.run_with_status("p-1"), store.run_seconds("p-1"), store.run_seconds("p-2"), store.run("p-2")]
    ok, failed = OK, FAILED
    out += [store.add_observation(ok), store.add_observation(ok), store.add_observation(failed)]
    out += [[p.status.value for p in store.proposals()], store.observation("p-1"), store.observation("p-3")]
    out += [[o.proposal_id for o in store.observations()], store.recent_statuses(1), store.count_observations()]
    out += [store.count_observations(ObservationStatus.FAILED)]
    decision = APPROVED
    out += [store.add_decision(0, decision, key="k0"), store.add_decision(0, decision, key="k0")]
    out += [store.add_decision(1, STOPPED)]
    out += [store.decisions_for("p-1"), store.count_decisions(), store.decisions()]
    store.log("edit", "one", key="e1")
    store.log("edit", "one again", key="e1")
    store.log("note", "two")
    out += [[(kind, message) for _, kind, message in store.events()]]
    return out


def test_the_postgresql_store_answers_every_call_as_the_sqlite_one_and_keeps_sessions_apart(
    postgres_url: str, tmp_path: Path
) -> None:
    sqlite = SessionStore(tmp_path / "store.sqlite")
    first, second = PostgresStore(postgres_url, "s-one", create=True), PostgresStore(postgres_url, "s-two")
    try:
        expected = _exercise(sqlite)
        assert _exercise(first) == expected
        # a second session in the same database: the same ids and keys again, and nothing of the first seen
        assert _exercise(second) == expected
        first.queue_points([{"pitch1": 1.0, "pitch2": 1.0}])
        assert (first.count_queued(), second.count_queued()) == (2, 1)
        second.set_meta(state="finished")
        assert (first.meta("state"), second.meta("state")) == ("running", "finished")
        rows = _sql(postgres_url, "SELECT session, COUNT(*) FROM observations GROUP BY session ORDER BY session")
        assert rows == [("s-one", 2), ("s-two", 2)]
    finally:
        sqlite.close()
        first.close()
        second.close()


def test_one_process_drives_a_session_whichever_host_its_folder_is_on(postgres_url: str) -> None:
    first, second = DriverLock(postgres_url, "s-driven"), DriverLock(postgres_url, "s-driven")
    other = DriverLock(postgres_url, "s-other")
    first.acquire()
    try:
        with pytest.raises(SessionError, match="session s-driven is driven by another process"):
            second.acquire()
        other.acquire()  # another session is not held by it
        other.release()
    finally:
        first.release()
    second.acquire()  # let go: the next driver takes it
    second.release()


# whole sessions through the command line -----------------------------------------------------------------------
def test_sessions_in_one_database_run_survive_a_kill_and_are_read_from_another_host(
    postgres_url: str, tmp_path: Path
) -> None:
    files = {}
    for name, budget in (("pg-a", 2), ("pg-b", 4)):
        files[name] = tmp_path / f"{name}.yaml"
        files[name].write_text(json.dumps(beamline_session(name=name, budget={"experiments": budget})))
    a_folder, b_folder = tmp_path / "a", tmp_path / "b"
    logs = {name: (tmp_path / f"{name}.log").open("w") for name in files}
    # two agents write into one database at once; b is killed after its second observation
    a = subprocess.Popen([*CLI, "run", str(files["pg-a"]), "--dir", str(a_folder), "--store", postgres_url,
                          "--json"], stdout=logs["pg-a"], stderr=subprocess.STDOUT)  # fmt: skip
    b = subprocess.Popen([*CLI, "run", str(files["pg-b"]), "--dir", str(b_folder), "--store", postgres_url],
                         stdout=logs["pg-b"], stderr=subprocess.STDOUT)  # fmt: skip
    try:
        deadline = time.monotonic() + 90
        while (b_id := _session_of(postgres_url, "pg-b")) is None or len(_observed(postgres_url, b_id)) < 2:
            assert time.monotonic() < deadline and b.poll() is None, (tmp_path / "pg-b.log").read_text()
            time.sleep(0.02)
        b.send_signal(signal.SIGKILL)
        assert b.wait(timeout=30) == -signal.SIGKILL
        assert a.wait(timeout=90) == 0, (tmp_path / "pg-a.log").read_text()
    finally:
        for process in (a, b):
            if process.poll() is None:
                process.kill()
                process.wait(timeout=30)
        for log in logs.values():
            log.close()
    before_kill = _observed(postgres_url, b_id)
    assert (b_folder / "store.json").exists()
    assert not (b_folder / "store.sqlite").exists() and not (b_folder / "checkpoints.sqlite").exists()
    assert SECRET not in (tmp_path / "pg-b.log").read_text() + (tmp_path / "pg-a.log").read_text()

    resumed = closedloop("resume", str(b_folder), "--json")
    assert resumed.returncode == 0, resumed.stderr
    status = json.loads(resumed.stdout)
    assert (status["state"], status["experiments"], status["session_id"]) == ("finished", 4, b_id)
    after = _observed(postgres_url, b_id)
    assert after[: len(before_kill)] == before_kill  # nothing lost
    proposals = [proposal for proposal, _ in after]
    assert len(proposals) == len(set(proposals))  # nothing observed twice
    assert sum(status == "ok" for _, status in after) == 4
    started = start_documents(b_folder)
    assert len(started) == len(set(started)) and set(started) <= set(proposals)  # nothing run twice
    page = report_html(b_folder)  # the report of a session kept in PostgreSQL, read through its folder
    assert page.count("data:image/png;base64,") == 2 and "4 ok of a budget of 4" in page and SECRET not in page
    # LangGraph's checkpoints are in the same database, one thread per session
    threads = {row[0] for row in _sql(postgres_url, "SELECT DISTINCT thread_id FROM checkpoints")}
    a_id = _session_of(postgres_url, "pg-a")
    assert threads == {a_id, b_id}
    assert len(_observed(postgres_url, str(a_id))) == 2 and not set(proposals) & {
        p for p, _ in _observed(postgres_url, str(a_id))
    }

    # an operator elsewhere: no folder, a different working directory, the store and the session's name or id
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    found = subprocess.run(
        [*CLI, "status", "--store", postgres_url, "--session", "pg-b", "--json"],
        cwd=elsewhere, capture_output=True, text=True, timeout=60, env={**os.environ, "PYTHONPATH": _root()},
    )  # fmt: skip
    assert found.returncode == 0, found.stderr
    remote = json.loads(found.stdout)
    assert (remote["session_id"], remote["experiments"], remote["state"]) == (b_id, 4, "finished")
    assert remote["best_value"] == status["best_value"] and remote["folder"] == str(b_folder.resolve())
    assert SECRET not in found.stdout and ":***@" in remote["store"]
    table = subprocess.run(
        [*CLI, "status", "--store", postgres_url, "--session", str(a_id)],
        cwd=elsewhere, capture_output=True, text=True, timeout=60, env={**os.environ, "PYTHONPATH": _root()},
    )  # fmt: skip
    assert table.returncode == 0 and "pg-a" in table.stdout and "2 of 2" in table.stdout, table.stderr


def _root() -> str:
    return str(Path(__file__).resolve().parents[2])


def test_a_store_that_cannot_be_reached_is_one_line_naming_store_without_the_password(tmp_path: Path) -> None:
    session_file = tmp_path / "session.yaml"
    session_file.write_text(json.dumps(beamline_session()))
    url = f"postgresql://closedloop:{SECRET}@127.0.0.1:{_free_port()}/postgres"
    result = closedloop("status", "--store", url, "--session", "any")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: store postgresql://closedloop:***@127.0.0.1:"), lines
    assert SECRET not in result.stderr + result.stdout
    bad = closedloop("run", str(session_file), "--dir", str(tmp_path / "s"), "--store", f"mysql://u:{SECRET}@h/db")
    assert bad.returncode == 2 and bad.stderr.startswith("error: store: must be a postgresql:// URL"), bad.stderr
    assert SECRET not in bad.stderr and not (tmp_path / "s").exists()
    # the same server, down: the run is refused before anything is made
    down = closedloop("run", str(session_file), "--dir", str(tmp_path / "s"), "--store", url)
    assert down.returncode == 2 and down.stderr.startswith("error: store postgresql://closedloop:***@"), down.stderr
    assert SECRET not in down.stderr + down.stdout and not (tmp_path / "s").exists()


def test_an_operator_without_the_folder_answers_a_checkpoint_through_the_store(
    postgres_url: str, tmp_path: Path
) -> None:
    session_file = tmp_path / "held.yaml"
    data = beamline_session(name="pg-held", budget={"experiments": 1}, review={"policy": "always"})
    session_file.write_text(json.dumps(data))
    log = (tmp_path / "held.log").open("w")
    # no terminal: the session waits for an answer from its control channel
    agent = subprocess.Popen([*CLI, "run", str(session_file), "--dir", str(tmp_path / "run"), "--store", postgres_url],
                             stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)  # fmt: skip
    try:
        deadline = time.monotonic() + 90
        while (held := _session_of(postgres_url, "pg-held")) is None or not _sql(
            postgres_url, "SELECT 1 FROM meta WHERE session = %s AND key = 'state' AND value = '\"waiting\"'", held
        ):
            assert time.monotonic() < deadline and agent.poll() is None, (tmp_path / "held.log").read_text()
            time.sleep(0.05)
        elsewhere = tmp_path / "elsewhere"
        sys_env = {**os.environ, "PYTHONPATH": _root()}
        attached = subprocess.run([*CLI, "attach", str(elsewhere / "held"), "--store", postgres_url, "--session",
                                   "pg-held"], capture_output=True, text=True, timeout=60, env=sys_env)  # fmt: skip
        assert attached.returncode == 0 and held in attached.stdout, attached.stderr
        assert sorted(p.name for p in (elsewhere / "held").iterdir()) == ["store.json"]  # no session.yaml: no resume
        # the operator elsewhere holds a key the owner issued (the channel answers no one else), named for them
        issued = subprocess.run([*CLI, "keys", str(tmp_path / "run"), "--name", "remote-ann", "--json"],
                                capture_output=True, text=True, timeout=60, env=sys_env)  # fmt: skip
        assert issued.returncode == 0, issued.stderr
        key = json.loads(issued.stdout)["client"]
        page = WebGate(elsewhere / "held", keys_dir=Path(key))  # what `closedloop web --keys` serves from that folder
        assert (page.session()["name"], page.status()["running"]) == ("pg-held", True)
        asked = page.checkpoint()["checkpoint"]
        assert asked["kind"] == "review" and asked["variables"]["pitch1"]["hard_limits"] == [-2.0, 2.0]
        answer = subprocess.run([*CLI, "review", str(elsewhere / "held"), "--approve", "--keys", key, "--json"],
                                capture_output=True, text=True, timeout=60, env=sys_env)  # fmt: skip
        assert answer.returncode == 0 and json.loads(answer.stdout)["ok"], answer.stdout + answer.stderr
        assert agent.wait(timeout=90) == 0, (tmp_path / "held.log").read_text()
    finally:
        if agent.poll() is None:
            agent.kill()
            agent.wait(timeout=30)
        log.close()
    seen = subprocess.run([*CLI, "status", str(elsewhere / "held"), "--json"], capture_output=True, text=True,
                          timeout=60, env=sys_env)  # fmt: skip
    assert seen.returncode == 0, seen.stderr
    assert {k: json.loads(seen.stdout)[k] for k in ("session_id", "state", "experiments")} == {
        "session_id": held, "state": "finished", "experiments": 1}  # fmt: skip
    decisions = _sql(postgres_url, "SELECT body FROM decisions WHERE session = %s", held)
    assert [json.loads(body)["by"] for (body,) in decisions] == ["remote-ann"]
    assert [status for _, status in _observed(postgres_url, held)] == ["ok"]
    # the results, from the attached folder: the run's start document is read from PostgreSQL too
    results = subprocess.run([*CLI, "results", str(elsewhere / "held"), "--json"], capture_output=True, text=True,
                             timeout=60, env=sys_env)  # fmt: skip
    assert results.returncode == 0, results.stderr
    (row,) = json.loads(results.stdout)["rows"]
    assert (row["status"], row["decided"]) == ("ok", "approve by remote-ann via channel")
    ((documents,),) = _sql(postgres_url, "SELECT documents FROM runs WHERE session = %s", held)
    (start,) = [doc for name, doc in json.loads(documents) if name == "start"]
    assert (row["run_uid"], row["scan_id"]) == (start["uid"], start["scan_id"]) and isinstance(row["flux"], float)
