"""The RunEngine as closedloop builds it: no signal handlers, plans' results returned, a quiet status race.

One RunEngine per in-process instrument, built here (:func:`build_run_engine`) and owned by its
:class:`~instruments.executor.InProcessExecutor`.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from bluesky import RunEngine

log = logging.getLogger(__name__)


def build_run_engine(loop: asyncio.AbstractEventLoop | None = None) -> RunEngine:
    """The RunEngine as closedloop uses it: no signal handlers (safe off the main thread; Ctrl-C never reaches it),
    plans' results returned.

    Args:
        loop: the event loop of another RunEngine to share (several instruments in one process: ophyd-async
            devices belong to the loop they connected in, and bluesky keeps one such loop per process); by
            default a new one.
    """
    engine = RunEngine(loop=loop, context_managers=[], call_returns_result=True)
    engine.loop.set_exception_handler(_quiet_status_race)
    return engine


def _quiet_status_race(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """The loop's exception handler: bluesky's status callback racing an abort is logged at debug, all else as usual.

    When a run is aborted while it waits on a device's status, the RunEngine cancels the future it waits on; the
    status then completes and bluesky's ``_status_object_completed`` sets a result on the cancelled future. asyncio
    would print that ``InvalidStateError`` with a traceback on the operator's terminal, though nothing is wrong: the
    run is over and recorded as aborted.
    """
    handle = context.get("handle")
    callback = getattr(handle, "_callback", None)
    if isinstance(context.get("exception"), asyncio.InvalidStateError) and (
        getattr(callback, "__name__", "") == "_status_object_completed"
    ):
        log.debug("a device's status completed after its run was aborted: %s", context.get("message"))
        return
    loop.default_exception_handler(context)
