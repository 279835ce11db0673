"""Retention of the dated slices, end to end: three real nights with a short retention; the
marts' and predictions' slices of a retired version's date go when the next version is
published, the slices a rollback needs stay, and the rollback's audiences still find them. A
backfill of an old date that is under way when a night publishes keeps its slices."""

from __future__ import annotations

from datetime import date, timedelta

import duckdb
import pytest

from pipeline import steps
from tools.demo_data import generate_demo_data
from tools.summary import summarize

pytestmark = pytest.mark.slow

LAST = date(2026, 6, 30)
# A night skipped between the first two: a rollback-able date keeps the day before it too (a
# rerun compares its lifecycle stages with it), which here is not the first night.
NIGHTS = [LAST - timedelta(days=3), LAST - timedelta(days=1), LAST]
# A backfilled date whose run is between dbt_build and recluster when the last night publishes
# (its day before has no slices, so the nights' retention is the same as without it).
BACKFILL = LAST - timedelta(days=5)
# The per-customer marts, one slice of every customer per as-of date.
CUSTOMER_MARTS = (
    "customers",
    "customer_features",
    "customer_rfm",
    "customer_lifecycle",
    "customer_lifecycle_transitions",
)


def _marts(day: date) -> None:
    run_id = f"retention-{day}"
    ingest = steps.ingest(day, run_id=run_id)
    steps.validate_raw(day, ingest["validation_scope"], run_id=run_id)
    steps.build_marts(day)
    steps.validate_marts(day, run_id=run_id)


def _night(day: date, *, marts_built: bool = False) -> dict:
    run_id = f"retention-{day}"
    if not marts_built:
        _marts(day)
    version = steps.recluster(day, run_id=run_id)
    published = steps.publish(day, version["version_id"])
    steps.predict(day, run_id=run_id)
    return {"version_id": version["version_id"], **published}


def _dates(con: duckdb.DuckDBPyConnection, table: str) -> list[date]:
    rows = con.execute(f"select distinct as_of_date from {table} order by 1").fetchall()
    return [row[0] for row in rows]


def test_old_slices_go_with_their_versions_and_a_rollback_keeps_what_it_reads(
    tmp_path, monkeypatch
):
    landing, data_dir = tmp_path / "landing", tmp_path / "data"
    generate_demo_data(landing, tmp_path / "truth", n_customers=300, seed=5)
    config = tmp_path / "segmentation.yml"
    config.write_text("versions:\n  keep_member_rows: 2\n  keep_slices_days: 0\n")
    monkeypatch.setenv("SEGMENTS_ML_CONFIG", str(config))
    monkeypatch.setenv("SEGMENTS_DATA_DIR", str(data_dir))
    monkeypatch.setenv("SEGMENTS_LANDING_DIR", str(landing))
    monkeypatch.delenv("SEGMENTS_REPORTS_DIR", raising=False)
    monkeypatch.delenv("SEGMENTS_WAREHOUSE", raising=False)
    warehouse = str(data_dir / "warehouse.duckdb")

    first, second = _night(NIGHTS[0]), _night(NIGHTS[1])
    # Two versions, both keep their members: nothing to delete yet.
    assert second["slices_deleted"] == {} and second["retired_versions"] == []
    with duckdb.connect(warehouse, read_only=True) as con:
        first_rows = con.execute(
            "select count(*) from marts.customers where as_of_date = ?", [NIGHTS[0]]
        ).fetchone()[0]
        assert _dates(con, "segments.customer_predictions") == NIGHTS[:2]
    assert first_rows > 0

    _marts(BACKFILL)  # a backfill started from the UI, paused before its recluster
    third = _night(NIGHTS[2])

    # The first version retired with its member rows, and its date's slices went with it.
    assert third["retired_versions"] == [first["version_id"]]
    assert third["slices_deleted"]["marts.customers"] == first_rows
    assert "segments.customer_predictions" in third["slices_deleted"]
    with duckdb.connect(warehouse, read_only=True) as con:
        for mart in CUSTOMER_MARTS:
            assert _dates(con, f"marts.{mart}") == [BACKFILL, *NIGHTS[1:]], mart
        assert _dates(con, "segments.customer_predictions") == NIGHTS[1:]
        # The version metadata stays (retention prunes member rows and slices only).
        versions = con.execute("select count(*) from segments.segment_versions").fetchone()[0]
        assert versions == 3
        backfill_rows = con.execute(
            "select count(*) from marts.customers where as_of_date = ?", [BACKFILL]
        ).fetchone()[0]

    # The backfill goes on from its recluster: its slices are there, its version is published
    # for its date without replacing the current one.
    backfill = _night(BACKFILL, marts_built=True)
    assert backfill["rows"] == backfill_rows > 0 and not backfill["current"]

    # A rollback to the second night: its audiences read that date's marts, which were kept.
    steps.rollback(second["version_id"], by="test", reason="retention keeps what it needs")
    exported = steps.export_current_audiences()
    assert exported["version_id"] == second["version_id"]
    assert exported["exported_customers"] > 0
    text, ok = summarize(NIGHTS[2])
    assert ok and "RETENTION FAILED" not in text
