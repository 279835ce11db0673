"""The right to be forgotten (GDPR art. 17, CCPA deletion): remove one person from the warehouse
and the audience exports, and keep them out when old landing files are loaded again.

``forget(customer_id, by=..., reason=...)`` (``make forget CUSTOMER=...``, or the
``customer_erasure`` DAG):

1. finds every id of the person: the given id, the resolved customer id and every source record
   identity resolution merged into it, the anonymous web ids seen with them, and their e-mail
   addresses and phone numbers (to find quarantined lines the CSV reader could not split);
2. in one transaction, deletes their rows from every table of the raw, quarantine, staging,
   intermediate, pii, marts and segments schemas (every version's member rows and membership
   changes included), drops the identity maps the incremental states that sum several people
   kept (so they rebuild the next night), and records the request in
   ``audit.erasure_requests``: SHA-256 hashes of the ids, when, who, why and how many rows each
   table lost, never the identifiers themselves;
3. rewrites the current version's audience export and deletes every other export folder that
   holds the person, and rewrites the published copy (``core.read_copy``).

Segment metadata and the counts of past versions stay. The loader reads
``audit.erasure_requests`` and drops the rows of an erased id when a landing file is loaded
again (counted as erased in ``raw._load_log``). The landing files themselves belong to the
upstream system, which must delete the person there too (docs/privacy.md).
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime

import duckdb

from core.erasure import ERASURE_TABLE, ensure_erasure_table
from core.read_copy import write_published_copy
from core.settings import Settings, get_settings
from core.warehouse import connect, quote_ident, transaction

log = logging.getLogger(__name__)

SCHEMAS = ("raw", "quarantine", "staging", "intermediate", "pii", "marts", "segments")
# The columns that hold a customer id (identity resolution's similar_email pairs hold two).
ID_COLUMNS = ("customer_id", "source_customer_id", "left_customer_id", "right_customer_id")
# The side tables dbt's incremental states keep beside their own (`<model>__changes`,
# `__replaced`, `__touched`, `__identity`: macro state_side_table in dbt_project/macros/):
# copies of a night's working sets and of the identity map a state was built with, not tonight's
# map, so they never widen the person; the person's rows in them are deleted like any other.
SIDE_TABLE_MARK = "__"
# The identity map kept by the states attached to it (macros attributed_state,
# identity_joined_state, customer_state). A state that sums several source ids per row (a
# session's events of several people) cannot have a person's share taken out of such a sum, so
# the erasure drops the kept maps and those states rebuild the next night, with the states built
# on them.
KEPT_IDENTITY_MAP_SUFFIX = "__identity"


class ErasureError(RuntimeError):
    """The request cannot be carried out (no such customer, or no reason given)."""


@dataclass(frozen=True)
class Person:
    customer_ids: tuple[str, ...]
    anonymous_ids: tuple[str, ...]
    contact_values: tuple[str, ...]  # e-mail addresses and phone numbers, for raw lines


def forget(customer_id: str, *, by: str, reason: str, settings: Settings | None = None) -> dict:
    """Erase the person with ``customer_id`` everywhere; returns what was removed (counts)."""
    if not reason or len(reason.strip()) < 3:
        raise ErasureError("An erasure needs a reason (it is recorded with the request).")
    settings = settings or get_settings()
    with connect(settings) as con:
        ensure_erasure_table(con)
        person = find_person(con, customer_id)
        if not person.customer_ids:
            raise ErasureError(f"No customer {customer_id!r} in the warehouse.")
        with transaction(con):
            deleted = _delete_everywhere(con, person)
            request_id = _record(con, person, by, reason, deleted)
        exports = _rewrite_exports(con, settings, person)
        write_published_copy(con)  # the analysts' copy (core.read_copy) loses the person too
    result = {
        "request_id": request_id,
        "customer_ids_erased": len(person.customer_ids),
        "rows_deleted": deleted,
        "exports_removed": exports,
    }
    log.info("Erasure request %d by %s: %s", request_id, by, json.dumps(result["rows_deleted"]))
    return result


def hashed(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def find_person(con: duckdb.DuckDBPyConnection, customer_id: str) -> Person:
    """Every id and contact value of the person ``customer_id`` names."""
    ids = {customer_id}
    # Tonight's identity map only: a side table may hold an older one (a split since).
    for table in _tables_with(con, {"source_customer_id", "customer_id"}, side_tables=False):
        rows = con.execute(
            f"select customer_id, source_customer_id from {table} "
            "where customer_id in (select unnest(?::varchar[])) "
            "or source_customer_id in (select unnest(?::varchar[]))",
            [sorted(ids), sorted(ids)],
        ).fetchall()
        for row in rows:
            ids.update(value for value in row if value is not None)
    present = set()
    for table in _tables_with(con, {"customer_id"}):
        present.update(
            row[0]
            for row in con.execute(
                f"select distinct customer_id from {table} "
                "where customer_id in (select unnest(?::varchar[]))",
                [sorted(ids)],
            ).fetchall()
        )
    anonymous, contacts = set(), set()
    for table in _tables_with(con, {"customer_id", "anonymous_id"}):
        anonymous.update(
            row[0]
            for row in con.execute(
                f"select distinct anonymous_id from {table} where anonymous_id is not null "
                "and customer_id in (select unnest(?::varchar[]))",
                [sorted(present)],
            ).fetchall()
        )
    for table, columns in _tables_with_any(con, {"email", "phone"}):
        for column in columns:
            contacts.update(
                row[0].strip()
                for row in con.execute(
                    f"select distinct {quote_ident(column)} from {table} "
                    f"where {quote_ident(column)} is not null "
                    "and customer_id in (select unnest(?::varchar[]))",
                    [sorted(present)],
                ).fetchall()
                if row[0] and row[0].strip()
            )
    return Person(tuple(sorted(present)), tuple(sorted(anonymous)), tuple(sorted(contacts)))


def _delete_everywhere(con: duckdb.DuckDBPyConnection, person: Person) -> dict[str, int]:
    deleted: dict[str, int] = {}
    ids = list(person.customer_ids)
    for table, columns in _base_tables(con):
        conditions = [
            f"{quote_ident(c)} in (select unnest(?::varchar[]))" for c in columns if c in ID_COLUMNS
        ]
        params: list = [ids] * len(conditions)
        if "anonymous_id" in columns and person.anonymous_ids:
            conditions.append("anonymous_id in (select unnest(?::varchar[]))")
            params.append(list(person.anonymous_ids))
        if "_raw_line" in columns:
            # A line the CSV reader could not split names the person only in its text.
            needles = [*ids, *person.contact_values]
            conditions.append(
                "list_bool_or([contains(lower(_raw_line), lower(needle)) "
                "for needle in ?::varchar[]])"
            )
            params.append(needles)
        if not conditions:
            continue
        count = con.execute(
            f"delete from {table} where {' or '.join(conditions)}", params
        ).fetchone()[0]
        if count:
            deleted[table] = int(count)
    for schema, name in con.execute(
        "select table_schema, table_name from information_schema.tables "
        "where table_schema in (select unnest(?::varchar[])) and ends_with(table_name, ?)",
        [list(SCHEMAS), KEPT_IDENTITY_MAP_SUFFIX],
    ).fetchall():
        con.execute(f"drop table {quote_ident(schema)}.{quote_ident(name)}")
    return deleted


def _record(
    con: duckdb.DuckDBPyConnection,
    person: Person,
    by: str,
    reason: str,
    deleted: dict[str, int],
) -> int:
    request_id = con.execute(
        f"select coalesce(max(request_id), 0) + 1 from {ERASURE_TABLE}"
    ).fetchone()[0]
    con.execute(
        f"insert into {ERASURE_TABLE} values (?, ?, ?, ?, ?, ?, ?)",
        [
            request_id,
            [hashed(customer_id.strip()) for customer_id in person.customer_ids],
            [hashed(anonymous_id.strip()) for anonymous_id in person.anonymous_ids],
            datetime.now(UTC).replace(tzinfo=None),
            by,
            reason,
            json.dumps(deleted, sort_keys=True),
        ],
    )
    return int(request_id)


def _rewrite_exports(
    con: duckdb.DuckDBPyConnection, settings: Settings, person: Person
) -> list[str]:
    """Rewrite the current version's audiences without the person, then delete every export
    folder that still holds them. Returns the folders removed."""
    from activation.audiences import audiences_dir, export_audiences, exports

    root = audiences_dir(settings)
    if not exports(root):
        return []
    fresh = export_audiences(con, settings=settings, rewrite=True).path
    removed = []
    for folder in exports(root):
        if folder != fresh and _holds(con, folder, person):
            shutil.rmtree(folder)
            removed.append(folder.name)
    return removed


def _holds(con: duckdb.DuckDBPyConnection, folder, person: Person) -> bool:
    files = sorted(str(p) for p in folder.glob("*.parquet"))
    if not files:
        return False
    return bool(
        con.execute(
            "select count(*) from read_parquet(?) where customer_id in "
            "(select unnest(?::varchar[]))",
            [files, list(person.customer_ids)],
        ).fetchone()[0]
    )


def _base_tables(con: duckdb.DuckDBPyConnection) -> list[tuple[str, set[str]]]:
    rows = con.execute(
        """
        select tables.table_schema, tables.table_name, list(columns.column_name)
        from information_schema.tables as tables
        inner join information_schema.columns as columns
            on tables.table_schema = columns.table_schema
            and tables.table_name = columns.table_name
        where tables.table_type = 'BASE TABLE'
            and tables.table_schema in (select unnest(?::varchar[]))
        group by all
        order by all
        """,
        [list(SCHEMAS)],
    ).fetchall()
    return [(f"{quote_ident(s)}.{quote_ident(t)}", set(columns)) for s, t, columns in rows]


def _tables_with(
    con: duckdb.DuckDBPyConnection, needed: set[str], *, side_tables: bool = True
) -> list[str]:
    return [
        table
        for table, columns in _base_tables(con)
        if needed <= columns and (side_tables or SIDE_TABLE_MARK not in table.split(".", 1)[1])
    ]


def _tables_with_any(
    con: duckdb.DuckDBPyConnection, wanted: set[str]
) -> list[tuple[str, list[str]]]:
    return [
        (table, sorted(wanted & columns))
        for table, columns in _base_tables(con)
        if wanted & columns and "customer_id" in columns
    ]
