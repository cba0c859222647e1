"""A session file edited between runs of its session: what may change (the budget, the review and the failure
policy, each change written to the audit log) and what may not (anything else would mix two experiments).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from agent.store.layout import SESSION_FILE
from agent.store.sql import SqlStore
from closedloop.changes import spec_changes, spec_fingerprint
from closedloop.errors import SpecError
from closedloop.spec import SessionSpec


def check_edits(folder: Path, spec: SessionSpec, store: SqlStore) -> None:
    """Compare the session file with the spec the session began with: the budget, review and failure policy may
    change (each change goes into the audit log), nothing else.

    Raises:
        SpecError: the file changed in a way that would mix two experiments under one session; names the fields.
    """
    stored = store.meta("spec")
    if stored is None:  # a session made before specs were recorded: record this one
        store.set_meta(spec=spec.model_dump(mode="json"), spec_fingerprint=spec_fingerprint(spec))
        return
    if store.meta("spec_fingerprint") == spec_fingerprint(spec):
        return
    changes = spec_changes(SessionSpec.model_validate(stored), spec)
    if changes.refused:
        more = f" (and {len(changes.refused) - 3} more)" if len(changes.refused) > 3 else ""
        raise SpecError(
            f"{folder / SESSION_FILE}: changed since the session began: {'; '.join(changes.refused[:3])}{more}",
            "only budget, review and failures may change; restore the file, or start a new session",
        )
    for change in changes.allowed:
        store.log("edit", f"session file edited: {change}")
    values: dict[str, Any] = {"spec": spec.model_dump(mode="json"), "spec_fingerprint": spec_fingerprint(spec)}
    if spec.budget.experiments != SessionSpec.model_validate(stored).budget.experiments:
        values["budget"] = spec.budget.experiments
    store.set_meta(**values)
