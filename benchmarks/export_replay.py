"""Sharing a session: export time and bundle size, and how many proposals a replay reproduces.

Runs real sessions on the simulated beamline, in process, unattended: one of ``--experiments`` with the ``sobol``
planner (cheap to build), exported as a folder and as a zip (time and size per experiment printed) and replayed;
then a ``botorch`` session, a two-objective one (flux up, spot width down) and a constrained one (flux up, mirror
heat under 2.2), each exported and replayed, printing proposals reproduced of proposals made and the replay time.

    python -m benchmarks.export_replay [--experiments 1000] [--botorch 200] [--two-objective 60] [--constrained 60]

The issue's sizes are the defaults; smaller ones give a quick look (a 200-experiment botorch session takes a long
while to run and to replay on two cores).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from agent.provenance.export import export_session
from agent.provenance.replay import replay_bundle
from agent.session import Session

VARIABLES = {
    "pitch1": {"bounds": [-1.5, 1.5], "hard_limits": [-2.0, 2.0], "device": "m1"},
    "pitch2": {"bounds": [-1.5, 1.5], "hard_limits": [-2.0, 2.0], "device": "m2"},
}
FLUX = {"flux": {"direction": "maximize", "field": "det-flux"}}


def session_file(name: str, experiments: int, planner: dict[str, Any], **extra: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": name,
        "seed": 7,
        "variables": VARIABLES,
        "objectives": FLUX,
        "budget": {"experiments": experiments},
        "planner": planner,
        "instrument": {"simulator": "beamline", "options": {"noise": 5.0}},
        "review": {"policy": "never"},
        "pipeline": False,
    }
    data.update(extra)
    return data


def run_session(root: Path, data: dict[str, Any]) -> tuple[Path, float]:
    """Run a session to its end; its folder and the seconds it took."""
    path = root / f"{data['name']}.yaml"
    path.write_text(yaml.safe_dump(data))
    started = time.perf_counter()
    with Session.create(path, root / data["name"]) as session:
        assert session.advance() is None
    return root / data["name"], time.perf_counter() - started


def export_and_replay(root: Path, folder: Path, label: str) -> None:
    started = time.perf_counter()
    written = export_session(folder, root / f"{folder.name}.zip")
    exported = time.perf_counter() - started
    started = time.perf_counter()
    found = replay_bundle(root / f"{folder.name}.zip")
    replayed = time.perf_counter() - started
    print(
        f"{label}: replay reproduced {found['reproduced']} of {found['proposals']} proposals "
        f"({len(found['mismatches'])} mismatches, {found['operator']} an operator's) in {replayed:.1f} s; "
        f"export {exported:.2f} s, {written['bytes'] / max(1, written['observations']) / 1024:.1f} KiB per experiment"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiments", type=int, default=1000, help="experiments of the sobol session")
    parser.add_argument("--botorch", type=int, default=200, help="experiments of the botorch session (0: none)")
    parser.add_argument("--two-objective", type=int, default=60, help="experiments of the two-objective session")
    parser.add_argument("--constrained", type=int, default=60, help="experiments of the constrained session")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="closedloop-export-bench-") as scratch:
        root = Path(scratch)
        folder, built = run_session(root, session_file("sobol", args.experiments, {"name": "sobol"}))
        print(f"sobol session of {args.experiments} experiments built in {built:.1f} s")
        for out in (root / "first", root / "bundle", root / "bundle.zip"):  # the first pays the imports
            started = time.perf_counter()
            written = export_session(folder, out)
            seconds = time.perf_counter() - started
            per = written["bytes"] / written["observations"] / 1024
            print(
                f"export to {out.name}: {seconds:.2f} s for {written['observations']} experiments "
                f"({1000 * seconds / written['observations']:.2f} ms each), {written['files']} files, "
                f"{written['bytes'] / 1e6:.1f} MB ({per:.1f} KiB per experiment, uncompressed)"
            )
        size = (root / "bundle.zip").stat().st_size
        print(f"zip on disk: {size / 1e6:.1f} MB ({size / args.experiments / 1024:.1f} KiB per experiment)")
        started = time.perf_counter()
        found = replay_bundle(root / "bundle.zip")
        print(
            f"sobol replay: {found['reproduced']} of {found['proposals']} reproduced in "
            f"{time.perf_counter() - started:.1f} s"
        )
        sessions = []
        if args.botorch:
            sessions.append(("botorch", session_file("botorch", args.botorch, {"name": "botorch"})))
        if args.two_objective:
            objectives = {**FLUX, "width": {"direction": "minimize", "field": "det-width"}}
            data = session_file("two-objective", args.two_objective, {"name": "botorch"}, objectives=objectives)
            sessions.append(("two-objective botorch", data))
        if args.constrained:
            constraints = {"heat": {"field": "det-heat", "less_than": 2.2}}
            data = session_file("constrained", args.constrained, {"name": "botorch"}, constraints=constraints)
            sessions.append(("constrained botorch", data))
        for label, data in sessions:
            folder, built = run_session(root, data)
            print(f"{label} session of {data['budget']['experiments']} experiments built in {built:.1f} s")
            export_and_replay(root, folder, label)


if __name__ == "__main__":
    main()
