"""``closedloop results``: a session's runs as one table, read from the store of a session run on real RunEngines
(two simulated instruments, an operator's edit, an operator's point, a failed run)."""

from __future__ import annotations

import csv
import datetime
import io
import json
from pathlib import Path

import pytest

from agent.session import Session
from agent.views.display import fmt
from agent.views.results import READ_BACK, as_csv, session_results
from closedloop.records import Decision, Verdict
from tests.integration.test_cli import closedloop
from tests.integration.test_pipeline import runs_in_order, two_instruments


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, dict]]:
    """The folder and the start documents (by proposal) of a finished session of six runs on two instruments: the
    first proposal edited by ada from the web page, a point queued by bob, hutch-b's first reading NaN (a failed
    run), the rest approved (by ``policy-test``)."""
    root = tmp_path_factory.mktemp("results")
    data = two_instruments(0.05, review={"policy": "always"})
    data["instruments"][1]["options"] = {**data["instruments"][1]["options"], "faults": {"nan_reading": 1}}
    (root / "session.yaml").write_text(json.dumps(data))
    with Session.create(root / "session.yaml", root / "run") as session:
        checkpoint = session.advance()
        assert checkpoint is not None
        first, *others = [p["id"] for p in checkpoint.proposals]  # one for each instrument
        edit = Decision(
            verdict=Verdict.EDIT, proposal_ids=[first], setpoints={"pitch1": 0.3, "pitch2": -0.2}, by="ada", via="web"
        )
        checkpoint = session.answer([edit] + [Decision(verdict=Verdict.APPROVE, proposal_ids=[p]) for p in others])
        session.store.queue_points([{"pitch1": -0.4, "pitch2": 0.5}], by="bob")
        while checkpoint is not None:
            checkpoint = session.answer(Decision(verdict=Verdict.APPROVE, by="policy-test", via="channel"))
        starts = {proposal: start for proposal, start, _ in runs_in_order(session)}
    return root / "run", starts


def test_every_run_is_a_row_in_the_order_read_with_what_its_documents_say(finished) -> None:
    folder, starts = finished
    columns, rows, variables = session_results(folder)
    assert variables == ["pitch1", "pitch2"]
    assert columns[:7] == ["experiment", "proposal", "why", "instrument", "scan_id", "started", "status"]
    assert columns[7:12] == ["pitch1", "pitch1_read", "pitch2", "pitch2_read", "flux"]
    assert [row["experiment"] for row in rows] == list(range(1, len(rows) + 1))
    assert len(rows) == len(starts) >= 6
    for row in rows:  # where and when each ran, and its uid, are its start document's
        start = starts[row["proposal"]]
        where = (start["instrument"], start["scan_id"], start["uid"])
        assert (row["instrument"], row["scan_id"], row["run_uid"]) == where
        assert datetime.datetime.fromisoformat(row["started"]).timestamp() == pytest.approx(start["time"], abs=1)
    assert {row["instrument"] for row in rows} == {"hutch-a", "hutch-b"}
    (edited,) = [row for row in rows if row["why"].startswith("edited ")]
    assert edited["decided"] == "edit by ada via web"
    assert (edited["pitch1"], edited["pitch2"]) == (0.3, -0.2)
    assert edited["pitch1" + READ_BACK] == pytest.approx(0.3, abs=1e-6)
    (queued,) = [row for row in rows if row["why"] == "operator"]
    assert {row["why"] for row in rows} == {"Sobol", "operator", edited["why"]}  # the planner's: Sobol points
    assert (queued["pitch1"], queued["pitch2"]) == (-0.4, 0.5)
    (failed,) = [row for row in rows if row["status"] != "ok"]
    assert failed["instrument"] == "hutch-b" and failed["flux"] is None and "flux" in failed["error"]
    assert all(isinstance(row["flux"], float) for row in rows if row is not failed)


def test_the_csv_holds_every_cell_and_reads_back_to_the_same_numbers(finished) -> None:
    columns, rows, _ = session_results(finished[0])
    read = list(csv.DictReader(io.StringIO(as_csv(columns, rows))))
    assert len(read) == len(rows)
    for row, back in zip(rows, read, strict=True):
        assert list(back) == columns
        for column in columns:
            value = row[column]
            if isinstance(value, float):
                assert float(back[column]) == value  # every digit kept
            else:
                assert back[column] == ("" if value is None else str(value))


def test_the_command_prints_the_table_writes_the_csv_and_names_a_folder_without_a_session(
    finished, tmp_path: Path
) -> None:
    folder = finished[0]
    table = closedloop("results", str(folder))
    assert table.returncode == 0, table.stderr
    assert all(word in table.stdout for word in ("hutch-a", "hutch-b", "failed", "edited", "operator"))
    columns, rows, _ = session_results(folder)
    assert all(fmt(row["flux"]) in table.stdout for row in rows)  # each measured value, as read back
    out = tmp_path / "results.csv"
    written = closedloop("results", str(folder), "--csv", str(out))
    assert written.returncode == 0, written.stderr
    assert out.read_text() == as_csv(columns, rows) and f"{len(rows)} run(s) written" in written.stdout
    printed = closedloop("results", str(folder), "--csv", "-")
    assert printed.stdout == out.read_text()
    as_json = json.loads(closedloop("results", str(folder), "--json").stdout)
    assert as_json["columns"] == columns and as_json["rows"] == json.loads(json.dumps(rows))
    missing = closedloop("results", str(tmp_path / "nothing"))
    assert missing.returncode == 2 and missing.stderr.count("\n") == 1 and "holds no session" in missing.stderr
    unwritable = closedloop("results", str(folder), "--csv", str(tmp_path / "no" / "such" / "dir.csv"))
    assert unwritable.returncode == 2 and unwritable.stderr.startswith("error: --csv: cannot write")


def test_each_row_names_its_lineage_the_planner_seed_and_what_it_knew(finished) -> None:
    """Lineage kept as the session ran: the planner's points name the planner, its seed and build, and how many
    observations it had been told (never more than were stored before the point's own); an operator's point and an
    edit are the operator's; the session recorded the versions of what it ran on, once."""
    from agent.views.status import session_store

    columns, rows, _ = session_results(finished[0])
    assert columns[-8:] == [
        "origin",
        "planner",
        "planner_version",
        "seed",
        "build",
        "known",
        "predicted",
        "predicted_std",
    ]
    by_origin: dict[str, list[dict]] = {}
    for row in rows:
        by_origin.setdefault(row["origin"], []).append(row)
    assert set(by_origin) == {"planner", "operator"}  # every row says where its point came from
    assert {row["why"] for row in by_origin["operator"]} >= {"operator"}
    assert any(row["why"].startswith("edited ") for row in by_origin["operator"])
    assert all(row["why"] == "operator" or row["why"].startswith("edited ") for row in by_origin["operator"])
    planned = by_origin["planner"]
    assert planned and all((row["planner"], row["seed"], row["build"]) == ("sobol", 3, 0) for row in planned)
    assert all(row["planner_version"] == "0.1.0" for row in planned)
    assert all(row["known"] is not None and row["known"] < row["experiment"] for row in planned)
    assert max(row["known"] for row in planned) > 0  # later points were proposed knowing earlier results
    store = session_store(finished[0])
    try:
        versions = store.meta("versions")
    finally:
        store.close()
    assert {"closedloop", "bluesky", "ophyd", "ophyd-async", "botorch", "torch", "langgraph", "python"} <= set(versions)
    assert all(isinstance(versions[name], str) for name in ("bluesky", "torch", "langgraph", "python"))


def test_a_pipelined_session_on_two_instruments_replays_every_planner_point(finished, tmp_path: Path) -> None:
    """Exported and replayed: the planner's points were made with runs in flight on two instruments, around an
    operator's edit, a queued point and a failed run; each follows from what the planner had been told then."""
    out = tmp_path / "bundle"
    assert closedloop("export", str(finished[0]), str(out)).returncode == 0
    replayed = closedloop("replay", str(out), "--json")
    assert replayed.returncode == 0, replayed.stderr
    found = json.loads(replayed.stdout)
    assert found["operator"] == 2 and found["reproduced"] == found["proposals"] >= 5
