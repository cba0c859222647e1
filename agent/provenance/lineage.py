"""What produced each proposal, recorded in the session store as the session runs (its ``lineage`` table and meta).

Three kinds of record, written once each (a re-run step of the loop writes nothing twice):

- ``proposed`` (per proposal, when it is stored): its origin; for a planner's point the planner (name, class,
  version, options, seed), which build of the planner made it (a resumed process rebuilds it), the batch it came in
  and its place there, how many observations the planner had been told, the points it had pending, the proposals
  rejected so far, and the instrument position it was told;
- ``predicted`` (per proposal, at review): the model's prediction at the point, when the planner predicts;
- ``builds`` (meta): per planner build, what the store held when it was built and the seed it was built with;
- ``versions`` (meta, once per session): the versions of closedloop and the software it drives.

The decision that released a run, the run uid, scan id, instrument and Tiled entry are in the store already
(decisions, runs' start documents, observations): :func:`lineage_columns` joins them for ``closedloop results``.
"""

from __future__ import annotations

import importlib.metadata
import platform
import time
from collections.abc import Mapping, Sequence
from typing import Any

from agent.store.sql import SqlStore
from closedloop.records import Proposal
from closedloop.spec import SessionSpec

#: The distributions whose versions a session records, by the name they are shown under.
SOFTWARE = ("closedloop", "bluesky", "ophyd", "ophyd-async", "botorch", "gpytorch", "torch", "langgraph", "numpy")
BUILDS = "planner_builds"
VERSIONS = "versions"


def software_versions() -> dict[str, str | None]:
    """The installed version of each of :data:`SOFTWARE` (None when not installed), and ``python``'s."""
    found: dict[str, str | None] = {}
    for name in SOFTWARE:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = None
    found["python"] = platform.python_version()
    return found


def innermost(planner: Any) -> Any:
    """The generator that makes the points, inside its wrappers (a ``WarmStart``, a foreign generator's adapter)."""
    seen = 0
    while getattr(planner, "planner", None) is not None and seen < 10:
        planner, seen = planner.planner, seen + 1
    return planner


def planner_identity(spec: SessionSpec, planner: Any) -> dict[str, Any]:
    """The planner as lineage names it: session-file name, class, version of its distribution, options, seed."""
    inner = innermost(planner)
    module = type(inner).__module__.partition(".")[0]
    try:
        version: str | None = importlib.metadata.version("closedloop" if module == "planners" else module)
    except (importlib.metadata.PackageNotFoundError, ValueError):
        version = None
    seed = getattr(inner, "seed", None)
    return {
        "name": spec.planner.name,
        "class": f"{type(inner).__module__}.{type(inner).__qualname__}",
        "version": version,
        "options": dict(spec.planner.options),
        "initial_design": spec.planner.initial_design,
        "seed": int(seed) if isinstance(seed, int) else spec.seed,
    }


def record_build(store: SqlStore, spec: SessionSpec, planner: Any) -> int:
    """Record that a process built the session's planner (at its start, or on resume): what the store held then
    (proposals, observations, rejected proposals), and the planner's identity; and, the first time, the versions.

    Returns:
        the build's number (0 for the session's first), which each proposal it makes names.
    """
    builds = list(store.meta(BUILDS) or [])
    builds.append(
        {
            "proposals": store.count_proposals(),
            "observations": store.count_observations(),
            "rejected": store.rejected_ids(),
            "prior": int((store.meta("prior") or {}).get("kept", 0)),
            "planner": planner_identity(spec, planner),
            "at": time.time(),
        }
    )
    values: dict[str, Any] = {BUILDS: builds}
    if store.meta(VERSIONS) is None:
        values[VERSIONS] = software_versions()
    store.set_meta(**values)
    return len(builds) - 1


def record_proposed(
    store: SqlStore, proposals: Sequence[Proposal], build: int, pending: Sequence[str], position: Any = None
) -> None:
    """Record the ``proposed`` lineage of proposals just stored (one batch of the planner's, and operators' points).

    Args:
        store: the session store.
        proposals: the proposals, as stored, in order.
        build: the planner build that made the planner's (see :func:`record_build`).
        pending: ids of the proposals the planner had out (made, not yet told of) before this batch.
        position: the instrument position the planner was told before it proposed, if it was.
    """
    own = [p for p in proposals if p.origin == "planner"]
    if not proposals:
        return
    observed = store.count_observations()
    rejected = store.rejected_ids() if own else []
    entries: list[tuple[str, str, Mapping[str, Any]]] = []
    for proposal in proposals:
        if proposal.origin != "planner":
            entries.append((proposal.id, "proposed", {"origin": "operator", "why": proposal.why}))
            continue
        entries.append(
            (
                proposal.id,
                "proposed",
                {
                    "origin": "planner",
                    "why": proposal.why,
                    "build": build,
                    "batch": own[0].id,
                    "index": own.index(proposal),
                    "size": len(own),
                    "observations": observed,
                    "pending": list(pending),
                    "rejected": rejected,
                    "position": dict(position) if position else None,
                },
            )
        )
    store.add_lineage(entries)


def record_predictions(
    store: SqlStore, proposals: Sequence[Proposal], predictions: Sequence[Mapping[str, Any] | None]
) -> None:
    """Record the model's prediction at each proposal (``{objective: {mean, std, acquisition}}``), where there is
    one."""
    entries = [
        (p.id, "predicted", dict(prediction))
        for p, prediction in zip(proposals, predictions, strict=False)
        if prediction
    ]
    if entries:
        store.add_lineage(entries)


#: The lineage columns of ``closedloop results``, after its own.
COLUMNS = ("origin", "planner", "planner_version", "seed", "build", "known", "predicted", "predicted_std")


def lineage_columns(store: SqlStore, objective: str) -> dict[str, dict[str, Any]]:
    """Per proposal id, the cells of :data:`COLUMNS`: where the point came from, which planner (version, seed,
    build) made it knowing how many observations, and the model's prediction (mean, std) of ``objective`` there."""
    records = store.lineage()
    builds = list(store.meta(BUILDS) or [])
    cells: dict[str, dict[str, Any]] = {}
    for pid, kinds in records.items():
        proposed: dict[str, Any] = kinds.get("proposed", {})
        predicted = (kinds.get("predicted") or {}).get(objective) or {}
        build = proposed.get("build")
        planner = builds[build]["planner"] if isinstance(build, int) and build < len(builds) else {}
        own = proposed.get("origin") == "planner"
        cells[pid] = {
            "origin": proposed.get("origin"),
            "planner": planner.get("name") if own else None,
            "planner_version": planner.get("version") if own else None,
            "seed": planner.get("seed") if own else None,
            "build": build,
            "known": proposed.get("observations"),
            "predicted": predicted.get("mean"),
            "predicted_std": predicted.get("std"),
        }
    return cells


def note_proposals(ctx: Any, proposals: Sequence[Proposal]) -> None:
    """:func:`record_proposed` for the loop (``ctx``: its :class:`~agent.loop.context.LoopContext`), just after it
    stored ``proposals``: the build, the points the planner had out before them, the position it was told."""
    ids = {p.id for p in proposals}
    pending = [pid for pid in ctx.issued if pid not in ids]
    position = None
    if any(p.origin == "planner" for p in proposals):
        from planners import KnowsPosition

        if isinstance(ctx.planner, KnowsPosition):
            position = getattr(ctx.planner, "position", None)
    record_proposed(ctx.store, proposals, ctx.build, pending, position)
