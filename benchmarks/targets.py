"""Issue 10's targets, checked from campaign folders (``closedloop bench``): ours against the best of the peers.

On each problem, for our planner (``--ours``, a label as written in the harness's ``--planners``) against Xopt and
Ax on the same seeds: median final regret at most the best peer's; hit rate at least every peer's; worst seed no
worse than the best peer's worst seed; median seconds per model-based proposal at most ``--speed`` times Ax's. Runs
may come from several campaigns (one per problem, say); for a problem, the last folder that holds a planner wins.
Seconds are compared only within one campaign (the load on a shared machine changes between campaigns): the
speed ratio is printed only when ours and Ax ran in the same campaign. The ``results.json`` files of the retired
``python -m benchmarks.planners`` are read too.

    python -m benchmarks.targets campaigns/spot2 campaigns/branin ...
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

PEERS = ("xopt", "ax")


def _fmt(value: float) -> str:
    if value == 0:
        return "0"
    if abs(value) >= 100:
        return f"{value:.0f}"
    return f"{value:.2e}" if abs(value) < 1e-2 else f"{value:.3g}"


def _campaign(path: Path) -> dict[str, dict[str, dict[str, Any]]]:
    """A campaign folder's dataset as ``{problem: {planner: summary}}`` (the keys :func:`check` reads)."""
    from benchmarks.campaign.pages import load as load_campaign
    from benchmarks.campaign.pages import merge, summary

    return {
        problem: {planner: summary(cell) for planner, cell in by_planner.items() if cell.finals}
        for problem, by_planner in merge([load_campaign(path)]).items()
    }


def load(paths: list[Path]) -> dict[str, dict[str, tuple[dict[str, Any], str]]]:
    """``{problem: {planner: (summary, source)}}`` from campaign folders and ``results.json`` files."""
    out: dict[str, dict[str, tuple[dict[str, Any], str]]] = {}
    for path in paths:
        if (path / "campaign.json").is_file():
            for problem, by_planner in _campaign(path).items():
                for planner, summary in by_planner.items():
                    out.setdefault(problem, {})[planner] = (summary, str(path))
            continue
        file = path / "results.json" if path.is_dir() else path
        data = json.loads(file.read_text())
        for problem, by_planner in data["summary"].items():
            for planner, summary in by_planner.items():
                if "final_regret" in summary:
                    out.setdefault(problem, {})[planner] = (summary, str(file))
    return out


def check(ours: dict[str, Any], peers: dict[str, dict[str, Any]], *, same_run_ax: bool, speed: float) -> dict:
    """Each target met or not (None when it cannot be judged: no peer, or Ax's seconds from another run)."""
    if not peers:
        return {"regret": None, "hit": None, "worst": None, "speed": None}
    result = {
        "regret": ours["final_regret"] <= min(p["final_regret"] for p in peers.values()),
        "hit": ours["hit_rate"] >= max(p["hit_rate"] for p in peers.values()),
        "worst": ours["final_regret_worst"] <= min(p["final_regret_worst"] for p in peers.values()),
        "speed": None,
    }
    if "ax" in peers and same_run_ax:
        result["speed"] = ours["seconds_per_proposal"] <= speed * peers["ax"]["seconds_per_proposal"]
    return result


def table(data: dict[str, dict[str, tuple[dict[str, Any], str]]], ours: str, speed: float) -> str:
    """Markdown: per problem, each contender's median [IQR], worst, hit rate, s/proposal, and the targets met."""
    mark = {True: "yes", False: "**no**", None: "-"}
    lines = [
        "| problem | planner | median [IQR] | worst | hit | s/proposal | ours / planner: median, s/proposal |",
        "|---|---|---|---|---|---|---|",
    ]
    verdicts = []
    for problem, by_planner in data.items():
        if ours not in by_planner:
            continue
        mine, source = by_planner[ours]
        peers = {p: by_planner[p][0] for p in PEERS if p in by_planner}
        for name in (ours, *peers):
            s, file = by_planner[name]
            ratio = ""
            if name != ours:
                r = mine["final_regret"] / s["final_regret"] if s["final_regret"] > 0 else float("inf")
                t = mine["seconds_per_proposal"] / s["seconds_per_proposal"] if file == source else None
                ratio = f"x{_fmt(r)}, " + (f"x{t:.2f}" if t is not None else "other run")
            lines.append(
                f"| {problem} | {name} | {_fmt(s['final_regret'])} [{_fmt(s['final_regret_q1'])}, "
                f"{_fmt(s['final_regret_q3'])}] | {_fmt(s['final_regret_worst'])} | {s['hit_rate']:.0%} | "
                f"{s['seconds_per_proposal']:.2f} | {ratio} |"
            )
        same_run = "ax" in by_planner and by_planner["ax"][1] == source
        verdict = check(mine, peers, same_run_ax=same_run, speed=speed)
        verdicts.append(
            f"- {problem}: median {mark[verdict['regret']]}, hit rate {mark[verdict['hit']]}, "
            f"worst seed {mark[verdict['worst']]}, seconds {mark[verdict['speed']]}"
        )
    return "\n".join(lines) + "\n\nTargets met (ours against the best peer):\n" + "\n".join(verdicts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("results", nargs="+", type=Path, help="campaign folders (or results.json files)")
    parser.add_argument("--ours", default="botorch", help="our planner's label (default botorch)")
    parser.add_argument("--speed", type=float, default=0.5, help="target seconds per proposal, times Ax's")
    args = parser.parse_args(argv)
    missing = [
        str(p)
        for p in args.results
        if not (p / "runs.parquet").is_file() and not (p / "results.json" if p.is_dir() else p).is_file()
    ]
    if missing:
        print(f"error: results: no finished campaign (runs.parquet) in {', '.join(missing)}", file=sys.stderr)
        return 2
    print(table(load(args.results), args.ours, args.speed))
    return 0


if __name__ == "__main__":
    sys.exit(main())
