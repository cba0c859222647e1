"""Reading points from a file: a CSV with a header row of variable names, or a YAML or JSON list of dicts.

No torch and no planner: ``closedloop add --file`` reads points with this before anything heavy is imported.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import yaml

from closedloop.errors import PlannerError


def read_points(path: Path) -> list[dict[str, Any]]:
    """The points in a CSV (header row of names), YAML or JSON (a list of dicts) file.

    Raises:
        PlannerError: the file cannot be read or parsed, or does not hold a list.
    """
    suffix = path.suffix.lower()
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PlannerError(f"cannot read points file {str(path)!r}: {exc.strerror}") from None
    try:
        if suffix == ".csv":
            rows = list(csv.DictReader(text.splitlines()))
            return [{k.strip(): (v.strip() if isinstance(v, str) else v) for k, v in row.items() if k} for row in rows]
        if suffix in (".yaml", ".yml"):
            data = yaml.safe_load(text)
        elif suffix == ".json":
            data = json.loads(text)
        else:
            raise PlannerError(f"points file {str(path)!r} must end in .csv, .yaml, .yml or .json")
    except (yaml.YAMLError, json.JSONDecodeError, csv.Error) as exc:
        raise PlannerError(f"cannot parse points file {str(path)!r}: {exc}") from None
    if not isinstance(data, list):
        raise PlannerError(f"points file {str(path)!r} must hold a list of points")
    return data
