"""The documentation site builds strictly, its generated reference holds what the code holds, and the code blocks
of the README and the pages run as written."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import types
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"


def python_blocks(path: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", path.read_text(), flags=re.S)


def python_block(path: Path, marker: str) -> str:
    (block,) = [b for b in python_blocks(path) if marker in b]
    return block


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("site")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1", "PYTHONPATH": str(ROOT)}
    built = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert built.returncode == 0, built.stderr[-3000:]
    assert "WARNING" not in built.stderr, built.stderr[-3000:]
    return out


def page_text(site: Path, page: str) -> str:
    return re.sub(r"<[^>]+>", " ", (site / page / "index.html").read_text())


@pytest.mark.slow
def test_the_site_builds_strictly_with_every_page(site: Path) -> None:
    # a page left out of the nav is a warning, and the build is strict: each page is built, at its address
    for page in DOCS.rglob("*.md"):
        where = page.parent if page.name == "index.md" else page.with_suffix("")
        assert (site / where.relative_to(DOCS) / "index.html").is_file(), page


@pytest.mark.slow
def test_the_session_file_reference_holds_every_field_of_every_section(site: Path) -> None:
    from pydantic import BaseModel

    from closedloop.spec import SessionSpec

    text = page_text(site, "reference/session-file")
    seen: set[type[BaseModel]] = set()
    todo: list[Any] = [SessionSpec]
    while todo:
        model = todo.pop()
        if model in seen:
            continue
        seen.add(model)
        section = text.split(model.__name__, 1)[1]
        for name, field in model.model_fields.items():
            assert f" {name} " in section, f"{model.__name__}.{name} is not on the page"
            for arg in [field.annotation, *getattr(field.annotation, "__args__", ())]:
                for inner in [arg, *getattr(arg, "__args__", ())]:
                    if isinstance(inner, type) and issubclass(inner, BaseModel):
                        todo.append(inner)
    assert len(seen) >= 10


@pytest.mark.slow
def test_the_cli_reference_holds_every_command(site: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "agent.cli", "--help"], capture_output=True, text=True, cwd=ROOT)
    commands = re.findall(r"^│ (\w+)\s", result.stdout, flags=re.M)
    assert len(commands) >= 15
    text = page_text(site, "reference/cli")
    for command in commands:
        assert f"closedloop {command}" in text
    # a group that also runs on its own: its options and its subcommands
    assert "closedloop bench [OPTIONS]" in text and "--planners" in text and "closedloop bench page" in text


def test_the_readme_is_a_front_door() -> None:
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 250
    for link in re.findall(r"\]\((docs/[^)#]+)", readme):
        assert (ROOT / link).is_file(), link


def test_the_own_devices_example_builds_its_devices() -> None:
    namespace: dict[str, Any] = {}
    exec(
        compile(python_block(DOCS / "tutorials/own-devices.md", "def make_devices"), "own-devices.md", "exec"),
        namespace,
    )
    devices = namespace["make_devices"]("CLTEST:NOPE:")
    assert sorted(devices) == ["det", "m1"]
    assert devices["m1"].prefix == "CLTEST:NOPE:M1"


def test_the_reducer_example_reduces_a_run() -> None:
    module = types.ModuleType("docs_reducers")
    exec(compile(python_block(DOCS / "how-to/reducers.md", "def maximum"), "reducers.md", "exec"), module.__dict__)
    documents = [("start", {}), ("event", {"data": {"det": 2.0}}), ("event", {"data": {"det": 5.0}}), ("stop", {})]
    assert module.maximum(documents, field="det") == 5.0
    with pytest.raises(ValueError, match="no events"):
        module.maximum(documents[:1], field="det")


def test_the_add_an_instrument_example_builds_its_devices(tmp_path: Path) -> None:
    namespace: dict[str, Any] = {}
    block = python_block(DOCS / "how-to/instruments.md", "def make_devices")
    exec(compile(block, "instruments.md", "exec"), namespace)
    devices = namespace["make_devices"]("CLTEST:NOPE:", str(tmp_path))
    assert sorted(devices) == ["cam", "m1"]
    assert type(devices["cam"]).__name__ == "SimDetector"


def test_the_readme_explains_the_demo_file_as_it_is() -> None:
    import yaml

    (block,) = re.findall(r"```yaml\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S)
    demo = yaml.safe_load((ROOT / "agent/demo/beamline.yaml").read_text())
    assert yaml.safe_load(block) == demo
