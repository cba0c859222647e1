"""Numbers as people read them, the one formatter of every table and line the terminal prints (status, results,
audit, watch, a checkpoint's table).

:func:`number` writes a value to a few significant digits in plain notation (``0.00012346``, ``123457``, never
``1.2346e-04``) within a sane range, and as ``1.2×10⁻⁸`` outside it; :func:`quantity` adds the units;
:func:`point` writes a setpoint mapping with each variable's units (from the session file's ``units``).
JSON output never goes through here: scripts get the numbers as they are.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

DIGITS = 5
"""Significant digits shown."""
PLAIN = (1e-4, 1e9)
"""Magnitudes written in plain notation: from the first inclusive to the second exclusive."""
_SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")


def number(value: float | int, digits: int = DIGITS) -> str:
    """``value`` to ``digits`` significant digits, trailing zeros dropped; plain within :data:`PLAIN`, else as
    ``m×10ⁿ``; integers as they are; ``nan`` and ``inf`` as words."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    if not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if value == 0:
        return "0"
    magnitude = abs(value)
    exponent = math.floor(math.log10(magnitude))
    rounded = round(value, digits - 1 - exponent)
    if rounded != 0 and math.floor(math.log10(abs(rounded))) != exponent:  # 9.99996 rounds up to 10
        exponent += 1
    if PLAIN[0] <= abs(rounded) < PLAIN[1]:
        text = f"{rounded:.{max(0, digits - 1 - exponent)}f}"
        return _trimmed(text)
    mantissa = _trimmed(f"{rounded / 10**exponent:.{digits - 1}f}")
    return f"{mantissa}×10{str(exponent).translate(_SUPERSCRIPT)}"


def _trimmed(text: str) -> str:
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def quantity(value: Any, units: str | None = None) -> str:
    """A value with its units (``0.31 mrad``); a non-number as text, None as ``-``."""
    if value is None:
        return "-"
    if isinstance(value, int | float) and not isinstance(value, bool):
        text = number(value)
        return f"{text} {units}" if units else text
    return str(value)


def point(setpoints: Mapping[str, Any], units: Mapping[str, str | None] | None = None, sep: str = "  ") -> str:
    """``pitch1=0.31 mrad  pitch2=-0.58 mrad``: each variable with its units, in the mapping's order."""
    units = units or {}
    return sep.join(f"{name}={quantity(value, units.get(name))}" for name, value in setpoints.items())


def units_of(spec: Any) -> dict[str, str | None]:
    """Variable name -> its units from a session spec (None where the file gives none)."""
    return {name: getattr(variable, "units", None) for name, variable in spec.variables.items()}


def folder_units(folder: Any) -> dict[str, str | None]:
    """Variable name -> units of the session in ``folder`` (empty when it cannot be read: numbers go without)."""
    from agent.views.status import folder_spec, session_store
    from closedloop.errors import ClosedLoopError

    try:
        store = session_store(folder)
    except (ClosedLoopError, OSError, ValueError):
        return {}
    try:
        return units_of(folder_spec(folder, store))
    except (ClosedLoopError, OSError, ValueError):
        return {}
    finally:
        store.close()
