"""Shared fixtures: session files on disk, a fresh RunEngine per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from instruments.executor import build_run_engine


def beamline_session(**overrides: Any) -> dict[str, Any]:
    """A small session on the simulated beamline, as a dict (override any top-level key).

    It runs strictly in turn (``pipeline: false``), so that a test can count observations at each checkpoint;
    tests/integration/test_pipeline.py and the tests that pass ``pipeline=True`` run it pipelined.
    """
    data: dict[str, Any] = {
        "name": "test-beamline",
        "seed": 3,
        "variables": {
            "pitch1": {"bounds": [-1.5, 1.5], "hard_limits": [-2.0, 2.0], "device": "m1"},
            "pitch2": {"bounds": [-1.5, 1.5], "hard_limits": [-2.0, 2.0], "device": "m2"},
        },
        "objectives": {"flux": {"direction": "maximize", "field": "det-flux"}},
        "budget": {"experiments": 4},
        "planner": {"name": "sobol"},
        "instrument": {"simulator": "beamline", "options": {"noise": 5.0}},
        "review": {"policy": "never"},
        "pipeline": False,
    }
    data.update(overrides)
    return data


@pytest.fixture
def write_session(tmp_path: Path):
    """Write a session dict to a YAML file and return its path."""

    def write(data: dict[str, Any], name: str = "session.yaml") -> Path:
        path = tmp_path / name
        path.write_text(yaml.safe_dump(data, sort_keys=False))
        return path

    return write


@pytest.fixture
def run_engine() -> Iterator[Any]:
    """A fresh RunEngine, built as the executor builds it, torn down after the test."""
    engine = build_run_engine()
    yield engine
    if engine.state != "idle":
        engine.halt()
