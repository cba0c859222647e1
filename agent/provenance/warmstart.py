"""Warm start: a new session whose planner is first given an earlier session's observations (``closedloop run
--from BUNDLE_OR_DIR``, or the session file's ``prior``).

The earlier data is read once, when the session is created, checked against the new session, and kept in the new
store's meta (key ``prior``: where it came from, the earlier session's id, how many points were kept and dropped,
and the points themselves as gest-api results). Every build of the planner (the start, each resume, a replay) is
given them first, before anything of its own session; ``status --json`` reports how many as ``prior_observations``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from agent.provenance.bundle import METADATA, bundle_store
from agent.store.sql import SqlStore
from agent.views.status import folder_spec, session_store
from closedloop.errors import SpecError
from closedloop.spec import SessionSpec

PRIOR = "prior"


@contextlib.contextmanager
def _source(path: Path) -> Iterator[tuple[SessionSpec, SqlStore]]:
    """The spec and store of a bundle (checked) or of a session folder."""

    if path.is_file() or (path / METADATA).exists():
        with bundle_store(path) as (spec, store, _):
            yield spec, store
        return
    store = session_store(path)
    try:
        yield folder_spec(path, store), store
    finally:
        store.close()


def _check_problem(new: SessionSpec, old: SessionSpec, source: Path) -> None:
    """Refuse prior data from another problem: variables must match by name, objectives and constraints be the same.

    Raises:
        SpecError: one line naming the field (``variables``, ``objectives.<name>``, ``constraints.<name>``).
    """
    if set(new.variables) != set(old.variables):
        missing = sorted(set(new.variables) ^ set(old.variables))
        raise SpecError(f"variables: {missing[0]} is not a variable of both this session and {source}")
    for name, objective in new.objectives.items():
        earlier = old.objectives.get(name)
        if earlier is None or earlier.direction != objective.direction:
            was = "not an objective" if earlier is None else earlier.direction.value
            raise SpecError(f"objectives.{name}: {objective.direction.value} here, {was} in {source}")
    if set(new.objectives) != set(old.objectives):
        extra = sorted(set(old.objectives) - set(new.objectives))[0]
        raise SpecError(f"objectives.{extra}: an objective of {source}, not of this session")
    for name, constraint in new.constraints.items():
        earlier_constraint = old.constraints.get(name)
        if earlier_constraint is None or earlier_constraint.model_dump() != constraint.model_dump():
            raise SpecError(f"constraints.{name}: not the same constraint in {source}")


def _inside(spec: SessionSpec, result: dict[str, Any]) -> bool:
    """Whether a prior point lies in the new session's search space (its bounds, or its allowed values)."""
    for name, variable in spec.variables.items():
        value = result.get(name)
        if variable.bounds is not None:
            if not isinstance(value, int | float) or not variable.bounds[0] <= value <= variable.bounds[1]:
                return False
        elif value not in (variable.values or []):
            return False
    return True


def load_prior(spec: SessionSpec, source: Path) -> dict[str, Any]:
    """The earlier session's observations for a new session (what :data:`PRIOR` holds in its meta).

    Returns:
        ``{"source", "session_id", "kept", "dropped", "results"}``: each kept observation as a gest-api result
        (read-back inputs and outputs; a failed one without outputs), the earlier session's own prior first.

    Raises:
        SpecError: the variables, objectives or constraints differ (the field named).
        SessionError: ``source`` holds no session, or is a bundle that is refused.
    """
    source = Path(source)
    if not source.exists():
        raise SpecError(f"prior: {source} does not exist")
    with _source(source) as (old, store):
        _check_problem(spec, old, source)
        earlier = store.meta(PRIOR) or {}
        results = [dict(r) for r in earlier.get("results", [])]
        results += [observation.as_result() for observation in store.observations()]
        session_id = store.meta("session_id")
    kept = [r for r in results if _inside(spec, r)]
    return {
        "source": str(source.resolve()),
        "session_id": session_id,
        "kept": len(kept),
        "dropped": len(results) - len(kept),
        "results": kept,
    }


def ingest_prior(store: SqlStore, planner: Any) -> int:
    """Give a planner just built the session's prior data (nothing when it has none); how many points."""
    prior = store.meta(PRIOR) or {}
    results = [dict(result) for result in prior.get("results", [])]
    if results:
        planner.ingest(results)
    return len(results)


def prior_observations(store: SqlStore) -> int:
    """How many prior points the session's planner is given first (0 without a warm start)."""
    return int((store.meta(PRIOR) or {}).get("kept", 0))
