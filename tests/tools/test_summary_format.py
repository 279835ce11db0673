"""The run summary's numbers: a segment without predictions shows a dash, not nan."""

from __future__ import annotations

import math

from tools.summary import _shown


def test_a_missing_prediction_shows_a_dash_of_the_column_width():
    assert _shown(math.nan, ".1%", 6) == "     -"
    assert _shown(None, ",.2f", 20) == " " * 19 + "-"


def test_a_value_keeps_its_format_and_width():
    assert _shown(0.987, ".1%", 6) == " 98.7%"
    assert _shown(1653.021, ",.2f", 10) == "  1,653.02"
