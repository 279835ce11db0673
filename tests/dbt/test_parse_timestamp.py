"""dbt's ``parse_timestamp`` macro and the loader's ``core.sql_text.parse_timestamp`` read every
timestamp text as the same UTC instant, or both as null (the row rules then quarantine it as
``unparseable_timestamp``): one rule in two languages. The macro is rendered from the project's
own files with Jinja, and both are evaluated in DuckDB."""

from __future__ import annotations

from datetime import datetime

import duckdb
import jinja2
import pytest

from core.sql_text import clean, parse_timestamp
from tests.conftest import ROOT

MACROS = ROOT / "dbt_project" / "macros"


def _dbt_macro(column: str) -> str:
    source = (MACROS / "clean_text.sql").read_text() + (MACROS / "parse_timestamp.sql").read_text()
    return jinja2.Environment().from_string(source).module.parse_timestamp(column)


def _read(text: str) -> tuple[datetime | None, datetime | None]:
    """(dbt's reading, the loader's reading) of one landed text."""
    return duckdb.execute(
        f"select {_dbt_macro('v')}, {parse_timestamp(clean('v'))} from (select ?::varchar as v)",
        [text],
    ).fetchone()


EIGHT = datetime(2026, 6, 30, 8, 0)
TEN = datetime(2026, 6, 30, 10, 0)


@pytest.mark.parametrize(
    ("text", "utc"),
    [
        ("2026-06-30 10:00:00", TEN),
        ("2026-06-30T10:00:00Z", TEN),
        ("2026-06-30 10:00:00 Z", TEN),
        ("2026-06-30 10:00:00 UTC", TEN),
        ("2026-06-30 10:00:00+02", EIGHT),
        ("2026-06-30 10:00:00+0200", EIGHT),
        ("2026-06-30T10:00:00+02:00", EIGHT),
        ("2026-06-30 10:00:00 +02:00", EIGHT),
        ("2026-06-30 10:00:00 GMT+0200", EIGHT),
        ("2026-06-30 10:00:00 UTC+02:00", EIGHT),
        ("2026-06-30 10:00:00 gmt +02", EIGHT),
        (" 2026-06-30 06:30:00-0130 ", EIGHT),
        ("2026-06-30 10:00:00.5 +02:00", datetime(2026, 6, 30, 8, 0, 0, 500000)),
        # What DuckDB's cast would drop after the time: no reading rather than a wrong one.
        ("2026-06-30 10:00:00 +2", None),
        ("2026-06-30 10:00:00+2", None),
        ("2026-06-30 10:00:00 GMT+2", None),
        ("2026-06-30 10:00:00 CET+1", None),
        ("2026-06-30 10:00:00 +02:00:00", None),
        ("2026-06-30 10:00:00+25:00", None),
        ("2026-06-30 10:00:00 -", None),
        ("2026-06-30 10:00:00 PM", None),
        ("2026-06-30 10:00:00pm", None),
        ("2026-06-30 10:00:00 A.M.", None),
    ],
)
def test_dbt_and_the_loader_read_a_timestamp_as_the_same_utc_instant(text, utc):
    assert _read(text) == (utc, utc)
