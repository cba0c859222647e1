"""What differs between the databases a session's store lives in (SQLite, PostgreSQL): a :class:`Dialect` turns the
store's SQL, written once with named parameters (``:name``), into the database's own placeholders and supplies the
few statements that differ; and :func:`dumps`, the one JSON text of what the store keeps.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

_NAMED = re.compile(r"(?<![:\w]):([a-z_]+)")
NO_LIMIT = 2**62
"""A ``LIMIT`` that limits nothing (SQLite reads -1 that way, PostgreSQL refuses it)."""


def _json_default(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    if hasattr(value, "item"):
        return value.item()
    return str(value)


def dumps(value: Any) -> str:
    """JSON text for a document or record (numpy values become plain numbers)."""
    return json.dumps(value, default=_json_default)


@dataclass(frozen=True)
class Dialect:
    """What differs between the databases the store lives in.

    Attributes:
        name: ``sqlite`` or ``postgresql``.
        pyformat: placeholders are ``%(name)s`` (psycopg) rather than ``:name`` (sqlite3).
        upsert_meta: the statement that sets one ``meta`` value, replacing an older one.
        snapshot: the statement that makes a transaction read from one snapshot of the database, when its default
            does not (PostgreSQL's read committed sees each statement's own).
    """

    name: str
    pyformat: bool
    upsert_meta: str
    snapshot: str | None = None
    _cache: dict[str, str] = field(default_factory=dict, compare=False, repr=False)

    def sql(self, text: str) -> str:
        """``text`` (named ``:parameters``) in this database's placeholder style."""
        if not self.pyformat:
            return text
        done = self._cache.get(text)
        if done is None:
            done = self._cache[text] = _NAMED.sub(r"%(\1)s", text)
        return done


SQLITE = Dialect(
    "sqlite",
    pyformat=False,
    upsert_meta="INSERT OR REPLACE INTO meta (session, key, value) VALUES (:session, :key, :value)",
)
POSTGRESQL = Dialect(
    "postgresql",
    pyformat=True,
    upsert_meta="INSERT INTO meta (session, key, value) VALUES (:session, :key, :value) "
    "ON CONFLICT (session, key) DO UPDATE SET value = EXCLUDED.value",
    snapshot="SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY",
)
