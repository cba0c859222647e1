"""``closedloop report`` and ``closedloop compare`` on sessions run through the real loop on the simulated beamline
(real RunEngine and ophyd-async devices, real SQLite): one objective with a failed run, an operator's edit and an
operator's point; two objectives; an outcome constraint; the first problem again with another planner."""

from __future__ import annotations

import base64
import html
import io
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
import yaml
from PIL import Image

from agent.session import Session
from agent.views import compare_html, load_session, report_html
from agent.views import figures as drawn
from closedloop.errors import SessionError, SpecError
from closedloop.records import Decision, Verdict
from simulators import HEAT_LIMIT
from tests.conftest import beamline_session
from tests.integration.test_cli import closedloop

BOTORCH = {"name": "botorch", "options": {"n_initial": 4, "num_restarts": 2, "raw_samples": 64}}


def _run(root: Path, name: str, data: dict[str, Any], answer: Any = None) -> Path:
    path = root / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    with Session.create(path, root / name) as session:
        checkpoint = session.advance()
        n = 0
        while checkpoint is not None:
            checkpoint = session.answer(answer(session, checkpoint, n))
            n += 1
    return root / name


def _operated(session: Session, checkpoint: Any, n: int) -> Decision:
    """The second proposal edited by ada from the web page (with a point queued by bob), the others approved; at the
    fourth checkpoint, the report of the session as it waits is kept in ``waiting.html`` (the proposal it waits
    on in ``waiting.txt``)."""
    if n == 3:
        (session.folder / "waiting.html").write_text(report_html(session.folder))
        (session.folder / "waiting.txt").write_text(checkpoint.proposals[0]["id"])
    if n == 1:
        session.store.queue_points([{"pitch1": -0.4, "pitch2": 0.5}], by="bob")
        (proposal,) = [p["id"] for p in checkpoint.proposals]
        return Decision(
            verdict=Verdict.EDIT,
            proposal_ids=[proposal],
            setpoints={"pitch1": 0.3, "pitch2": -0.2},
            by="ada",
            via="web",
            reason="closer to the last good beam",
        )
    return Decision(verdict=Verdict.APPROVE, by="policy-test", via="channel")


@pytest.fixture(scope="module")
def sessions(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("report")
    one = beamline_session(
        planner=BOTORCH,
        budget={"experiments": 7},
        review={"policy": "always"},
        instrument={"simulator": "beamline", "options": {"noise": 5.0, "faults": {"nan_reading": 1}}},
    )
    two = beamline_session(
        planner=BOTORCH,
        budget={"experiments": 6},
        seed=4,
        objectives={
            "flux": {"direction": "maximize", "field": "det-flux"},
            "width": {"direction": "minimize", "field": "det-width"},
        },
    )
    constrained = beamline_session(
        planner=BOTORCH,
        budget={"experiments": 6},
        seed=5,
        constraints={"heat": {"field": "det-heat", "less_than": HEAT_LIMIT}},
    )
    return {
        "one": _run(root, "one", one, _operated),
        "sobol": _run(root, "sobol", beamline_session(budget={"experiments": 5})),
        "sobol2": _run(root, "sobol2", beamline_session(budget={"experiments": 5}, seed=9)),
        "two": _run(root, "two", two),
        "constrained": _run(root, "constrained", constrained),
    }


class _Page(HTMLParser):
    """The images of a page and every address it would load (scripts, styles, images, fonts, frames)."""

    def __init__(self) -> None:
        super().__init__()
        self.images: list[str] = []
        self.loads: list[str] = []
        self.styles: list[str] = []
        self._in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        fields = dict(attrs)
        if tag == "img":
            self.images.append(fields.get("src") or "")
        for name in ("src", "href", "srcset", "data", "poster"):
            if fields.get(name) and not (tag == "a" and name == "href"):
                self.loads.append(fields[name] or "")
        if fields.get("style"):
            self.styles.append(fields["style"] or "")
        self._in_style = tag == "style"

    def handle_data(self, data: str) -> None:
        if self._in_style:
            self.styles.append(data)

    def handle_endtag(self, tag: str) -> None:
        self._in_style = False


def network_loads(page: str) -> list[str]:
    """Every address the page would fetch from elsewhere: src/href of scripts, styles, images, fonts, and
    ``url(...)``/``@import`` in its styles (anything not a ``data:`` URL or the page itself)."""
    parsed = _Page()
    parsed.feed(page)
    found = [address for address in parsed.loads if not address.startswith(("data:", "#"))]
    for style in parsed.styles:
        found += [u for u in re.findall(r"url\(\s*['\"]?([^'\")]+)", style) if not u.startswith("data:")]
        found += re.findall(r"@import\s+['\"]?([^'\";\s]+)", style)
    return found


def png_images(page: str) -> list[Image.Image]:
    """The page's images, each decoded (a broken PNG raises)."""
    parsed = _Page()
    parsed.feed(page)
    images = []
    for src in parsed.images:
        assert src.startswith("data:image/png;base64,"), src[:40]
        image = Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1], validate=True)))
        image.load()
        assert image.format == "PNG" and image.width > 200 and image.height > 100
        images.append(image)
    return images


def test_the_network_check_catches_what_a_page_would_load() -> None:
    assert network_loads('<img src="data:image/png;base64,AAAA"><style>body{color:red}</style>') == []
    for bad in (
        '<script src="https://cdn.example.org/plotly.js"></script>',
        '<link rel="stylesheet" href="http://example.org/a.css">',
        "<style>@import 'https://fonts.example.org/css';</style>",
        "<style>body{background:url(https://example.org/x.png)}</style>",
        '<img src="//example.org/x.png">',
    ):
        assert network_loads(bad), bad


def test_a_one_objective_report_draws_its_figures_and_marks_how_each_point_came_about(sessions) -> None:
    page = report_html(sessions["one"])
    assert network_loads(page) == []
    assert len(png_images(page)) == 4  # progress, variables, belief along each variable, belief over two
    assert "The model's belief along each variable" in page and "no model" not in page
    data = load_session(sessions["one"])
    legend = [t.get_text() for t in drawn.progress(data).axes[0].get_legend().get_texts()]
    assert {"failed", "edited by an operator", "added by an operator", "planner", "best so far"} <= set(legend)
    failed = [o for o in data.observations if not o.ok]
    assert len(failed) == 1 and failed[0].error and html.escape(failed[0].error) in page  # the failure with its reason
    assert "ada" in page and "closer to the last good beam" in page and "web" in page  # the decision table


def test_a_waiting_session_reports_its_state_and_the_next_proposal(sessions) -> None:
    page = (sessions["one"] / "waiting.html").read_text()
    waiting_on = (sessions["one"] / "waiting.txt").read_text()
    assert network_loads(page) == [] and len(png_images(page)) == 4
    assert "<dt>state</dt><dd>waiting</dd>" in page
    assert f"<dt>next proposal</dt><dd>{waiting_on}: pitch1 = " in page
    assert "<dt>next proposal</dt>" not in report_html(sessions["one"])  # finished: nothing waits


def test_two_objectives_draw_the_pareto_front_apart_from_the_dominated_points(sessions) -> None:
    page = report_html(sessions["two"])
    assert network_loads(page) == []
    assert len(png_images(page)) == 5 and "Pareto front" in page
    data = load_session(sessions["two"])
    figure = drawn.pareto(data)
    assert figure is not None
    labels = [t.get_text() for t in figure.axes[0].get_legend().get_texts()]
    assert "Pareto front" in labels and "dominated" in labels
    front_line = [line for line in figure.axes[0].get_lines() if line.get_label() == "Pareto front"][0]
    assert len(front_line.get_xdata()) == len(data.front()) < len(data.observations)


def test_a_constrained_report_shows_feasible_and_infeasible_points(sessions) -> None:
    page = report_html(sessions["constrained"])
    assert network_loads(page) == []
    assert len(png_images(page)) == 5 and "<h2>Constraints</h2>" in page
    figure = drawn.constraints(load_session(sessions["constrained"]))
    assert figure is not None
    labels = [t.get_text() for t in figure.axes[0].get_legend().get_texts()]
    assert "feasible" in labels and f"heat < {HEAT_LIMIT}" in labels


def test_a_planner_without_a_model_says_so(sessions) -> None:
    page = report_html(sessions["sobol"])
    assert len(png_images(page)) == 2 and "no model: the sobol planner has none to show" in page


def test_compare_groups_sessions_by_planner_and_refuses_different_problems(sessions) -> None:
    page = compare_html([sessions["one"], sessions["sobol"], sessions["sobol2"]])
    assert network_loads(page) == []
    assert len(png_images(page)) == 1
    assert page.count("<tr>") == 1 + 3 and "seconds per proposal" in page
    with pytest.raises(SpecError, match="objectives differ .*width only in this one"):
        compare_html([sessions["one"], sessions["two"]])
    with pytest.raises(SpecError, match="constraints differ .*heat only in this one"):
        compare_html([sessions["sobol"], sessions["constrained"]])
    with pytest.raises(SessionError, match="holds no session"):
        compare_html([sessions["one"], sessions["one"].parent])


def test_the_commands_write_their_files_and_refuse_bad_input_in_one_line(sessions, tmp_path: Path) -> None:
    out = tmp_path / "page.html"
    done = closedloop("report", str(sessions["two"]), "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert len(png_images(out.read_text())) == 5
    pngs = closedloop("report", str(sessions["constrained"]), "--format", "png", "--out", str(tmp_path / "figs"))
    assert pngs.returncode == 0, pngs.stderr
    assert sorted(p.name for p in (tmp_path / "figs").iterdir()) == sorted(
        f"{n}.png" for n in ("progress", "variables", "belief", "belief-map", "constraints")
    )
    compared = closedloop("compare", str(sessions["sobol"]), str(sessions["sobol2"]), "--out", str(tmp_path / "c.html"))
    assert compared.returncode == 0, compared.stderr
    assert len(png_images((tmp_path / "c.html").read_text())) == 1
    for args, says in (
        (["report", str(tmp_path)], "holds no session"),
        (["report", str(sessions["sobol"]), "--out", str(tmp_path)], "--out"),
        (["compare", str(sessions["sobol"]), str(sessions["two"]), "--out", str(tmp_path / "x.html")], "objectives"),
    ):
        refused = closedloop(*args)
        assert refused.returncode == 2, (args, refused.stderr)
        assert says in refused.stderr and len(refused.stderr.strip().splitlines()) == 1, refused.stderr
