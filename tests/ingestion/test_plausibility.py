"""Dates and timestamps outside the plausible window are quarantined with their own reasons."""

from __future__ import annotations

from datetime import date

import duckdb
import pytest

from core.contract import SOURCE_COLUMNS
from core.quality_config import QualityConfig, QualityConfigError
from ingestion.row_rules import REASONS, row_rules
from tests.conftest import ROOT

DAY = date(2026, 6, 30)
CONFIG = QualityConfig(business_start_date="2015-01-01")


def _reasons(source: str, rows: list[dict[str, str]]) -> list[list[str]]:
    con = duckdb.connect()
    columns = ["_n", *SOURCE_COLUMNS[source], "_partition_date", "_source_file", "_line_number"]
    columns.append("_line_key")  # the whole source line, as the loader keys it
    con.execute(
        "create table incoming (_n integer, "
        + ", ".join(f'"{c}" varchar' for c in SOURCE_COLUMNS[source])
        + ", _partition_date date, _source_file varchar, _line_number bigint, _line_key ubigint)"
    )
    for n, row in enumerate(rows):
        values = [n, *[row.get(c) for c in SOURCE_COLUMNS[source]], DAY, "f.csv", n + 2, n]
        con.execute(f"insert into incoming values ({', '.join('?' for _ in columns)})", values)
    con.execute("create table _known_customers as select 'C1' as customer_id")
    con.execute("create table _quarantined_customers (customer_id varchar)")
    con.execute("create table _repeated_line_keys (_line_key ubigint)")
    rejected = row_rules(source, CONFIG, DAY).rejected_sql("(select *, _n as _row from incoming)")
    return [
        r[0]
        for r in con.execute(
            f"select coalesce(_reasons, []) from incoming left join ({rejected}) as rejected "
            "on rejected._row = incoming._n order by _n"
        ).fetchall()
    ]


def _order(ordered_at: str) -> dict[str, str]:
    return {
        "order_id": "O1",
        "customer_id": "C1",
        "ordered_at": ordered_at,
        "amount": "10.00",
        "status": "completed",
    }


@pytest.mark.parametrize(
    ("ordered_at", "reasons"),
    [
        ("2026-06-30 10:00:00", []),
        ("2026-06-30T10:00:00+02:00", []),
        ("2026-06-30 10:00:00Z", []),
        ("2026-06-30 10:00:00 UTC", []),
        ("1900-01-01 00:00:00", ["before_business_start"]),
        ("2014-12-31 23:59:59", ["before_business_start"]),
        ("epoch", ["special_date_value", "before_business_start"]),
        ("-infinity", ["special_date_value", "before_business_start"]),
        ("infinity", ["future_timestamp", "special_date_value"]),
        ("2026-06-30 10:00:00 EST", ["unknown_time_zone"]),
        ("2026-06-30 10:00:00 Europe/Paris", ["unknown_time_zone"]),
        ("0044-03-15 10:00:00 BC", ["date_with_era", "before_business_start"]),
        # A word DuckDB cannot read as a moment is unparseable, not also a special value.
        ("yesterday", ["unparseable_timestamp"]),
        ("now", ["unparseable_timestamp"]),
        ("2026-06-30 10:00:00 AD", ["date_with_era"]),
        # An offset after a space or a zone name is converted (tests/dbt/test_parse_timestamp.py);
        # what the cast would drop after the time is quarantined, with the reason that fits.
        ("2026-06-30 10:00:00 GMT+0200", []),
        ("2026-06-30 10:00:00 UTC+02:00", []),
        ("2026-06-30 10:00:00 +02:00", []),
        ("2026-06-30 10:00:00 +2", ["unparseable_timestamp"]),
        ("2026-06-30 10:00:00 GMT+2", ["unparseable_timestamp"]),
        ("2026-06-30 10:00:00 CET+1", ["unparseable_timestamp"]),
        ("2026-06-30 10:00:00+25:00", ["unparseable_timestamp"]),
        ("2026-06-30 10:00:00 PM", ["unparseable_timestamp"]),
        ("2026-06-30 10:00:00 a.m.", ["unparseable_timestamp"]),
        ("2026-06-30 10:00:00 X", ["unknown_time_zone"]),
    ],
)
def test_an_implausible_order_time_is_quarantined_with_its_reason(ordered_at, reasons):
    assert _reasons("orders", [_order(ordered_at)]) == [reasons]


@pytest.mark.parametrize("padded", ["C1 ", "C1\t", " C1", "\tC1\n"])
def test_spaces_around_a_value_are_trimmed_before_the_rules_read_it(padded):
    """A customer id with a space or tab before or after it is the known C1 (the trim looks at
    the first and the last character), and a padded time parses."""
    before, after = padded[: padded.index("C")], padded[padded.index("1") + 1 :]
    order = {**_order(f"{before}2026-06-30 10:00:00{after}"), "customer_id": padded}
    assert _reasons("orders", [order]) == [[]]
    assert _reasons("orders", [{**order, "customer_id": padded.replace("C1", "C2")}]) == [
        ["unknown_customer"]
    ]


@pytest.mark.parametrize(
    ("customer_id", "reasons"),
    [
        ("", ["missing_customer_id"]),
        (" ", ["missing_customer_id"]),
        ("\r\n", ["missing_customer_id"]),
        ("\x0b", ["unknown_customer"]),  # a vertical tab is not whitespace to the trim
        ("\u00a0C1", ["unknown_customer"]),  # nor is a no-break space (dbt's clean_text agrees)
        ("C1\u00a0", ["unknown_customer"]),
        ("\u00c9C1 ", ["unknown_customer"]),  # a first character beyond ASCII, then a space
    ],
)
def test_only_ascii_whitespace_is_trimmed(customer_id, reasons):
    """The rules trim exactly what ``clean`` (dbt's ``clean_text``) trims: the guard that skips
    the trim compares the first and last bytes, and a character beyond ASCII or a control
    character other than whitespace is kept."""
    assert _reasons("orders", [{**_order("2026-06-30 10:00:00"), "customer_id": customer_id}]) == [
        reasons
    ]


def test_implausible_crm_dates_are_quarantined():
    good = {
        "customer_id": "C1",
        "signup_at": "2026-06-01 10:00:00",
        "updated_at": "2026-06-01 10:00:00",
        "birth_date": "1985-04-12",
    }
    rows = [
        good,
        {**good, "signup_at": "1900-01-01 00:00:00"},
        {**good, "updated_at": "epoch"},
        {**good, "birth_date": "epoch"},
        {**good, "birth_date": "1985-04-12 BC"},
    ]
    reasons = _reasons("customers", rows)
    assert reasons[0] == []
    assert reasons[1] == ["before_business_start"]
    assert reasons[2] == ["special_date_value", "before_business_start"]
    assert "special_date_value" in reasons[3]
    assert "date_with_era" in reasons[4]


def test_every_plausibility_reason_is_documented():
    documented = (REASONS, (ROOT / "docs" / "data-quality.md").read_text())
    for code in (
        "special_date_value",
        "date_with_era",
        "unknown_time_zone",
        "before_business_start",
    ):
        assert code in documented[0]
        assert f"`{code}`" in documented[1]


def test_business_start_date_must_be_a_date():
    with pytest.raises(QualityConfigError, match="business_start_date"):
        QualityConfig(business_start_date="the first of May")
