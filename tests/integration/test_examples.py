"""Every session file in ``examples/`` loads as written and runs briefly, as a new user would run it.

Each is run with its budget cut to a few experiments and no operator (``review: never``): what is tested is that
the file, its devices and its planner work together, not how well the planner does. The queueserver example runs
against a real RE Manager started on loopback ports (a system test).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from agent.session import Session
from closedloop.records import ObservationStatus

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
IN_PROCESS = sorted(p.name for p in EXAMPLES.glob("*.yaml") if p.name != "queueserver.yaml")


def brief(path: Path, experiments: int, **changes: Any) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text())
    data["budget"] = {"experiments": experiments}
    data["review"] = {"policy": "never"}
    data.update(changes)
    return data


def run_briefly(data: dict[str, Any], tmp_path: Path) -> Session:
    path = tmp_path / "session.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    session = Session.create(path, tmp_path / "run")
    assert session.advance() is None  # no checkpoint: it ran to its budget
    return session


def test_every_example_is_in_this_test() -> None:
    assert len(IN_PROCESS) + 1 == len(list(EXAMPLES.glob("*.yaml"))) >= 8


@pytest.mark.slow
@pytest.mark.parametrize("name", IN_PROCESS)
def test_an_example_runs_as_written(name: str, tmp_path: Path) -> None:
    data = brief(EXAMPLES / name, 3)
    session = run_briefly(data, tmp_path)
    try:
        observations = session.store.observations()
        assert [o.status for o in observations].count(ObservationStatus.OK) == 3
        for observation in observations:
            assert set(observation.values) == set(data["objectives"]) | set(data.get("constraints", {}))
            assert set(observation.readbacks) == set(data["variables"])
    finally:
        session.close()


@pytest.mark.slow
@pytest.mark.system
def test_the_queueserver_example_runs_through_a_real_manager(tmp_path: Path) -> None:
    from agent.cli.queueserver import LocalQueueServer

    with LocalQueueServer(noise=0.0) as server:
        data = brief(EXAMPLES / "queueserver.yaml", 2)
        addresses = server.addresses
        data["instrument"]["queueserver"].update(
            control_address=addresses.control, documents_address=addresses.documents
        )
        session = run_briefly(data, tmp_path)
        try:
            observations = session.store.observations()
            assert [o.status for o in observations] == [ObservationStatus.OK] * 2
        finally:
            session.close()


def test_every_example_is_on_the_docs_examples_page() -> None:
    page = (EXAMPLES.parent / "docs" / "tutorials" / "examples.md").read_text()
    for path in EXAMPLES.glob("*.yaml"):
        assert f"`examples/{path.name}`" in page
