"""Tables that hold one slice per as-of date (the marts, the predictions), and retention's delete
of the slices no longer kept.

Every night adds a slice of every customer to each such table, so without retention the warehouse
grows by the customer count times the number of dated tables, night after night (about 150 MB a
night at 1M customers, docs/scaling.md). The publish step decides which dates stay (those of the
segment versions a rollback can return to, and the last days before the run's as-of date) and
deletes the rest here; DuckDB reuses the freed blocks at its next checkpoint, so the file stops
growing once the kept window is full.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from datetime import date

import duckdb

from core.warehouse import quote_ident, transaction

log = logging.getLogger(__name__)

AS_OF_COLUMN = "as_of_date"


def dated_tables(con: duckdb.DuckDBPyConnection, schema: str) -> list[str]:
    """The base tables of ``schema`` (in the connection's database) with an ``as_of_date``
    column, as ``schema.table``, in name order. Views are left out: they hold no rows."""
    rows = con.execute(
        """
        select tables.table_name
        from duckdb_tables() as tables
        inner join duckdb_columns() as columns
            on tables.database_name = columns.database_name
            and tables.schema_name = columns.schema_name
            and tables.table_name = columns.table_name
        where tables.database_name = current_database()
            and tables.schema_name = ?
            and columns.column_name = ?
        order by tables.table_name
        """,
        [schema, AS_OF_COLUMN],
    ).fetchall()
    return [f"{schema}.{name}" for (name,) in rows]


def prune_as_of_slices(
    con: duckdb.DuckDBPyConnection,
    tables: Sequence[str],
    *,
    before: date,
    keep_dates: Iterable[date],
) -> dict[str, int]:
    """Delete from each of ``tables`` (``schema.table``) the rows of every as-of date earlier
    than ``before`` that is not one of ``keep_dates``; the slices of ``before`` and later are
    never touched (a backfill of an old date leaves the newer nights alone). One transaction for
    all the tables. Returns the rows deleted per table (tables that lost none left out)."""
    kept = sorted(set(keep_dates))
    deleted: dict[str, int] = {}
    with transaction(con):
        for table in tables:
            schema, name = table.split(".", 1)
            # The range first: the zone maps of the as-of column skip the newer row groups.
            (rows,) = con.execute(
                f"delete from {quote_ident(schema)}.{quote_ident(name)} "
                f"where {AS_OF_COLUMN} < ? and not list_contains(?::date[], {AS_OF_COLUMN})",
                [before, kept],
            ).fetchone()
            if rows:
                deleted[table] = int(rows)
    if deleted:
        log.info(
            "Retention deleted the as-of slices before %s not kept by a segment version: %s",
            before,
            ", ".join(f"{table} {rows:,} rows" for table, rows in deleted.items()),
        )
    return deleted
