"""An operator sees the numerical failures the planner recovered from: ``closedloop status`` (its JSON and its
table) counts them by kind and by the step that recovered."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gest_api import Generator
from gest_api.vocs import VOCS
from linear_operator.utils.errors import NotPSDError
from rich.console import Console

from agent.cli.foreground import status_table
from agent.session import Session
from agent.views.status import summarize
from tests.conftest import beamline_session


class FailsOnce(Generator):
    """A gest-api generator that raises linear_operator's own ``NotPSDError`` (what a GP's Cholesky raises on a
    covariance that is not positive definite) on its first call with data, and otherwise proposes the middle of
    the box nudged by the number of results it has."""

    def __init__(self, vocs: VOCS, **options: Any) -> None:
        super().__init__(vocs)
        self.vocs = vocs
        self.results = 0
        self.failed = False

    def _validate_vocs(self, vocs: VOCS) -> None:
        pass

    def suggest(self, num_points: int | None = None) -> list[dict[str, Any]]:
        if self.results and not self.failed:
            self.failed = True
            raise NotPSDError("Matrix not positive definite after repeatedly adding jitter up to 1.0e-06.")
        step = 0.1 * self.results
        bounds = zip(self.vocs.variable_names, self.vocs.bounds, strict=True)
        return [{name: lo + (hi - lo) * (0.3 + step) for name, (lo, hi) in bounds} for _ in range(num_points or 1)]

    def ingest(self, results: list[dict[str, Any]]) -> None:
        self.results += len(results)


def test_status_shows_the_planner_s_recoveries(tmp_path: Path, write_session) -> None:
    data = beamline_session(
        budget={"experiments": 3}, planner={"name": f"{__name__}:FailsOnce", "initial_design": 1}, seed=2
    )
    session = Session.create(write_session(data), tmp_path / "run")
    try:
        assert session.advance() is None
    finally:
        session.close()
    status = summarize(tmp_path / "run")
    # the failure cost no experiment: the wrapper asked the generator again, which answered
    assert status["experiments"] == 3
    assert status["planner_recoveries"] == {"recoveries": {"not_psd": 1}, "recovered_by": {"retry": 1}}
    console = Console(width=120, record=True)
    console.print(status_table(status))
    text = " ".join(console.export_text().replace("│", " ").split())
    assert "planner recovered 1 numerical failure (retry 1; kinds: not_psd 1)" in text
