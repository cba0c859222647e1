"""The architecture holds: imports run downwards, and every package's public names resolve."""

from __future__ import annotations

import importlib
import shutil
import subprocess
import sys
import types
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


AGENT_PACKAGES = [
    "agent.cli",
    "agent.loop",
    "agent.operator",
    "agent.process",
    "agent.provenance",
    "agent.store",
    "agent.views",
    "agent.web",
]


@pytest.mark.parametrize("package", ["closedloop", "planners", "instruments", "simulators", *AGENT_PACKAGES])
def test_every_name_in_all_resolves(package: str) -> None:
    module = importlib.import_module(package)
    assert module.__all__
    for name in module.__all__:
        assert getattr(module, name) is not None, f"{package}.{name}"


@pytest.mark.parametrize("package", AGENT_PACKAGES)
def test_agent_packages_export_their_own_names(package: str) -> None:
    """Each name an agent sub-package exports is defined inside it, and none is hidden by a sub-module of the same
    name (importing ``agent.views.belief`` would turn ``agent.views.belief`` into the module)."""
    module = importlib.import_module(package)
    submodules = {path.stem for path in Path(module.__file__).parent.glob("*.py")}
    for name in module.__all__:
        assert name not in submodules, f"{package}.{name} is also a module"
        value = getattr(module, name)
        if isinstance(value, type | types.FunctionType):
            defined_in = value.__module__
            assert defined_in.startswith(package + "."), f"{package}.{name} comes from {defined_in}"
    assert set(dir(module)) >= set(module.__all__)
    with pytest.raises(AttributeError, match="no attribute"):
        module.no_such_name  # noqa: B018


def test_a_light_view_pays_for_no_heavy_neighbour() -> None:
    """``closedloop status`` reads ``agent.views.status``: importing it (and ``agent.loop`` itself) loads neither the
    report's matplotlib nor the loop's LangGraph and Bluesky."""
    probe = (
        "import sys, json\n"
        "import agent.views.status, agent.loop, agent.operator, agent.store, agent.cli\n"
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules} & "
        "{'matplotlib', 'langgraph', 'bluesky', 'torch', 'psycopg'})))\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_import_contracts_hold() -> None:
    lint_imports = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    assert lint_imports is not None, "import-linter is a dev dependency"
    result = subprocess.run([lint_imports], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "broken" not in result.stdout.lower() or "0 broken" in result.stdout.lower()


def test_every_package_type_checks() -> None:
    mypy = shutil.which("mypy", path=str(Path(sys.executable).parent))
    assert mypy is not None, "mypy is a dev dependency"
    result = subprocess.run([mypy], cwd=ROOT, capture_output=True, text=True, timeout=1200)
    assert result.returncode == 0, result.stdout + result.stderr
