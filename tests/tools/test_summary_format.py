"""The run summary's numbers and lines: a segment without predictions shows a dash, not nan."""

from __future__ import annotations

import math

from tools.summary import _ingest_lines, _shown


def test_a_missing_prediction_shows_a_dash_of_the_column_width():
    assert _shown(math.nan, ".1%", 6) == "     -"
    assert _shown(None, ",.2f", 20) == " " * 19 + "-"


def test_a_value_keeps_its_format_and_width():
    assert _shown(0.987, ".1%", 6) == " 98.7%"
    assert _shown(1653.021, ",.2f", 10) == "  1,653.02"


def test_the_ingest_lines_say_how_many_partitions_were_only_retimed():
    load = {
        "rows_loaded": 120,
        "partitions_loaded": ["2026-07-01"],
        "partitions_unchanged": 365,
        "partitions_retimed": 365,
        "rows_quarantined": 0,
    }
    lines = _ingest_lines({"sources": {"orders": load}})
    assert "365 partitions with new file modification times" in "\n".join(lines)
    quiet = _ingest_lines({"sources": {"orders": {**load, "partitions_retimed": 0}}})
    assert "modification times" not in "\n".join(quiet)
