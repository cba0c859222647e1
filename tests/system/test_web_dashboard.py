"""The operator's page as a dashboard, in Debian's chromium at a phone's width and a desktop's: a chart for every
objective and variable, the model's belief from the running session's planner, what the session waits for and since
when, a confirm before stop, controls off once the session has ended, and the history of a finished session.

One detached session process (the simulated beamline, a BoTorch planner so that there is a model, its first run
failing on a NaN reading, every proposal held for review) and one ``closedloop web`` process serve the module; the
tests run in order, and the last one stops the session. Screenshots are kept under ``test-artifacts/web/`` (the
path is printed) for a person to look at.
"""

from __future__ import annotations

import datetime
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Dialog, Page, expect

from agent.operator.client import ControlClient
from agent.operator.input import build
from agent.views.audit import audit_trail
from agent.views.results import session_results
from tests.conftest import beamline_session
from tests.integration.test_cli import closedloop, detached_session
from tests.system.test_web import _maybe_waiting, browser, get, waiting, web_process  # noqa: F401  (browser: a fixture)

pytestmark = [pytest.mark.system, pytest.mark.timeout(300)]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "web"
WIDTHS = {"phone": 390, "desktop": 1280}


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The session process, with four ok runs and one failed one answered, waiting at its next review."""
    data = beamline_session(review={"policy": "always"}, budget={"experiments": 30})
    data["planner"] = {"name": "botorch", "options": {"n_initial": 3, "num_restarts": 2, "raw_samples": 32}}
    data["instrument"]["options"]["faults"] = {"nan_reading": 1}  # the first run fails
    data["variables"]["pitch1"].update(units="mrad", max_step=3.5)
    data["variables"]["pitch2"]["units"] = "mrad"
    with detached_session(data, tmp_path_factory.mktemp("dashboard")) as folder:
        answer_until(folder, ok=4)
        yield folder


def answer_until(folder: Path, ok: int) -> None:
    """Approve (or carry on at) each checkpoint, over the control channel as ``bo``, until ``ok`` runs are ok."""
    deadline = time.monotonic() + 180
    while sum(json.loads(body)["status"] == "ok" for _, body in _observations(folder)) < ok:
        assert time.monotonic() < deadline, "the session did not reach its runs"
        with ControlClient(folder, timeout=10) as client:
            checkpoint = client.call(build("checkpoint", "bo")).result.get("checkpoint")
            if checkpoint is None:
                time.sleep(0.1)
                continue
            answers = [{"proposal_id": p["id"], "verdict": "approve"} for p in checkpoint["proposals"]]
            client.call(build("answer", "bo", checkpoint=checkpoint["checkpoint"], answers=answers))
    while (held := _maybe_waiting(folder)) is None or held["kind"] != "review":  # the next proposal, under review
        assert time.monotonic() < deadline, "the session did not reach its next review"
        if held is not None:  # (a checkpoint of another kind: carry on)
            with ControlClient(folder, timeout=10) as client:
                client.call(build("answer", "bo", checkpoint=held["checkpoint"], answers=[]))
        time.sleep(0.1)


def _observations(folder: Path) -> list[tuple[str, str]]:
    from tests.integration.test_cli import observations

    return observations(folder)


@pytest.fixture(scope="module")
def url(folder: Path) -> Iterator[str]:
    with web_process(folder) as printed:
        yield printed["url"]


def open_page(browser: Browser, url: str, width: int) -> Page:  # noqa: F811
    """The page at ``width`` px, as ada; every address it asks for is kept in ``page.asked``."""
    page = browser.new_context(viewport={"width": width, "height": 900}).new_page()
    page.asked = []  # type: ignore[attr-defined]
    page.on("request", lambda request: page.asked.append(request.url))  # type: ignore[attr-defined]
    page.goto(url)
    page.fill("#by", "ada")
    page.dispatch_event("#by", "change")
    return page


def shoot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    print(f"screenshot: {path}")


def test_status_says_what_the_session_waits_for_and_since_when(folder: Path) -> None:
    checkpoint = waiting(folder)
    before = datetime.datetime.now().astimezone()
    shown = closedloop("status", str(folder), "--json")
    assert shown.returncode == 0, shown.stderr
    held = json.loads(shown.stdout)["waiting"]
    assert held["checkpoint"] == checkpoint["checkpoint"] and held["kind"] == "review"
    assert held["proposals"] == [p["id"] for p in checkpoint["proposals"]]
    since = datetime.datetime.fromisoformat(held["since"])
    assert since.tzinfo is not None and since <= before
    assert json.loads(shown.stdout)["state"] == "waiting"
    table = closedloop("status", str(folder))
    assert f"waiting for the review of {checkpoint['proposals'][0]['id']}" in " ".join(table.stdout.split())


@pytest.mark.parametrize("width", WIDTHS.values(), ids=WIDTHS.keys())
def test_the_dashboard_fits_the_width_and_draws_every_run_and_the_model(
    browser: Browser,  # noqa: F811
    url: str,
    folder: Path,
    width: int,
) -> None:
    checkpoint = waiting(folder)
    page = open_page(browser, url, width)
    try:
        expect(page.locator("#checkpoint-title")).to_contain_text(checkpoint["checkpoint"])
        first = checkpoint["proposals"][0]["id"]
        expect(page.locator("#waiting")).to_contain_text(f"waiting for the review of {first}")
        _, rows, _ = session_results(folder)
        for chart in ("objective:flux", "variable:pitch1", "variable:pitch2"):
            points = page.locator(f"svg[data-chart='{chart}'] .pt")
            expect(points).to_have_count(len(rows))
        assert page.locator("svg[data-chart='objective:flux'] .pt[data-status='failed']").count() == 1
        assert {p.get_attribute("data-by") for p in page.locator("svg[data-chart='objective:flux'] .pt").all()} == {
            "bo (channel)"
        }
        expect(page.locator("svg[data-chart='variable:pitch1'] .ylabel")).to_have_text("pitch1 [mrad]")
        expect(page.locator("#chart-legend")).to_contain_text("failed")
        expect(page.locator("#chart-legend")).to_contain_text("released by bo (channel)")
        expect(page.locator("#limits tr[data-variable='pitch1']")).to_contain_text("3.5")  # max_step
        # the belief: the session's own planner, along the chosen variable through the best point
        expect(page.locator("svg[data-chart='belief:flux'] polyline.mean")).to_have_count(1)
        expect(page.locator("svg[data-chart='belief:flux'] polygon.band")).to_have_count(1)
        ok = sum(row["status"] == "ok" for row in rows)
        expect(page.locator("svg[data-chart='belief:flux'] circle.observed")).to_have_count(ok)
        page.select_option("#belief-variable", "pitch2")
        expect(page.locator("svg[data-chart='belief:flux'] .xlabel")).to_have_text("pitch2 [mrad]")
        expect(page.locator("#observations tbody tr").first).to_contain_text("approve by bo via channel")
        page.wait_for_timeout(300)  # (the last drawing settles)
        overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
        shoot(page, f"dashboard-{width}")
        base = url.split("/?")[0] + "/"
        assert all(asked.startswith(base) for asked in page.asked), page.asked  # type: ignore[attr-defined]
        assert overflow <= 0, f"the page scrolls sideways by {overflow} px at {width} px"
    finally:
        page.context.close()


def test_the_belief_is_the_running_sessions_own_and_a_bad_variable_is_refused(url: str) -> None:
    base, token = url.split("/?token=")
    code, reply = get(f"{base}/api/belief?variable=pitch1&token={token}")
    assert code == 200 and reply["source"] == "session", reply
    belief = reply["belief"]
    assert len(belief["x"]) == len(belief["mean"]["flux"]) == len(belief["std"]["flux"]) > 10
    best = get(f"{base}/api/status?token={token}")[1]["best_point"]
    assert belief["through"] == pytest.approx(best)  # through the best point
    assert min(belief["x"]) == -1.5 and max(belief["x"]) == 1.5  # the search range
    code, reply = get(f"{base}/api/belief?variable=flux&token={token}")
    assert code == 400 and reply["error"].startswith("belief.variable: 'flux' is not a numeric variable")


def test_the_page_names_the_suspended_instrument_and_why(browser: Browser, url: str) -> None:  # noqa: F811
    """The session's own status with its instrument held by a suspender, as ``closedloop status`` reports one (a
    stand-in: the simulated ring's beam dump is reached only from inside the session process; a real one is in
    tests/integration/test_session.py)."""
    base, token = url.split("/?token=")
    status = get(f"{base}/api/status?token={token}")[1]
    why = "ring.current 12 < 100.0"
    held = {"state": "suspended", "proposal": "p-1", "error": None, "waiting": None, "suspended": why}
    status = {**status, "state": "suspended", "instruments": {"instrument": held}}
    page = browser.new_context().new_page()
    page.route("**/api/status*", lambda route: route.fulfill(json=status))
    try:
        page.goto(url)
        expect(page.locator("#suspended")).to_have_text("instrument is suspended: ring.current 12 < 100.0")
        expect(page.locator("#instruments tr[data-instrument='instrument']")).to_contain_text("ring.current 12 < 100.0")
    finally:
        page.context.close()


def test_stop_asks_first_and_controls_are_off_once_the_session_has_ended(
    browser: Browser,  # noqa: F811
    url: str,
    folder: Path,
) -> None:
    page = open_page(browser, url, WIDTHS["phone"])
    asked: list[str] = []

    def dismiss(dialog: Dialog) -> None:
        asked.append(dialog.message)
        dialog.dismiss()

    try:
        expect(page.locator("#stop")).to_be_enabled()
        page.once("dialog", dismiss)
        page.click("#stop")
        assert asked and asked[0].startswith("Stop the session?")
        page.wait_for_timeout(500)
        assert not [e for e in audit_trail(folder) if e["what"] == "stop"]  # dismissed: nothing was sent
        assert waiting(folder)["kind"] == "review"
        page.once("dialog", lambda dialog: dialog.accept())
        page.click("#stop")
        expect(page.locator("#message")).to_have_text("stopping after the current run")
        expect(page.locator("#state")).to_have_text("stopped", timeout=60_000)
        for control in ("#pause", "#resume", "#stop", "#abort", "#set-budget", "#add"):
            expect(page.locator(control)).to_be_disabled(timeout=30_000)
        expect(page.locator("#controls-note")).to_contain_text("the session has ended")
        trail = audit_trail(folder)
        assert [(e["who"], e["via"]) for e in trail if e["what"] == "stop" and e["source"] == "decision"] == [
            ("ada", "web")
        ]
        shoot(page, "stopped-390")
    finally:
        page.context.close()
    # the finished session, in a page opened afresh: its history comes from the store, not an empty panel
    page = open_page(browser, url, WIDTHS["desktop"])
    try:
        expect(page.locator("#history li[data-kind='stop']")).to_have_count(1)
        expect(page.locator("#history li[data-kind='question']").first).to_contain_text("checkpoint ")
        expect(page.locator("#events li")).to_have_count(0)  # no process: no live event, and the page says so
        expect(page.locator("#events-note")).to_contain_text("no session process is running")
        expect(page.locator("svg[data-chart='belief:flux'] polyline.mean")).to_have_count(1, timeout=60_000)
        expect(page.locator("#belief-why")).to_contain_text("rebuilt from the store")
        shoot(page, "finished-1280")
    finally:
        page.context.close()
