"""The erasure log: which people were forgotten (``pipeline.erasure``), as hashes only.

Declared in the core because two layers read it: the erasure writes it, and the loader drops the
landing rows of an erased id when old files are loaded again.
"""

from __future__ import annotations

import duckdb

ERASURE_TABLE = "audit.erasure_requests"


def ensure_erasure_table(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("create schema if not exists audit")
    con.execute(
        f"""
        create table if not exists {ERASURE_TABLE} (
            request_id integer primary key,
            -- SHA-256 of every customer id of the person (source records merged into them)
            customer_id_sha256 varchar[] not null,
            anonymous_id_sha256 varchar[] not null,
            requested_at timestamp not null,
            requested_by varchar not null,
            reason varchar not null,
            -- rows deleted per table (JSON: table -> count), never the rows themselves
            rows_deleted json not null
        )
        """
    )


def erased_ids_sql() -> str:
    """A subquery of the hashed ids erasure keeps out (one column, ``id_sha256``)."""
    return (
        f"select unnest(customer_id_sha256 || anonymous_id_sha256) as id_sha256 "
        f"from {ERASURE_TABLE}"
    )
