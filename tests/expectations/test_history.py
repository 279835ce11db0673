"""The data-quality history on real DuckDB files: what a data engineer queries a week later.

Gate reports are built from the plain ``expectations.report`` dataclasses, so no Great
Expectations run is needed; health metrics are measured on small hand-made tables whose expected
values can be worked out by hand (each test says how).
"""

from __future__ import annotations

import json
from datetime import date, timedelta
from typing import Any

import duckdb
import pytest

from expectations.history import (
    HealthSpec,
    TableHealth,
    measure_table_health,
    record_table_health,
    record_validation_results,
)
from expectations.report import BLOCKING, WARNING, ExpectationOutcome, GateReport, SuiteOutcome
from tests.expectations.conftest import insert_rows

DAY = date(2026, 3, 5)
ORDERS_BATCH = f"raw.orders partition {DAY}"


_insert = insert_rows


def create_raw_orders(con: duckdb.DuckDBPyConnection, rows_by_day: dict[date, list[tuple]]) -> None:
    """``raw.orders`` as the loader makes it: every source column is text."""
    con.execute(
        "create table raw.orders (order_id varchar, customer_id varchar, ordered_at varchar, "
        "amount varchar, email varchar, _partition_date date)"
    )
    for day, rows in rows_by_day.items():
        _insert(
            con,
            "raw.orders",
            [
                dict(
                    zip(
                        ["order_id", "customer_id", "ordered_at", "amount", "email"],
                        row,
                        strict=True,
                    )
                )
                | {"_partition_date": day}
                for row in rows
            ],
        )


def partition_spec(table: str, day: date, **columns: Any) -> HealthSpec:
    return HealthSpec(
        table=table,
        label=f"{table} partition {day}",
        where="list_contains(?::date[], _partition_date)",
        params=[[day]],
        **columns,
    )


def outcome(expectation_type: str, column: str | None, **fields: Any) -> ExpectationOutcome:
    fields.setdefault("severity", BLOCKING)
    fields.setdefault("success", True)
    return ExpectationOutcome(ORDERS_BATCH, expectation_type, column, **fields)


def gate_report(run_id: str, outcomes: list[ExpectationOutcome]) -> GateReport:
    return GateReport(
        stage="raw",
        run_id=run_id,
        scope={"orders": [DAY.isoformat()]},
        started_at="2026-03-06T02:00:00+00:00",
        suites=[
            SuiteOutcome("raw_orders", ORDERS_BATCH, 200, 0.1, outcomes),
            SuiteOutcome(
                "raw_customers",
                "raw.customers",
                50,
                0.1,
                [
                    ExpectationOutcome(
                        "raw.customers",
                        "expect_table_row_count_to_be_between",
                        None,
                        BLOCKING,
                        True,
                        observed_value=50,
                    )
                ],
            ),
        ],
    )


def orders_outcomes() -> list[ExpectationOutcome]:
    return [
        outcome(
            "expect_column_values_to_not_be_null",
            "order_id",
            element_count=200,
            unexpected_count=0,
            unexpected_percent=0.0,
        ),
        outcome(
            "expect_column_values_to_be_unique",
            "order_id",
            severity=WARNING,
            success=False,
            element_count=200,
            unexpected_count=3,
            unexpected_percent=1.5,
            examples=["O1", "O2"],
        ),
        outcome(
            "expect_table_columns_to_match_set",
            None,
            success=False,
            observed_value={"missing_columns": ["status"], "unexpected_columns": []},
        ),
        outcome(
            "expect_column_values_to_be_in_set",
            "status",
            success=False,
            error="column status is missing from raw.orders",
        ),
    ]


def stored_results(con: duckdb.DuckDBPyConnection) -> dict[tuple[str, str, str | None], dict]:
    """(run_id, expectation, column) -> row, for rows of the orders batch."""
    cursor = con.execute(
        "select * from quality.validation_results where batch = ? order by run_id",
        [ORDERS_BATCH],
    )
    names = [description[0] for description in cursor.description]
    rows = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    return {(row["run_id"], row["expectation"], row["column_name"]): row for row in rows}


# --- validation results ---------------------------------------------------------------------


def test_a_gate_report_lands_one_row_per_expectation(con):
    written = record_validation_results(
        con, gate_report("run-1", orders_outcomes()), as_of_date=DAY
    )

    assert written == 5
    assert con.execute("select count(*) from quality.validation_results").fetchone() == (5,)
    rows = stored_results(con)
    assert len(rows) == 4  # the orders batch; the fifth row is the customers suite's

    unique = rows[("run-1", "expect_column_values_to_be_unique", "order_id")]
    assert unique["suite"] == "raw_orders"
    assert unique["stage"] == "raw"
    assert unique["as_of_date"] == DAY
    assert (unique["severity"], unique["success"]) == (WARNING, False)
    assert (unique["element_count"], unique["unexpected_count"]) == (200, 3)
    assert unique["unexpected_percent"] == pytest.approx(1.5)
    assert unique["recorded_at"] is not None

    passed = rows[("run-1", "expect_column_values_to_not_be_null", "order_id")]
    assert (passed["severity"], passed["success"], passed["unexpected_count"]) == (
        BLOCKING,
        True,
        0,
    )
    assert passed["observed_value"] is None

    columns = rows[("run-1", "expect_table_columns_to_match_set", None)]
    assert json.loads(columns["observed_value"]) == {
        "missing_columns": ["status"],
        "unexpected_columns": [],
    }
    not_evaluated = rows[("run-1", "expect_column_values_to_be_in_set", "status")]
    assert not not_evaluated["success"]
    assert not_evaluated["error"] == "column status is missing from raw.orders"
    assert con.execute(
        "select observed_value from quality.validation_results where batch = 'raw.customers'"
    ).fetchone() == ("50",)


def test_re_recording_a_run_replaces_its_rows_and_keeps_other_runs(con):
    record_validation_results(con, gate_report("run-1", orders_outcomes()), as_of_date=DAY)
    record_validation_results(con, gate_report("run-2", orders_outcomes()), as_of_date=DAY)
    # The retry of run-1 found the duplicate ids fixed: its rows are replaced, not added to.
    retried = orders_outcomes()
    retried[1].success = True
    retried[1].unexpected_count = 0
    record_validation_results(con, gate_report("run-1", retried), as_of_date=DAY)

    counts = con.execute(
        "select run_id, count(*) from quality.validation_results group by run_id order by run_id"
    ).fetchall()
    assert counts == [("run-1", 5), ("run-2", 5)]
    rows = stored_results(con)
    assert rows[("run-1", "expect_column_values_to_be_unique", "order_id")]["unexpected_count"] == 0
    assert rows[("run-2", "expect_column_values_to_be_unique", "order_id")]["unexpected_count"] == 3


# --- table health ---------------------------------------------------------------------------


def test_health_metrics_on_a_hand_made_batch(con):
    create_raw_orders(
        con,
        {
            DAY: [
                ("O1", "C1", "2026-03-05 10:00:00", "10.00", "a@example.com"),
                ("O2", "C2", "2026-03-05 12:00:00", "11.00", ""),
                ("O3", "C3", "2026-03-05 20:30:00", "12.00", "   "),
                ("O3", "C3", "2026-03-05 09:00:00", "13.00", None),  # duplicate key
                ("O5", "C5", "not a time", "14.00", "e@example.com"),
                ("O6", "C6", "2026-03-04 23:00:00", "10000.00", "f@example.com"),  # outlier
                ("", "C7", None, "n/a", "g@example.com"),  # no key, no number
                ("O8", "C8", "2026-03-05 08:00:00", "11.50", "h@example.com"),
            ],
            # Another partition: newer, blank and duplicated, but not part of the batch.
            DAY + timedelta(days=1): [("O1", "C1", "2026-03-06 23:00:00", "1e9", "")],
        },
    )
    spec = partition_spec(
        "raw.orders",
        DAY,
        key_columns=("order_id",),
        numeric_columns=("amount",),
        timestamp_column="ordered_at",
    )

    health = measure_table_health(con, spec, as_of_date=DAY)

    assert health.row_count == 8
    assert health.missing_pct == pytest.approx(
        {
            "order_id": 12.5,  # one blank of 8
            "customer_id": 0.0,
            "ordered_at": 12.5,  # null; an unparseable value is not missing
            "amount": 0.0,
            "email": 37.5,  # '', '   ' and null
            "_partition_date": 0.0,
        }
    )
    # 7 rows carry a key, 6 distinct ones: O3 repeats.
    assert health.duplicate_rate == pytest.approx(1 / 7)
    # 7 amounts parse; Q1 = 11.25, Q3 = 13.5, so the fences are [4.5, 20.25]: only 10000 is out.
    assert health.outlier_rate == pytest.approx(1 / 7)
    # Newest parseable time 2026-03-05 20:30 -> end of the as-of day 2026-03-06 00:00.
    assert health.freshness_hours == pytest.approx(3.5)
    assert health.skipped_columns == ()

    assert record_table_health(con, [health], run_id="run-1", stage="raw", as_of_date=DAY) == 1
    stored = con.execute(
        "select table_name, batch, row_count, missing_pct['email'], duplicate_rate, "
        "outlier_rate, freshness_hours from quality.table_health"
    ).fetchall()
    assert stored == [
        ("raw.orders", ORDERS_BATCH, 8, 37.5, pytest.approx(1 / 7), pytest.approx(1 / 7), 3.5)
    ]


def test_freshness_reads_a_raw_time_with_an_offset_as_utc(con):
    """The newest raw time is read as dbt's staging reads it: 21:30+02:00 is 19:30 UTC, so the
    20:30 without an offset is the newest (3.5 hours before the end of the day)."""
    create_raw_orders(
        con,
        {
            DAY: [
                ("O1", "C1", "2026-03-05 20:30:00", "10.00", "a@example.com"),
                ("O2", "C2", "2026-03-05 21:30:00 +02:00", "11.00", "b@example.com"),
                ("O3", "C3", "2026-03-05 23:00:00 +2", "12.00", "c@example.com"),  # unparseable
            ]
        },
    )
    spec = partition_spec("raw.orders", DAY, timestamp_column="ordered_at")
    assert measure_table_health(con, spec, as_of_date=DAY).freshness_hours == pytest.approx(3.5)


def test_a_history_over_several_days_shows_missing_emails_rising(con):
    blanks_by_day = {DAY - timedelta(days=2): 1, DAY - timedelta(days=1): 3, DAY: 6}
    create_raw_orders(
        con,
        {
            day: [
                (f"O{i}", f"C{i}", f"{day} 12:00:00", "10", "" if i < blanks else f"c{i}@x.com")
                for i in range(20)
            ]
            for day, blanks in blanks_by_day.items()
        },
    )
    for day in blanks_by_day:
        health = measure_table_health(
            con, partition_spec("raw.orders", day, key_columns=("order_id",)), as_of_date=day
        )
        record_table_health(con, [health], run_id=f"scheduled__{day}", stage="raw", as_of_date=day)
    # A retry of the last night's run replaces its row.
    health = measure_table_health(con, partition_spec("raw.orders", DAY), as_of_date=DAY)
    record_table_health(con, [health], run_id=f"scheduled__{DAY}", stage="raw", as_of_date=DAY)

    drift = con.execute(
        """
        select as_of_date, missing_pct['email'] as missing_email,
               missing_pct['email'] - lag(missing_pct['email']) over (order by as_of_date) as change
        from quality.table_health
        where table_name = 'raw.orders'
        order by as_of_date
        """
    ).fetchall()
    assert drift == [
        (DAY - timedelta(days=2), 5.0, None),
        (DAY - timedelta(days=1), 15.0, 10.0),
        (DAY, 30.0, 15.0),
    ]


def test_a_column_the_table_lacks_is_skipped_and_the_rest_recorded(con):
    create_raw_orders(
        con,
        {DAY: [("O1", "C1", "2026-03-05 10:00:00", "10", "a@x.com"), ("O1", "C2", None, "", "")]},
    )
    spec = partition_spec(
        "raw.orders",
        DAY,
        key_columns=("order_id", "line_number"),  # renamed upstream: no duplicate rate
        numeric_columns=("amount", "discount"),
        timestamp_column="updated_at",
    )

    health = measure_table_health(con, spec, as_of_date=DAY)

    assert health.skipped_columns == ("line_number", "discount", "updated_at")
    assert health.row_count == 2
    assert health.missing_pct["email"] == pytest.approx(50.0)
    assert health.duplicate_rate is None  # a partial key would call O1 a duplicate
    assert health.outlier_rate == pytest.approx(0.0)  # measured on amount alone
    assert health.freshness_hours is None
    record_table_health(con, [health], run_id="run-1", stage="raw", as_of_date=DAY)
    assert con.execute(
        "select row_count, missing_pct['amount'], duplicate_rate, freshness_hours "
        "from quality.table_health"
    ).fetchall() == [(2, 50.0, None, None)]


def test_a_missing_table_records_zero_rows_and_no_metrics(con):
    spec = partition_spec("raw.refunds", DAY, key_columns=("refund_id",))

    health = measure_table_health(con, spec, as_of_date=DAY)

    assert (health.row_count, health.missing_pct, health.duplicate_rate) == (0, None, None)
    record_table_health(con, [health], run_id="run-1", stage="raw", as_of_date=DAY)
    assert con.execute(
        "select table_name, row_count, missing_pct, outlier_rate from quality.table_health"
    ).fetchall() == [("raw.refunds", 0, None, None)]


def test_a_mart_slice_with_typed_columns(con):
    con.execute(
        "create table marts.customer_features (as_of_date date, customer_id varchar, "
        "total_spend decimal(18, 2), last_order_at timestamp)"
    )
    _insert(
        con,
        "marts.customer_features",
        [
            {
                "as_of_date": day,
                "customer_id": f"C{i}",
                "total_spend": 40 + i,
                "last_order_at": f"{day - timedelta(days=i)} 18:00:00",
            }
            for day in (DAY - timedelta(days=1), DAY)
            for i in range(10)
        ],
    )
    spec = HealthSpec(
        table="marts.customer_features",
        label="marts.customer_features",
        where="as_of_date = ?",
        params=[DAY],
        key_columns=("customer_id",),
        numeric_columns=("total_spend",),
        timestamp_column="last_order_at",
    )

    health = measure_table_health(con, spec, as_of_date=DAY)

    assert health.row_count == 10  # the as-of slice only
    assert (health.duplicate_rate, health.outlier_rate) == (0.0, 0.0)
    assert health.freshness_hours == pytest.approx(6.0)
    assert set(health.missing_pct.values()) == {0.0}


def test_odd_column_and_table_names_are_quoted(con):
    con.execute(
        'create table raw."odd ""orders""" ("order id; drop" varchar, "amount ""usd""" varchar, '
        '"seen-at" varchar, _partition_date date)'
    )
    _insert(
        con,
        'raw."odd ""orders"""',
        [
            {
                "order id; drop": key,
                'amount "usd"': "5",
                "seen-at": "2026-03-05 18:00:00",
                "_partition_date": DAY,
            }
            for key in ("A", "A", "B", " ")
        ],
    )
    spec = partition_spec(
        'raw.odd "orders"',
        DAY,
        key_columns=("order id; drop",),
        numeric_columns=('amount "usd"',),
        timestamp_column="seen-at",
    )

    health = measure_table_health(con, spec, as_of_date=DAY)

    assert health.row_count == 4
    assert health.missing_pct["order id; drop"] == pytest.approx(25.0)
    assert health.duplicate_rate == pytest.approx(1 / 3)
    assert health.freshness_hours == pytest.approx(6.0)
    assert isinstance(health, TableHealth)
    record_table_health(con, [health], run_id="run-1", stage="raw", as_of_date=DAY)
    assert con.execute(
        """select missing_pct['order id; drop'] from quality.table_health"""
    ).fetchone() == (25.0,)
