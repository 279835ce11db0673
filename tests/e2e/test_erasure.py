"""The right to be forgotten, end to end: a night, an erasure, a scan, a reload of the landing
history, a scan again. Real steps, real dbt, real DuckDB files."""

from __future__ import annotations

import hashlib
from datetime import date
from pathlib import Path

import duckdb
import pytest

from core.erasure import ERASURE_TABLE
from pipeline import steps
from pipeline.erasure import find_person, forget
from tools.demo_data import generate_demo_data

pytestmark = pytest.mark.slow

AS_OF = date(2026, 6, 30)
# The incremental states that keep the identity map they were built with (`<model>__identity`),
# in name order: the orders and sessions attached to it, the per-customer cohorts and metrics.
KEEP_MAPS = (
    "customer_identifiers",
    "int_customer_metrics_joined",
    "int_customers_cohorted",
    "int_orders_attributed",
    "int_web_sessions_aggregated",
)


def _night(day: date) -> None:
    ingest = steps.ingest(day, run_id=f"erasure-{day}")
    steps.validate_raw(day, ingest["validation_scope"], run_id=f"erasure-{day}")
    steps.build_marts(day)
    steps.validate_marts(day, run_id=f"erasure-{day}")
    version = steps.recluster(day, run_id=f"erasure-{day}")
    steps.publish(day, version["version_id"])
    steps.export_audiences(day, version["version_id"])


def _person(data_dir: Path) -> tuple[str, str]:
    """A customer in the current segments with marketing consent, orders and an e-mail address
    (so in every layer and in the audience files), merged by the fuzzy rule with another record
    (so in identity resolution's kept pairs too)."""
    with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as con:
        row = con.execute(
            """
            select segments.customer_id, identifiers.email
            from segments.current_segments as segments
            inner join marts.customers as customers
                on segments.customer_id = customers.customer_id
                and customers.as_of_date = segments.as_of_date
            inner join pii.customer_identifiers as identifiers
                on segments.customer_id = identifiers.customer_id
            inner join pii.pii_similar_email_matches as pairs
                on segments.customer_id = pairs.left_customer_id
            where customers.has_marketing_consent and identifiers.email is not null
                and segments.segment_id > 0
            order by segments.customer_id
            limit 1
            """
        ).fetchone()
    assert row is not None, "no consenting customer with orders in the demo"
    return row[0], row[1].strip()


def _where_found(data_dir: Path, customer_id: str, email: str) -> list[str]:
    """Every table column (all schemas but the erasure log) and export file holding either."""
    found = []
    with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as con:
        columns = con.execute(
            """
            select table_schema, table_name, column_name
            from information_schema.columns
            where data_type = 'VARCHAR' and table_schema not in ('audit', 'information_schema')
                and table_catalog = current_database()
            """
        ).fetchall()
        for schema, table, column in columns:
            hits = con.execute(
                f'select count(*) from "{schema}"."{table}" where trim("{column}") = ? '
                f'or lower("{column}") like ?',
                [customer_id, f"%{email.lower()}%"],
            ).fetchone()[0]
            if hits:
                found.append(f"{schema}.{table}.{column}: {hits}")
    for path in (data_dir / "reports" / "exports").rglob("*"):
        if path.is_file() and path.suffix in (".csv", ".json"):
            text = path.read_text(errors="replace")
            if f"{customer_id}," in text or email.lower() in text.lower():
                found.append(str(path))
        elif path.is_file() and path.suffix == ".parquet":
            with duckdb.connect() as con:
                if con.execute(
                    "select count(*) from read_parquet(?) where customer_id = ?",
                    [str(path), customer_id],
                ).fetchone()[0]:
                    found.append(str(path))
    return found


def _kept_identity_maps(data_dir: Path) -> list[str]:
    with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as con:
        return [
            name
            for (name,) in con.execute(
                "select table_name from information_schema.tables "
                "where ends_with(table_name, '__identity') order by all"
            ).fetchall()
        ]


def test_a_kept_older_identity_map_does_not_widen_the_person(tmp_path):
    """S3 was merged into S1 when a state kept its map, and is a person of its own tonight:
    erasing S1 finds S1 only."""
    with duckdb.connect(str(tmp_path / "warehouse.duckdb")) as con:
        con.execute("create schema raw")
        con.execute(
            "create table raw.customers as select * from (values ('S1'), ('S3')) as t(customer_id)"
        )
        con.execute("create schema intermediate")
        con.execute(
            "create table intermediate.int_customers_resolved as "
            "select * from (values ('S1', 'S1'), ('S3', 'S3')) as t(source_customer_id, "
            "customer_id)"
        )
        con.execute(
            'create table intermediate."int_web_sessions_aggregated__identity" as '
            "select * from (values ('S1', 'S1'), ('S3', 'S1')) as t(source_customer_id, "
            "customer_id)"
        )
        assert find_person(con, "S1").customer_ids == ("S1",)
        con.execute("update intermediate.int_customers_resolved set customer_id = 'S1'")
        assert find_person(con, "S1").customer_ids == ("S1", "S3")


def test_an_erased_person_is_gone_everywhere_and_stays_gone(tmp_path, monkeypatch):
    landing, data_dir = tmp_path / "landing", tmp_path / "data"
    generate_demo_data(landing, tmp_path / "truth", n_customers=1000, seed=11)
    monkeypatch.setenv("SEGMENTS_DATA_DIR", str(data_dir))
    monkeypatch.setenv("SEGMENTS_LANDING_DIR", str(landing))
    monkeypatch.delenv("SEGMENTS_REPORTS_DIR", raising=False)
    monkeypatch.delenv("SEGMENTS_WAREHOUSE", raising=False)
    _night(AS_OF)
    customer_id, email = _person(data_dir)
    before = _where_found(data_dir, customer_id, email)
    assert any(hit.startswith("marts.") for hit in before), before  # the scan finds them
    assert any(hit.startswith("segments.") for hit in before), before
    assert any("audiences" in hit for hit in before), before
    assert any(hit.startswith("pii.pii_similar_email_matches.") for hit in before), before
    landing_before = {p: p.read_bytes() for p in landing.rglob("*.csv")}

    assert _kept_identity_maps(data_dir) == [f"{state}__identity" for state in KEEP_MAPS]

    result = forget(customer_id, by="test", reason="ticket 4711")

    assert result["rows_deleted"] and result["exports_removed"]
    assert _where_found(data_dir, customer_id, email) == []
    # a session's sums may hold the person's events beside another's: the states that add up
    # several people lose their kept identity map, so the next night rebuilds them
    assert _kept_identity_maps(data_dir) == []
    with duckdb.connect(str(data_dir / "published.duckdb"), read_only=True) as con:
        # The analysts' copy (core.read_copy) was rewritten without the person.
        in_copy = [
            table
            for (table,) in con.execute(
                "select distinct table_schema || '.' || table_name from information_schema.columns"
                " where column_name = 'customer_id'"
            ).fetchall()
            if con.execute(
                f"select count(*) from {table} where customer_id = ?", [customer_id]
            ).fetchone()[0]
        ]
    assert in_copy == []
    with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as con:
        hashes, by, reason, text = con.execute(
            f"select customer_id_sha256, requested_by, reason, cast(rows_deleted as varchar) "
            f"from {ERASURE_TABLE}"
        ).fetchone()
        # Segment metadata and counts of past versions stay.
        counts = con.execute("select sum(customer_count) from segments.segment_profiles").fetchone()
    assert hashlib.sha256(customer_id.encode()).hexdigest() in hashes
    assert (by, reason) == ("test", "ticket 4711")
    assert customer_id not in text and email not in text
    assert counts[0] > 0
    current = (data_dir / "reports" / "exports" / "audiences" / "current").resolve()
    assert (current / "manifest.json").exists()

    # The whole landing history loaded again, rebuilt and republished: the person stays out.
    with duckdb.connect(str(data_dir / "warehouse.duckdb")) as con:
        con.execute("delete from raw._load_log")
    _night(AS_OF)
    assert _where_found(data_dir, customer_id, email) == []
    with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as con:
        erased = con.execute("select sum(rows_erased) from raw._load_log").fetchone()[0]
        rebuilt = con.execute(
            "select model_name, changed_keys from intermediate.incremental_state_ledger "
            "where landed_date is null and model_name in (select unnest(?)) order by all",
            [list(KEEP_MAPS)],
        ).fetchall()
    assert erased > 0
    assert rebuilt == [(state, None) for state in KEEP_MAPS]
    assert len(_kept_identity_maps(data_dir)) == len(KEEP_MAPS)
    assert {p: p.read_bytes() for p in landing.rglob("*.csv")} == landing_before
