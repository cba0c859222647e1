"""Reading points from a file: a CSV with a header row of variable names, or a YAML or JSON list of dicts.

No torch and no planner: ``closedloop add --file`` reads points with this before anything heavy is imported.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from closedloop.errors import PlannerError, SpecError
from closedloop.files import POINTS_FILE_LIMIT, parse_json, parse_yaml, read_text


def read_points(path: Path) -> list[dict[str, Any]]:
    """The points in a CSV (header row of names), YAML or JSON (a list of dicts) file.

    The file is read with :mod:`closedloop.files`' limits: at most 16 MiB, UTF-8 only, no duplicate keys, YAML
    aliases limited.

    Raises:
        PlannerError: the file cannot be read or parsed, or does not hold a list.
    """
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".yaml", ".yml", ".json"):
        raise PlannerError(f"points file {str(path)!r} must end in .csv, .yaml, .yml or .json")
    try:
        text = read_text(path, POINTS_FILE_LIMIT, "points file")
        if suffix == ".csv":
            rows = list(csv.DictReader(text.splitlines()))
            return [{k.strip(): (v.strip() if isinstance(v, str) else v) for k, v in row.items() if k} for row in rows]
        data = parse_yaml(text, str(path)) if suffix in (".yaml", ".yml") else parse_json(text, str(path))
    except SpecError as exc:
        raise PlannerError(str(exc)) from None
    except csv.Error as exc:
        raise PlannerError(f"cannot parse points file {str(path)!r}: {exc}") from None
    if not isinstance(data, list):
        raise PlannerError(f"points file {str(path)!r} must hold a list of points")
    return data
