"""Problems for the campaign tests, given to ``closedloop bench --problems`` by import path."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from benchmarks._problem import Problem
from benchmarks._problems import PROBLEMS


def dying_branin() -> Problem:
    """Branin, whose first evaluation anywhere kills the worker process running it (``os._exit``): once only,
    marked by the file named in ``CAMPAIGN_DIE_MARKER`` (it holds the pid of the process that died)."""
    base = PROBLEMS["branin"]
    marker = Path(os.environ["CAMPAIGN_DIE_MARKER"])

    def truth(point: dict[str, float]) -> dict[str, float]:
        if not marker.exists():
            marker.write_text(str(os.getpid()))
            os._exit(1)
        return base.truth(point)

    return dataclasses.replace(base, name="dying_branin", truth=truth)


NOT_A_PROBLEM = 42
