"""Retired: the constrained problems' table comes from ``closedloop bench`` and ``closedloop bench page``.

``python -m benchmarks.feasibility`` ran ``botorch``, Xopt and Ax on the harness's constrained problems and printed,
per problem and contender, the seeds with no feasible point, the median experiment of the first feasible point, the
best-feasible regret (median, hits, worst seed), the numerical failures the planner caught and what recovered from
them, the proposals lost and the seconds per run. A campaign runs the same contenders on the same seeds
(:func:`benchmarks.planners.run_one`), and ``closedloop bench page OUT --table constrained`` renders the same
columns from its dataset. Its ``--until-feasible`` mode (each run stopped at its first feasible point) is not
carried over: a campaign's runs have a fixed number of experiments.
"""

from __future__ import annotations

import sys

CONSTRAINED = "branin_disk,spring,welded_beam,gramacy,pressure_vessel,hartmann6_ball"
RETIRED = (
    "python -m benchmarks.feasibility is retired: run\n"
    f"  closedloop bench --planners botorch,xopt,ax --problems {CONSTRAINED} --seeds 10 --experiments 40 --out OUT\n"
    "and render the table with\n"
    "  closedloop bench page OUT --table constrained\n"
    "(see docs/how-to/campaigns.md)"
)


def main(argv: list[str] | None = None) -> int:
    """Say where the command went; exit 2."""
    del argv
    print(RETIRED, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
