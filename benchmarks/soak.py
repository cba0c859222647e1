"""A kill soak: one session on the simulated beamline, with injected faults and random SIGKILLs, resumed each time.

Each kill lands at a random moment (inside a run, a proposal, a review or a write: wherever the process is), and
the session is resumed with ``closedloop resume`` in a new process until it finishes. Then the folder is checked
and one line is printed for each of: experiments lost, duplicated rows, proposals physically run twice (two start
documents), runs without a documents file, failed runs and why, peak RSS of the session processes, bytes on disk
per experiment, and the median time per iteration over the first and the last 100 experiments (their ratio is the
growth; the target is under 1.5).

    python -m benchmarks.soak [--experiments 1000] [--kills 10] [--faults 0.02] [--seed 0]
"""

from __future__ import annotations

import argparse
import collections
import json
import random
import resource
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

CLI = [sys.executable, "-m", "agent.cli"]


def session_file(experiments: int, faults: float, seed: int, exposure: float = 0.0) -> dict[str, Any]:
    """The soak's session: sobol on the beamline, unattended, faults of every kind at about the given rate."""
    injected = (
        {"nan_reading": faults / 2, "limit_switch": faults / 4, "stall": faults / 4, "hang_trigger": faults / 20}
        if faults
        else {}
    )
    return {
        "name": "soak",
        "seed": seed,
        "variables": {
            "pitch1": {"bounds": [-1.5, 1.5], "hard_limits": [-2.0, 2.0], "device": "m1"},
            "pitch2": {"bounds": [-1.5, 1.5], "hard_limits": [-2.0, 2.0], "device": "m2"},
        },
        "objectives": {"flux": {"field": "det-flux"}},
        "budget": {"experiments": experiments},
        "planner": {"name": "sobol"},
        "instrument": {
            "simulator": "beamline",
            "options": {"noise": 5.0, "faults": injected, "exposure": exposure},
            "run_timeout": 5.0,
        },
        "review": {"policy": "never"},
        "failures": {"max_consecutive": 50, "then": "pause"},
    }


def rows(folder: Path, query: str) -> list[tuple[Any, ...]]:
    try:
        with sqlite3.connect(folder / "store.sqlite", timeout=30) as conn:
            return [tuple(row) for row in conn.execute(query)]
    except sqlite3.OperationalError:
        return []


def observed(folder: Path) -> dict[str, str]:
    return {pid: body for pid, body in rows(folder, "SELECT proposal_id, body FROM observations")}


def count_observations(folder: Path) -> int:
    found = rows(folder, "SELECT COUNT(*) FROM observations")
    return int(found[0][0]) if found else 0


def run_once(command: list[str], folder: Path, kill: tuple[int, float] | None, log: Path) -> int:
    """Run a session process; with ``kill = (n, delay)``, SIGKILL it ``delay`` seconds after it has stored ``n``
    more observations (so that the kill lands inside the loop: a run, a proposal, a write), if it still runs."""
    with log.open("a") as out:
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=out, stderr=out)
        if kill is None:
            return process.wait()
        target = count_observations(folder) + kill[0]
        while process.poll() is None and count_observations(folder) < target:
            time.sleep(0.01)
        time.sleep(kill[1])
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
        return process.wait()


def iteration_times(folder: Path) -> list[float]:
    """Seconds between consecutive proposals, leaving out every gap that spans a restart."""
    events = rows(folder, "SELECT time, kind FROM events WHERE kind IN ('propose', 'resume', 'rebuild') ORDER BY seq")
    times, previous = [], None
    for when, kind in events:
        if kind != "propose":
            previous = None
            continue
        if previous is not None:
            times.append(when - previous)
        previous = when
    return times


def check(folder: Path) -> dict[str, Any]:
    """What the folder shows after the soak."""
    starts: collections.Counter[str] = collections.Counter()  # (proposal, attempt) -> start documents
    for path in (folder / "runs").glob("*.jsonl"):
        for line in path.read_text().splitlines():
            try:
                name, doc = json.loads(line)
            except ValueError:
                continue
            if name == "start":  # a retry of a transient fault is a new attempt, not the same run again
                starts[f"{doc['proposal_id']}/{doc.get('attempt', 1)}"] += 1
    dispatched = [pid for (pid,) in rows(folder, "SELECT proposal_id FROM dispatches")]
    duplicate_decisions = rows(folder, "SELECT key, COUNT(*) FROM decisions GROUP BY key HAVING COUNT(*) > 1")
    duplicate_events = rows(
        folder, "SELECT key, COUNT(*) FROM events WHERE key IS NOT NULL GROUP BY key HAVING COUNT(*) > 1"
    )
    statuses = collections.Counter(status for (status,) in rows(folder, "SELECT status FROM observations"))
    reasons = collections.Counter(
        (json.loads(body).get("error") or "")[:60]
        for (body,) in rows(folder, "SELECT body FROM observations WHERE status != 'ok'")
    )
    return {
        "twice": sum(1 for count in starts.values() if count > 1),
        "no_file": sum(1 for pid in dispatched if not (folder / "runs" / f"{pid}.jsonl").exists()),
        "duplicates": len(duplicate_decisions) + len(duplicate_events),
        "statuses": dict(statuses),
        "reasons": reasons.most_common(4),
        "bytes": sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--experiments", type=int, default=1000)
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--faults", type=float, default=0.02, help="chance that a detector trigger fails")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--exposure", type=float, default=0.02, help="seconds per reading (kills then land in runs)")
    parser.add_argument("--keep", type=Path, default=None, help="keep the session folder here")
    args = parser.parse_args()
    rng = random.Random(args.seed)

    with tempfile.TemporaryDirectory() as tmp:
        root = args.keep or Path(tmp)
        root.mkdir(parents=True, exist_ok=True)
        path = root / "soak.yaml"
        path.write_text(yaml.safe_dump(session_file(args.experiments, args.faults, args.seed, args.exposure)))
        folder, log = root / "session", root / "soak.log"
        # spread the kills over the session's first 80 %, each at a random moment of an iteration
        spacing = max(2, int(0.8 * args.experiments / max(1, args.kills)))
        lost, kills, seen = 0, 0, {}
        command = [*CLI, "run", str(path), "--dir", str(folder)]
        started = time.perf_counter()
        while True:
            kill = (rng.randint(1, spacing), rng.uniform(0.0, 0.06 + args.exposure)) if kills < args.kills else None
            code = run_once(command, folder, kill, log)
            now = observed(folder)
            lost += sum(1 for pid, body in seen.items() if now.get(pid) != body)
            seen = now
            if code == -signal.SIGKILL:
                kills += 1
            elif code != 0:
                raise SystemExit(f"the session exited {code}; see {log}")
            else:
                break
            made = rows(folder, "SELECT value FROM meta WHERE key = 'session_id'")
            # killed before the session was made: start it again; else resume it
            command = [*CLI, "resume", str(folder)] if made else [*CLI, "run", str(path), "--dir", str(folder)]
        wall = time.perf_counter() - started
        found = check(folder)
        ok = found["statuses"].get("ok", 0)
        times = iteration_times(folder)
        first, last = statistics.median(times[:100]), statistics.median(times[-100:])
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024

        print(f"soak: {args.experiments} experiments, {kills} SIGKILLs, fault rate {args.faults}, {wall:.0f} s")
        print(f"experiments lost: {lost + max(0, args.experiments - ok)}")
        print(f"duplicated rows: {found['duplicates']}")
        print(f"proposals physically run twice: {found['twice']}")
        print(f"runs without a documents file: {found['no_file']}")
        print(
            "kills that landed inside a run (recorded interrupted, not run again): "
            f"{found['statuses'].get('interrupted', 0)}"
        )
        print(f"observations by status: {found['statuses']}; why: {found['reasons']}")
        print(f"peak RSS of a session process: {peak:.0f} MiB")
        print(f"bytes on disk per experiment: {found['bytes'] / max(1, ok):.0f}")
        print(
            f"median time per iteration: first 100 {first * 1000:.1f} ms, last 100 {last * 1000:.1f} ms, "
            f"growth {last / first:.2f}x"
        )


if __name__ == "__main__":
    main()
