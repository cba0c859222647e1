"""A kill soak: sessions on the simulated beamline, with injected faults and SIGKILLs inside runs, resumed each time.

One session per planner (every shipped one and a foreign generator, by default). Each kill lands inside a run (the
process is killed while a run it started is moving), and every fifth kill also takes the checkpoint database with
it (the whole file, or only its ``-wal``/``-shm``, in turn); the session is resumed with ``closedloop resume`` in a
new process until it finishes. Then the folder is checked, and one row is printed per planner: experiments lost,
duplicated rows, proposals physically run twice (two start documents), setpoints measured twice (one point run
under two proposal ids, operator points left out), runs without a documents file, kills that landed inside a run,
the peak RSS of its session processes, and the median time per iteration over the first and the last 100
experiments (their ratio is the growth; the target is under 1.5).

    python -m benchmarks.soak [--experiments 1000] [--kills 20] [--planners sobol,random,...] [--faults 0.02]
"""

from __future__ import annotations

import argparse
import collections
import json
import math
import os
import random
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import yaml

CLI = [sys.executable, "-m", "agent.cli"]
VARIABLES = ("pitch1", "pitch2")
FOREIGN = "xopt.generators.random:RandomGenerator"
PLANNERS = ("sobol", "random", "grid", "manual", "botorch", "turbo", "xopt")


def planner_entry(name: str, experiments: int, seed: int) -> dict[str, Any]:
    """The session file's ``planner`` section for ``name`` (``xopt``: Xopt's random generator, a foreign one), with
    room for every experiment and the failed ones: a grid and a manual list twice the budget."""
    if name == "xopt":
        return {"name": FOREIGN}
    if name == "grid":
        return {"name": "grid", "options": {"points_per_dim": math.ceil(math.sqrt(2 * experiments)) + 1}}
    if name == "manual":
        points = np.random.default_rng(seed).uniform(-1.5, 1.5, size=(2 * experiments, len(VARIABLES)))
        listed = [{name: float(value) for name, value in zip(VARIABLES, p, strict=True)} for p in points]
        return {"name": "manual", "options": {"points": listed}}
    return {"name": name}


def session_file(
    experiments: int, faults: float, seed: int, exposure: float = 0.0, planner: str = "sobol"
) -> dict[str, Any]:
    """The soak's session: ``planner`` on the beamline, unattended, faults of every kind at about the given rate."""
    injected = (
        {"nan_reading": faults / 2, "limit_switch": faults / 4, "stall": faults / 4, "hang_trigger": faults / 20}
        if faults
        else {}
    )
    return {
        "name": "soak",
        "seed": seed,
        "variables": {
            name: {"bounds": [-1.5, 1.5], "hard_limits": [-2.0, 2.0], "device": device}
            for name, device in zip(VARIABLES, ("m1", "m2"), strict=True)
        },
        "objectives": {"flux": {"field": "det-flux"}},
        "budget": {"experiments": experiments},
        "planner": planner_entry(planner, experiments, seed),
        "instrument": {
            "simulator": "beamline",
            "options": {"noise": 5.0, "faults": injected, "exposure": exposure},
            "run_timeout": 5.0,
        },
        "review": {"policy": "never"},
        "failures": {"max_consecutive": 50, "then": "pause"},
    }


def rows(folder: Path, query: str) -> list[tuple[Any, ...]]:
    if not (folder / "store.sqlite").exists():
        return []  # never let a poll make the file
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


def run_moving(folder: Path) -> bool:
    """A run has started (its intent is stored) and is not stored as done."""
    found = rows(
        folder,
        "SELECT COUNT(*) FROM dispatches d LEFT JOIN runs r ON d.proposal_id = r.proposal_id "
        "WHERE r.proposal_id IS NULL",
    )
    return bool(found and found[0][0])


class Child:
    """A session process, reaped with its own resource usage (its peak RSS)."""

    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        self.process = process
        self.rss = 0.0

    def _reaped(self, status: int, usage: Any) -> None:
        self.process.returncode = os.waitstatus_to_exitcode(status)
        self.rss = usage.ru_maxrss / 1024

    def alive(self) -> bool:
        """Whether it still runs (reaped at once when it ended)."""
        if self.process.returncode is not None:
            return False
        pid, status, usage = os.wait4(self.process.pid, os.WNOHANG)
        if pid == 0:
            return True
        self._reaped(status, usage)
        return False

    def wait(self) -> tuple[int, float]:
        """Its exit code and peak RSS in MiB, once it has ended."""
        if self.process.returncode is None:
            _, status, usage = os.wait4(self.process.pid, 0)
            self._reaped(status, usage)
        return int(self.process.returncode), self.rss


def run_once(command: list[str], folder: Path, kill: int | None, log: Path) -> tuple[int, float]:
    """Run a session process; with ``kill = n``, SIGKILL it inside the first run that moves after it has stored
    ``n`` more observations (if it still runs). Returns its exit code and peak RSS (MiB)."""
    with log.open("a") as out:
        child = Child(subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=out, stderr=out))
        if kill is not None:
            target = count_observations(folder) + kill
            while child.alive() and count_observations(folder) < target:
                time.sleep(0.01)
            deadline = time.monotonic() + 30
            while child.alive() and not run_moving(folder) and time.monotonic() < deadline:
                time.sleep(0.002)
            if child.alive():
                child.process.send_signal(signal.SIGKILL)
        return child.wait()


def lose_checkpoints(folder: Path, whole: bool) -> None:
    """Delete the checkpoint database (``whole``) or only its ``-wal`` and ``-shm`` files."""
    for suffix in ("", "-wal", "-shm") if whole else ("-wal", "-shm"):
        (folder / f"checkpoints.sqlite{suffix}").unlink(missing_ok=True)


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


def point_key(setpoints: dict[str, Any]) -> tuple[Any, ...]:
    """A point's identity as the loop's duplicate check has it (see :class:`agent.loop.SeenPoints`)."""
    return tuple(float(f"{setpoints[name]:.12g}") for name in VARIABLES)


def measured_twice(folder: Path) -> int:
    """Setpoints run (dispatched) under more than one proposal id, operator points left out."""
    bodies = rows(folder, "SELECT p.body FROM proposals p JOIN dispatches d ON p.id = d.proposal_id")
    counts = collections.Counter(
        point_key(proposal["setpoints"])
        for proposal in (json.loads(body) for (body,) in bodies)
        if proposal.get("origin", "planner") == "planner"
    )
    return sum(1 for count in counts.values() if count > 1)


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
    refused = rows(folder, "SELECT COUNT(*) FROM events WHERE kind = 'refused'")
    return {
        "twice": sum(1 for count in starts.values() if count > 1),
        "measured_twice": measured_twice(folder),
        "refused": int(refused[0][0]) if refused else 0,
        "no_file": sum(1 for pid in dispatched if not (folder / "runs" / f"{pid}.jsonl").exists()),
        "duplicates": len(duplicate_decisions) + len(duplicate_events),
        "statuses": dict(statuses),
        "reasons": reasons.most_common(3),
        "bytes": sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()),
    }


def soak(args: argparse.Namespace, planner: str, root: Path) -> dict[str, Any]:
    """One planner's session, killed ``args.kills`` times inside runs and resumed each time; what the folder shows."""
    rng = random.Random(args.seed)
    root.mkdir(parents=True, exist_ok=True)
    path = root / "soak.yaml"
    data = session_file(args.experiments, args.faults, args.seed, args.exposure, planner)
    path.write_text(yaml.safe_dump(data))
    folder, log = root / "session", root / "soak.log"
    # spread the kills over the session's first 80 %
    spacing = max(2, int(0.8 * args.experiments / max(1, args.kills)))
    lost, kills, lost_checkpoints, peak = 0, 0, 0, 0.0
    seen: dict[str, str] = {}
    command = [*CLI, "run", str(path), "--dir", str(folder)]
    started = time.perf_counter()
    while True:
        kill = rng.randint(1, spacing) if kills < args.kills else None
        code, rss = run_once(command, folder, kill, log)
        peak = max(peak, rss)
        now = observed(folder)
        lost += sum(1 for pid, body in seen.items() if now.get(pid) != body)
        seen = now
        if code == -signal.SIGKILL:
            kills += 1
            if args.lose_checkpoints and kills % args.lose_checkpoints == 0:
                lose_checkpoints(folder, whole=lost_checkpoints % 2 == 0)
                lost_checkpoints += 1
        elif code != 0:
            raise SystemExit(f"{planner}: the session exited {code}; see {log}")
        else:
            break
        made = rows(folder, "SELECT value FROM meta WHERE key = 'session_id'")
        # killed before the session was made: start it again; else resume it
        command = [*CLI, "resume", str(folder)] if made else [*CLI, "run", str(path), "--dir", str(folder)]
    found = check(folder)
    times = iteration_times(folder)
    first, last = statistics.median(times[:100]), statistics.median(times[-100:])
    ok = found["statuses"].get("ok", 0)
    found.update(
        planner=planner,
        kills=kills,
        lost_checkpoints=lost_checkpoints,
        lost=lost + max(0, args.experiments - ok),
        peak=peak,
        wall=time.perf_counter() - started,
        first=first,
        last=last,
        per_experiment=found["bytes"] / max(1, ok),
    )
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--experiments", type=int, default=1000)
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--planners", default=",".join(PLANNERS), help=f"comma-separated, of {', '.join(PLANNERS)}")
    parser.add_argument("--faults", type=float, default=0.02, help="chance that a detector trigger fails")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--exposure", type=float, default=0.02, help="seconds per reading (kills then land in runs)")
    parser.add_argument(
        "--lose-checkpoints", type=int, default=5, help="every N-th kill also deletes the checkpoint database (0: none)"
    )
    parser.add_argument("--keep", type=Path, default=None, help="keep the session folders here")
    args = parser.parse_args()
    planners = [name.strip() for name in args.planners.split(",") if name.strip()]
    unknown = sorted(set(planners) - set(PLANNERS))
    if unknown:
        parser.error(f"--planners: unknown {', '.join(unknown)}; choose from {', '.join(PLANNERS)}")

    print(
        f"soak: {args.experiments} experiments and {args.kills} SIGKILLs inside runs per planner (every "
        f"{args.lose_checkpoints or 'no'}th also loses the checkpoint database), fault rate {args.faults}"
    )
    print(
        "planner  | lost | dup rows | run twice | setpoints measured twice | no file | killed in a run | "
        "checkpoints lost | refused repeats | peak RSS MiB | bytes/exp | ms/iter first, last (growth) | wall s"
    )
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for planner in planners:
            found = soak(args, planner, (args.keep or Path(tmp)) / planner)
            results.append(found)
            print(
                f"{planner:8} | {found['lost']:4} | {found['duplicates']:8} | {found['twice']:9} | "
                f"{found['measured_twice']:24} | {found['no_file']:7} | {found['statuses'].get('interrupted', 0):15} | "
                f"{found['lost_checkpoints']:16} | {found['refused']:15} | {found['peak']:12.0f} | "
                f"{found['per_experiment']:9.0f} | {found['first'] * 1000:.1f}, {found['last'] * 1000:.1f} "
                f"({found['last'] / found['first']:.2f}x) | {found['wall']:.0f}",
                flush=True,
            )
    for found in results:
        print(f"{found['planner']}: observations by status {found['statuses']}; why: {found['reasons']}")
    print(
        f"total: lost {sum(f['lost'] for f in results)}, duplicated rows {sum(f['duplicates'] for f in results)}, "
        f"run twice {sum(f['twice'] for f in results)}, setpoints measured twice "
        f"{sum(f['measured_twice'] for f in results)}, peak RSS {max(f['peak'] for f in results):.0f} MiB"
    )


if __name__ == "__main__":
    main()
