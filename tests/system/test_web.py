"""The operator's web page, in a real headless browser (Debian's chromium, driven by Playwright's library).

One detached session process (the simulated beamline, every proposal held for review) and one ``closedloop web``
process serve the whole module; the page talks HTTP to the web process, which talks ZeroMQ to the session's control
channel. Every check reads what the session itself recorded (its audit trail, its store) besides what the page shows.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from agent.operator.client import ControlClient
from agent.operator.input import build
from agent.views.audit import audit_trail
from agent.views.results import as_csv, session_results
from tests.conftest import beamline_session
from tests.integration.test_cli import CLI, closedloop, detached_session, observations, stop_detached

pytestmark = [pytest.mark.system, pytest.mark.timeout(180)]
CHROMIUM_FLAGS = [  # what this machine's closed network needs (no calls home, no QUIC, no sandbox as root)
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A session process started with --detach, holding every batch of two proposals for an operator; stopped at
    the end."""
    data = beamline_session(review={"policy": "always"}, budget={"experiments": 14})
    data["planner"]["batch_size"] = 2  # two proposals a checkpoint: a verdict each
    data["variables"]["pitch1"]["units"] = "mrad"
    with detached_session(data, tmp_path_factory.mktemp("web")) as folder:
        yield folder


@pytest.fixture(scope="module")
def url(folder: Path) -> Iterator[str]:
    """``closedloop web`` on the session, in its own process: the page's address with its token."""
    with web_process(folder) as printed:
        yield printed["url"]


@contextlib.contextmanager
def web_process(folder: Path, *options: str) -> Iterator[dict[str, Any]]:
    """``closedloop web FOLDER --port 0 --json OPTIONS`` in its own process, ended with Ctrl-C after the block:
    what it printed, and its ``pid``."""
    web = subprocess.Popen(
        [*CLI, "web", str(folder), "--port", "0", "--json", *options], stdout=subprocess.PIPE, text=True
    )
    try:
        assert web.stdout is not None
        line = web.stdout.readline()
        assert line, "closedloop web printed no address"
        yield {**json.loads(line), "pid": web.pid}
    finally:
        web.send_signal(signal.SIGINT)
        try:
            assert web.wait(timeout=10) == 0  # Ctrl-C ends the page's server quietly; the session goes on
        finally:
            web.kill()
            web.stdout.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    executable = shutil.which("chromium")
    assert executable, "Debian's chromium is not installed: run `make system-deps`"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_FLAGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(browser: Browser, url: str) -> Iterator[Page]:
    """The page, opened as an operator named ada."""
    context = browser.new_context()
    page = context.new_page()
    page.on("dialog", lambda dialog: dialog.accept())  # the stop and abort buttons ask first
    page.goto(url)
    page.fill("#by", "ada")
    page.dispatch_event("#by", "change")
    try:
        yield page
    finally:
        context.close()


def waiting(folder: Path) -> dict[str, Any]:
    """The checkpoint the session waits at, asked over its control channel (not through the page)."""
    with ControlClient(folder, timeout=10) as client:
        checkpoint = client.call(build("checkpoint", "test")).result["checkpoint"]
    assert checkpoint is not None, "the session waits at no checkpoint"
    return checkpoint


def next_checkpoint(page: Page, folder: Path, old: str) -> dict[str, Any]:
    """Wait until the session and the page both show a checkpoint other than ``old``; the session's."""
    deadline = time.monotonic() + 60
    while (checkpoint := _maybe_waiting(folder)) is None or checkpoint["checkpoint"] == old:
        assert time.monotonic() < deadline, "the session never reached its next checkpoint"
        time.sleep(0.1)
    expect(page.locator("#checkpoint-title")).to_contain_text(checkpoint["checkpoint"], timeout=15_000)
    return checkpoint


def _maybe_waiting(folder: Path) -> dict[str, Any] | None:
    with ControlClient(folder, timeout=10) as client:
        return client.call(build("checkpoint", "test")).result.get("checkpoint")


def decisions(folder: Path, proposal_id: str | None = None) -> list[dict[str, Any]]:
    """The decisions in the session's audit trail (those on one proposal)."""
    trail = [e for e in audit_trail(folder) if e["source"] == "decision"]
    return [e for e in trail if proposal_id is None or e["decision"]["proposal_ids"] == [proposal_id]]


def get(url: str) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_nothing_is_served_without_the_token_and_the_attempt_is_on_record(url: str, folder: Path) -> None:
    base, token = url.split("/?token=")
    assert get(f"{base}/api/status")[0] == 401
    code, body = get(f"{base}/api/status?token={token}x")
    assert (code, body["error"]) == (401, "wrong access token: open the address closedloop web printed")
    code, body = get(f"{base}/api/status?token={token}")
    assert code == 200 and body["name"] == "test-beamline" and body["running"] is True
    # the first attempt is on the session's record as refused (later ones within 10 s are counted, not each logged)
    deadline = time.monotonic() + 20
    refused: list[dict[str, Any]] = []
    while not refused and time.monotonic() < deadline:
        refused = [e for e in audit_trail(folder) if e["what"] == "refused" and e["who"] == "nobody"]
        time.sleep(0.2)
    assert refused, "a request without a token left no record"
    assert (refused[0]["via"], refused[0]["why"]) == ("web", "no access token")
    assert "GET /api/status" in refused[0]["detail"]


def post(url: str, body: bytes) -> tuple[int, dict[str, Any]]:
    base, token = url.split("/?token=")
    request = urllib.request.Request(f"{base}/api/request", data=body, headers={"X-Closedloop-Token": token})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b"approve", "message: not JSON (Expecting value at character 0)"),
        (b"[1, 2]", "request: a JSON object, got list"),
        (b'{"type": "launch"}', "type: unknown request 'launch' (one of status, checkpoint, answer, pause, resume, "),
        (b'{"type": "budget", "experiments": 0}', "budget.experiments: Input should be greater than or equal to 1"),
        (b'{"type": "stop", "abort": "now"}', "stop.abort: Input should be a valid boolean"),
        (b'{"type": "pause", "by": 5}', "pause.by: Input should be a valid string"),
        (b'{"type": "add", "points": [{"pitch1": 0.1}], "extra": 1}', "add.extra: unknown key"),
        (b'{"type": "budget", "experiments": "many"}', "budget.experiments: Input should be a valid integer"),
        (b'{"type": "pause", "kind": "x"}', "pause.kind: unknown key"),  # (a name the old server passed on as is)
    ],
)
def test_a_malformed_request_is_refused_in_one_line_naming_the_field(url: str, body: bytes, error: str) -> None:
    """Refused by the page's server as the session would refuse it, before anything reaches the session."""
    code, reply = post(url, body)
    assert code == 400 and reply["ok"] is False and reply["error"].startswith(error)
    assert "\n" not in reply["error"]


def test_the_page_shows_the_checkpoint_as_the_session_holds_it(page: Page, folder: Path) -> None:
    checkpoint = waiting(folder)
    proposal = checkpoint["proposals"][0]
    expect(page.locator("#checkpoint-title")).to_contain_text(checkpoint["checkpoint"])
    expect(page.locator("#name")).to_have_text("test-beamline")
    expect(page.locator("#state")).to_have_text("waiting")
    shown = page.locator(f"[data-proposal='{proposal['id']}']")
    expect(shown).to_contain_text("pitch1 mrad")  # units
    expect(shown).to_contain_text("-2 to 2")  # the hard limits
    expect(page.locator("#instruments")).to_contain_text("instrument")
    expect(page.locator("#events")).to_contain_text("checkpoint")
    expect(page.locator("#belief-why")).to_have_text("no model: the sobol planner has none to show")


def test_an_edit_over_a_hard_limit_is_refused_and_nothing_moves(page: Page, folder: Path) -> None:
    checkpoint = waiting(folder)
    pid = checkpoint["proposals"][0]["id"]
    before = len(observations(folder))
    page.check(f"input[name='verdict-{pid}'][value='edit']")
    page.fill(f"input[name='edit-{pid}-pitch1']", "5")
    page.click("#send-answer")
    expect(page.locator("#message")).to_contain_text("refused")
    expect(page.locator("#message")).to_contain_text("pitch1")
    expect(page.locator("#message")).to_have_class("error")
    assert waiting(folder)["checkpoint"] == checkpoint["checkpoint"]  # still asked, nothing decided
    assert len(observations(folder)) == before
    assert not decisions(folder, pid)


def test_an_edit_from_the_page_runs_where_the_operator_said(page: Page, folder: Path) -> None:
    checkpoint = waiting(folder)
    pid, other = (p["id"] for p in checkpoint["proposals"])  # the other keeps its verdict: approve
    page.check(f"input[name='verdict-{pid}'][value='edit']")
    page.fill(f"input[name='edit-{pid}-pitch1']", "0.3")
    page.fill(f"input[name='reason-{pid}']", "closer to the peak")
    page.click("#send-answer")
    expect(page.locator("#message")).to_have_text(f"edited {pid}, approved {other}")
    next_checkpoint(page, folder, checkpoint["checkpoint"])
    ran = {o["proposal_id"]: o for o in (json.loads(body) for _, body in observations(folder))}
    assert ran[f"{pid}-edit"]["readbacks"]["pitch1"] == pytest.approx(0.3, abs=1e-6)  # what the motor read back
    assert ran[other]["readbacks"] == pytest.approx(checkpoint["proposals"][1]["setpoints"], abs=1e-6)
    shown = page.locator(f"#observations tr[data-proposal='{pid}-edit']")  # the page's last results
    expect(shown).to_contain_text("pitch1=0.3,")
    expect(shown).to_contain_text(f"flux={ran[f'{pid}-edit']['values']['flux']:.6g}")
    (decision,) = decisions(folder, pid)
    assert (decision["who"], decision["via"], decision["why"]) == ("ada", "web", "closer to the peak")
    assert "edit" in decision["what"]


def test_a_verdict_per_proposal_from_the_page(page: Page, folder: Path) -> None:
    checkpoint = waiting(folder)
    first, second = (p["id"] for p in checkpoint["proposals"])
    page.check(f"input[name='verdict-{first}'][value='reject']")
    page.fill(f"input[name='reason-{first}']", "too near the edge")
    page.click("#send-answer")
    expect(page.locator("#message")).to_have_text(f"rejected {first}, approved {second}")
    next_checkpoint(page, folder, checkpoint["checkpoint"])
    verdicts = {pid: decisions(folder, pid) for pid in (first, second)}
    assert [(d["what"], d["who"], d["via"], d["why"]) for d in verdicts[first]] == [
        ("reject", "ada", "web", "too near the edge")
    ]
    assert [(d["what"], d["who"], d["via"]) for d in verdicts[second]] == [("approve", "ada", "web")]
    ran = {proposal_id for proposal_id, _ in observations(folder)}
    assert second in ran and first not in ran


def test_an_operator_with_an_address_of_their_own_acts_in_their_name_only(browser: Browser, folder: Path) -> None:
    with web_process(folder, "--operator", "cy", "--operator", "dee=" + "d" * 16) as printed:
        addresses = printed["operators"]
        assert set(addresses) == {"cy", "dee"} and addresses["dee"].endswith("?token=" + "d" * 16)
        base, cy_token = addresses["cy"].split("/?token=")
        assert get(f"{base}/api/session?token={cy_token}")[1]["operator"] == "cy"
        assert get(f"{base}/api/session?token=" + "d" * 16)[1]["operator"] == "dee"
        checkpoint = waiting(folder)
        # cy's token, dee's name: refused before it reaches the session, and nothing is decided
        answers = [{"proposal_id": p["id"], "verdict": "approve"} for p in checkpoint["proposals"]]
        impostor = {"type": "answer", "checkpoint": checkpoint["checkpoint"], "answers": answers, "by": "dee"}
        code, reply = post(addresses["cy"], json.dumps(impostor).encode())
        assert (code, reply["error"]) == (403, "by: this page's token is cy's; it cannot answer as dee")
        assert waiting(folder)["checkpoint"] == checkpoint["checkpoint"]
        page = browser.new_context().new_page()
        page.goto(addresses["cy"])
        expect(page.locator("#by")).to_have_value("cy")
        assert page.locator("#by").get_attribute("readonly") is not None
        expect(page.locator("#checkpoint-title")).to_contain_text(checkpoint["checkpoint"])
        page.click("#approve-all")
        expect(page.locator("#message")).to_have_text("approved all")
        page.context.close()
    ids = [p["id"] for p in checkpoint["proposals"]]
    assert [(d["what"], d["who"], d["via"]) for pid in ids for d in decisions(folder, pid)] == [
        ("approve", "cy", "web")
    ] * len(ids)
    for options, error in (
        (["--operator", "cy", "--token", "t" * 20], "--token: give one shared --token, or an --operator each"),
        (["--operator", "cy=short"], "--operator: cy's token is shorter than 16 characters"),
        (["--operator", "cy", "--operator", "cy"], "--operator: cy is given twice"),
        (["--operator", "cy=" + "x" * 16, "--operator", "dee=" + "x" * 16], "--operator: dee's token is cy's too"),
    ):
        refused = closedloop("web", str(folder), "--port", "0", *options)
        assert refused.returncode == 2 and refused.stderr.startswith(f"error: {error}"), refused.stderr


def test_a_second_answer_to_an_answered_checkpoint_is_told_it_came_too_late(
    page: Page, browser: Browser, url: str, folder: Path
) -> None:
    checkpoint = waiting(folder)
    other = browser.new_context().new_page()  # a second operator, on the same question
    # bo's page keeps showing this question, as on a slow network; bo's answer still goes to the session
    other.route("**/api/checkpoint*", lambda route: route.fulfill(json={"checkpoint": checkpoint}))
    other.goto(url)
    other.fill("#by", "bo")
    expect(other.locator("#checkpoint-title")).to_contain_text(checkpoint["checkpoint"])
    page.click("#approve-all")
    expect(page.locator("#message")).to_have_text("approved all")
    other.click("#approve-all")
    expect(other.locator("#message")).to_have_text("too late: answered already by ada")
    other.context.close()
    next_checkpoint(page, folder, checkpoint["checkpoint"])


def test_budget_and_a_queued_point_from_the_page(page: Page, folder: Path) -> None:
    checkpoint = waiting(folder)
    page.fill("#budget", "0")
    page.focus("#set-budget")  # the field left, as a click on Set leaves it, and a refresh (every 2 s) meanwhile
    page.wait_for_timeout(2500)
    page.click("#set-budget")  # what the operator typed is sent, not the budget the refresh read
    expect(page.locator("#message")).to_contain_text("budget.experiments")
    page.fill("#budget", "30")
    page.click("#set-budget")
    expect(page.locator("#message")).to_have_text("budget set to 30")
    expect(page.locator("#experiments")).to_contain_text("of 30")
    page.fill("input[name='add-pitch1']", "7")
    page.fill("input[name='add-pitch2']", "-0.6")
    page.click("#add")
    expect(page.locator("#message")).to_contain_text("pitch1")  # over its hard limit: nothing queued
    expect(page.locator("#message")).to_have_class("error")
    page.fill("input[name='add-pitch1']", "0.35")
    page.click("#add")
    expect(page.locator("#message")).to_have_text("queued pitch1=0.35, pitch2=-0.6")
    page.click("#approve-all")  # the planner's points; the queued one is proposed next
    queued = next_checkpoint(page, folder, checkpoint["checkpoint"])
    proposal = queued["proposals"][0]  # queued points go first
    assert proposal["origin"] == "operator" and proposal["setpoints"] == {"pitch1": 0.35, "pitch2": -0.6}
    expect(page.locator(f"[data-proposal='{proposal['id']}']")).to_contain_text("operator")


def test_the_progress_chart_shows_every_result_and_the_best_so_far_and_the_csv_holds_them_all(
    page: Page, url: str, folder: Path
) -> None:
    deadline = time.monotonic() + 30
    while True:  # (a run in flight may end meanwhile: compare once the page has drawn what the store holds)
        columns, rows, _ = session_results(folder)
        measured = {row["experiment"]: row["flux"] for row in rows if row["status"] == "ok"}
        drawn = page.locator("svg[data-chart='objective:flux'] .pt[data-status='ok']")
        shown = {int(d.get_attribute("data-experiment")): float(d.get_attribute("data-value")) for d in drawn.all()}
        if shown == measured or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert shown == measured and len(measured) >= 4
    best = float(page.locator("svg[data-chart='objective:flux'] polyline.best").get_attribute("data-best") or "nan")
    assert best == max(measured.values())  # flux is maximized
    others = page.locator("svg[data-chart='objective:flux'] .pt:not([data-status='ok'])")
    failed = {int(t.get_attribute("data-experiment")) for t in others.all()}
    assert failed == {row["experiment"] for row in rows if row["experiment"] not in measured}
    link = page.locator("#results-csv").get_attribute("href")
    assert link is not None
    for _ in range(3):  # (the same, unless a run ended between the download and the store's read)
        with urllib.request.urlopen(url.split("/?")[0] + link, timeout=10) as response:
            downloaded = response.read().decode()
        if downloaded == as_csv(*session_results(folder)[:2]):
            break
    assert downloaded == as_csv(*session_results(folder)[:2]) and downloaded.count("\n") > len(measured)


def test_pause_resume_and_stop_from_the_page(page: Page, folder: Path) -> None:
    checkpoint = waiting(folder)
    page.click("#pause")
    expect(page.locator("#message")).to_have_text("pausing after the current run")
    page.click("#approve-all")  # the run goes; then the session holds
    expect(page.locator("#state")).to_have_text("paused", timeout=30_000)
    paused = waiting(folder)
    assert paused["kind"] == "paused" and paused["checkpoint"] != checkpoint["checkpoint"]
    page.click("#resume")
    next_checkpoint(page, folder, paused["checkpoint"])
    expect(page.locator("#state")).to_have_text("waiting")
    page.click("#stop-session")
    expect(page.locator("#state")).to_have_text("stopped", timeout=30_000)
    expect(page.locator("#process")).to_have_text("(no session process is running)", timeout=30_000)
    trail = audit_trail(folder)
    assert any(e["what"] == "pause" and (e["who"], e["via"]) == ("ada", "web") for e in trail)
    assert [(d["who"], d["via"]) for d in decisions(folder) if d["what"] == "stop"] == [("ada", "web")]


def test_the_web_command_refuses_a_folder_without_a_session_and_a_port_in_use(
    tmp_path: Path, url: str, folder: Path
) -> None:
    empty = closedloop("web", str(tmp_path), "--port", "0")
    assert empty.returncode == 2 and empty.stderr.startswith(f"error: {tmp_path} holds no session (")
    port = url.split(":")[2].split("/")[0]  # the module's page server holds it
    taken = closedloop("web", str(folder), "--port", port)
    assert taken.returncode == 2 and taken.stderr.startswith(f"error: --port: cannot serve on 127.0.0.1:{port} (")


def test_the_page_follows_the_session_when_it_is_resumed(page: Page, folder: Path) -> None:
    stop_detached(folder)  # (stopped already when the tests run in order)
    expect(page.locator("#process")).to_have_text("(no session process is running)", timeout=30_000)
    asked = page.locator("#events li[data-kind='checkpoint']")
    before = asked.count()
    resumed = closedloop("resume", str(folder), "--detach")
    assert resumed.returncode == 0, resumed.stderr
    # the same page, not reloaded: it finds the new process, its checkpoint and its events
    expect(page.locator("#process")).to_have_text("", timeout=30_000)
    expect(page.locator("#checkpoint-title")).to_contain_text(waiting(folder)["checkpoint"], timeout=30_000)
    deadline = time.monotonic() + 30
    while asked.count() <= before:  # the new process's checkpoint event, through the page's event stream
        assert time.monotonic() < deadline, "no event from the resumed session reached the page"
        time.sleep(0.1)
