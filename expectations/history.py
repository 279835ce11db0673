"""The data-quality history: every gate outcome and a few health metrics per table, kept in DuckDB.

A gate answers "may this run go on?"; the JSON report of one run cannot show a slow drift (a
column's missing share creeping up over weeks, a source arriving later each day). Two tables in
the warehouse's ``quality`` schema keep that history, one row per thing a person would chart:

* ``quality.validation_results``: one row per expectation outcome of a gate run;
* ``quality.table_health``: one row per table batch per run (row count, missing % per column,
  duplicate rate, outlier rate, freshness).

Both are written idempotently per (run_id, stage, as_of_date): an Airflow retry replaces the rows
of its try instead of doubling them, and other runs' rows are never touched.

This module works on the plain-data ``GateReport`` and never imports Great Expectations, so
recording history costs no GX import. Health metrics are computed in DuckDB SQL in two scans of
the batch (one for counts, distinct keys, quantiles and the newest timestamp, one for values
outside the quantile fences), because they run every night on tables of a million rows and more.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import duckdb
import pyarrow as pa

from core.sql_text import clean, parse_timestamp
from core.warehouse import quote_ident, transaction
from expectations.report import GateReport, json_safe

log = logging.getLogger(__name__)

QUALITY_SCHEMA = "quality"
VALIDATION_RESULTS_TABLE = f"{QUALITY_SCHEMA}.validation_results"
TABLE_HEALTH_TABLE = f"{QUALITY_SCHEMA}.table_health"

# A value outside [Q1 - 3 * IQR, Q3 + 3 * IQR] is an outlier: Tukey's "far out" fence, so that
# skewed but healthy amounts do not raise the rate every night.
OUTLIER_IQR_FACTOR = 3.0

# Each table is declared once, as the Arrow shape of the rows we insert (explicit, so a column
# that is null in every row of a report, e.g. no errors, still arrives with its type instead of
# Arrow's null type); the DuckDB table is created from it (``_create_table_sql``).
_KEY = {"nullable": False}
_VALIDATION_RESULTS_SCHEMA = pa.schema(
    [
        pa.field("run_id", pa.string(), **_KEY),
        pa.field("as_of_date", pa.date32(), **_KEY),
        pa.field("stage", pa.string(), **_KEY),
        ("suite", pa.string()),
        ("batch", pa.string()),
        ("expectation", pa.string()),
        ("column_name", pa.string()),
        ("severity", pa.string()),
        ("success", pa.bool_()),
        ("observed_value", pa.string()),
        ("element_count", pa.int64()),
        ("unexpected_count", pa.int64()),
        ("unexpected_percent", pa.float64()),
        ("error", pa.string()),
        ("recorded_at", pa.timestamp("us")),
    ]
)
_TABLE_HEALTH_SCHEMA = pa.schema(
    [
        pa.field("run_id", pa.string(), **_KEY),
        pa.field("as_of_date", pa.date32(), **_KEY),
        pa.field("stage", pa.string(), **_KEY),
        ("table_name", pa.string()),
        ("batch", pa.string()),
        ("row_count", pa.int64()),
        ("missing_pct", pa.map_(pa.string(), pa.float64())),
        ("duplicate_rate", pa.float64()),
        ("outlier_rate", pa.float64()),
        ("freshness_hours", pa.float64()),
        ("measured_at", pa.timestamp("us")),
    ]
)

_DUCKDB_TYPES = {
    pa.string(): "varchar",
    pa.date32(): "date",
    pa.bool_(): "boolean",
    pa.int64(): "bigint",
    pa.float64(): "double",
    pa.timestamp("us"): "timestamp",
}


def _duckdb_type(arrow_type: pa.DataType) -> str:
    if pa.types.is_map(arrow_type):
        key, item = _duckdb_type(arrow_type.key_type), _duckdb_type(arrow_type.item_type)
        return f"map({key}, {item})"
    return _DUCKDB_TYPES[arrow_type]


def _create_table_sql(table: str, schema: pa.Schema) -> str:
    columns = ",\n    ".join(
        f"{column.name} {_duckdb_type(column.type)}{'' if column.nullable else ' not null'}"
        for column in schema
    )
    return f"create table if not exists {table} (\n    {columns}\n)"


# Blank means empty or only whitespace; DuckDB's trim() alone strips spaces only.
_BLANK_CHARACTERS = "' ' || chr(9) || chr(10) || chr(13)"


@dataclass(frozen=True)
class HealthSpec:
    """Which rows of which table to measure, and which columns carry the key, numbers and time.

    ``where`` is an SQL predicate with ``?`` placeholders bound to ``params``, the same batch a
    gate validates: ``list_contains(?::date[], _partition_date)`` for raw partitions,
    ``as_of_date = ?`` for a mart slice, the column it selects by being ``batch_column``. Column
    names are data here, never SQL: they are quoted.
    """

    table: str  # "<schema>.<name>"
    label: str  # how the batch is named in reports, e.g. "raw.orders partition 2026-03-05"
    where: str
    params: list[Any] = field(default_factory=list)
    key_columns: tuple[str, ...] = ()
    numeric_columns: tuple[str, ...] = ()
    timestamp_column: str | None = None
    batch_column: str | None = None


@dataclass
class TableHealth:
    """Health metrics of one table batch; ``None`` means "could not be measured", not zero."""

    table: str
    label: str
    row_count: int
    # Percent (0-100) of null-or-blank values per column, for every column of the table.
    missing_pct: dict[str, float | None] | None
    # Share (0-1) of keyed rows whose key repeats an earlier row's key.
    duplicate_rate: float | None
    # Share (0-1) of non-null numeric values outside the quantile fences, over all numeric columns.
    outlier_rate: float | None
    # Hours from the newest timestamp to the end of the as-of date (negative: from the future).
    freshness_hours: float | None
    measured_at: datetime
    # Columns the spec names but the table lacks: skipped, so the rest is still measured.
    skipped_columns: tuple[str, ...] = ()
    seconds: float = 0.0


def ensure_quality_schema(con: duckdb.DuckDBPyConnection) -> None:
    """Create the ``quality`` schema and its two history tables when missing (never alters)."""
    con.execute(f"create schema if not exists {QUALITY_SCHEMA}")
    con.execute(_create_table_sql(VALIDATION_RESULTS_TABLE, _VALIDATION_RESULTS_SCHEMA))
    con.execute(_create_table_sql(TABLE_HEALTH_TABLE, _TABLE_HEALTH_SCHEMA))


def record_validation_results(
    con: duckdb.DuckDBPyConnection, report: GateReport, *, as_of_date: date
) -> int:
    """Store one row per expectation outcome of ``report``; return the number of rows written.

    A retry of the same (run_id, stage, as_of_date) replaces its earlier rows in one transaction,
    so the history never counts a run twice and never loses one half-way.
    """
    ensure_quality_schema(con)
    recorded_at = _utc_now()
    rows = [
        {
            "run_id": report.run_id,
            "as_of_date": as_of_date,
            "stage": report.stage,
            "suite": suite.suite,
            "batch": suite.table,
            "expectation": outcome.expectation_type,
            "column_name": outcome.column,
            "severity": outcome.severity,
            "success": bool(outcome.success),
            "observed_value": _observed_json(outcome.observed_value),
            "element_count": _as_int(outcome.element_count),
            "unexpected_count": _as_int(outcome.unexpected_count),
            "unexpected_percent": json_safe(outcome.unexpected_percent),
            "error": outcome.error,
            "recorded_at": recorded_at,
        }
        for suite in report.suites
        for outcome in suite.expectations
    ]
    _replace_rows(
        con,
        VALIDATION_RESULTS_TABLE,
        pa.Table.from_pylist(rows, schema=_VALIDATION_RESULTS_SCHEMA),
        run_id=report.run_id,
        stage=report.stage,
        as_of_date=as_of_date,
    )
    log.info(
        "Recorded %d validation results of %s run %s (%s)",
        len(rows),
        report.stage,
        report.run_id,
        as_of_date,
    )
    return len(rows)


def record_table_health(
    con: duckdb.DuckDBPyConnection,
    healths: Sequence[TableHealth],
    *,
    run_id: str,
    stage: str,
    as_of_date: date,
) -> int:
    """Store one row per measured batch; idempotent per (run_id, stage, as_of_date)."""
    ensure_quality_schema(con)
    rows = [
        {
            "run_id": run_id,
            "as_of_date": as_of_date,
            "stage": stage,
            "table_name": health.table,
            "batch": health.label,
            "row_count": health.row_count,
            "missing_pct": (
                None if health.missing_pct is None else list(health.missing_pct.items())
            ),
            "duplicate_rate": health.duplicate_rate,
            "outlier_rate": health.outlier_rate,
            "freshness_hours": health.freshness_hours,
            "measured_at": _naive_utc(health.measured_at),
        }
        for health in healths
    ]
    _replace_rows(
        con,
        TABLE_HEALTH_TABLE,
        pa.Table.from_pylist(rows, schema=_TABLE_HEALTH_SCHEMA),
        run_id=run_id,
        stage=stage,
        as_of_date=as_of_date,
    )
    log.info(
        "Recorded health of %d batches of %s run %s (%s)", len(rows), stage, run_id, as_of_date
    )
    return len(rows)


def measure_table_health(
    con: duckdb.DuckDBPyConnection, spec: HealthSpec, *, as_of_date: date
) -> TableHealth:
    """Measure one batch in two scans: aggregates and quantiles, then values outside the fences.

    A column the spec names but the table lacks is skipped (and listed in ``skipped_columns``):
    a renamed column must not stop the other metrics from being recorded. A composite key with a
    missing part gives no duplicate rate, since a partial key would invent duplicates. A table
    that does not exist, or lacks the column the batch is selected by, gives ``row_count`` 0 and
    no metrics (the gate reports such a batch as not evaluated).
    """
    started = time.perf_counter()
    measured_at = _utc_now()
    types = _column_types(con, spec.table)
    named = [*spec.key_columns, *spec.numeric_columns]
    if spec.timestamp_column:
        named.append(spec.timestamp_column)
    if spec.batch_column:
        named.append(spec.batch_column)
    skipped = tuple(dict.fromkeys(column for column in named if column not in types))
    if not types or spec.batch_column in skipped:
        log.warning(
            "Table health: %s %s; recording 0 rows",
            spec.table,
            f"has no column {spec.batch_column} to select the batch by"
            if types
            else "does not exist",
        )
        return TableHealth(
            table=spec.table,
            label=spec.label,
            row_count=0,
            missing_pct=None,
            duplicate_rate=None,
            outlier_rate=None,
            freshness_hours=None,
            measured_at=measured_at,
            skipped_columns=skipped,
            seconds=_since(started),
        )
    if skipped:
        log.warning(
            "Table health: %s lacks column(s) %s; measuring the rest",
            spec.table,
            ", ".join(skipped),
        )

    columns = list(types)
    keys = list(spec.key_columns) if all(key in types for key in spec.key_columns) else []
    numerics = list(dict.fromkeys(c for c in spec.numeric_columns if c in types))
    timestamp = spec.timestamp_column if spec.timestamp_column in types else None

    # Scan 1: every metric one pass can answer, plus the quartiles that scan 2 needs.
    select = ["count(*)"]
    select += [f"count(*) filter (where {_missing(column, types[column])})" for column in columns]
    if keys:
        keyed = " and ".join(f"not {_missing(key, types[key])}" for key in keys)
        key_tuple = ", ".join(quote_ident(key) for key in keys)
        select += [
            f"count(distinct row({key_tuple})) filter (where {keyed})",
            f"count(*) filter (where {keyed})",
        ]
    select += [
        f"quantile_cont({_as_double(column)}, [0.25, 0.75])"
        for column in numerics  # a list per column: [Q1, Q3]
    ]
    select += [f"count({_as_double(column)})" for column in numerics]
    if timestamp:
        select.append(f"max({_as_timestamp(timestamp, types[timestamp])})")
    sql = f"select {', '.join(select)} from {_quote_table(spec.table)} where ({spec.where})"
    values = list(con.execute(sql, spec.params).fetchone())

    row_count = int(values.pop(0))
    missing_counts = [values.pop(0) for _ in columns]
    missing_pct = {
        column: (100.0 * count / row_count if row_count else None)
        for column, count in zip(columns, missing_counts, strict=True)
    }
    duplicate_rate = None
    if keys:
        distinct_keys, keyed_rows = values.pop(0), values.pop(0)
        duplicate_rate = 1.0 - distinct_keys / keyed_rows if keyed_rows else None
    quartiles = [values.pop(0) for _ in numerics]
    numeric_counts = [int(values.pop(0)) for _ in numerics]
    newest = values.pop(0) if timestamp else None
    freshness_hours = None
    if newest is not None:
        end_of_day = datetime.combine(as_of_date + timedelta(days=1), datetime.min.time())
        freshness_hours = (end_of_day - newest).total_seconds() / 3600
    outlier_rate = (
        _outlier_rate(con, spec, dict(zip(numerics, quartiles, strict=True)), sum(numeric_counts))
        if numerics
        else None
    )

    health = TableHealth(
        table=spec.table,
        label=spec.label,
        row_count=row_count,
        missing_pct=missing_pct,
        duplicate_rate=duplicate_rate,
        outlier_rate=outlier_rate,
        freshness_hours=freshness_hours,
        measured_at=measured_at,
        skipped_columns=skipped,
        seconds=_since(started),
    )
    log.info("Table health of %s: %d rows (%.2f s)", spec.label, row_count, health.seconds)
    return health


def _outlier_rate(
    con: duckdb.DuckDBPyConnection,
    spec: HealthSpec,
    quartiles: dict[str, list[float | None] | None],
    values: int,
) -> float | None:
    """Scan 2: the share of the ``values`` numbers outside their column's fences, reading only
    the numeric columns. Fences come from the quartiles of scan 1 (``[Q1, Q3]`` per column)."""
    if not values:
        return None
    fences = [
        (
            column,
            q[0] - OUTLIER_IQR_FACTOR * (q[1] - q[0]),
            q[1] + OUTLIER_IQR_FACTOR * (q[1] - q[0]),
        )
        for column, q in quartiles.items()
        if q is not None and q[0] is not None and q[1] is not None
    ]
    if not fences:
        return 0.0
    counts = " + ".join(
        f"count(*) filter (where {_as_double(column)} not between ? and ?)"
        for column, _, _ in fences
    )
    (outliers,) = con.execute(
        f"select {counts} from {_quote_table(spec.table)} where ({spec.where})",
        [*(bound for _, low, high in fences for bound in (low, high)), *spec.params],
    ).fetchone()
    return outliers / values


def _replace_rows(
    con: duckdb.DuckDBPyConnection,
    table: str,
    rows: pa.Table,
    *,
    run_id: str,
    stage: str,
    as_of_date: date,
) -> None:
    """Delete the rows of (run_id, stage, as_of_date) and insert ``rows``, all or nothing."""
    view = f"_quality_rows_{id(rows)}"
    names = ", ".join(quote_ident(name) for name in rows.column_names)
    with transaction(con):
        con.execute(
            f"delete from {table} where run_id = ? and stage = ? and as_of_date = ?",
            [run_id, stage, as_of_date],
        )
        if rows.num_rows:
            con.register(view, rows)
            try:
                con.execute(
                    f"insert into {table} ({names}) select {names} from {quote_ident(view)}"
                )
            finally:
                con.unregister(view)


def _column_types(con: duckdb.DuckDBPyConnection, table: str) -> dict[str, str]:
    """Column name -> DuckDB type from the catalog, in table order; empty when no such table."""
    catalog, schema, name = _table_parts(table)
    rows = con.execute(
        """
        select column_name, data_type from information_schema.columns
        where table_catalog = coalesce(?, current_database())
          and table_schema = coalesce(?, current_schema())
          and table_name = ?
        order by ordinal_position
        """,
        [catalog, schema, name],
    ).fetchall()
    return {column: data_type for column, data_type in rows}


def _table_parts(table: str) -> tuple[str | None, str | None, str]:
    parts = table.split(".")
    if len(parts) > 3:
        raise ValueError(f"Not a table name: {table!r}")
    catalog = parts[0] if len(parts) == 3 else None
    schema = parts[-2] if len(parts) >= 2 else None
    return catalog, schema, parts[-1]


def _quote_table(table: str) -> str:
    return ".".join(quote_ident(part) for part in _table_parts(table) if part is not None)


def _missing(column: str, data_type: str) -> str:
    """Null, or for text an empty or whitespace-only value (raw tables hold CSV text)."""
    quoted = quote_ident(column)
    if not data_type.upper().startswith("VARCHAR"):
        return f"({quoted} is null)"
    # Only a value sorting before '!' (empty, or starting with a space or control character) can
    # be blank, so trim() runs on those few. CASE, unlike AND, skips the rest: 6x faster on 1M.
    return (
        f"(case when {quoted} is null then true when {quoted} >= '!' then false "
        f"else trim({quoted}, {_BLANK_CHARACTERS}) = '' end)"
    )


def _as_timestamp(column: str, data_type: str) -> str:
    """Raw tables hold times as text, read as dbt's staging reads them (an offset converted to
    UTC, ``core.sql_text.parse_timestamp``); a mart's are timestamps already."""
    if not data_type.upper().startswith("VARCHAR"):
        return f"try_cast({quote_ident(column)} as timestamp)"
    return parse_timestamp(clean(column))


def _as_double(column: str) -> str:
    """Raw tables hold numbers as text; a value that does not parse is not a number (null)."""
    return f"try_cast({quote_ident(column)} as double)"


def _observed_json(value: Any) -> str | None:
    return None if value is None else json.dumps(json_safe(value), allow_nan=False)


def _as_int(value: Any) -> int | None:
    return None if value is None else int(value)


def _utc_now() -> datetime:
    """UTC without a zone: the history's ``timestamp`` columns hold UTC wall-clock times."""
    return datetime.now(UTC).replace(tzinfo=None)


def _naive_utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo is None else moment.astimezone(UTC).replace(tzinfo=None)


def _since(started: float) -> float:
    return round(time.perf_counter() - started, 3)
