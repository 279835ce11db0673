"""Versioned segment tables in the warehouse's ``segments`` schema.

A recluster writes a version (its metadata, every customer's segment, the personas, the id
lineage, the transitions from the previous version and the fitted model) in one transaction, as a
``candidate`` or, when it fails the acceptance thresholds, as ``rejected``. Publishing flips a
candidate to ``published`` and, unless a newer as-of date is already current, makes it current.
Readers use ``segments.current_segments``; which version is current is the latest row of
``segments.current_changes`` (publish or rollback, with who, when and why), so a run that fails
at any point leaves the previous version current, and a rollback is one row in one transaction.
After each publish and rollback the current version is also written to the published copy
(``core.read_copy``), the file analysts and tools read, swapped into place whole.

Versions are immutable: later events only change their status (``superseded`` by a re-run of
the same date, ``failed`` when left unpublished, ``rolled_back``, ``retired`` once retention has
pruned their member rows; the metadata, personas and lineage stay).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import date, datetime

import duckdb
import numpy as np
import pandas as pd

from core.read_copy import refresh_published_copy
from core.warehouse import drop_primary_key, transaction

log = logging.getLogger(__name__)

REUSABLE_STATUSES = ("published", "superseded", "rolled_back")


class PublishError(RuntimeError):
    """A version cannot be published (unknown, not a candidate, or incomplete)."""


class RollbackError(RuntimeError):
    """A version cannot be made current again (unknown, never published, or pruned)."""


@dataclass(frozen=True)
class Candidate:
    as_of_date: date
    run_id: str
    algorithm: str
    k: int
    assignments: pd.DataFrame  # customer_id, segment_id, segment_name
    profiles: pd.DataFrame  # segment_id, segment_name, description, customer_count, share, ...
    scores: dict = field(default_factory=dict)
    params: dict = field(default_factory=dict)
    status: str = "candidate"  # or "rejected"
    status_reason: str | None = None
    mode: str = "full"
    mode_reason: str | None = None
    model_version_id: int | None = None  # assign mode: the version whose model assigned
    previous_version_id: int | None = None
    config: dict = field(default_factory=dict)
    library_versions: dict = field(default_factory=dict)
    input_fingerprint: str | None = None
    feature_stats: pd.DataFrame | None = None  # segment_id, feature, mean, median, ...
    lineage: pd.DataFrame | None = None  # segment_id, outcome, member_overlap
    transitions: pd.DataFrame | None = None  # from_segment_id, to_segment_id, customer_count
    # customer_id, previous_segment_id, segment_id, change (entered/exited/moved/stayed)
    membership_changes: pd.DataFrame | None = None
    model: bytes | None = None


_TABLES = (
    """
    create table if not exists segments.segment_versions (
        version_id integer primary key,
        as_of_date date not null,
        created_at timestamp not null,
        published_at timestamp,
        algorithm varchar not null,
        k integer not null,
        silhouette double,
        davies_bouldin double,
        calinski_harabasz double,
        customer_count integer not null,
        status varchar not null,
        status_reason varchar,
        run_id varchar,
        params json
    )
    """,
    """
    create table if not exists segments.customer_segments (
        version_id integer not null,
        customer_id varchar not null,
        segment_id integer not null,
        segment_name varchar not null
    )
    """,
    """
    create table if not exists segments.segment_profiles (
        version_id integer not null,
        segment_id integer not null,
        segment_name varchar not null,
        customer_count integer not null,
        share double not null,
        primary key (version_id, segment_id)
    )
    """,
    """
    create table if not exists segments.segment_feature_stats (
        version_id integer not null,
        segment_id integer not null,
        feature varchar not null,
        mean double,
        median double,
        population_mean double,
        z_score double,
        primary key (version_id, segment_id, feature)
    )
    """,
    """
    create table if not exists segments.segment_lineage (
        version_id integer not null,
        segment_id integer not null,
        previous_version_id integer,
        outcome varchar not null,
        member_overlap double,
        primary key (version_id, segment_id)
    )
    """,
    """
    create table if not exists segments.segment_transitions (
        from_version_id integer,
        to_version_id integer not null,
        from_segment_id integer,
        to_segment_id integer,
        customer_count integer not null
    )
    """,
    """
    create table if not exists segments.segment_membership_changes (
        version_id integer not null,
        previous_version_id integer,
        customer_id varchar not null,
        previous_segment_id integer,
        segment_id integer,
        change varchar not null
    )
    """,
    """
    create table if not exists segments.segment_models (
        version_id integer primary key,
        model blob not null
    )
    """,
    """
    create table if not exists segments.current_changes (
        change_id integer primary key,
        version_id integer not null,
        previous_version_id integer,
        action varchar not null,
        changed_at timestamp not null,
        changed_by varchar not null,
        reason varchar
    )
    """,
)
# Columns added after the first release: added in place to warehouses created before.
_ADDED_COLUMNS = {
    "segment_versions": (
        "mode varchar",
        "mode_reason varchar",
        "model_version_id integer",
        "previous_version_id integer",
        "stability_ari double",
        "scores json",
        "config json",
        "library_versions json",
        "input_fingerprint varchar",
        "members_pruned_at timestamp",
    ),
    "segment_profiles": ("description varchar", "top_traits json"),
    "segment_lineage": ("matched_version_id integer", "reason varchar"),
}


# No primary key on the per-customer tables of a version (customer_segments,
# segment_membership_changes): a version's rows are written once, in one transaction, from a
# frame indexed by customer id (one row each; the tests check it), and pruned by version. With the
# key (version_id, customer_id), inserting a million customers' rows took 2.1-2.6 s against
# 0.6-1.1 s without, and five versions' file 264 MB against 29 MB: the key's index grows by every
# customer every night (docs/benchmarks.md).
_UNKEYED = ("customer_segments", "segment_membership_changes")


def ensure_segments_schema(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("create schema if not exists segments")
    for statement in _TABLES:
        con.execute(statement)
    for table in _UNKEYED:  # warehouses made before 2026-12-06 have the key
        ddl = next(statement for statement in _TABLES if f"segments.{table} (" in statement)
        drop_primary_key(con, "segments", table, ddl)
    for table, columns in _ADDED_COLUMNS.items():
        for column in columns:
            con.execute(f"alter table segments.{table} add column if not exists {column}")
    con.execute(
        """
        create or replace view segments.current_version as
        select segment_versions.*, current_changes.changed_at as current_since,
            current_changes.action as current_by_action,
            current_changes.changed_by as current_by
        from segments.segment_versions
        inner join (
            select * from segments.current_changes order by change_id desc limit 1
        ) as current_changes
            on segment_versions.version_id = current_changes.version_id
        """
    )
    con.execute(
        """
        create or replace view segments.current_segments as
        select
            customer_segments.customer_id,
            customer_segments.segment_id,
            customer_segments.segment_name,
            current_version.version_id,
            current_version.as_of_date
        from segments.customer_segments
        inner join segments.current_version
            on customer_segments.version_id = current_version.version_id
        """
    )
    # Warehouses from before the change log: the newest published version is current.
    has_changes = con.execute("select count(*) from segments.current_changes").fetchone()[0]
    if not has_changes:
        con.execute(
            """
            insert into segments.current_changes
            select 1, version_id, null, 'publish', coalesce(published_at, created_at),
                'migration', 'newest published version when the change log was introduced'
            from segments.segment_versions
            where status = 'published'
            order by as_of_date desc, published_at desc, version_id desc
            limit 1
            """
        )


def _insert_frame(con: duckdb.DuckDBPyConnection, table: str, frame: pd.DataFrame) -> None:
    con.register("frame_to_insert", frame)
    try:
        con.execute(f"insert into segments.{table} by name select * from frame_to_insert")
    finally:
        con.unregister("frame_to_insert")


def _json(value) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def write_version(con: duckdb.DuckDBPyConnection, candidate: Candidate) -> int:
    """Store a version with all its rows in one transaction; returns its id."""
    ensure_segments_schema(con)
    assignments = candidate.assignments[["customer_id", "segment_id", "segment_name"]]
    profiles = candidate.profiles[
        ["segment_id", "segment_name", "description", "customer_count", "share", "top_traits"]
    ].copy()
    profiles["top_traits"] = profiles["top_traits"].map(_json)
    with transaction(con):
        version_id = int(
            con.execute(
                "select coalesce(max(version_id), 0) + 1 from segments.segment_versions"
            ).fetchone()[0]
        )
        scores = candidate.scores
        con.execute(
            """
            insert into segments.segment_versions by name
            select ? as version_id, ? as as_of_date, now()::timestamp as created_at,
                ? as algorithm, ? as k, ? as silhouette, ? as davies_bouldin,
                ? as calinski_harabasz, ? as customer_count, ? as status, ? as status_reason,
                ? as run_id, ? as params, ? as mode, ? as mode_reason, ? as model_version_id,
                ? as previous_version_id, ? as stability_ari, ? as scores, ? as config,
                ? as library_versions, ? as input_fingerprint
            """,
            [
                version_id,
                candidate.as_of_date,
                candidate.algorithm,
                candidate.k,
                scores.get("silhouette"),
                scores.get("davies_bouldin"),
                scores.get("calinski_harabasz"),
                len(assignments),
                candidate.status,
                candidate.status_reason,
                candidate.run_id,
                _json(candidate.params),
                candidate.mode,
                candidate.mode_reason,
                candidate.model_version_id or version_id,
                candidate.previous_version_id,
                scores.get("stability_ari"),
                _json(scores),
                _json(candidate.config),
                _json(candidate.library_versions),
                candidate.input_fingerprint,
            ],
        )
        _insert_frame(con, "customer_segments", assignments.assign(version_id=version_id))
        _insert_frame(con, "segment_profiles", profiles.assign(version_id=version_id))
        if candidate.feature_stats is not None and not candidate.feature_stats.empty:
            stats = candidate.feature_stats.drop(columns=["population_std"], errors="ignore")
            _insert_frame(con, "segment_feature_stats", stats.assign(version_id=version_id))
        if candidate.lineage is not None and not candidate.lineage.empty:
            lineage = candidate.lineage.assign(
                version_id=version_id, previous_version_id=candidate.previous_version_id
            )
            _insert_frame(con, "segment_lineage", lineage)
        if candidate.transitions is not None and not candidate.transitions.empty:
            moves = candidate.transitions.assign(
                from_version_id=candidate.previous_version_id, to_version_id=version_id
            )
            _insert_frame(con, "segment_transitions", moves)
        if candidate.membership_changes is not None:
            changes = candidate.membership_changes.assign(
                version_id=version_id, previous_version_id=candidate.previous_version_id
            )
            _insert_frame(con, "segment_membership_changes", changes)
        if candidate.model is not None:
            con.execute(
                "insert into segments.segment_models values (?, ?)",
                [version_id, candidate.model],
            )
    return version_id


def _current_id(con: duckdb.DuckDBPyConnection) -> int | None:
    row = con.execute("select version_id from segments.current_version").fetchone()
    return None if row is None else int(row[0])


def _record_change(
    con: duckdb.DuckDBPyConnection, version_id: int, action: str, by: str, reason: str | None
) -> None:
    con.execute(
        """
        insert into segments.current_changes
        select coalesce(max(change_id), 0) + 1, ?, ?, ?, now()::timestamp, ?, ?
        from segments.current_changes
        """,
        [version_id, _current_id(con), action, by, reason],
    )


def publish_version(
    con: duckdb.DuckDBPyConnection,
    version_id: int,
    *,
    by: str = "pipeline",
    keep_member_rows: int | None = None,
) -> dict:
    """Publish a complete candidate in one transaction.

    It becomes current unless a version of a later as-of date is current (a backfill of old dates
    does not replace newer segments). An earlier published version of the same as-of date becomes
    ``superseded`` and a leftover candidate of that date ``failed``; versions of other dates are
    not touched. With ``keep_member_rows``, the member rows of the versions outside the newest
    that many written and the newest that many by as-of date (besides the current one and this
    one) are pruned and those versions retired (``retention_retires``).
    """
    ensure_segments_schema(con)
    with transaction(con):
        target = _read_publish_target(con, version_id)
        check_publishable(version_id, target)
        becomes_current = publish_makes_current(target)
        _mark_published(con, version_id, target.as_of_date)
        if becomes_current:
            _record_change(con, version_id, "publish", by, f"as-of {target.as_of_date} published")
        retired = _apply_retention(con, keep_member_rows, version_id) if keep_member_rows else []
    # After the commit: a crash before the swap leaves the previous complete copy for readers,
    # and the rerun of the night (or any later publish) writes it again.
    return {
        "version_id": version_id,
        "as_of_date": target.as_of_date.isoformat(),
        "rows": target.written_rows,
        "current": becomes_current,
        "retired_versions": retired,
        "published_copy": refresh_published_copy(con),
    }


@dataclass(frozen=True)
class PublishTarget:
    """What publishing a version depends on, as read inside the publishing transaction."""

    as_of_date: date
    status: str
    expected_rows: int  # the customer count recorded with the version
    written_rows: int  # its member rows actually stored
    rollback_since: tuple[datetime, str] | None  # (when, by whom) since it was computed
    current_as_of: date | None  # the as-of date of the version current now


def _read_publish_target(con: duckdb.DuckDBPyConnection, version_id: int) -> PublishTarget | None:
    row = con.execute(
        "select as_of_date, status, customer_count from segments.segment_versions "
        "where version_id = ?",
        [version_id],
    ).fetchone()
    if row is None:
        return None
    as_of_date, status, expected_rows = row
    written = con.execute(
        "select count(*) from segments.customer_segments where version_id = ?", [version_id]
    ).fetchone()[0]
    rollback = con.execute(
        """
        select changed_at, changed_by from segments.current_changes
        where action = 'rollback' and changed_at > (
            select created_at from segments.segment_versions where version_id = ?
        )
        order by change_id desc limit 1
        """,
        [version_id],
    ).fetchone()
    current = con.execute("select as_of_date from segments.current_version").fetchone()
    return PublishTarget(
        as_of_date=as_of_date,
        status=status,
        expected_rows=expected_rows,
        written_rows=written,
        rollback_since=None if rollback is None else tuple(rollback),
        current_as_of=None if current is None else current[0],
    )


def check_publishable(version_id: int, target: PublishTarget | None) -> None:
    """Raise ``PublishError`` unless the version is a complete candidate computed after the
    last rollback (its segment ids continue from the version current when it was computed)."""
    if target is None:
        raise PublishError(f"Segment version {version_id} does not exist.")
    if target.status != "candidate":
        raise PublishError(
            f"Segment version {version_id} is '{target.status}', only a candidate can be published."
        )
    if target.written_rows != target.expected_rows:
        raise PublishError(
            f"Segment version {version_id} is incomplete: {target.written_rows} of "
            f"{target.expected_rows} customer rows written."
        )
    if target.rollback_since is not None:
        changed_at, changed_by = target.rollback_since
        raise PublishError(
            f"Segment version {version_id} was computed before the rollback by {changed_by} "
            f"at {changed_at:%Y-%m-%d %H:%M:%S}; re-run its date so its segment ids "
            "continue from the rolled-back-to version."
        )


def publish_makes_current(target: PublishTarget) -> bool:
    """A published version is current unless a later as-of date already is."""
    return target.current_as_of is None or target.as_of_date >= target.current_as_of


def _mark_published(con: duckdb.DuckDBPyConnection, version_id: int, as_of_date: date) -> None:
    """The version is published; an earlier published one of its date is superseded, and a
    leftover candidate of that date failed."""
    con.execute(
        """
        update segments.segment_versions
        set status = 'superseded', status_reason = 'replaced by version ' || ?
        where as_of_date = ? and status = 'published'
        """,
        [version_id, as_of_date],
    )
    # Candidates of this date left by runs that stopped before publishing will never be.
    con.execute(
        """
        update segments.segment_versions
        set status = 'failed',
            status_reason = 'not published; version ' || ? || ' was published instead'
        where as_of_date = ? and status = 'candidate' and version_id <> ?
        """,
        [version_id, as_of_date, version_id],
    )
    con.execute(
        "update segments.segment_versions set status = 'published', "
        "published_at = now()::timestamp where version_id = ?",
        [version_id],
    )


def retention_retires(
    versions: list[tuple[int, date]],
    pruned_ids: set[int],
    kept_ids: set[int],
    keep: int,
    *,
    rollback_targets: set[int] | None = None,
) -> list[int]:
    """The versions (id, as-of date) whose member rows retention prunes: all but the newest
    ``keep`` written (by id), the newest ``keep`` by as-of date (of one date's versions, the
    later ids first) among the ``rollback_targets`` (default: all of ``versions``) and
    ``kept_ids`` (the current version and the one being published), leaving out those already
    pruned.

    In nightly use both rankings name the same versions. By id alone, a backfill of older dates
    would push the recent nights out of the window; by date alone, an old date's version could
    retire while its backfill night still needs it (a nightly run between its recluster and its
    export, its audiences and the next backfilled date's base). After a backfill up to twice
    ``keep`` versions keep their rows, until ``keep`` newer versions are written. A run of
    rejected nights keeps its versions among the newest written, but takes no place of a
    published one among the newest by date: the rollback targets stay ``keep``."""
    targets = (
        versions
        if rollback_targets is None
        else [version for version in versions if version[0] in rollback_targets]
    )
    by_id = sorted((version_id for version_id, _ in versions), reverse=True)[:keep]
    by_date = sorted(targets, key=lambda version: (version[1], version[0]), reverse=True)[:keep]
    kept = {*by_id, *(version_id for version_id, _ in by_date), *kept_ids}
    return sorted(
        version_id
        for version_id, _ in versions
        if version_id not in kept and version_id not in pruned_ids
    )


def _apply_retention(con: duckdb.DuckDBPyConnection, keep: int, published_id: int) -> list[int]:
    """Prune the member rows retention retires and the models no kept version uses; returns
    the retired versions. Their metadata, personas, lineage and transitions stay."""
    rows = con.execute(
        "select version_id, as_of_date, members_pruned_at is not null, "
        "list_contains(?, status) from segments.segment_versions",
        [list(REUSABLE_STATUSES)],
    ).fetchall()
    retired = retention_retires(
        [(int(version_id), as_of_date) for version_id, as_of_date, _, _ in rows],
        {int(version_id) for version_id, _, pruned, _ in rows if pruned},
        {version_id for version_id in (_current_id(con), published_id) if version_id is not None},
        keep,
        rollback_targets={int(version_id) for version_id, _, _, reusable in rows if reusable},
    )
    if retired:
        _prune_member_rows(con, retired)
    _drop_unused_models(con)
    return retired


def reusable_as_of_dates(con: duckdb.DuckDBPyConnection) -> set[date]:
    """The as-of dates of the versions a rollback can make current again (published, superseded
    or rolled back, member rows kept; the current version among them): a rollback's audiences
    and report read the marts' and predictions' slices of its version's date."""
    ensure_segments_schema(con)
    return {
        row[0]
        for row in con.execute(
            "select distinct as_of_date from segments.segment_versions "
            "where members_pruned_at is null and list_contains(?, status)",
            [list(REUSABLE_STATUSES)],
        ).fetchall()
    }


def _prune_member_rows(con: duckdb.DuckDBPyConnection, retired: list[int]) -> None:
    for table in ("customer_segments", "segment_membership_changes"):
        con.execute(
            f"delete from segments.{table} where version_id in (select unnest(?::integer[]))",
            [retired],
        )
    con.execute(
        """
        update segments.segment_versions
        set members_pruned_at = now()::timestamp,
            status_reason = 'was ' || status || coalesce(' (' || status_reason || ')', '')
                || '; member rows pruned by retention',
            status = 'retired'
        where version_id in (select unnest(?::integer[]))
        """,
        [retired],
    )


def _drop_unused_models(con: duckdb.DuckDBPyConnection) -> None:
    """Models no kept version uses any more (assign mode reads a model through
    ``model_version_id``)."""
    con.execute(
        """
        delete from segments.segment_models
        where version_id not in (
            select coalesce(model_version_id, version_id) from segments.segment_versions
            where members_pruned_at is null
        )
        """
    )


def rollback_to(con: duckdb.DuckDBPyConnection, version_id: int, *, by: str, reason: str) -> dict:
    """Make an earlier published version current again, in one transaction.

    The version current until now becomes ``rolled_back``; the target is ``published`` and
    current. The change (who, when, why) is a row of ``segments.current_changes``. The next
    nightly run publishes as usual, matching its segment ids against the rolled-back-to version.
    """
    if not reason or not reason.strip():
        raise RollbackError("A rollback needs a reason (it is recorded with the change).")
    ensure_segments_schema(con)
    with transaction(con):
        row = con.execute(
            "select status, members_pruned_at, as_of_date from segments.segment_versions "
            "where version_id = ?",
            [version_id],
        ).fetchone()
        if row is None:
            raise RollbackError(f"Segment version {version_id} does not exist.")
        status, pruned_at, as_of_date = row
        current = _current_id(con)
        if version_id == current:
            raise RollbackError(f"Segment version {version_id} is already current.")
        if pruned_at is not None:
            raise RollbackError(
                f"Segment version {version_id} is retired: its member rows were pruned on "
                f"{pruned_at:%Y-%m-%d} (versions.keep_member_rows)."
            )
        if status not in REUSABLE_STATUSES:
            raise RollbackError(
                f"Segment version {version_id} is '{status}'; only a version that was published "
                f"({', '.join(REUSABLE_STATUSES)}) can be made current again."
            )
        if current is not None:
            con.execute(
                "update segments.segment_versions set status = 'rolled_back', "
                "status_reason = ? where version_id = ?",
                [f"rolled back to version {version_id} by {by}: {reason}", current],
            )
        con.execute(
            "update segments.segment_versions set status = 'published' where version_id = ?",
            [version_id],
        )
        _record_change(con, version_id, "rollback", by, reason)
    return {
        "version_id": version_id,
        "as_of_date": as_of_date.isoformat(),
        "rolled_back_version_id": current,
        "by": by,
        "reason": reason,
        "published_copy": refresh_published_copy(con),
    }


def current_version(con: duckdb.DuckDBPyConnection) -> dict | None:
    """The version readers see now, or None before the first publish."""
    exists = con.execute(
        "select count(*) from information_schema.tables "
        "where table_schema = 'segments' and table_name = 'current_changes'"
    ).fetchone()[0]
    if not exists:
        return None
    return fetch_dict(con, "select * from segments.current_version")


def fetch_dict(con: duckdb.DuckDBPyConnection, sql: str, parameters: list | None = None):
    """The first row of a query as a dict of Python values (dates as ``date``), or None."""
    cursor = con.execute(sql, parameters or [])
    row = cursor.fetchone()
    return None if row is None else dict(zip([d[0] for d in cursor.description], row, strict=True))


def customer_index(ids) -> pd.Index:
    """Customer ids as an index of Python strings. pandas reads DuckDB's varchar as Arrow-backed
    strings, whose lookups (``isin``, ``reindex``, alignment) convert every id to a Python object
    again on each call: at a million customers, seconds per call. Converted once, where read."""
    return pd.Index(np.asarray(ids, dtype=object), dtype=object, name="customer_id")


def version_members(con: duckdb.DuckDBPyConnection, version_id: int) -> pd.Series:
    """Segment id per customer id of one version (empty once retention pruned it)."""
    frame = con.execute(
        "select customer_id, segment_id from segments.customer_segments where version_id = ?",
        [version_id],
    ).df()
    return pd.Series(
        frame["segment_id"].to_numpy(),
        index=customer_index(frame["customer_id"]),
        name="segment_id",
    )


def segment_names(con: duckdb.DuckDBPyConnection, version_id: int) -> dict[int, str]:
    return dict(
        con.execute(
            "select segment_id, segment_name from segments.segment_profiles where version_id = ?",
            [version_id],
        ).fetchall()
    )


def next_segment_id(con: duckdb.DuckDBPyConnection) -> int:
    """The lowest id no segment of any version has had, so a retired id is never reused."""
    ensure_segments_schema(con)
    return int(
        con.execute(
            "select greatest(coalesce(max(segment_id), 0), 0) + 1 from segments.segment_profiles"
        ).fetchone()[0]
    )


def load_model(con: duckdb.DuckDBPyConnection, version_id: int) -> bytes | None:
    row = con.execute(
        "select model from segments.segment_models where version_id = ?", [version_id]
    ).fetchone()
    return None if row is None else bytes(row[0])


def list_versions(con: duckdb.DuckDBPyConnection, limit: int = 20) -> pd.DataFrame:
    ensure_segments_schema(con)
    return con.execute(
        """
        select version_id, as_of_date, status, mode, k, round(silhouette, 3) as silhouette,
            round(stability_ari, 3) as stability_ari, customer_count,
            version_id = (select version_id from segments.current_version) as is_current,
            status_reason
        from segments.segment_versions
        order by version_id desc
        limit ?
        """,
        [limit],
    ).df()
