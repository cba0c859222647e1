"""Running a campaign on Dask: a ``LocalCluster`` here by default, or any running scheduler.

Every task's result is written to ``OUT/tasks/<key>.json`` the moment it arrives (to a temporary name, then
renamed), so a campaign killed at any point keeps every finished task, and ``--resume`` submits only the missing
ones. A task whose worker dies is run again by the scheduler (Dask's ``allowed-failures``); a task that raises is
retried once (``retries``), then counted failed and left for a later ``--resume``.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.campaign.errors import CampaignError
from benchmarks.campaign.spec import CampaignSpec, Task

RETRIES = 1
"""Times a task that raised is run again before it is counted failed."""
CONNECT_TIMEOUT = "10s"
"""How long ``--scheduler`` may take to answer before the campaign refuses to start."""


@dataclass
class Progress:
    """Where a campaign is: tasks in all, done (now and before a resume), failed, and submitted but not back."""

    total: int
    done: int = 0
    failed: int = 0
    submitted: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def running(self) -> int:
        """Submitted and neither done nor failed: queued on the scheduler or running on a worker."""
        return max(self.submitted - self.done - self.failed, 0) if self.submitted else 0


class CampaignFolder:
    """``--out``: the campaign's definition, its finished tasks, and (at the end) its dataset."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.tasks = path / "tasks"
        self.definition = path / "campaign.json"

    def claim(self, spec: CampaignSpec, *, resume: bool) -> None:
        """Make the folder this campaign's, or refuse one that holds something else.

        The same campaign with more seeds than the folder's is this one grown (with ``resume``): its tasks are kept
        and the new seeds' run.

        Raises:
            CampaignError: the folder holds another campaign (or this one with more seeds than ``spec``), holds
                this one without ``resume``, or is not empty.
        """
        if self.definition.exists():
            held = json.loads(self.definition.read_text())
            seeds = held.get("seeds")
            same = (
                isinstance(seeds, int)
                and held.get("fingerprint") == spec.model_copy(update={"seeds": seeds}).fingerprint()
            )
            if same and seeds > spec.seeds:
                raise CampaignError(
                    f"--seeds: {self.path} holds this campaign with {seeds} seeds; --seeds can only grow"
                )
            if not same:
                raise CampaignError(f"--out: {self.path} holds a different campaign; choose another folder")
            if not resume:
                done = len(self.finished())
                raise CampaignError(f"--out: {self.path} holds this campaign ({done} tasks done); add --resume")
        elif self.path.exists() and any(self.path.iterdir()):
            raise CampaignError(f"--out: {self.path} exists and is not a campaign folder")
        self.tasks.mkdir(parents=True, exist_ok=True)
        write_atomic(self.definition, json.dumps({"fingerprint": spec.fingerprint(), **spec.model_dump()}, indent=1))

    def finished(self) -> dict[str, dict[str, Any]]:
        """Task key -> its result, for every task already written."""
        found = {}
        for path in sorted(self.tasks.glob("*.json")) if self.tasks.exists() else []:
            found[path.stem] = json.loads(path.read_text())
        return found

    def record(self, task: Task, result: dict[str, Any]) -> None:
        write_atomic(self.tasks / f"{task.key}.json", json.dumps(result))


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary name, so a kill leaves the old file or the new, never half."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def connect(stack: ExitStack, *, workers: int, scheduler: str | None) -> Any:
    """A Dask client: to ``scheduler`` when given, else to a new ``LocalCluster`` of ``workers`` one-thread
    worker processes on loopback (closed with ``stack``).

    Raises:
        CampaignError: the scheduler does not answer within :data:`CONNECT_TIMEOUT`, or dask is not installed.
    """
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise CampaignError("--workers: campaigns need dask.distributed: pip install 'closedloop[campaign]'") from None
    if scheduler:
        try:
            return stack.enter_context(Client(scheduler, timeout=CONNECT_TIMEOUT))
        except (OSError, TimeoutError) as exc:
            raise CampaignError(f"--scheduler: cannot reach {scheduler}: {str(exc).splitlines()[0]}") from None
    cluster = stack.enter_context(
        LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
            silence_logs=logging.ERROR,
        )
    )
    return stack.enter_context(Client(cluster))


def execute(
    client: Any,
    folder: CampaignFolder,
    tasks: list[Task],
    on_progress: Callable[[Progress], None],
    *,
    already: int = 0,
) -> Progress:
    """Run ``tasks`` on ``client``'s workers, recording each result as it arrives."""
    from distributed import as_completed

    from benchmarks.campaign.tasks import run_task

    progress = Progress(total=len(tasks) + already, done=already)
    by_key = {task.key: task for task in tasks}
    futures = [client.submit(run_task, task, key=task.key, pure=False, retries=RETRIES) for task in tasks]
    progress.submitted = len(futures) + already
    on_progress(progress)
    for future in as_completed(futures):
        task = by_key[future.key]
        try:
            result = future.result()
        except Exception as exc:  # a failed task is counted, shown, and left for --resume
            progress.failed += 1
            progress.errors.append(f"{task.key}: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
        else:
            folder.record(task, result)
            progress.done += 1
        finally:
            future.release()
        on_progress(progress)
    return progress
