"""The one number formatter of the terminal's tables and lines: plain notation, a few significant digits, units."""

from __future__ import annotations

import math

import pytest

from agent.views.numbers import number, point, quantity


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (1.1603839611634612, "1.1604"),
        (0.30000000000000004, "0.3"),
        (250.31, "250.31"),
        (123456.7, "123460"),  # plain, never 1.2346e+05
        (0.00012345678, "0.00012346"),  # plain, never 1.2346e-04
        (-0.0, "0"),
        (0.0, "0"),
        (9.99996, "10"),
        (-0.58, "-0.58"),
        (7, "7"),
        (1.2e-5, "1.2×10⁻⁵"),  # out of the plain range: still no e-notation
        (1796700000.5, "1.7967×10⁹"),
        (math.nan, "nan"),
        (-math.inf, "-inf"),
    ],
)
def test_numbers_are_plain_with_five_significant_digits(value: float, shown: str) -> None:
    assert number(value) == shown


def test_no_value_in_a_wide_range_is_written_in_e_notation() -> None:
    for exponent in range(-12, 13):
        for mantissa in (1.0, 1.23456789, 9.99999):
            for sign in (1, -1):
                value = sign * mantissa * 10.0**exponent
                text = number(value)
                assert "e" not in text and len(text) <= 13, text
                if 1e-4 <= abs(value) < 1e8:  # the plain range
                    assert "×" not in text and math.isclose(float(text), value, rel_tol=1e-4), text


def test_units_follow_numbers_and_setpoints_carry_theirs() -> None:
    assert quantity(0.31, "mrad") == "0.31 mrad"
    assert quantity(None, "mrad") == "-"
    assert quantity("Si111", "mrad") == "Si111"
    assert point({"pitch1": 0.31, "crystal": "Si111"}, {"pitch1": "mrad"}) == "pitch1=0.31 mrad  crystal=Si111"
