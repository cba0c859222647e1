"""Sharing a session: export to an RO-Crate bundle, the bundle read back, replayed and refused when altered.

One real session on the simulated beamline (botorch, reviewed by ada, who rejects one proposal; a point queued by
an operator; the process closed at a checkpoint and the session resumed in a new one, so the planner was built
twice), exported through the real CLI.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import zipfile
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml
from rocrate.rocrate import ROCrate

from agent.provenance.bundle import METADATA, sha256
from agent.session import Session
from closedloop.records import Decision, Verdict
from tests.conftest import beamline_session
from tests.integration.test_cli import closedloop

BUDGET = 7


def _answer(session: Session, checkpoint, count: int):
    for _ in range(count):
        if checkpoint is None:
            return None
        verdict = Verdict.REJECT if checkpoint.iteration == 2 else Verdict.APPROVE
        checkpoint = session.answer(Decision(verdict=verdict, by="ada", via="terminal"))
    return checkpoint


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The session folder and its bundle as a .zip written by ``closedloop export``."""
    root = tmp_path_factory.mktemp("share")
    planner = {"name": "botorch", "options": {"n_initial": 3, "num_restarts": 2, "raw_samples": 16}}
    data = beamline_session(name="shared", budget={"experiments": BUDGET}, planner=planner, review={"policy": "always"})
    (root / "session.yaml").write_text(yaml.safe_dump(data))
    folder = root / "run"
    with Session.create(root / "session.yaml", folder) as session:
        checkpoint = _answer(session, session.advance(), 4)
        assert checkpoint is not None  # closed while it waits: the next process rebuilds the planner
        # exported while the session is open, waiting at a checkpoint, by another process
        midway = closedloop("export", str(folder), str(root / "midway"), "--json")
        assert midway.returncode == 0, midway.stderr
        assert json.loads(midway.stdout)["observations"] == session.store.count_observations() > 0
    with Session.open(folder) as session:
        session.store.queue_points([{"pitch1": 0.25, "pitch2": -0.5}], by="bob")
        checkpoint = session.advance()
        while checkpoint is not None:
            checkpoint = _answer(session, checkpoint, 1)
    out = root / "bundle.zip"
    written = closedloop("export", str(folder), str(out), "--json")
    assert written.returncode == 0, written.stderr
    assert json.loads(written.stdout)["observations"] == BUDGET
    return folder, out


def _unpacked(bundle: Path, where: Path) -> Path:
    with zipfile.ZipFile(bundle) as archive:
        archive.extractall(where)
    return where


def test_an_exported_session_unpacked_replays_every_planner_proposal(shared, tmp_path: Path) -> None:
    folder, bundle = shared
    unpacked = _unpacked(bundle, tmp_path / "unpacked")
    replayed = closedloop("replay", str(unpacked), "--json", timeout=300)
    assert replayed.returncode == 0, replayed.stderr
    found = json.loads(replayed.stdout)
    assert found["operator"] == 1  # bob's point: the operator's, not a mismatch
    assert found["proposals"] >= BUDGET  # the rejected one too
    assert found["reproduced"] == found["proposals"] and found["mismatches"] == []
    environment = json.loads((unpacked / "environment.json").read_text())
    assert len(environment["planner_builds"]) == 2  # created, then resumed: both builds replayed
    card = (unpacked / "SESSION.md").read_text()
    for words in (
        "# shared",
        "objective `flux`: maximize",
        "`botorch`",
        "| ada | terminal | reject | 1 |",
        "botorch |",
    ):
        assert words in card
    assert "![convergence](convergence.png)" in card and (unpacked / "convergence.png").stat().st_size > 1000


def test_a_bundle_exported_while_the_session_waited_replays_what_was_proposed_by_then(shared) -> None:
    midway = shared[1].parent / "midway"
    replayed = closedloop("replay", str(midway), "--json", timeout=300)
    assert replayed.returncode == 0, replayed.stderr
    found = json.loads(replayed.stdout)
    assert found["reproduced"] == found["proposals"] > json.loads((midway / "bundle.json").read_text())["observations"]


def test_the_crate_metadata_reads_back_with_rocrate_and_names_every_file_with_its_checksum(shared, tmp_path) -> None:
    unpacked = _unpacked(shared[1], tmp_path / "crate")
    crate = ROCrate(unpacked)
    files = {entity.id: entity for entity in crate.data_entities if "File" in entity.type}
    on_disk = {p.relative_to(unpacked).as_posix() for p in unpacked.rglob("*") if p.is_file()} - {METADATA}
    assert set(files) == on_disk
    assert {"SESSION.md", "session.yaml", "store.sqlite", "observations.csv", "observations.parquet"} <= on_disk
    assert sum(name.startswith("runs/") for name in on_disk) == BUDGET
    for name, entity in files.items():
        assert entity["sha256"] == sha256(unpacked / name)
        assert int(entity["contentSize"]) == (unpacked / name).stat().st_size
    table = pq.read_table(unpacked / "observations.parquet").to_pylist()
    assert len(table) == BUDGET
    planned = [row for row in table if row["origin"] == "planner"]
    assert all(row["planner"] == "botorch" and row["seed"] == 3 for row in planned)
    assert {row["build"] for row in planned} == {0, 1}
    assert any(row["predicted"] is not None for row in planned)  # the model's prediction at its point


def test_export_never_changes_the_session_and_refuses_an_out_that_exists(shared, tmp_path: Path) -> None:
    folder, bundle = shared
    before = {p: sha256(p) for p in folder.rglob("*") if p.is_file()}
    out = tmp_path / "again"
    assert closedloop("export", str(folder), str(out)).returncode == 0
    assert {p: sha256(p) for p in folder.rglob("*") if p.is_file()} == before
    taken = closedloop("export", str(folder), str(bundle))
    assert taken.returncode == 2 and taken.stderr.count("\n") == 1 and "OUT" in taken.stderr
    nothing = closedloop("export", str(tmp_path / "no-session"), str(tmp_path / "b2"))
    assert nothing.returncode == 2 and nothing.stderr.count("\n") == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["again"]  # nothing half-written


def _rewrite_checksums(root: Path) -> None:
    """Make an altered bundle's metadata agree with it again (a forgery checksums alone cannot catch)."""
    metadata = json.loads((root / METADATA).read_text())
    for entity in metadata["@graph"]:
        if "sha256" in entity:
            entity["sha256"] = sha256(root / entity["@id"])
    (root / METADATA).write_text(json.dumps(metadata))


def test_a_bundle_altered_in_one_value_is_refused_naming_the_file(shared, tmp_path: Path) -> None:
    unpacked = _unpacked(shared[1], tmp_path / "altered")
    text = (unpacked / "observations.csv").read_text()
    (unpacked / "observations.csv").write_text(text.replace(",ok,", ",OK,", 1))
    refused = closedloop("replay", str(unpacked))
    assert refused.returncode == 1 and refused.stderr.count("\n") == 1
    assert "observations.csv" in refused.stderr and "checksum" in refused.stderr
    (unpacked / "observations.csv").write_text(text)
    (unpacked / "runs" / sorted(p.name for p in (unpacked / "runs").iterdir())[0]).unlink()
    truncated = closedloop("replay", str(unpacked))
    assert truncated.returncode == 1 and "runs/" in truncated.stderr and "missing" in truncated.stderr
    missing = closedloop("replay", str(tmp_path / "no-bundle.zip"))
    assert missing.returncode == 2 and "no such bundle" in missing.stderr


def test_a_newer_bundle_format_is_refused(shared, tmp_path: Path) -> None:
    unpacked = _unpacked(shared[1], tmp_path / "newer")
    manifest = json.loads((unpacked / "bundle.json").read_text())
    (unpacked / "bundle.json").write_text(json.dumps({**manifest, "format": 99}))
    _rewrite_checksums(unpacked)
    refused = closedloop("replay", str(unpacked))
    assert refused.returncode == 2 and "format 99 is newer" in refused.stderr


def test_a_proposal_that_does_not_follow_from_the_data_is_a_mismatch_named(shared, tmp_path: Path) -> None:
    """A store whose recorded point was changed (checksums made to agree): replay names that proposal, exit 1."""
    unpacked = _unpacked(shared[1], tmp_path / "forged")
    with sqlite3.connect(unpacked / "store.sqlite") as conn:
        pid, body = conn.execute("SELECT id, body FROM proposals WHERE body LIKE '%model (%' ORDER BY seq").fetchone()
        proposal = json.loads(body)
        proposal["setpoints"]["pitch1"] = round(proposal["setpoints"]["pitch1"] + 0.01, 6)
        conn.execute("UPDATE proposals SET body = ? WHERE id = ?", (json.dumps(proposal), pid))
    _rewrite_checksums(unpacked)
    replayed = closedloop("replay", str(unpacked), "--json", timeout=300)
    assert replayed.returncode == 1
    found = json.loads(replayed.stdout)
    assert found["mismatches"][0]["proposal"] == pid and found["reproduced"] < found["proposals"]
    assert pid in replayed.stderr and replayed.stderr.count("\n") == 1


def test_replaying_a_copy_leaves_the_bundle_as_it_was(shared, tmp_path: Path) -> None:
    unpacked = _unpacked(shared[1], tmp_path / "kept")
    copy = shutil.copytree(unpacked, tmp_path / "copy")
    assert closedloop("replay", str(copy)).returncode == 0
    assert {p.name: sha256(p) for p in copy.rglob("*") if p.is_file()} == {
        p.name: sha256(p) for p in unpacked.rglob("*") if p.is_file()
    }


def _warm(root: Path, name: str, **overrides) -> Path:
    planner = {"name": "botorch", "options": {"n_initial": 3, "num_restarts": 2, "raw_samples": 16}}
    data = beamline_session(name=name, budget={"experiments": 1}, planner=planner, **overrides)
    path = root / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_a_warm_started_session_proposes_from_the_prior_data_at_once(shared, tmp_path: Path) -> None:
    """With the earlier session's observations, the first proposal is the model's, not the initial design; the
    narrower bounds keep only the prior points inside them, and say how many were dropped."""
    folder, bundle = shared
    narrow = {"bounds": [-1.0, 1.0], "hard_limits": [-2.0, 2.0], "device": "m1"}
    variables = {**beamline_session()["variables"], "pitch1": narrow}
    path = _warm(tmp_path, "warm", variables=variables)
    run = closedloop("run", str(path), "--dir", str(tmp_path / "warm"), "--from", str(bundle), "--yes", "--json")
    assert run.returncode == 0, run.stderr
    status = json.loads(closedloop("status", str(tmp_path / "warm"), "--json").stdout)
    earlier = json.loads(closedloop("results", str(folder), "--json").stdout)["rows"]
    inside = [row for row in earlier if -1.0 <= row["pitch1_read"] <= 1.0]
    assert 0 < len(inside) < len(earlier)  # the narrower bounds drop some
    assert status["prior_observations"] == len(inside)
    assert status["session_id"] != json.loads(closedloop("status", str(folder), "--json").stdout)["session_id"]
    (first,) = json.loads(closedloop("results", str(tmp_path / "warm"), "--json").stdout)["rows"]
    assert first["why"].startswith("model (") and first["predicted"] is not None
    trail = json.loads(closedloop("audit", str(tmp_path / "warm"), "--json").stdout)["trail"]
    assert any(f"{len(earlier) - len(inside)} outside" in str(entry) for entry in trail)
    exported = closedloop("export", str(tmp_path / "warm"), str(tmp_path / "warm.zip"))
    assert exported.returncode == 0, exported.stderr
    replayed = json.loads(closedloop("replay", str(tmp_path / "warm.zip"), "--json").stdout)
    assert replayed["proposals"] == replayed["reproduced"] == 1  # replayed from the same prior data
    # and without the prior data, the same session starts with the initial design
    cold = closedloop("run", str(path), "--dir", str(tmp_path / "cold"), "--yes", "--json")
    assert cold.returncode == 0, cold.stderr
    (first,) = json.loads(closedloop("results", str(tmp_path / "cold"), "--json").stdout)["rows"]
    assert first["why"] == "initial design"


def test_a_prior_of_another_problem_is_refused_naming_the_field_and_nothing_is_made(shared, tmp_path: Path) -> None:
    bundle = shared[1]
    minimize = _warm(tmp_path, "minimize", objectives={"flux": {"direction": "minimize", "field": "det-flux"}})
    refused = closedloop("run", str(minimize), "--dir", str(tmp_path / "a"), "--from", str(bundle), "--yes")
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1 and "objectives.flux" in refused.stderr
    renamed = {"pitch1": beamline_session()["variables"]["pitch1"], "yaw": {"bounds": [-1, 1], "device": "m2"}}
    other = _warm(tmp_path, "other", variables=renamed)
    refused = closedloop("run", str(other), "--dir", str(tmp_path / "b"), "--from", str(bundle), "--yes")
    assert refused.returncode == 2 and "variables" in refused.stderr
    missing = closedloop("run", str(minimize), "--dir", str(tmp_path / "c"), "--from", str(tmp_path / "none"), "--yes")
    assert missing.returncode == 2 and "prior" in missing.stderr
    assert not any((tmp_path / name).exists() for name in ("a", "b", "c"))


def test_a_foreign_generator_is_said_not_replayable_in_one_line(tmp_path: Path) -> None:
    foreign = {"name": "tests.integration.planners_for_tests:BadOnce", "options": {"bad": 0}}
    path = tmp_path / "foreign.yaml"
    path.write_text(yaml.safe_dump(beamline_session(name="foreign", budget={"experiments": 2}, planner=foreign)))
    with Session.create(path, tmp_path / "run") as session:
        assert session.advance() is None
    assert closedloop("export", str(tmp_path / "run"), str(tmp_path / "foreign.zip")).returncode == 0
    refused = closedloop("replay", str(tmp_path / "foreign.zip"))
    assert refused.returncode == 1 and refused.stderr.count("\n") == 1
    assert "foreign gest-api generator cannot be replayed" in refused.stderr
