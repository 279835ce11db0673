"""The dbt project end to end on a small hand-made raw schema whose results are worked out by hand.

One module-scoped fixture builds three times: the as-of date 2026-06-30, then 2026-05-31, then
2026-06-30 again; the tests read the marts after each step. A fourth, selective build on a copy of
the warehouse and project (a segment-name seed missing a score) checks that a failing dbt test
raises ``DbtBuildError``.

Who is who in the raw data (as of 2026-06-30):

* C001 and C010 are one person (emails ``Jane.Doe@Example.com `` and `` JANEDOE@example.com``):
  orders O1 + O2 (same day) + O3 count, 180.50 in total; O4 (negative amount) and O5 (cancelled)
  do not; O6 (placed on the as-of day, landed the day after) and O7 (after the as-of date) are
  not known yet. Web: sessions S1, S2; events W1, W2 (landed twice), W3; W4 happens after the
  as-of date although it landed in the as-of day's partition. Email: sent, open, click.
* C002: O8 (absurd amount) and O10 (returned) do not count, O9 (landed twice) does. Its CRM
  record was updated (state ' tx ' -> Texas); its birth date (1850) is impossible.
* C003: O11 on the as-of day counts, O12 (unreadable amount) does not; born "2030" (impossible).
* C004: signed up 2026-06-15, no orders. C005 lands only after the as-of date.
* C006: one order in January (so the January cohort has two customers).
"""

from __future__ import annotations

import hashlib
import logging
import re
import shutil
from collections.abc import Iterator
from dataclasses import replace
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest
import yaml

from core.contract import CLUSTERING_FEATURE_COLUMNS, MART_COLUMNS
from core.settings import Settings, get_settings
from ingestion.load import ensure_raw_schema
from transform.dbt_build import (
    DbtBuildError,
    DbtBuildResult,
    dbt_build_args,
    dbt_paths,
    run_dbt_build,
)

pytestmark = pytest.mark.slow

AS_OF = date(2026, 6, 30)
EARLIER_AS_OF = date(2026, 5, 31)

CUSTOMER_COLUMNS = (
    "customer_id", "first_name", "last_name", "email", "phone", "birth_date", "gender", "city",
    "state", "country", "income_band", "signup_at", "marketing_consent", "updated_at",
)  # fmt: skip
ORDER_COLUMNS = ("order_id", "customer_id", "ordered_at", "amount", "status")
WEB_COLUMNS = ("event_id", "session_id", "customer_id", "anonymous_id", "event_type", "occurred_at")
EMAIL_COLUMNS = ("event_id", "customer_id", "campaign_id", "event_type", "occurred_at")


def _customer(customer_id, email, state, country, birth_date, signup_at, updated_at, city="X"):
    # Everyone has their own name and phone (identity resolution matches on them too).
    return (
        customer_id, f"First{customer_id}", "Last", email, f"555-01{customer_id[-2:]}",
        birth_date, "f", city, state, country, "50-75k", signup_at, "true", updated_at,
    )  # fmt: skip


# (partition date, row) per raw table.
CUSTOMERS = [
    ("2026-01-10", _customer("C001", "Jane.Doe@Example.com ", "NY", "US", "1990-05-01",
                             "2026-01-10 09:00:00", "2026-01-10 09:00:00")),
    ("2026-01-10", _customer("C002", "bob@example.com", "N.Y.", "usa", "1850-01-01",
                             "2026-01-10 10:00:00", "2026-01-10 10:00:00")),
    ("2026-01-10", _customer("C003", "carol@example.com", "california", "United States",
                             "2030-01-01", "2026-01-10 11:00:00", "2026-01-10 11:00:00")),
    ("2026-01-10", _customer("C006", "erin@example.com", "ON", "CAN", "1980-02-29",
                             "2026-01-10 12:00:00", "2026-01-10 12:00:00")),
    ("2026-02-01", _customer("C010", " JANEDOE@example.com", "new york", "U.S.", "1990-05-01",
                             "2026-02-01 08:00:00", "2026-02-01 08:00:00")),
    ("2026-02-01", _customer("C002", "bob@example.com", " tx ", "usa", "1850-01-01",
                             "2026-01-10 10:00:00", "2026-02-01 12:00:00", city="Austin")),
    # the same record landed again (exact duplicate)
    ("2026-02-01", _customer("C003", "carol@example.com", "california", "United States",
                             "2030-01-01", "2026-01-10 11:00:00", "2026-01-10 11:00:00")),
    ("2026-06-15", _customer("C004", "dave@example.com", "PR", "U.S.A.", "",
                             "2026-06-15 10:00:00", "2026-06-15 10:00:00")),
    # landed after the as-of date: a new customer and an update of C001
    ("2026-07-02", _customer("C005", "frank@example.com", "TX", "US", "1970-01-01",
                             "2026-07-02 10:00:00", "2026-07-02 10:00:00")),
    ("2026-07-02", _customer("C001", "Jane.Doe@Example.com ", "Texas", "US", "1990-05-01",
                             "2026-01-10 09:00:00", "2026-07-02 10:00:00")),
]  # fmt: skip

ORDERS = [
    ("2026-01-15", ("O1", "C001", "2026-01-15 10:00:00", "100.00", "completed")),
    ("2026-01-15", ("O2", "C001", "2026-01-15 18:00:00", "50.00", "completed")),
    ("2026-03-05", ("O3", "C010", "2026-03-05 12:00:00", "30.50", "completed")),
    ("2026-06-20", ("O4", "C001", "2026-06-20 09:00:00", "-10.00", "completed")),
    ("2026-06-25", ("O5", "C010", "2026-06-25 09:00:00", "20.00", "cancelled")),
    ("2026-07-01", ("O6", "C001", "2026-06-30 23:30:00", "40.00", "completed")),
    ("2026-07-01", ("O7", "C001", "2026-07-01 10:00:00", "500.00", "completed")),
    ("2026-02-10", ("O8", "C002", "2026-02-10 12:00:00", "250000.00", "completed")),
    ("2026-04-02", ("O9", "C002", "2026-04-02 08:00:00", "75.25", "completed")),
    ("2026-04-03", ("O9", "C002", "2026-04-02 08:00:00", "75.25", "completed")),
    ("2026-05-31", ("O10", "C002", "2026-05-31 23:59:59", "10.00", "returned")),
    ("2026-06-30", ("O11", "C003", "2026-06-30 20:00:00", "60.00", "Completed ")),
    ("2026-06-30", ("O12", "C003", "2026-06-30 21:00:00", "abc", "completed")),
    ("2026-01-20", ("O13", "C006", "2026-01-20 15:00:00", "200.00", "completed")),
]

WEB_EVENTS = [
    ("2026-06-01", ("W1", "S1", "C001", "a1", "page_view", "2026-06-01 10:00:00")),
    ("2026-06-01", ("W2", "S1", "C001", "a1", "add_to_cart", "2026-06-01 10:05:00")),
    ("2026-06-02", ("W2", "S1", "C001", "a1", "add_to_cart", "2026-06-01 10:05:00")),
    ("2026-06-10", ("W3", "S2", "C010", "a2", "add_to_cart", "2026-06-10 11:00:00")),
    ("2026-06-30", ("W4", "S3", "C001", "a1", "page_view", "2026-07-01 00:00:00")),
    ("2026-06-05", ("W5", "S4", "", "a9", "page_view", "2026-06-05 09:00:00")),
]

EMAIL_EVENTS = [
    ("2026-05-01", ("E1", "C001", "K1", "sent", "2026-05-01 07:00:00")),
    ("2026-05-02", ("E2", "C001", "K1", "open", "2026-05-02 08:00:00")),
    ("2026-05-02", ("E3", "C010", "K1", "click", "2026-05-02 08:01:00")),
    ("2026-05-01", ("E4", "C002", "K1", "sent", "2026-05-01 07:00:00")),
    ("2026-07-01", ("E5", "C002", "K2", "sent", "2026-07-01 08:00:00")),
]

RAW_TABLES = {
    "customers": (CUSTOMER_COLUMNS, CUSTOMERS),
    "orders": (ORDER_COLUMNS, ORDERS),
    "web_events": (WEB_COLUMNS, WEB_EVENTS),
    "email_events": (EMAIL_COLUMNS, EMAIL_EVENTS),
}


def create_raw_schema(warehouse_path: Path) -> None:
    """The raw tables as ingestion leaves them: landing columns as text plus partition columns."""
    warehouse_path.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(warehouse_path))
    try:
        ensure_raw_schema(con)  # the loader's tables, the load log among them (left empty)
        for table, (columns, rows) in RAW_TABLES.items():
            column_sql = ", ".join(f"{column} varchar" for column in columns)
            con.execute(
                f"create or replace table raw.{table} "
                f"({column_sql}, _partition_date date, _source_file varchar, _line_number bigint)"
            )
            placeholders = ", ".join("?" for _ in range(len(columns) + 3))
            con.executemany(
                f"insert into raw.{table} values ({placeholders})",
                [
                    [*row, partition, f"{table}/date={partition}/part-0.csv", line]
                    for line, (partition, row) in enumerate(rows, start=2)
                ],
            )
    finally:
        con.close()


def query(settings: Settings, sql: str, params: list | None = None) -> list[tuple]:
    con = duckdb.connect(str(settings.warehouse_path), read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


def features(settings: Settings, as_of: date) -> dict[str, dict]:
    con = duckdb.connect(str(settings.warehouse_path), read_only=True)
    try:
        cursor = con.execute(
            "select * from marts.customer_features where as_of_date = ? order by customer_id",
            [as_of],
        )
        names = [column[0] for column in cursor.description]
        return {row[1]: dict(zip(names, row, strict=True)) for row in cursor.fetchall()}
    finally:
        con.close()


def mart_rows(settings: Settings) -> dict[str, list[tuple]]:
    """Every row of every mart (all as-of dates), in a stable order."""
    return {
        mart: query(settings, f"select * from marts.{mart} order by all") for mart in MART_COLUMNS
    }


class Builds:
    """What the module fixture saw after each build."""

    settings: Settings
    first: DbtBuildResult
    rerun: DbtBuildResult
    after_first: dict[str, list[tuple]]
    after_earlier: dict[str, list[tuple]]
    after_rerun: dict[str, list[tuple]]
    log_lines: list[str]


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@pytest.fixture(scope="module")
def builds(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Builds]:
    data_dir = tmp_path_factory.mktemp("dbt_data")
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setenv("SEGMENTS_DATA_DIR", str(data_dir))
        monkeypatch.setenv("SEGMENTS_WAREHOUSE", str(data_dir / "warehouse.duckdb"))
        settings = get_settings()
        create_raw_schema(settings.warehouse_path)
        seen = Builds()
        seen.settings = settings
        collect = _Collect()
        transform_log = logging.getLogger("transform.dbt_build")
        transform_log.addHandler(collect)
        previous_level = transform_log.level
        transform_log.setLevel(logging.INFO)
        try:
            # the project's unit tests too, as make test and a build by hand run them
            seen.first = run_dbt_build(AS_OF, unit_tests=True)
        finally:
            transform_log.removeHandler(collect)
            transform_log.setLevel(previous_level)
        seen.log_lines = collect.lines
        seen.after_first = mart_rows(settings)
        run_dbt_build(EARLIER_AS_OF, settings=settings)
        seen.after_earlier = mart_rows(settings)
        seen.rerun = run_dbt_build(AS_OF, settings=settings)
        seen.after_rerun = mart_rows(settings)
        yield seen


def test_build_result_reports_every_node(builds: Builds) -> None:
    result = builds.first
    assert result.success
    assert result.as_of_date == "2026-06-30"
    counts = result.counts
    assert counts["model"] == {"pass": 36}
    assert counts["seed"] == {"pass": 3}
    assert counts["unit_test"] == {"pass": 11}
    assert "fail" not in counts["test"]
    rows = {node.name: node.rows for node in result.nodes if node.rows is not None}
    assert rows == {
        "base_shop__orders": 14,  # every raw row, the two copies of O9 too
        "base_web__events": 6,
        "base_email__events": 5,
        "base_crm__customers": 10,
        # what is known on the as-of date, one row per id (staging keeps every landed row)
        "pii_customer_latest_records": 6,  # C005 and C001's update landed later; C003 once
        "pii_customers_deduplicated": 6,
        "int_customers_deduplicated": 6,  # the same records without their identifiers
        "int_orders_deduplicated": 11,  # O6 and O7 not known yet; O9 once
        "int_web_events_deduplicated": 4,  # W2 once; W4 happened after the as-of date
        "int_email_events_deduplicated": 4,  # E5 landed later
        "pii_customer_match_keys": 6,  # one per CRM record known
        "pii_similar_email_matches": 1,  # C001 and C010: one address, so also alike
        "pii_customers_resolved": 6,
        "int_customers_resolved": 6,
        "customer_identifiers": 5,  # one row per resolved customer
        "int_orders_attributed": 11,
        "int_web_session_customers_aggregated": 3,  # S1 of C001, S2 of C010, S4 anonymous
        "int_email_customers_aggregated": 3,  # C001, C010, C002
        "int_web_sessions_aggregated": 2,  # S1, S2; S3 is after the as-of date, S4 anonymous
        "int_customer_months_aggregated": 5,
        "int_customers_cohorted": 5,
        "int_customer_metrics_joined": 5,
        "customers": 5,
        "customer_features": 5,
        "customer_rfm": 4,
        "cohort_retention": 10,
        "signup_cohort_retention": 7,  # January (months 0-5) and June (month 0)
        "behavioural_cohort_retention": 18,  # three cohorts with buyers since January, 0-5
        "customer_lifecycle": 5,
        "customer_lifecycle_transitions": 5,
        "returned_orders": 1,  # O10
        "cancelled_orders": 1,  # O5
    }
    payload = result.to_dict()
    assert payload["counts"] == counts
    assert {"name", "resource_type", "status", "seconds"} <= set(payload["nodes"][0])
    # dbt writes its artefacts under the data directory, not into the source tree
    assert (builds.settings.data_dir / "dbt" / "target" / "manifest.json").exists()
    assert (builds.settings.data_dir / "dbt" / "logs" / "dbt.log").exists()


def test_a_night_leaves_the_unit_tests_out(builds: Builds) -> None:
    # their inputs are fixed rows of the project: they say nothing about the night's data
    rerun = builds.rerun.counts
    assert "unit_test" not in rerun
    assert rerun["model"] == builds.first.counts["model"]
    assert rerun["test"] == builds.first.counts["test"]


def test_every_node_gets_a_log_line(builds: Builds) -> None:
    # What a data engineer reads in the Airflow task log: one line per seed, model and test.
    lines = builds.log_lines
    assert any(line.startswith("dbt model marts.customer_features: success") for line in lines)
    assert any(line.startswith("dbt model staging.stg_shop__orders: success") for line in lines)
    assert any(line.startswith("dbt seed seeds.rfm_segment_names: success") for line in lines)
    assert any(line.startswith("dbt test unique_") for line in lines)


def subset(row: dict, expected: dict) -> dict:
    return {name: row[name] for name in expected}


def test_customer_features_per_customer(builds: Builds) -> None:
    rows = features(builds.settings, AS_OF)
    # C010 is merged into C001; C005 landed after the as-of date
    assert sorted(rows) == ["C001", "C002", "C003", "C004", "C006"]

    jane = {
        "signup_at": datetime(2026, 1, 10, 9),  # C001's, earlier than C010's
        "first_order_at": datetime(2026, 1, 15, 10),
        "last_order_at": datetime(2026, 3, 5, 12),  # O3, placed as C010
        "order_count": 3,
        "order_days": 2,
        "total_spend": Decimal("180.50"),
        "avg_order_value": Decimal("60.17"),
        "recency_days": 117,
        "tenure_days": 171,
        "web_session_count": 2,
        "web_event_count": 3,
        "cart_add_count": 2,
        "email_sent_count": 1,
        "email_open_count": 1,
        "email_click_count": 1,
    }
    assert subset(rows["C001"], jane) == jane
    bob = {"order_count": 1, "total_spend": Decimal("75.25"), "recency_days": 89}
    assert subset(rows["C002"], bob) == bob
    assert rows["C002"]["email_sent_count"] == 1
    carol = {"order_count": 1, "total_spend": Decimal("60.00"), "recency_days": 0}
    assert subset(rows["C003"], carol) == carol
    dave = {
        "order_count": 0,
        "order_days": 0,
        "total_spend": Decimal("0.00"),
        "avg_order_value": None,
        "recency_days": None,
        "tenure_days": 15,
        "web_event_count": 0,
        "email_sent_count": 0,
    }
    assert subset(rows["C004"], dave) == dave
    assert rows["C006"]["recency_days"] == 161


def test_mart_columns_follow_the_contract(builds: Builds) -> None:
    for mart, expected in MART_COLUMNS.items():
        columns = [
            row[0]
            for row in query(
                builds.settings,
                "select column_name from information_schema.columns "
                "where table_schema = 'marts' and table_name = ? order by ordinal_position",
                [mart],
            )
        ]
        assert columns == list(expected), mart
    # what the clustering reads, unchanged and first
    assert CLUSTERING_FEATURE_COLUMNS == (
        "as_of_date", "customer_id", "signup_at", "first_order_at", "last_order_at",
        "order_count", "order_days", "total_spend", "avg_order_value", "recency_days",
        "tenure_days", "web_session_count", "web_event_count", "cart_add_count",
        "email_sent_count", "email_open_count", "email_click_count",
    )  # fmt: skip


def test_added_features_worked_out_by_hand(builds: Builds) -> None:
    jane = features(builds.settings, AS_OF)["C001"]
    # O5 (cancelled, placed as C010) is counted apart, not in order_count
    assert (jane["cancelled_order_count"], jane["returned_order_count"]) == (1, 0)
    # 3 orders over 166 days since the first (2026-01-15) = 5.533 months
    assert jane["orders_per_month"] == pytest.approx(3 / (166 / 30), abs=1e-4)
    assert float(jane["simple_clv"]) == pytest.approx(60.17 * 3 / (166 / 30) * 12, abs=0.01)
    # S1: page_view + add_to_cart, no checkout; S2 (as C010): one add_to_cart, a bounce
    assert jane["avg_pages_per_session"] == 0.5
    assert jane["bounce_rate"] == 0.5
    assert jane["cart_abandonment_rate"] == 1.0
    assert jane["sessions_last_90_days"] == 2
    assert (jane["email_open_rate"], jane["email_click_rate"]) == (1.0, 1.0)
    # latest of: order 2026-03-05, web 2026-06-10, email click 2026-05-02
    assert jane["days_since_last_engagement"] == 20
    assert jane["engagement_score"] == pytest.approx(100 * (0.4 * 2 / 6 + 0.3 + 0.3), abs=0.05)
    # O1, O2 and O3 were placed on Thursdays in the first quarter
    shares = [jane[f"order_share_q{q}"] for q in (1, 2, 3, 4)]
    assert (shares, jane["order_share_weekend"]) == ([1.0, 0.0, 0.0, 0.0], 0.0)
    dave = features(builds.settings, AS_OF)["C004"]
    assert dave["email_open_rate"] is None  # nothing sent: no rate, not 0
    assert dave["avg_order_value_winsorized"] is None
    assert dave["engagement_score"] == 0.0


def test_customers_profile_is_merged_and_imputed(builds: Builds) -> None:
    rows = {
        row[0]: row[1:]
        for row in query(
            builds.settings,
            "select customer_id, age_years, is_imputed_age_years, source_record_count, state "
            "from marts.customers where as_of_date = ?",
            [AS_OF],
        )
    }
    # C001 (36) is the only plausible age among the US women: C002, C003 (impossible birth
    # dates) and C004 (none) get that median; C006 is the only Canadian (46)
    assert rows == {
        "C001": (36, False, 2, "New York"),
        "C002": (36, True, 1, "Texas"),
        "C003": (36, True, 1, "California"),
        "C004": (36, True, 1, "PR"),
        "C006": (46, False, 1, "Ontario"),
    }


def test_lifecycle_stages_and_transitions(builds: Builds) -> None:
    def stages(as_of: date) -> dict[str, str]:
        return dict(
            query(
                builds.settings,
                "select customer_id, lifecycle_stage from marts.customer_lifecycle "
                "where as_of_date = ?",
                [as_of],
            )
        )

    # C001: last order 117 days ago (> 90); C002: one order 89 days ago; C003: first order on
    # the as-of day; C006: 161 days
    assert stages(AS_OF) == {
        "C001": "at_risk",
        "C002": "active",
        "C003": "new",
        "C004": "prospect",
        "C006": "at_risk",
    }
    assert stages(EARLIER_AS_OF) == {
        "C001": "active",
        "C002": "active",
        "C003": "prospect",
        "C006": "at_risk",
    }
    # the re-run of 2026-06-30 came after 2026-05-31 was built: its transitions are from it
    transitions = query(
        builds.settings,
        "select customer_id, previous_stage, lifecycle_stage, has_changed_stage, "
        "previous_as_of_date from marts.customer_lifecycle_transitions "
        "where as_of_date = ? order by customer_id",
        [AS_OF],
    )
    assert transitions == [
        ("C001", "active", "at_risk", True, EARLIER_AS_OF),
        ("C002", "active", "active", False, EARLIER_AS_OF),
        ("C003", "prospect", "new", True, EARLIER_AS_OF),
        ("C004", None, "prospect", True, EARLIER_AS_OF),
        ("C006", "at_risk", "at_risk", False, EARLIER_AS_OF),
    ]


def test_behavioural_and_signup_cohorts(builds: Builds) -> None:
    rows = query(
        builds.settings,
        "select cohort_name, months_since_first_order, cohort_size, active_customers, revenue "
        "from marts.behavioural_cohort_retention where as_of_date = ? "
        "and months_since_first_order <= 2 order by all",
        [AS_OF],
    )
    # C001 ordered 5 days after signing up (quick); C002, C003, C006 later; nobody opened an
    # email before their first order. Month 2 after January: C001 (O3, 30.50); after April: no.
    assert rows == [
        ("first_purchase_later", 0, 3, 3, Decimal("335.25")),
        ("first_purchase_later", 1, 2, 0, Decimal("0.00")),
        ("first_purchase_later", 2, 2, 0, Decimal("0.00")),
        ("first_purchase_within_7_days", 0, 1, 1, Decimal("150.00")),
        ("first_purchase_within_7_days", 1, 1, 0, Decimal("0.00")),
        ("first_purchase_within_7_days", 2, 1, 1, Decimal("30.50")),
        ("not_engaged_by_email_before_first_order", 0, 4, 4, Decimal("485.25")),
        ("not_engaged_by_email_before_first_order", 1, 3, 0, Decimal("0.00")),
        ("not_engaged_by_email_before_first_order", 2, 3, 1, Decimal("30.50")),
    ]
    signup = query(
        builds.settings,
        "select signup_month, months_since_signup, cohort_size, active_customers "
        "from marts.signup_cohort_retention where as_of_date = ? order by all",
        [AS_OF],
    )
    january, june = date(2026, 1, 1), date(2026, 6, 1)
    assert signup == [
        (
            january,
            0,
            4,
            2,
        ),  # C001 (with C010), C002, C003, C006; C001 and C006 ordered
        (january, 1, 4, 0),
        (january, 2, 4, 1),
        (january, 3, 4, 1),  # C002 in April
        (january, 4, 4, 0),
        (january, 5, 4, 1),  # C003 in June
        (june, 0, 1, 0),  # C004, a prospect
    ]


def test_invalid_and_non_completed_orders_are_flagged_not_counted(builds: Builds) -> None:
    # the intermediate tables hold the last build's as-of date (2026-06-30)
    flags = {
        order_id: (status, is_valid_amount, is_valid_for_spend)
        for order_id, status, is_valid_amount, is_valid_for_spend in query(
            builds.settings,
            "select order_id, status, is_valid_amount, is_valid_for_spend "
            "from intermediate.int_orders_deduplicated",
        )
    }
    assert flags["O4"] == ("completed", False, False)  # negative amount
    assert flags["O5"] == ("cancelled", True, False)
    assert flags["O8"] == ("completed", False, False)  # absurd amount
    assert flags["O10"] == ("returned", True, False)
    assert flags["O11"] == ("completed", True, True)  # status was 'Completed '
    assert flags["O12"] == ("completed", False, False)  # unreadable amount
    # not known on the as-of date: O6 landed a day later, O7 was placed later
    assert "O6" not in flags
    assert "O7" not in flags
    assert len(flags) == 11  # O1..O13 without O6 and O7; O9 landed twice, kept once
    # Cancelled and returned orders are kept in their own marts, under the resolved customer.
    kept_apart = {
        mart: query(
            builds.settings,
            f"select order_id, customer_id, amount from marts.{mart} where as_of_date = ?",
            [AS_OF],
        )
        for mart in ("cancelled_orders", "returned_orders")
    }
    assert kept_apart == {
        "cancelled_orders": [("O5", "C001", Decimal("20.00"))],
        "returned_orders": [("O10", "C002", Decimal("10.00"))],
    }


def test_as_of_rule_on_the_earlier_date(builds: Builds) -> None:
    rows = features(builds.settings, EARLIER_AS_OF)
    # C004 landed on 2026-06-15
    assert sorted(rows) == ["C001", "C002", "C003", "C006"]
    jane = rows["C001"]
    assert (jane["order_count"], jane["total_spend"]) == (3, Decimal("180.50"))
    assert (jane["recency_days"], jane["tenure_days"]) == (87, 141)
    assert jane["web_event_count"] == 0  # all of them in June
    assert jane["email_click_count"] == 1
    assert rows["C003"]["order_count"] == 0
    assert rows["C003"]["recency_days"] is None


def test_cohort_retention(builds: Builds) -> None:
    rows = query(
        builds.settings,
        "select cohort_month, months_since_first_order, cohort_size, active_customers, "
        "retention_rate from marts.cohort_retention where as_of_date = ? order by all",
        [AS_OF],
    )
    january, april, june = date(2026, 1, 1), date(2026, 4, 1), date(2026, 6, 1)
    assert rows == [
        (january, 0, 2, 2, 1.0),
        (january, 1, 2, 0, 0.0),
        (january, 2, 2, 1, 0.5),  # C010's March order, attached to C001
        (january, 3, 2, 0, 0.0),
        (january, 4, 2, 0, 0.0),
        (january, 5, 2, 0, 0.0),
        (april, 0, 1, 1, 1.0),
        (april, 1, 1, 0, 0.0),
        (april, 2, 1, 0, 0.0),
        (june, 0, 1, 1, 1.0),
    ]
    earlier = query(
        builds.settings,
        "select count(*), max(months_since_first_order) from marts.cohort_retention "
        "where as_of_date = ?",
        [EARLIER_AS_OF],
    )
    assert earlier == [(7, 4)]  # January cohort up to May, April cohort up to May


def test_customer_rfm_scores_buyers_only(builds: Builds) -> None:
    rows = query(
        builds.settings,
        "select customer_id, rfm_score, rfm_segment from marts.customer_rfm "
        "where as_of_date = ? order by customer_id",
        [AS_OF],
    )
    # four buyers: score = 1 + floor(5 * (rank - 1) / 4) gives ranks 1..4 scores 1..4;
    # recency C006 < C001 < C002 < C003, frequency C002 = C003 = C006 (1 order, all rank 1,
    # score 1) < C001, monetary C003 < C002 < C001 < C006
    assert [row[:2] for row in rows] == [
        ("C001", "243"),
        ("C002", "312"),
        ("C003", "411"),
        ("C006", "114"),
    ]
    assert all(row[2] for row in rows)


def test_identity_resolution_merges_email_variants(builds: Builds) -> None:
    mapping = dict(
        query(
            builds.settings,
            "select source_customer_id, customer_id from intermediate.int_customers_resolved",
        )
    )
    assert mapping == {
        "C001": "C001",
        "C010": "C001",
        "C002": "C002",
        "C003": "C003",
        "C004": "C004",
        "C006": "C006",
    }


def test_customers_known_on_the_as_of_date_are_cleaned(builds: Builds) -> None:
    # staging cleans each record; pii_customers_deduplicated keeps the one known on the as-of
    # date (of the last build, 2026-06-30) and standardises it; int_customers_deduplicated is
    # the same rows without the identifiers
    rows = {
        row[0]: row[1:]
        for row in query(
            builds.settings,
            "select customer_id, state, country, city, email, birth_date, age_years, "
            "has_impossible_birth_date from pii.pii_customers_deduplicated",
        )
    }
    assert rows["C001"][:2] == ("New York", "United States")  # the July update is not known
    assert rows["C010"][:2] == ("New York", "United States")
    assert rows["C002"][:3] == ("Texas", "United States", "Austin")  # the newest record
    assert rows["C003"][:2] == ("California", "United States")
    assert rows["C004"][:2] == ("PR", "United States")  # not in the seed: kept as typed
    assert rows["C006"][:2] == ("Ontario", "Canada")  # 'ON' looked up within Canada
    assert rows["C001"][3] == "jane.doe@example.com"
    assert rows["C001"][4:] == (date(1990, 5, 1), 36, False)
    assert rows["C002"][4:] == (None, None, True)  # 176 years old
    assert rows["C003"][4:] == (None, None, True)  # born after the as-of date
    assert rows["C004"][4:] == (None, None, False)  # no birth date is not an impossible one
    without_identifiers = {
        row[0]: row[1:]
        for row in query(
            builds.settings,
            "select customer_id, state, country, city, age_years, has_impossible_birth_date "
            "from intermediate.int_customers_deduplicated",
        )
    }
    assert without_identifiers == {
        customer_id: (*row[:3], *row[5:]) for customer_id, row in rows.items()
    }


def test_identifiers_stay_in_the_pii_schema(builds: Builds) -> None:
    identifier_columns = {"first_name", "last_name", "email", "phone", "birth_date"}
    columns = query(
        builds.settings,
        "select table_schema, table_name, column_name from information_schema.columns "
        "where table_schema in ('intermediate', 'marts')",
    )
    assert columns  # the query reads the schemas it checks
    assert [row for row in columns if row[2] in identifier_columns or "match_key" in row[2]] == []
    # C001 and C010 are one person: the identifiers of the smaller id, normalised and hashed
    identifiers = query(
        builds.settings,
        "select customer_id, first_name, email_normalized, phone_e164, email_sha256, "
        "phone_sha256, birth_date from pii.customer_identifiers order by customer_id",
    )
    assert [row[0] for row in identifiers] == ["C001", "C002", "C003", "C004", "C006"]
    c001 = identifiers[0]
    assert c001[1:4] == ("FirstC001", "jane.doe@example.com", "+15550101")
    assert c001[4] == hashlib.sha256(b"jane.doe@example.com").hexdigest()
    assert c001[5] == hashlib.sha256(b"+15550101").hexdigest()
    assert c001[6] == date(1990, 5, 1)


def test_staging_views_hold_every_landed_row_and_no_as_of_date(builds: Builds) -> None:
    # A staging view is read by others (a manual query, another date's build): it keeps every
    # landed row, one per raw row, and its definition does not depend on the date last built.
    orders = query(builds.settings, "select order_id from staging.stg_shop__orders order by all")
    assert len(orders) == len(ORDERS)  # O6 and O7 (not known on 2026-06-30) and both O9 too
    assert {"O6", "O7"} <= {row[0] for row in orders}
    for view, raw_rows in {
        "stg_crm__customers": CUSTOMERS,
        "stg_web__events": WEB_EVENTS,
        "stg_email__events": EMAIL_EVENTS,
    }.items():
        assert query(builds.settings, f"select count(*) from staging.{view}") == [
            (len(raw_rows),)
        ], view
    definitions = query(
        builds.settings, "select view_name, sql from duckdb_views() where schema_name = 'staging'"
    )
    assert len(definitions) == 4
    for view, sql in definitions:
        assert AS_OF.isoformat() not in sql and EARLIER_AS_OF.isoformat() not in sql, view


def test_mart_columns_are_declared_in_the_marts_yml(builds: Builds) -> None:
    # the marts' enforced dbt contracts (models/marts/_marts__models.yml): every column with its
    # type, in the order of the table
    declared = yaml.safe_load(
        (builds.settings.dbt_project_dir / "models" / "marts" / "_marts__models.yml").read_text()
    )
    contracts = {
        model["name"]: [column["name"] for column in model["columns"]]
        for model in declared["models"]
    }
    assert contracts == {mart: list(columns) for mart, columns in MART_COLUMNS.items()}
    # the clustering's columns lead customer_features (core.contract names them)
    clustering = contracts["customer_features"][: len(CLUSTERING_FEATURE_COLUMNS)]
    assert clustering == list(CLUSTERING_FEATURE_COLUMNS)
    for model in declared["models"]:
        assert all(column.get("data_type") for column in model["columns"]), model["name"]
    project = yaml.safe_load((builds.settings.dbt_project_dir / "dbt_project.yml").read_text())
    marts_config = project["models"]["customer_segmentation"]["marts"]
    assert marts_config["+contract"] == {"enforced": True}


def test_rerun_replaces_only_its_own_slice(builds: Builds) -> None:
    for mart, rows in builds.after_rerun.items():
        if mart == "customer_lifecycle_transitions":
            continue  # depends on the dates built before (test_lifecycle_stages_and_transitions)
        first = [row for row in builds.after_first[mart] if row[0] == AS_OF]
        rerun = [row for row in rows if row[0] == AS_OF]
        assert rerun == first, mart
        earlier = [row for row in builds.after_earlier[mart] if row[0] == EARLIER_AS_OF]
        # nothing was cancelled by the earlier date (O5 is from June 25th)
        assert earlier or mart == "cancelled_orders", mart
        assert [row for row in rows if row[0] == EARLIER_AS_OF] == earlier, mart
        # building the earlier date left the later slice untouched too
        assert [row for row in builds.after_earlier[mart] if row[0] == AS_OF] == first, mart


def test_incremental_by_partition_and_full_refresh_agree(builds: Builds, tmp_path: Path) -> None:
    # on a copy of the incrementally built warehouse (2026-06-30, 2026-05-31, 2026-06-30 again)
    settings = replace(
        builds.settings, data_dir=tmp_path, warehouse_path=tmp_path / "warehouse.duckdb"
    )
    shutil.copy(builds.settings.warehouse_path, settings.warehouse_path)
    with duckdb.connect(str(settings.warehouse_path)) as con:
        # the loader's log: every orders partition loaded long ago
        con.execute(
            "insert into raw._load_log (source, partition_date, fingerprint, file_count, "
            "row_count, run_id, loaded_at, validated_at) select 'orders', _partition_date, 'f', "
            "1, count(*), 'r', timestamp '2020-01-01', null from raw.orders group by all"
        )
        # a raw row changes without a reload being logged: not processed again
        con.execute("update raw.orders set amount = '99.00' where order_id = 'O13'")
    run_dbt_build(AS_OF, settings=settings)
    assert features(settings, AS_OF)["C006"]["total_spend"] == Decimal("200.00")

    # the loader reloads that partition: the next run takes it, and only it
    with duckdb.connect(str(settings.warehouse_path)) as con:
        con.execute(
            "update raw._load_log set loaded_at = now()::timestamp + interval 1 day "
            "where source = 'orders' and partition_date = date '2026-01-20'"
        )
    run_dbt_build(AS_OF, settings=settings)
    assert features(settings, AS_OF)["C006"]["total_spend"] == Decimal("99.00")
    incremental = mart_rows(settings)
    base_columns = "order_id, customer_id, status, amount, landed_date, ordered_at, source_file"
    base_rows = query(
        settings, f"select {base_columns} from staging.base_shop__orders order by all"
    )

    # --full-refresh recreates the base tables, seeds, views and working tables from raw; the
    # marts keep their history and the as-of slice comes out the same, row for row
    run_dbt_build(AS_OF, settings=settings, full_refresh=True)
    assert mart_rows(settings) == incremental
    assert (
        query(settings, f"select {base_columns} from staging.base_shop__orders order by all")
        == base_rows
    )
    assert len(base_rows) == 14


def test_a_customers_mart_built_before_loses_its_identifier_columns(
    builds: Builds, tmp_path: Path
) -> None:
    # a warehouse whose marts.customers still has the identifier columns of earlier releases
    settings = replace(
        builds.settings, data_dir=tmp_path, warehouse_path=tmp_path / "warehouse.duckdb"
    )
    shutil.copy(builds.settings.warehouse_path, settings.warehouse_path)
    with duckdb.connect(str(settings.warehouse_path)) as con:
        for column in ("first_name", "last_name", "email", "phone"):
            con.execute(f"alter table marts.customers add column {column} varchar")
        con.execute("update marts.customers set email = 'jane.doe@example.com'")
    run_dbt_build(AS_OF, settings=settings)
    columns = {row[0] for row in query(settings, "describe marts.customers")}
    assert columns == set(MART_COLUMNS["customers"])
    # the other dates' slices are kept
    assert query(settings, "select count(distinct as_of_date) from marts.customers") == [(2,)]


def _project_copy(builds: Builds, tmp_path: Path) -> Settings:
    """A copy of the built warehouse and of the dbt project, to change and build again."""
    project_dir = tmp_path / "dbt_project"
    shutil.copytree(
        builds.settings.dbt_project_dir,
        project_dir,
        ignore=shutil.ignore_patterns("target", "logs", "dbt_packages"),
    )
    settings = replace(
        builds.settings,
        data_dir=tmp_path,
        warehouse_path=tmp_path / "warehouse.duckdb",
        dbt_project_dir=project_dir,
    )
    shutil.copy(builds.settings.warehouse_path, settings.warehouse_path)
    return settings


def test_failing_dbt_test_raises_with_the_test_name(builds: Builds, tmp_path: Path) -> None:
    # a marketer's edit of the segment names loses score 555: a copy of the project and warehouse
    settings = _project_copy(builds, tmp_path)
    names = settings.dbt_project_dir / "seeds" / "rfm_segment_names.csv"
    lines = names.read_text().splitlines(keepends=True)
    names.write_text("".join(line for line in lines if not line.startswith("555,")))

    with pytest.raises(DbtBuildError) as raised:
        run_dbt_build(AS_OF, settings=settings, select="rfm_segment_names")

    message = str(raised.value)
    assert message.startswith("dbt build failed for as-of 2026-06-30: ")
    assert "test assert_rfm_segment_names_cover_every_score failed (1 rows)" in message
    result = raised.value.result
    assert result is not None
    assert [node.name for node in result.failed_nodes] == [
        "assert_rfm_segment_names_cover_every_score"
    ]
    assert result.counts["seed"] == {"pass": 1}


def test_every_temporary_copy_is_dropped_once_inserted(builds: Builds) -> None:
    """An incremental run builds each model's new rows in a temporary table; with one connection
    for the whole build (keep_open) every copy would stay in memory until the build ends (at 10M
    customers the next night ran out of DuckDB's memory). The post-hook drop_temporary_copy drops
    each one after its insert: every temporary table the builds created (dbt's debug log has the
    statements) is dropped again, and the later builds did create some."""
    _, log_path = dbt_paths(builds.settings)
    log = (log_path / "dbt.log").read_text()
    created = re.findall(r'create temporary table\s+"([^"]+)"', log)
    dropped = set(re.findall(r'drop table if exists\s+(?:"[^"]+"\.)*"([^"]+)"', log))
    assert any(not name.startswith("test_") for name in created)  # the incremental models'
    assert [name for name in created if name not in dropped] == []


def test_a_mart_replaces_its_slice_without_a_temporary_copy(builds: Builds) -> None:
    """The marts' materialization (as_of_slice) deletes the run's slice and inserts the model's
    rows straight into the table: dbt's incremental materialization would first copy them into a
    temporary table (a slice of every customer: at 10M customers it did not fit in DuckDB's memory
    beside the model's query). The staging base models still use one (delete+insert)."""
    _, log_path = dbt_paths(builds.settings)
    log = (log_path / "dbt.log").read_text()
    created = re.findall(r'create temporary table\s+"([^"]+)"', log)
    copied = {name.split("__dbt_tmp")[0] for name in created if "__dbt_tmp" in name}
    assert copied & set(MART_COLUMNS) == set()
    assert copied  # the base models'
    deleted = re.findall(r"delete from\s+\"[^\"]+\"\.\"marts\"\.\"(\w+)\" where as_of_date", log)
    # the second and third builds replaced every mart's slice
    assert sorted(set(deleted)) == sorted(MART_COLUMNS)


def test_later_builds_reuse_the_parse_and_test_their_own_slice(builds: Builds) -> None:
    """The as-of date reaches dbt in the environment (SEGMENTS_AS_OF_DATE), not in --vars, so the
    builds after the first reuse its parse (a full parse was about 5 s of each night at 1M
    customers); the marts' tests, whose `where` holds the placeholder __as_of_date__, still
    select the slice of their own build (get_where_subquery renders it when the test runs)."""
    _, log_path = dbt_paths(builds.settings)
    log = (log_path / "dbt.log").read_text()
    assert len(re.findall(r"Running with dbt=", log)) == 3  # the fixture's three builds
    full_parses = re.findall(r"Unable to do partial parsing because ([^\n]*)", log)
    assert full_parses == ["saved manifest not found. Starting full parse."]
    builds_in_log = log.split("Running with dbt=")[1:]
    for as_of, build in zip((AS_OF, EARLIER_AS_OF, AS_OF), builds_in_log, strict=True):
        tested = set(re.findall(r"where \(as_of_date = date '([0-9-]+)'\)", build))
        assert tested == {as_of.isoformat()}
        assert len(re.findall(r'from "[^"]+"\."marts"\."\w+" where \(as_of_date', build)) > 10


@pytest.mark.parametrize(
    ("as_of", "message"),
    [
        (None, "The as-of date is required (YYYY-MM-DD)"),
        ("2026-6-30", "must be a date YYYY-MM-DD, got '2026-6-30'"),
    ],
)
def test_a_build_without_a_valid_as_of_date_fails_before_any_node(
    builds: Builds, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, as_of: str | None, message: str
) -> None:
    """dbt by hand without the date (neither SEGMENTS_AS_OF_DATE nor the var as_of_date), or with
    a malformed one, fails in the on-run-start hook with a message naming both ways to give it."""
    from dbt.cli.main import dbtRunner

    settings = _project_copy(builds, tmp_path)
    monkeypatch.setenv("SEGMENTS_WAREHOUSE", str(settings.warehouse_path))
    if as_of is None:
        monkeypatch.delenv("SEGMENTS_AS_OF_DATE", raising=False)
    else:
        monkeypatch.setenv("SEGMENTS_AS_OF_DATE", as_of)
    args = dbt_build_args(settings, select="stg_crm__customers")
    outcome = dbtRunner().invoke(args)

    assert not outcome.success
    _, log_path = dbt_paths(settings)
    log = (log_path / "dbt.log").read_text()
    assert message in log
    assert "SEGMENTS_AS_OF_DATE" in log
    assert "Began running node model." not in log  # no model ran


def test_tables_built_in_parts_equal_one_build(builds: Builds, tmp_path: Path) -> None:
    """int_customers_cohorted and int_customer_metrics_joined (materialization state_in_parts)
    run their query once per part of the customers, each input filtered to the part (macro
    in_customer_part): parts of at most two customers give the same rows, and the same
    customer_features, as one part of all."""
    settings = replace(
        builds.settings, data_dir=tmp_path, warehouse_path=tmp_path / "warehouse.duckdb"
    )
    shutil.copy(builds.settings.warehouse_path, settings.warehouse_path)
    tables = ("int_customers_cohorted", "int_customer_metrics_joined")
    whole = {
        table: query(settings, f"select * from intermediate.{table} order by all")
        for table in tables
    }
    assert [len(rows) for rows in whole.values()] == [5, 5]

    run_dbt_build(
        AS_OF,
        settings=settings,
        select=" ".join((*tables, "customer_features")),
        dbt_vars={"customers_per_build_part": 2},
    )
    _, log_path = dbt_paths(settings)
    log = (log_path / "dbt.log").read_text()
    # sized by the 6 source ids of int_customers_resolved, and by the 5 people
    assert 'int_customers_cohorted" in 3 part(s) of 6 rows' in log
    assert 'int_customer_metrics_joined" in 3 part(s) of 5 rows' in log
    # each part inserted only its own customers: none twice, none left out
    for table in tables:
        assert query(settings, f"select * from intermediate.{table} order by all") == whole[table]
    assert mart_rows(settings)["customer_features"] == builds.after_rerun["customer_features"]


def _declare_rfm_column(project_dir: Path, name: str, data_type: str) -> None:
    path = project_dir / "models" / "marts" / "_marts__models.yml"
    declared = yaml.safe_load(path.read_text())
    (rfm,) = [model for model in declared["models"] if model["name"] == "customer_rfm"]
    rfm["columns"].append({"name": name, "data_type": data_type})
    path.write_text(yaml.safe_dump(declared, sort_keys=False))


def test_a_mart_gains_a_contract_column_and_keeps_enforcing_its_contract(
    builds: Builds, tmp_path: Path
) -> None:
    # a data engineer adds a column to customer_rfm (its SQL and its contract), on a copy
    settings = _project_copy(builds, tmp_path)
    model = settings.dbt_project_dir / "models" / "marts" / "customer_rfm.sql"
    model.write_text(
        model.read_text().replace("select * from final", "select *, 1 as priority from final")
    )
    _declare_rfm_column(settings.dbt_project_dir, "priority", "integer")
    before = query(settings, "select * from marts.customer_rfm order by all")

    run_dbt_build(AS_OF, settings=settings, select="customer_rfm")

    columns = [row[0] for row in query(settings, "describe marts.customer_rfm")]
    assert columns == [*MART_COLUMNS["customer_rfm"], "priority"]
    after = query(settings, "select * from marts.customer_rfm order by all")
    # the run's slice has the new column; the other date's slice is kept, the column null there
    assert [row[:-1] for row in after] == before
    assert {(row[0], row[-1]) for row in after} == {(EARLIER_AS_OF, None), (AS_OF, 1)}

    # the contract declares another type than the SQL returns: the run fails, the table is kept
    contract = settings.dbt_project_dir / "models" / "marts" / "_marts__models.yml"
    declared, code = contract.read_text(), model.read_text()
    _declare_rfm_column(settings.dbt_project_dir, "urgency", "date")
    model.write_text(code.replace("1 as priority", "1 as priority, 2 as urgency"))
    with pytest.raises(DbtBuildError, match="customer_rfm"):
        run_dbt_build(AS_OF, settings=settings, select="customer_rfm")
    assert query(settings, "select * from marts.customer_rfm order by all") == after

    # the query fails while its rows are inserted, after the slice was deleted (on the warehouse's
    # customers, not the unit test's c1..c5): the deletion is rolled back with the insert, and the
    # run's slice is kept
    contract.write_text(declared)
    failing = "case when customer_id like 'C%' then error('no rfm ' || customer_id) end is null"
    model.write_text(code.replace("from final", f"from final where {failing}"))
    with pytest.raises(DbtBuildError, match="no rfm "):
        run_dbt_build(AS_OF, settings=settings, select="customer_rfm")
    assert query(settings, "select * from marts.customer_rfm order by all") == after
