"""Bad files are refused cheaply and clearly: size caps, UTF-8 only, duplicate keys, alias bombs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from closedloop import SpecError, load_spec
from closedloop.errors import PlannerError
from closedloop.files import (
    MAX_ALIASES,
    MAX_DEPTH,
    POINTS_FILE_LIMIT,
    SESSION_FILE_LIMIT,
    parse_json,
    parse_yaml,
    read_text,
)
from planners.baselines import read_points
from tests.conftest import beamline_session


def session_text(**overrides: object) -> str:
    return yaml.safe_dump(beamline_session(**overrides), sort_keys=False)


def test_a_good_session_file_loads(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(session_text(), encoding="utf-8")
    assert load_spec(path).variables["pitch1"].limits == (-2.0, 2.0)
    bom = tmp_path / "bom.yaml"  # a UTF-8 byte-order mark is still UTF-8
    bom.write_bytes(b"\xef\xbb\xbf" + session_text().encode())
    assert load_spec(bom) == load_spec(path)


def test_an_oversized_session_file_is_refused_before_it_is_read(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    with path.open("wb") as handle:  # sparse: 50 MB on paper, nothing on disk
        handle.truncate(50 * 1024 * 1024)
    with pytest.raises(SpecError) as info:
        load_spec(path)
    assert str(info.value) == f"{path}: the session file is 52428800 bytes, over the 1 MiB cap"
    exact = tmp_path / "exact.txt"
    exact.write_bytes(b"a" * SESSION_FILE_LIMIT)
    assert len(read_text(exact, SESSION_FILE_LIMIT)) == SESSION_FILE_LIMIT
    exact.write_bytes(b"a" * (SESSION_FILE_LIMIT + 1))
    with pytest.raises(SpecError, match="over the 1 MiB cap"):
        read_text(exact, SESSION_FILE_LIMIT)


def test_a_stream_without_a_size_is_cut_at_the_cap() -> None:
    with pytest.raises(SpecError, match="/dev/zero: the points file is over the 16 MiB cap"):
        read_text("/dev/zero", POINTS_FILE_LIMIT, "points file")


@pytest.mark.parametrize(
    ("encoding", "found"),
    [("utf-16", "UTF-16 BOM found"), ("utf-32", "UTF-32 BOM found"), ("utf-16-be", "a NUL byte at offset 0")],
)
def test_utf16_and_utf32_files_are_named(tmp_path: Path, encoding: str, found: str) -> None:
    path = tmp_path / "wide.yaml"
    path.write_text(session_text(), encoding=encoding)
    with pytest.raises(SpecError) as info:
        load_spec(path)
    assert str(info.value).startswith(f"{path}: not UTF-8 text ({found}")
    assert str(info.value).endswith("save it as UTF-8")


def test_invalid_utf8_is_named_with_the_byte(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes("name: Müller\n".encode("latin-1"))
    with pytest.raises(SpecError) as info:
        load_spec(path)
    assert str(info.value) == f"{path}: not UTF-8 text (byte 0xfc at offset 7); save it as UTF-8"


def test_missing_files_and_folders_are_named(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match=r"absent.yaml: cannot read the session file \(No such file"):
        load_spec(tmp_path / "absent.yaml")
    with pytest.raises(SpecError, match=r"cannot read the session file \(Is a directory\)"):
        load_spec(tmp_path)


def test_a_duplicate_key_is_refused_with_its_path_and_lines(tmp_path: Path) -> None:
    text = session_text().replace(
        "    hard_limits:\n    - -2.0\n    - 2.0\n",
        "    hard_limits: [-2.0, 2.0]\n    device: m1\n    hard_limits: [-50, 50]\n",
        1,
    )
    path = tmp_path / "dup.yaml"
    path.write_text(text)
    with pytest.raises(SpecError) as info:
        load_spec(path)
    first = text.splitlines().index("    hard_limits: [-2.0, 2.0]") + 1
    assert str(info.value) == (
        f"{path}: variables.pitch1.hard_limits: duplicate key (line {first + 2}, first given on line {first})"
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a: 1\nb: 2\na: 3\n", "f.yaml: a: duplicate key (line 3, first given on line 1)"),
        ("1: x\n0x1: y\n", "f.yaml: 1: duplicate key (line 2, first given on line 1)"),  # same key, other spelling
        ("- {a: 1, a: 2}\n", "f.yaml: 0.a: duplicate key (line 1, first given on line 1)"),
    ],
)
def test_duplicate_keys_anywhere(text: str, message: str) -> None:
    with pytest.raises(SpecError) as info:
        parse_yaml(text, "f.yaml")
    assert str(info.value) == message


def test_a_merge_key_may_be_overridden_but_not_repeated() -> None:
    assert parse_yaml("base: &b {lo: 1, hi: 2}\nx:\n  <<: *b\n  hi: 3\n", "f") == {
        "base": {"lo": 1, "hi": 2},
        "x": {"lo": 1, "hi": 3},
    }
    with pytest.raises(SpecError, match="x.hi: duplicate key"):
        parse_yaml("base: &b {lo: 1}\nx:\n  <<: *b\n  hi: 3\n  hi: 4\n", "f")


BILLION_LAUGHS = "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
    f"{new}: &{new} [{', '.join([f'*{old}'] * 9)}]\n" for old, new in zip("abcdefgh", "bcdefghi", strict=True)
)


def test_a_billion_laughs_file_is_refused(tmp_path: Path) -> None:
    assert len(BILLION_LAUGHS) < 1024
    path = tmp_path / "bomb.yaml"
    path.write_text(session_text(planner={"name": "botorch", "options": {"max_travel": "PLACEHOLDER"}}))
    path.write_text(BILLION_LAUGHS + path.read_text().replace("PLACEHOLDER", "*i"))
    with pytest.raises(SpecError) as info:
        load_spec(path)
    assert "aliases expand to more than 10000 extra nodes" in str(info.value)
    assert str(info.value).startswith(f"{path}: ")


def test_aliases_within_the_limits_work_and_beyond_them_are_refused() -> None:
    assert parse_yaml("lim: &l [-2, 2]\nx: *l\ny: *l\n", "f") == {"lim": [-2, 2], "x": [-2, 2], "y": [-2, 2]}
    many = "v: &v 1\nlist: [" + ", ".join(["*v"] * (MAX_ALIASES + 1)) + "]\n"
    with pytest.raises(SpecError, match=f"f: line 2: more than {MAX_ALIASES} aliases"):
        parse_yaml(many, "f")
    with pytest.raises(SpecError, match="an alias refers to itself"):
        parse_yaml("a: &a [1, *a]\n", "f")


def test_deep_nesting_and_bad_yaml_are_one_line() -> None:
    with pytest.raises(SpecError, match=f"^f: line 1: nested more than {MAX_DEPTH} levels deep$"):
        parse_yaml("[" * 50_000, "f")
    with pytest.raises(SpecError, match=rf"^f: line \d+: nested more than {MAX_DEPTH} levels deep$"):
        parse_yaml("".join("  " * i + f"k{i}:\n" for i in range(MAX_DEPTH + 1)) + "  " * (MAX_DEPTH + 1) + "v\n", "f")
    assert parse_yaml("[" * MAX_DEPTH + "]" * MAX_DEPTH, "f") is not None
    with pytest.raises(SpecError, match=r"^f: not valid YAML \(line 2: expected ',' or ']'"):
        parse_yaml("a: [1, 2\n", "f")
    with pytest.raises(SpecError, match="not valid YAML"):
        parse_yaml("a: !!python/object:os.system 1\n", "f")


def test_json_duplicates_and_non_finite_numbers_are_refused() -> None:
    assert parse_json('[{"a": 1.5}]', "p.json") == [{"a": 1.5}]
    with pytest.raises(SpecError, match="^p.json: duplicate key 'a'$"):
        parse_json('[{"a": 1, "a": 2}]', "p.json")
    with pytest.raises(SpecError, match="^p.json: NaN is not a finite number$"):
        parse_json('[{"a": NaN}]', "p.json")
    with pytest.raises(SpecError, match=r"^p.json: not valid JSON \(line 1"):
        parse_json('[{"a": 1}', "p.json")


def test_point_files_use_the_safe_reader(tmp_path: Path) -> None:
    good = tmp_path / "p.json"
    good.write_text(json.dumps([{"a": 0.5, "b": 1.0}]))
    assert read_points(good) == [{"a": 0.5, "b": 1.0}]
    wide = tmp_path / "p.csv"
    wide.write_text("a,b\n0.5,1.0\n", encoding="utf-16")
    with pytest.raises(PlannerError, match="not UTF-8 text .UTF-16 BOM found"):
        read_points(wide)
    dup = tmp_path / "p.yaml"
    dup.write_text("- {a: 0.5, a: 9.0}\n")
    with pytest.raises(PlannerError, match="0.a: duplicate key"):
        read_points(dup)
    big = tmp_path / "big.csv"
    with big.open("wb") as handle:
        handle.truncate(POINTS_FILE_LIMIT + 1)
    with pytest.raises(PlannerError, match="over the 16 MiB cap"):
        read_points(big)
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text(BILLION_LAUGHS + "points: *i\n")
    with pytest.raises(PlannerError, match="aliases expand"):
        read_points(bomb)
