"""A planner or factory module that raises or exits on import is a bad value of the field that named it."""

from __future__ import annotations

from pathlib import Path

import pytest

from closedloop import SpecError, resolve_import_path, spec_from_dict
from closedloop.resolve import Resolved, resolve
from tests.conftest import beamline_session


@pytest.fixture
def modules(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Write small modules to a folder on ``sys.path``: one that exits, one that raises, one that works."""
    (tmp_path / "exits_on_import.py").write_text("import sys\nsys.exit(7)\n")
    (tmp_path / "raises_on_import.py").write_text("raise RuntimeError('no licence server\\nat [10.0.0.1]')\n")
    (tmp_path / "interrupts_on_import.py").write_text("raise KeyboardInterrupt\n")
    (tmp_path / "fine_module.py").write_text("def make(**options):\n    return {}\n\nclass Gen:\n    pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


def test_a_module_that_exits_on_import_is_a_value_error(modules: Path) -> None:
    with pytest.raises(ValueError) as info:
        resolve_import_path("exits_on_import:Gen")
    assert str(info.value) == "'exits_on_import:Gen' does not import: SystemExit: 7"


def test_a_module_that_raises_on_import_is_a_value_error_in_one_line(modules: Path) -> None:
    with pytest.raises(ValueError) as info:
        resolve_import_path("raises_on_import:make")
    assert str(info.value) == "'raises_on_import:make' does not import: RuntimeError: no licence server at [10.0.0.1]"


def test_keyboard_interrupt_still_propagates(modules: Path) -> None:
    with pytest.raises(KeyboardInterrupt):
        resolve_import_path("interrupts_on_import:make")


def test_good_and_malformed_paths(modules: Path) -> None:
    assert callable(resolve_import_path("fine_module:make"))
    with pytest.raises(ValueError, match="'fine_module:nothing' does not import: module 'fine_module' has no"):
        resolve_import_path("fine_module:nothing")
    with pytest.raises(ValueError, match="is not of the form"):
        resolve_import_path("fine_module")
    with pytest.raises(ValueError, match="does not import: ModuleNotFoundError: No module named 'no_such_mod'"):
        resolve_import_path("no_such_mod:x")


@pytest.mark.parametrize(
    ("module", "expected"),
    [
        ("exits_on_import", "planner.name: 'exits_on_import:Gen' does not import: SystemExit: 7"),
        ("raises_on_import", "planner.name: 'raises_on_import:Gen' does not import: RuntimeError: no licence"),
    ],
)
def test_the_planner_field_is_named(modules: Path, module: str, expected: str) -> None:
    with pytest.raises(SpecError) as info:
        resolve(spec_from_dict(beamline_session(planner={"name": f"{module}:Gen"})))
    assert expected in str(info.value)
    assert "\n" not in str(info.value)


def test_a_factory_that_exits_on_import_is_a_spec_error(modules: Path) -> None:
    # the instrument field's own naming belongs to InstrumentSpec; here: it is refused as bad input, not an exit
    with pytest.raises(SpecError) as info:
        resolve(spec_from_dict(beamline_session(instrument={"factory": "exits_on_import:make"})))
    assert "instrument" in str(info.value)
    assert "'exits_on_import:make' does not import: SystemExit: 7" in str(info.value)


def test_validation_imports_nothing_and_resolution_is_the_step_that_does(
    modules: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    for name in ("raises_on_import", "fine_module"):  # imported by the tests above, perhaps
        monkeypatch.delitem(sys.modules, name, raising=False)
    data = beamline_session(
        planner={"name": "raises_on_import:Gen"},
        instrument={"factory": "fine_module:make"},
        objectives={"flux": {"field": "det-flux", "reducer": "fine_module:make"}},
    )
    spec = spec_from_dict(data)  # a planner module that raises on import: validation never runs it
    assert "raises_on_import" not in sys.modules and "fine_module" not in sys.modules
    with pytest.raises(SpecError, match="planner.name: 'raises_on_import:Gen' does not import"):
        resolve(spec)
    good = resolve(spec_from_dict(dict(data, planner={"name": "fine_module:Gen"})))
    fine = sys.modules["fine_module"]
    assert good == Resolved(planner=fine.Gen, factories={"instrument": fine.make}, reducers={"flux": fine.make})


def test_validation_still_refuses_a_malformed_import_path() -> None:
    with pytest.raises(SpecError, match=r"instrument\.factory: 'no colon' is not of the form"):
        spec_from_dict(beamline_session(instrument={"factory": "no colon"}))
