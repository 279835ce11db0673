"""Late reference data: rows held in quarantine only because their customer was not known yet.

An order (or event) can land a day or two before its customer's CRM record. The row rules then
quarantine it ``unknown_customer`` (or ``quarantined_customer`` while the CRM record is itself in
quarantine). For ``late_reference_days`` nights after its partition's date (quality config,
default 7), every night looks for such rows whose customer is now in ``raw.customers``; their
partitions are reloaded from the landing files, so each row is judged again by every row rule
and, when it passes, loaded into its original partition (and the marts' incremental models take
the reloaded partition again, as for any reload). After the window a held row stays in quarantine
for good: its partition is no longer re-evaluated.

The count stays explainable: the reloaded partition's ``raw._load_log`` row has ``rows_in =
row_count + rows_quarantined + rows_erased`` as for any load, and ``rows_released`` says how many
of its loaded rows came out of quarantine in that load; ``raw._released`` keeps one row per
released line (source, partition, file, line, run, as-of date), so a row that left quarantine can
always be traced.
"""

from __future__ import annotations

import logging
from datetime import date, timedelta

import duckdb

from core.contract import SOURCE_COLUMNS
from ingestion.row_rules import clean

log = logging.getLogger(__name__)

# The reason codes that mean "the referenced customer is missing from raw".
REFERENCE_REASONS = ("unknown_customer", "quarantined_customer")

RELEASED_TABLE = "raw._released"

__all__ = ["REFERENCE_REASONS", "hold_releasable", "record_released"]


def _ensure_tables(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("alter table raw._load_log add column if not exists rows_released bigint")
    con.execute(
        f"""
        create table if not exists {RELEASED_TABLE} (
            source varchar not null,
            partition_date date not null,
            _source_file varchar not null,
            _line_number bigint,
            customer_id varchar,
            quarantined_as varchar[] not null,
            quarantined_run_id varchar,
            released_run_id varchar not null,
            released_as_of_date date not null,
            released_at timestamp not null
        )
        """
    )


def hold_releasable(
    con: duckdb.DuckDBPyConnection, source: str, as_of_date: date, window_days: int
) -> set[date]:
    """The partitions of ``source`` dated within ``window_days`` before the as-of date that hold
    quarantined rows whose only reasons are a missing customer now in ``raw.customers``: the
    loader reloads them. Their lines are noted (temp table ``_held``) for ``record_released``."""
    con.execute("drop table if exists _held")
    if source == "customers" or "customer_id" not in SOURCE_COLUMNS[source] or window_days <= 0:
        return set()
    _ensure_tables(con)
    reasons = ", ".join(f"'{reason}'" for reason in REFERENCE_REASONS)
    con.execute(
        f"""
        create temp table _held as
        select held._partition_date, held._source_file, held._line_number,
               {clean("customer_id")} as customer_id, held._reasons, held._run_id
        from quarantine.{source} as held
        where held._partition_date >= ? and held._partition_date < ?
            and len(held._reasons) > 0
            and list_has_all([{reasons}], held._reasons)
            and {clean("customer_id")} in (
                select {clean("customer_id")} from raw.customers where _partition_date <= ?
            )
        """,
        [as_of_date - timedelta(days=window_days), as_of_date, as_of_date],
    )
    dates = {row[0] for row in con.execute("select distinct _partition_date from _held").fetchall()}
    if dates:
        log.info(
            "%s: %d quarantined rows whose customer has arrived since; re-evaluating partitions %s",
            source,
            con.execute("select count(*) from _held").fetchone()[0],
            ", ".join(day.isoformat() for day in sorted(dates)),
        )
    return dates


def record_released(
    con: duckdb.DuckDBPyConnection, source: str, run_id: str, as_of_date: date
) -> int:
    """After the reload: the held lines no longer in quarantine were loaded. Records them in
    ``raw._released`` and ``raw._load_log.rows_released``; returns how many."""
    exists = con.execute(
        "select count(*) from duckdb_tables() where table_name = '_held' and temporary"
    ).fetchone()[0]
    if not exists:
        return 0
    con.execute(
        f"""
        create or replace temp table _released_now as
        select * from _held
        where not exists (
            select 1 from quarantine.{source} as still
            where still._partition_date = _held._partition_date
                and still._source_file = _held._source_file
                and still._line_number is not distinct from _held._line_number
        )
        """
    )
    counts = dict(
        con.execute("select _partition_date, count(*) from _released_now group by all").fetchall()
    )
    con.execute(
        f"""
        insert into {RELEASED_TABLE}
        select ?, _partition_date, _source_file, _line_number, customer_id, _reasons, _run_id,
               ?, ?, now()::timestamp
        from _released_now
        """,
        [source, run_id, as_of_date],
    )
    if counts:
        con.executemany(
            "update raw._load_log set rows_released = ? where source = ? and partition_date = ?",
            [[count, source, day] for day, count in counts.items()],
        )
    con.execute("drop table _held")
    con.execute("drop table _released_now")
    released = sum(counts.values())
    if released:
        log.info("%s: %d rows released from quarantine (their customer arrived)", source, released)
    return released
