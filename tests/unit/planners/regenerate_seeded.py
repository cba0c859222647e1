"""Regenerate the seeded proposals' golden file, on purpose, after a change that means to move proposals.

``python -m tests.unit.planners.regenerate_seeded`` plays every scenario of :mod:`tests.unit.planners.seeded_scenarios`
and rewrites ``tests/unit/planners/data/seeded_proposals.json``; ``... regenerate_seeded NAME [NAME ...]`` only
those scenarios (the others kept as stored). Review the diff of the file before committing it: each moved number
is a proposal the change moved.
"""

from __future__ import annotations

import argparse
import json
import sys

from tests.unit.planners.seeded_scenarios import GOLDEN, SCENARIOS, play


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help=f"scenarios to replay (default: all): {', '.join(SCENARIOS)}")
    args = parser.parse_args()
    unknown = [name for name in args.names if name not in SCENARIOS]
    if unknown:
        print(f"names: unknown scenario '{unknown[0]}'; scenarios: {', '.join(SCENARIOS)}", file=sys.stderr)
        raise SystemExit(2)
    stored = json.loads(GOLDEN.read_text()) if GOLDEN.exists() and args.names else {}
    for name in args.names or list(SCENARIOS):
        stored[name] = play(SCENARIOS[name])
        print(f"{name}: {sum(len(r) for r in stored[name]['rounds'])} proposals", flush=True)
    GOLDEN.write_text(json.dumps({k: stored[k] for k in SCENARIOS if k in stored}, indent=1) + "\n")
    print(f"wrote {GOLDEN}")


if __name__ == "__main__":
    main()
