"""The control channel over real ZeroMQ sockets on loopback, and the operator's commands as real processes.

The server here is a ControlServer started by the test with a small handler standing in for the session's
operations (the real session process is wired to the channel by ``closedloop run/resume``, and tested there): the
transport, the protocol, the keys and the commands are all real.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import zmq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent.operator.keys import client_curve, make_keys
from agent.operator.server import CONTROL_FILE, MAX_FRAME_BYTES, ControlClient, ControlServer, subscribe
from agent.store.sqlite import SessionStore
from closedloop.control import (
    MAX_MESSAGE_BYTES,
    AnswerRequest,
    CheckpointInfo,
    LateAnswerError,
    Reply,
    Request,
    StatusRequest,
)
from closedloop.errors import RefusedError, SafetyError, SessionError
from closedloop.records import Decision, Verdict

ROOT = Path(__file__).resolve().parents[2]


class Recorder:
    """A handler standing in for the session: records requests, answers status, fails on cue."""

    def __init__(self) -> None:
        self.requests: list[Request] = []
        self.fail: BaseException | None = None
        self.delay = 0.0

    def __call__(self, request: Request) -> dict[str, Any]:
        self.requests.append(request)
        if self.delay:
            time.sleep(self.delay)
        if self.fail is not None:
            raise self.fail
        return {"state": "running", "type": request.type, "by": request.by}


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[..., ControlServer]]:
    servers: list[ControlServer] = []

    def start(handler: Callable[[Request], dict[str, Any]], **kwargs: Any) -> ControlServer:
        server = ControlServer(tmp_path, handler, **kwargs)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()


def raw_dealer(server: ControlServer) -> tuple[zmq.Context, zmq.Socket]:
    """A bare DEALER presenting the session owner's key, for sending bytes no client would."""
    ctx = zmq.Context()
    sock = ctx.socket(zmq.DEALER)
    sock.linger = 0
    sock.rcvtimeo = 3000
    assert client_curve(sock, server.folder / "keys", None, server.info["server_key"]) is not None
    sock.connect(server.requests_address)
    return ctx, sock


# The server and the client ---------------------------------------------------------------------------------------
def test_control_json_names_the_addresses_while_serving_and_goes_on_close(tmp_path: Path, serve) -> None:
    server = serve(Recorder())
    info = json.loads((tmp_path / CONTROL_FILE).read_text())
    assert info["pid"] == os.getpid() and len(info["server_key"]) == 40
    assert info["requests"].startswith("tcp://127.0.0.1:") and info["events"].startswith("tcp://127.0.0.1:")
    assert info["requests"] != info["events"]
    server.close()
    assert not (tmp_path / CONTROL_FILE).exists()
    server.close()  # harmless twice
    with pytest.raises(SessionError, match=f"no session process is running for {tmp_path}"):
        ControlClient(tmp_path)


def test_a_control_file_left_by_a_dead_process_means_not_running(tmp_path: Path) -> None:
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    info = {"pid": int(dead.stdout), "host": os.uname().nodename, "requests": "tcp://127.0.0.1:1", "events": "x"}
    (tmp_path / CONTROL_FILE).write_text(json.dumps(info))
    with pytest.raises(SessionError, match="no session process is running"):
        ControlClient(tmp_path)


def test_requests_reach_the_handler_and_replies_echo_their_ids(tmp_path: Path, serve) -> None:
    handler = Recorder()
    serve(handler)
    with ControlClient(tmp_path, timeout=2) as client:
        request = StatusRequest(by="ada")
        reply = client.call(request)
    assert reply.ok and reply.id == request.id
    assert reply.result == {"state": "running", "type": "status", "by": "ada"}
    assert handler.requests == [request]


def test_replies_are_matched_by_id_whatever_order_they_arrive_in(tmp_path: Path, serve) -> None:
    handler = Recorder()
    serve(handler)
    with ControlClient(tmp_path, timeout=2) as client:
        first, second = StatusRequest(by="a"), StatusRequest(by="b")
        client.send(first)
        client.send(second)
        assert client.receive(second.id).result["by"] == "b"  # the first reply arrives first and is kept
        assert client.receive(first.id).result["by"] == "a"

        handler.delay = 0.4  # a reply that arrives after its caller gave up ...
        with pytest.raises(SessionError, match="no answer within 0.1 s: the session is not running, or this client"):
            client.call(StatusRequest(by="slow"), timeout=0.1)
        handler.delay = 0.0
        reply = client.call(StatusRequest(by="next"))  # ... is not taken for the next one's
        assert reply.result["by"] == "next"


def test_handler_errors_become_error_replies_and_the_server_keeps_answering(tmp_path: Path, serve) -> None:
    handler = Recorder()
    serve(handler)
    with ControlClient(tmp_path, timeout=2) as client:
        cases: list[tuple[BaseException, str, str]] = [
            (SafetyError("edit.pitch1: 3.0 is outside the hard limits [-2, 2]"), "invalid", "hard limits"),
            (RefusedError("no checkpoint is waiting"), "refused", "no checkpoint is waiting"),
            (SessionError("store.sqlite: damaged"), "invalid", "damaged"),  # as its exit code: bad input
            (LateAnswerError("c-1", "alice"), "late", "answered already by alice"),
            (ZeroDivisionError("division by zero"), "internal", "ZeroDivisionError: division by zero"),
        ]
        for exc, code, words in cases:
            handler.fail = exc
            reply = client.call(StatusRequest())
            assert not reply.ok and reply.code == code and words in (reply.error or "")
        assert reply.result == {}
        handler.fail = LateAnswerError("c-1", "alice")
        assert client.call(StatusRequest()).result == {"checkpoint": "c-1", "answered_by": "alice"}
        handler.fail = None
        assert client.call(StatusRequest()).ok


def test_a_result_that_is_not_json_becomes_an_internal_error(tmp_path: Path, serve) -> None:
    serve(lambda request: {"value": object()} if request.by == "odd" else {"fine": True})
    with ControlClient(tmp_path, timeout=2) as client:
        reply = client.call(StatusRequest(by="odd"))
        assert reply.ok and reply.result["value"].startswith("<object")  # shown as text, not a crash
        assert client.call(StatusRequest()).result == {"fine": True}


def test_malformed_oversized_and_wrong_version_messages_get_errors_and_the_server_goes_on(
    tmp_path: Path, serve
) -> None:
    handler = Recorder()
    server = serve(handler)
    ctx, sock = raw_dealer(server)
    client = ControlClient(tmp_path, timeout=3)

    def exchange(raw: bytes) -> Reply:
        sock.send(raw)
        return Reply.model_validate_json(sock.recv())

    accepted: list[str] = []

    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(
        st.one_of(
            st.binary(max_size=200),
            st.builds(lambda v: json.dumps({"v": v, "id": "r-x", "by": "a", "type": "status"}).encode(), st.integers()),
            st.builds(lambda t: json.dumps({"v": 1, "id": "r-x", "by": "a", "type": t}).encode(), st.text(max_size=8)),
            st.builds(lambda n: b"x" * n, st.integers(MAX_MESSAGE_BYTES + 1, 4 * MAX_MESSAGE_BYTES)),
        )
    )
    def check(raw: bytes) -> None:
        reply = exchange(raw)
        if reply.ok:
            accepted.append(reply.id)  # a valid request slipped in among the generated ones: served as usual
        else:
            assert reply.code == "invalid" and reply.error and "\n" not in reply.error
        assert client.call(StatusRequest(by="still")).result["by"] == "still"

    try:
        check()
        reply = exchange(json.dumps({"v": 2, "id": "r-9", "by": "a", "type": "status"}).encode())
        assert (reply.id, reply.ok, reply.code) == ("r-9", False, "invalid")
        assert reply.error == "v: protocol version 2 is not spoken here (this session speaks 1)"
        reply = exchange(b"y" * (MAX_MESSAGE_BYTES + 1))
        assert reply.error == f"message: {MAX_MESSAGE_BYTES + 1} bytes, over the limit of {MAX_MESSAGE_BYTES} bytes"
        sock.send(b"z" * (MAX_FRAME_BYTES + 1))  # beyond the frame limit the peer is cut off, and nothing else
        assert client.call(StatusRequest(by="after")).result["by"] == "after"
        generated = [r.id for r in handler.requests if r.by not in ("still", "after")]
        assert generated == accepted  # only valid requests reached the handler
    finally:
        client.close()
        sock.close()
        ctx.term()


# Events ----------------------------------------------------------------------------------------------------------
def test_a_subscriber_gets_the_recent_events_then_live_ones_each_once(tmp_path: Path, serve) -> None:
    server = serve(Recorder())
    for i in range(5):
        server.publish("observation", {"proposal_id": f"p-{i}", "values": {"flux": float(i)}})
    events = subscribe(tmp_path)
    received = [next(events) for _ in range(5)]  # sent before it subscribed: from the backlog
    # each once; under load a replay under way as it joins can hand one over first (see subscribe's docstring)
    assert sorted(e.seq for e in received) == [1, 2, 3, 4, 5]
    by_seq = {e.seq: e for e in received}
    assert by_seq[3].data == {"proposal_id": "p-2", "values": {"flux": 2.0}}
    late = subscribe(tmp_path, since=3)  # a second subscriber joins: the first must not see repeats
    assert sorted(next(late).seq for _ in range(2)) == [4, 5]
    server.publish("best", {"value": 9.0})
    assert (next(events).kind, next(late).kind) == ("best", "best")
    server.close()
    assert list(events) == [] and list(late) == []  # the session process ended: the iterators end


def test_publish_is_safe_from_many_threads(tmp_path: Path, serve) -> None:
    server = serve(Recorder())
    events = subscribe(tmp_path)
    server.publish("paused", {})
    assert next(events).seq == 1  # subscribed

    def burst(n: int) -> None:
        for i in range(50):
            server.publish("run_started", {"thread": n, "i": i})

    threads = [threading.Thread(target=burst, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    got = [next(events) for _ in range(200)]
    assert sorted(e.seq for e in got) == list(range(2, 202))
    for n in range(4):
        assert [e.data["i"] for e in got if e.data["thread"] == n] == list(range(50))  # each thread's order kept
    assert server.dropped == 0
    events.close()


def test_an_unknown_event_kind_is_refused(tmp_path: Path, serve) -> None:
    server = serve(Recorder())
    with pytest.raises(ValueError, match="kind"):
        server.publish("exploded", {})


def test_a_host_that_cannot_be_bound_is_refused_in_one_line(tmp_path: Path) -> None:
    with pytest.raises(SessionError, match="cannot open the control channel on 203.0.113.9"):
        ControlServer(tmp_path, Recorder(), host="203.0.113.9")  # not an address of this machine
    assert not (tmp_path / CONTROL_FILE).exists()


def test_the_latency_benchmark_measures_both_paths(tmp_path: Path) -> None:
    from benchmarks.control_latency import bare_round_trips, control_delivery, control_round_trips

    assert len(control_round_trips(tmp_path, 20)) == 20 and len(bare_round_trips(20, b"x")) == 20
    assert all(t > 0 for t in control_delivery(tmp_path, 20))


# CurveZMQ --------------------------------------------------------------------------------------------------------
def test_only_the_owner_and_admitted_keys_are_answered_under_the_name_each_key_proves(tmp_path: Path, serve) -> None:
    handler = Recorder()
    server = serve(handler)
    made = make_keys(tmp_path, "alice")  # issued while the session runs: admitted from the next connection
    assert made["client"].stat().st_mode & 0o077 == 0  # secret keys are private
    with ControlClient(tmp_path, timeout=2) as owner:  # the owner's own key, found without being named
        assert owner.key == tmp_path / "keys" / "owner.key_secret"
        assert owner.call(StatusRequest(by="ada", via="web")).result["by"] == "ada"  # the owner relays its page's
    with ControlClient(tmp_path, timeout=2, keys_dir=made["client"]) as alice:
        assert alice.call(StatusRequest(by="bob", via="web")).result["by"] == "alice"  # a claim is not a proof
    assert [(r.by, r.via) for r in handler.requests] == [("ada", "web"), ("alice", "channel")]

    server.publish("paused", {"by": "alice"})
    events = subscribe(tmp_path, key_name="alice")  # events are encrypted too, and reach an admitted subscriber
    assert next(events).data == {"by": "alice"}
    events.close()
    # no key at all
    with (
        ControlClient(tmp_path, timeout=0.5, keys_dir=tmp_path / "none") as client,
        pytest.raises(SessionError, match="not running, or this client is not authorised .no key found in"),
    ):
        client.call(StatusRequest())
    stranger = tmp_path / "stranger"
    make_keys(stranger, "alice")  # a valid key pair the session never admitted
    with (
        ControlClient(tmp_path, timeout=0.5, keys_dir=stranger / "keys", key_name="alice") as client,
        pytest.raises(SessionError, match="not authorised"),
    ):
        client.call(StatusRequest())
    made["authorized"].unlink()  # shut alice out: refused from her next connection
    with (
        ControlClient(tmp_path, timeout=0.5, keys_dir=made["client"]) as alice,
        pytest.raises(SessionError, match="not authorised"),
    ):
        alice.call(StatusRequest())
    assert len(handler.requests) == 2


def test_a_subscriber_without_an_admitted_key_gets_no_event(tmp_path: Path, serve) -> None:
    server = serve(Recorder())
    server.publish("paused", {"by": "owner"})
    stranger = tmp_path / "stranger"
    make_keys(stranger, "eve")
    received: list[Any] = []

    def follow() -> None:
        for event in subscribe(tmp_path, keys_dir=stranger / "keys", key_name="eve", idle=0.2):
            received.append(event)

    thread = threading.Thread(target=follow, daemon=True)
    thread.start()
    owner = subscribe(tmp_path)
    assert next(owner).data == {"by": "owner"}  # the backlog reaches the owner's subscriber ...
    server.publish("resumed", {"by": "owner"})
    assert next(owner).kind == "resumed"
    owner.close()
    server.close()  # ... and the stranger's loop ends with the session, having seen nothing
    thread.join(timeout=10)
    assert not thread.is_alive() and received == []


def test_off_loopback_the_owner_is_admitted_without_setting_keys_up(tmp_path: Path, serve) -> None:
    server = serve(Recorder(), host="0.0.0.0")
    assert server.curve and f":{server.requests_address.rsplit(':', 1)[1]}" in server.info["requests"]
    with ControlClient(tmp_path, timeout=2) as client:
        assert client.call(StatusRequest()).ok
    with (
        ControlClient(tmp_path, timeout=0.3, keys_dir=tmp_path / "none") as client,
        pytest.raises(SessionError, match="not authorised"),
    ):
        client.call(StatusRequest())


def test_control_json_and_the_keys_are_readable_by_their_owner_only(tmp_path: Path, serve) -> None:
    os.umask(umask := os.umask(0o022))  # whatever the umask, as the default one
    serve(Recorder())
    keys = tmp_path / "keys"
    assert (tmp_path / CONTROL_FILE).stat().st_mode & 0o777 == 0o600
    assert keys.stat().st_mode & 0o777 == 0o700 and (keys / "authorized").stat().st_mode & 0o777 == 0o700
    secrets = sorted(p.name for p in keys.glob("*.key_secret"))
    assert secrets == ["owner.key_secret", "server.key_secret"]
    assert all((keys / name).stat().st_mode & 0o077 == 0 for name in secrets)
    assert sorted(p.name for p in (keys / "authorized").iterdir()) == ["owner.key"]
    assert umask == os.umask(umask)


# The commands, as real processes ---------------------------------------------------------------------------------
CHECKPOINT = CheckpointInfo.model_validate(
    {
        "checkpoint": "c-5",
        "kind": "review",
        "iteration": 3,
        "proposals": [
            {"id": "p-1", "setpoints": {"pitch1": 0.1, "pitch2": 0.2}, "current": {"pitch1": 0.0, "pitch2": 0.0}},
            {"id": "p-2", "setpoints": {"pitch1": -0.3, "pitch2": 0.4}, "why": "initial design"},
        ],
        "variables": {
            "pitch1": {"units": "mrad", "bounds": [-1.5, 1.5], "hard_limits": [-2, 2]},
            "pitch2": {"units": "mrad", "bounds": [-1.5, 1.5], "hard_limits": [-2, 2]},
        },
        "objectives": {"flux": "maximize"},
    }
)


class FakeCheckpoint(Recorder):
    """Holds one checkpoint; the first answer wins and later ones are too late (as the session's rule is)."""

    def __init__(self) -> None:
        super().__init__()
        self.answered_by: str | None = None

    def __call__(self, request: Request) -> dict[str, Any]:
        super().__call__(request)
        if request.type == "checkpoint":
            return {"checkpoint": None if self.answered_by else CHECKPOINT.model_dump(mode="json")}
        if isinstance(request, AnswerRequest):
            if self.answered_by:
                raise LateAnswerError(request.checkpoint, self.answered_by)
            for answer in request.answers:
                if answer.setpoints and abs(float(answer.setpoints["pitch1"])) > 2:
                    raise SafetyError(f"{answer.proposal_id}.pitch1: {answer.setpoints['pitch1']} is over the limit")
            self.answered_by = request.by
            return {"checkpoint": request.checkpoint, "stop": request.stop}
        return {"state": "paused" if request.type == "pause" else "running", "by": request.by}


def cli(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    (done,) = clis([list(args)], stdin)
    return done


def clis(commands: list[list[str]], stdin: str = "") -> list[subprocess.CompletedProcess[str]]:
    """Run commands at once (each pays Python's start-up; the order they reach the server is not fixed)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200"}
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "agent.cli.control", *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for args in commands
    ]
    results = []
    for args, process in zip(commands, processes, strict=True):
        out, err = process.communicate(stdin, timeout=60)
        results.append(subprocess.CompletedProcess(args, process.returncode, out, err))
    return results


def test_review_with_flags_sends_a_verdict_per_proposal(tmp_path: Path, serve) -> None:
    handler = FakeCheckpoint()
    serve(handler)
    done = cli("review", str(tmp_path), "--edit", "p-2:pitch1=0.5", "--reject", "too far", "--by", "ada")
    assert done.returncode == 0, done.stderr
    assert "p-1 rejected (too far); p-2 edited to pitch1=0.5" in done.stdout
    (answer,) = [r for r in handler.requests if isinstance(r, AnswerRequest)]
    assert (answer.by, answer.via, answer.checkpoint) == ("ada", "channel", "c-5")
    assert [(a.proposal_id, a.verdict, a.reason) for a in answer.answers] == [
        ("p-1", "reject", "too far"),
        ("p-2", "edit", ""),
    ]
    assert answer.answers[1].setpoints == {"pitch1": 0.5, "pitch2": 0.4}

    late = cli("review", str(tmp_path), "--approve", "--json")  # the checkpoint has been answered
    assert late.returncode == 1 and "no checkpoint is waiting" in late.stderr


def test_review_at_the_terminal_shows_the_checkpoint_and_asks_per_proposal(tmp_path: Path, serve) -> None:
    handler = FakeCheckpoint()
    serve(handler)
    done = cli("review", str(tmp_path), stdin="x\na\ne\npitch2=0.25\n")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "pitch1 [mrad]" in done.stdout and "please answer a (approve)" in done.stdout
    answer = handler.requests[-1]
    assert isinstance(answer, AnswerRequest)
    assert [(a.verdict, a.setpoints) for a in answer.answers] == [
        ("approve", None),
        ("edit", {"pitch1": -0.3, "pitch2": 0.25}),
    ]
    assert answer.by == os.environ.get("USER", answer.by)


def test_review_refusals_and_stop_give_their_exit_codes(tmp_path: Path, serve) -> None:
    handler = FakeCheckpoint()
    serve(handler)
    folder = str(tmp_path)
    over, bad, unanswered, none = clis(
        [
            ["review", folder, "--edit", "p-1:pitch1=3", "--approve"],  # the session refuses it
            ["review", folder, "--edit", "pitch1=3"],  # refused before anything is sent
            ["review", folder, "--edit", "p-1:pitch1=0"],
            ["review", folder],  # at the terminal, and the input ends
        ]
    )
    assert over.returncode == 2 and "p-1.pitch1: 3.0 is over the limit" in over.stderr
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "holds 2 proposals" in bad.stderr
    assert unanswered.returncode == 2 and "p-2 is not answered" in unanswered.stderr
    assert none.returncode == 1 and "no answer given; nothing was sent" in none.stderr
    (sent,) = [r for r in handler.requests if isinstance(r, AnswerRequest)]  # only the one the session refused
    assert sent.answers[0].setpoints == {"pitch1": 3.0, "pitch2": 0.2}

    stopped = cli("review", str(tmp_path), "--stop", "--reason", "beam dump", "--by", "bob")
    assert stopped.returncode == 3, stopped.stderr
    handler.answered_by = None  # ask again, so the next answer reaches the rule "first answer wins"
    handler.fail = LateAnswerError("c-5", "bob")
    late = cli("review", str(tmp_path), "--approve")
    assert late.returncode == 1 and "too late: answered already by bob" in late.stderr


def test_a_checkpoint_this_client_cannot_read_is_reported_in_one_line(tmp_path: Path, serve) -> None:
    serve(lambda request: {"checkpoint": {"checkpoint": "c-1", "kind": "quiz", "iteration": 0}})
    done = cli("review", str(tmp_path), "--approve")
    assert done.returncode == 1
    assert done.stderr.strip().startswith("error: the session's reply is not understood: kind:")
    assert "Traceback" not in done.stderr


def test_pause_stop_and_budget_reach_the_session_with_who_sent_them(tmp_path: Path, serve) -> None:
    handler = FakeCheckpoint()
    serve(handler)
    folder = str(tmp_path)
    paused, stopped, budget, zero, huge, escape = clis(
        [
            ["pause", folder, "--by", "ada", "--json"],
            ["stop", folder, "--abort", "--reason", "vacuum"],
            ["budget", folder, "12"],
            ["budget", folder, "0"],
            ["budget", folder, str(10**40)],
            ["stop", folder, "--reason", "\x1b[2J\x1b]0;owned\x07", "--by", "ada"],
        ]
    )
    assert paused.returncode == 0 and json.loads(paused.stdout)["result"] == {"state": "paused", "by": "ada"}
    assert stopped.returncode == 0 and "aborting the current run" in stopped.stdout
    assert budget.returncode == 0 and "budget: 12 experiments" in budget.stdout
    assert zero.returncode == 2 and "budget.experiments: Input should be greater than or equal to 1" in zero.stderr
    assert huge.returncode == 2 and huge.stderr.startswith("error: budget.experiments: Input should be less than or")
    assert escape.returncode == 2 and "\x1b" not in escape.stderr and "\x07" not in escape.stderr
    assert escape.stderr.strip() == "error: stop.reason: holds a control character (\\x1b) at position 0"
    received = {r.type: r for r in handler.requests}
    assert sorted(received) == ["budget", "pause", "stop"]  # the bad ones never left the terminal
    assert len(handler.requests) == 3
    assert received["pause"].by == "ada" and received["stop"].by != "ada"
    assert received["stop"].abort and received["stop"].reason == "vacuum"
    assert received["budget"].experiments == 12


def test_with_no_session_process_each_command_says_so_in_one_line(tmp_path: Path) -> None:
    commands = [["review", "--approve"], ["watch"], ["pause"], ["stop"], ["budget", "3"]]
    for args, done in zip(commands, clis([[a[0], str(tmp_path), *a[1:]] for a in commands]), strict=True):
        assert done.returncode == 1, args
        assert done.stderr.strip() == f"error: no session process is running for {tmp_path}", args


def test_watch_prints_events_as_json_lines_and_ends_with_the_session(tmp_path: Path, serve) -> None:
    server = serve(Recorder())
    server.publish("proposal", {"proposal_id": "p-1", "setpoints": {"pitch1": 0.1}})
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "agent.cli.control", "watch", str(tmp_path)]
    watcher = subprocess.Popen([*command, "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    text = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert watcher.stdout is not None and text.stdout is not None
        first = json.loads(watcher.stdout.readline())
        assert (first["seq"], first["kind"], first["data"]["proposal_id"]) == (1, "proposal", "p-1")
        assert text.stdout.readline().startswith("-- ")  # the date and the zone
        assert "proposal" in text.stdout.readline()
        server.publish("observation", {"proposal_id": "p-1", "values": {"flux": 5.0}})
        second = json.loads(watcher.stdout.readline())
        assert (second["seq"], second["data"]["values"]) == (2, {"flux": 5.0})
        assert text.stdout.readline().endswith(" observation  p-1  flux=5\n")
        text.send_signal(signal.SIGINT)  # Ctrl-C ends it quietly
        assert text.wait(timeout=10) == 0
        assert text.stderr is not None and text.stderr.read() == ""
        server.close()
        assert watcher.wait(timeout=10) == 0  # the session process ended: so does watch
    finally:
        for process in (watcher, text):
            if process.poll() is None:
                process.kill()
            process.communicate(timeout=10)


def test_keys_then_commands_through_curve(tmp_path: Path, serve) -> None:
    made = cli("keys", str(tmp_path), "--json")
    assert made.returncode == 0, made.stderr
    assert Path(json.loads(made.stdout)["client"]).exists()
    bad = cli("keys", str(tmp_path), "--name", "../evil")
    assert bad.returncode == 2 and "keys.name" in bad.stderr
    serve(FakeCheckpoint())
    assert cli("pause", str(tmp_path)).returncode == 0
    issued = cli("pause", str(tmp_path), "--keys", json.loads(made.stdout)["client"], "--by", "ada", "--json")
    assert issued.returncode == 0 and json.loads(issued.stdout)["result"]["by"] == "client"
    refused = cli("pause", str(tmp_path), "--keys", str(tmp_path / "none"), "--timeout", "0.3")
    assert refused.returncode == 1 and "not authorised" in refused.stderr


def test_audit_reads_who_decided_what_from_the_store_without_a_process(tmp_path: Path) -> None:
    store = SessionStore(tmp_path / "store.sqlite")
    store.set_meta(session_id="s-audit")  # a session's store: the audit opens it with the checks a resume makes
    store.log("start", "session started")
    store.add_decision(1, Decision(verdict=Verdict.REJECT, proposal_ids=["p-1"], by="ada", reason="near the [edge]"))
    store.add_decision(2, Decision(verdict=Verdict.APPROVE, proposal_ids=["p-2"], by="bob"))
    store.add_decision(3, Decision(verdict=Verdict.STOP, by="eve\x1b[8m", reason="\x1b]0;pwned\x07"))  # an old store's
    store.close()
    done = cli("audit", str(tmp_path), "--json")
    assert done.returncode == 0, done.stderr
    trail = json.loads(done.stdout)["trail"]
    assert [(e["source"], e["what"], e["who"]) for e in trail] == [
        ("log", "start", "session"),
        ("decision", "reject", "ada"),
        ("decision", "approve", "bob"),
        ("decision", "stop", "eve\x1b[8m"),  # JSON keeps what was recorded ...
    ]
    assert trail[1]["why"] == "near the [edge]" and "p-1" in trail[1]["detail"] and trail[1]["time"][:2] == "20"
    table = cli("audit", str(tmp_path))
    assert table.returncode == 0 and "near the [edge]" in table.stdout and "bob" in table.stdout
    assert "\x1b" not in table.stdout and "\x07" not in table.stdout  # ... a terminal is shown it, not told it
    assert "eve\\x1b[8m" in table.stdout and "\\x1b]0;pwned\\x07" in table.stdout
    missing = cli("audit", str(tmp_path / "nothing"))
    assert missing.returncode == 2 and "holds no session" in missing.stderr
