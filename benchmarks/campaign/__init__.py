"""Benchmark campaigns: planners x problems x seeds as tasks on Dask, the results an open dataset with a card.

``closedloop bench`` (:mod:`benchmarks.campaign.cli`) is the command; :class:`CampaignSpec` says what a campaign
is, :func:`~benchmarks.campaign.tasks.run_task` runs one task on a worker, :mod:`~benchmarks.campaign.runner`
schedules them and :mod:`~benchmarks.campaign.dataset` writes the results.
"""

from typing import Any

__all__ = ["CampaignError", "CampaignSpec", "Task"]


def __getattr__(name: str) -> Any:
    """The exported names, imported when first used: the command's ``--help`` never loads torch."""
    if name == "CampaignError":
        from benchmarks.campaign.errors import CampaignError

        return CampaignError
    if name in __all__:
        from benchmarks.campaign import spec

        return getattr(spec, name)
    raise AttributeError(name)
