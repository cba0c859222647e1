"""The README's examples work as written."""

from __future__ import annotations

import re
import sys
import types
from pathlib import Path

import pytest

from agent.session import Session
from planners import load_planner
from tests.conftest import beamline_session

# the planner examples live on the docs site's "Add a planner" page, which the README links to
README = (Path(__file__).resolve().parents[2] / "docs/how-to/planners.md").read_text()


def python_block(marker: str) -> str:
    blocks = re.findall(r"```python\n(.*?)```", README, flags=re.S)
    (block,) = [b for b in blocks if marker in b]
    return block


@pytest.fixture
def climber_module() -> types.ModuleType:
    module = types.ModuleType("readme_climber")
    exec(compile(python_block("class Climber"), "README.md", "exec"), module.__dict__)
    sys.modules["readme_climber"] = module
    yield module
    del sys.modules["readme_climber"]


def test_the_custom_planner_example_runs_a_session(climber_module, tmp_path: Path, write_session) -> None:
    data = beamline_session(planner={"name": "readme_climber:Climber", "options": {"step": 0.05}}, seed=2)
    session = Session.create(write_session(data), tmp_path / "run")
    try:
        assert session.advance() is None
        assert session.store.count_observations() == 4
        assert session.planner.best is not None
    finally:
        session.close()


def test_the_custom_planner_example_refuses_what_it_cannot_handle(climber_module) -> None:
    from gest_api.vocs import VOCS

    vocs = VOCS(variables={"x": [0, 1]}, objectives={"f": "MINIMIZE", "g": "MAXIMIZE"})
    with pytest.raises(ValueError, match="one objective"):
        load_planner("readme_climber:Climber", vocs)


def test_the_plain_python_example_runs() -> None:
    namespace: dict = {}
    exec(compile(python_block("BoTorchPlanner(VOCS"), "README.md", "exec"), namespace)
    assert len(namespace["points"]) == 2
