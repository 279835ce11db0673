"""Retention of the as-of slices: which rows go, which stay, and that the file stops growing."""

from __future__ import annotations

import os
import time
from datetime import date, timedelta

import duckdb
import pytest

from core.run_record import record_step, run_record_path
from core.settings import get_settings
from core.slices import dated_tables, prune_as_of_slices
from ml_tasks.versions import publish_version, write_version
from pipeline.steps import IN_FLIGHT_HOLD, _prune_slices
from tests.version_candidates import make_candidate

DAY = date(2026, 6, 1)


def _night(con: duckdb.DuckDBPyConnection, table: str, day: date, rows: int) -> None:
    con.execute(
        f"insert into {table} select ?, 'C' || lpad(i::varchar, 8, '0'), random(), i % 97 "
        "from range(?) as t(i)",
        [day, rows],
    )


def _dates(con: duckdb.DuckDBPyConnection, table: str) -> list[date]:
    rows = con.execute(f"select distinct as_of_date from {table} order by 1").fetchall()
    return [row[0] for row in rows]


@pytest.fixture
def con(tmp_path, monkeypatch):
    # The run records (runs in flight hold their dates) of this test only.
    monkeypatch.setenv("SEGMENTS_REPORTS_DIR", str(tmp_path / "reports"))
    with duckdb.connect(str(tmp_path / "warehouse.duckdb")) as con:
        con.execute("create schema marts")
        for table in ("marts.customers", "marts.features"):
            con.execute(
                f"create table {table} (as_of_date date, customer_id varchar, value double, "
                "bucket bigint)"
            )
        con.execute("create table marts.undated (customer_id varchar)")
        con.execute("create view marts.latest as select * from marts.customers")
        con.execute("create schema other")
        con.execute("create table other.dated (as_of_date date)")
        yield con


def test_dated_tables_are_the_schemas_tables_with_an_as_of_date(con):
    assert dated_tables(con, "marts") == ["marts.customers", "marts.features"]
    assert dated_tables(con, "nowhere") == []


def test_the_slices_before_the_cutoff_go_unless_kept(con):
    for offset in range(6):
        _night(con, "marts.customers", DAY + timedelta(days=offset), 10)
        _night(con, "marts.features", DAY + timedelta(days=offset), 3)
    kept = DAY + timedelta(days=1)  # a version that keeps its members (rollback target)
    cutoff = DAY + timedelta(days=4)

    deleted = prune_as_of_slices(
        con, ["marts.customers", "marts.features"], before=cutoff, keep_dates=[kept]
    )

    # Days 0, 2 and 3 went; day 1 (kept) and the cutoff day and later stayed.
    assert deleted == {"marts.customers": 30, "marts.features": 9}
    expected = [kept, cutoff, cutoff + timedelta(days=1)]
    assert _dates(con, "marts.customers") == expected
    assert _dates(con, "marts.features") == expected
    # Nothing left to delete: a second run deletes nothing and says so.
    assert prune_as_of_slices(con, ["marts.customers"], before=cutoff, keep_dates=[kept]) == {}


def test_a_backfill_of_an_old_date_leaves_the_newer_slices_alone(con):
    for offset in range(5):
        _night(con, "marts.customers", DAY + timedelta(days=offset), 5)

    deleted = prune_as_of_slices(con, ["marts.customers"], before=DAY, keep_dates=[])

    assert deleted == {}
    assert len(_dates(con, "marts.customers")) == 5


def test_a_failed_delete_keeps_every_table_whole(con):
    for offset in range(3):
        _night(con, "marts.customers", DAY + timedelta(days=offset), 5)
    with pytest.raises(duckdb.Error):
        prune_as_of_slices(
            con,
            ["marts.customers", "marts.missing"],
            before=DAY + timedelta(days=2),
            keep_dates=[],
        )
    assert len(_dates(con, "marts.customers")) == 3  # one transaction: rolled back


def test_the_file_stops_growing_once_the_window_is_full(tmp_path):
    """Night after night a slice comes in and the oldest beyond the window goes: DuckDB reuses
    the freed blocks, so the file holds about the window, where it would grow without end."""
    path = tmp_path / "growing.duckdb"
    sizes = []
    with duckdb.connect(str(path)) as con:
        con.execute("create schema marts")
        con.execute(
            "create table marts.customers (as_of_date date, customer_id varchar, value double, "
            "bucket bigint)"
        )
        for night in range(12):
            day = DAY + timedelta(days=night)
            _night(con, "marts.customers", day, 150_000)
            prune_as_of_slices(
                con, ["marts.customers"], before=day - timedelta(days=2), keep_dates=[]
            )
            con.execute("checkpoint")
            sizes.append(path.stat().st_size)
        assert len(_dates(con, "marts.customers")) == 3
    # Three slices are kept from the third night on. The file swings by a slice or so (the
    # freed blocks are reused at the next checkpoint) but no longer grows: without the deletes
    # each night would add about the first night's size (nights 8-11 at least four more).
    assert max(sizes[8:]) <= 1.25 * max(sizes[2:6]), sizes
    assert max(sizes[8:]) < max(sizes[2:6]) + 2 * sizes[0], sizes


def _publish(con: duckdb.DuckDBPyConnection, day: date, **kwargs) -> int:
    version = write_version(con, make_candidate(day, {"C1": 1, "C2": 2}, **kwargs))
    if kwargs.get("status") != "rejected":
        publish_version(con, version)
    return version


def test_the_publish_step_keeps_what_a_rollback_and_a_rerun_read(con):
    """The dates a rollback can return to stay, with the day before each (a rerun of the date
    compares its lifecycle stages with it); a rejected night's date does not count."""
    days = [DAY + timedelta(days=offset) for offset in range(12)]
    for day in days:
        _night(con, "marts.customers", day, 4)
    _publish(con, days[3])
    _publish(con, days[6], status="rejected")
    _publish(con, days[10])

    deleted = _prune_slices(con, before=days[9])

    assert deleted == {"marts.customers": 4 * 7}  # days 0, 1, 4 to 8
    assert _dates(con, "marts.customers") == [days[2], days[3], days[9], days[10], days[11]]


def test_a_failed_retention_is_a_warning_and_deletes_nothing(con, caplog):
    """A table a data engineer pinned with a foreign key refuses the delete: the publish step
    goes on (its version is already committed), the slices stay whole, the log says why."""
    days = [DAY + timedelta(days=offset) for offset in range(3)]
    for day in days:
        _night(con, "marts.features", day, 2)
    con.execute("create table marts.pinned (as_of_date date primary key)")
    con.execute("insert into marts.pinned values (?)", [days[0]])
    # (DuckDB keeps a foreign key within one schema; a mart without as_of_date is not pruned.)
    con.execute("create table marts.pins (pinned date references marts.pinned (as_of_date))")
    con.execute("insert into marts.pins values (?)", [days[0]])
    _publish(con, days[2])

    assert _prune_slices(con, before=days[2]) is None

    assert "Retention left the old as-of slices" in caplog.text
    assert _dates(con, "marts.features") == days  # one transaction: nothing deleted


def _record_run(day: date, *steps: str) -> None:
    """A run's record as the pipeline's steps write it: ``ingest`` starts it."""
    record_step(day, "run", {"run_id": f"backfill-{day}"}, new_run=True)
    for step in steps:
        record_step(day, step, {})


def test_the_dates_of_runs_in_flight_keep_their_slices(con):
    """A backfill of an old date between its dbt_build and its predict reads its slices (and the
    day before); a publish of a newer night meanwhile leaves them. A failed run keeps them too
    (its task may be retried); a finished run or one abandoned for IN_FLIGHT_HOLD does not."""
    days = [DAY + timedelta(days=offset) for offset in range(12)]
    for day in days:
        _night(con, "marts.customers", day, 4)
    _publish(con, days[10])
    _record_run(days[10], "ingest", "dbt_build", "recluster", "publish", "predict")
    _record_run(days[2], "ingest", "validate_raw", "dbt_build")  # in flight
    _record_run(days[5], "ingest", "dbt_build", "failure")  # failed: may be retried
    _record_run(days[7], "ingest", "dbt_build", "recluster", "publish", "predict")  # finished
    _record_run(days[8], "ingest", "dbt_build")  # abandoned
    record_step(days[6], "export_audiences", {})  # no run: the export DAG after a rollback
    stale = time.time() - IN_FLIGHT_HOLD.total_seconds() - 60
    os.utime(run_record_path(days[8], get_settings()), (stale, stale))

    deleted = _prune_slices(con, before=days[9])

    kept = [days[i] for i in (1, 2, 4, 5, 9, 10, 11)]  # 1, 4: the day before 2, 5
    assert _dates(con, "marts.customers") == kept
    assert deleted == {"marts.customers": 4 * 5}  # days 0, 3, 6, 7, 8

    record_step(days[2], "predict", {})  # the backfill finished
    # A finished run cleared from dbt_build after a fix: its slice is built again, and held.
    _night(con, "marts.customers", days[7], 4)
    record_step(days[7], "dbt_build", {})
    _prune_slices(con, before=days[9])
    assert _dates(con, "marts.customers") == [days[4], days[5], days[7], *days[9:]]
