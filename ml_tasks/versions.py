"""Versioned segment tables in the warehouse's ``segments`` schema.

A recluster writes a *candidate* version (its metadata, every customer's segment and the segment
profiles) in one transaction; publishing flips it to *published* in another. Readers use the view
``segments.current_segments``, which only ever shows a published version, so a run that fails at
any point leaves the previous version current.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date

import duckdb
import pandas as pd

from ml_tasks.features import FEATURE_COLUMNS


class PublishError(RuntimeError):
    """A version cannot be published (unknown, not a candidate, or incomplete)."""


@dataclass(frozen=True)
class Candidate:
    as_of_date: date
    run_id: str
    algorithm: str
    k: int
    scores: dict
    params: dict
    assignments: pd.DataFrame  # customer_id, segment_id, segment_name
    profiles: pd.DataFrame  # segment_id, segment_name, customer_count, share, mean_<feature>...


def ensure_segments_schema(con: duckdb.DuckDBPyConnection) -> None:
    mean_columns = ", ".join(f"mean_{c} double" for c in FEATURE_COLUMNS)
    con.execute("create schema if not exists segments")
    con.execute(
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
        """
    )
    con.execute(
        """
        create table if not exists segments.customer_segments (
            version_id integer not null,
            customer_id varchar not null,
            segment_id integer not null,
            segment_name varchar not null,
            primary key (version_id, customer_id)
        )
        """
    )
    con.execute(
        f"""
        create table if not exists segments.segment_profiles (
            version_id integer not null,
            segment_id integer not null,
            segment_name varchar not null,
            customer_count integer not null,
            share double not null,
            {mean_columns},
            primary key (version_id, segment_id)
        )
        """
    )
    con.execute(
        """
        create or replace view segments.current_version as
        select *
        from segments.segment_versions
        where status = 'published'
        order by as_of_date desc, published_at desc, version_id desc
        limit 1
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


def write_candidate(con: duckdb.DuckDBPyConnection, candidate: Candidate) -> int:
    """Store a candidate version with all its rows in one transaction; returns its id."""
    ensure_segments_schema(con)
    assignments = candidate.assignments[["customer_id", "segment_id", "segment_name"]]
    profile_columns = ["segment_id", "segment_name", "customer_count", "share"] + [
        f"mean_{c}" for c in FEATURE_COLUMNS
    ]
    profiles = candidate.profiles[profile_columns]
    con.execute("begin transaction")
    try:
        version_id = con.execute(
            "select coalesce(max(version_id), 0) + 1 from segments.segment_versions"
        ).fetchone()[0]
        con.execute(
            """
            insert into segments.segment_versions values
            (?, ?, now()::timestamp, null, ?, ?, ?, ?, ?, ?, 'candidate', null, ?, ?)
            """,
            [
                version_id,
                candidate.as_of_date,
                candidate.algorithm,
                candidate.k,
                candidate.scores.get("silhouette"),
                candidate.scores.get("davies_bouldin"),
                candidate.scores.get("calinski_harabasz"),
                len(assignments),
                candidate.run_id,
                json.dumps(candidate.params, sort_keys=True, default=str),
            ],
        )
        con.register("candidate_assignments", assignments)
        con.execute(
            "insert into segments.customer_segments "
            "select ?, customer_id, segment_id, segment_name from candidate_assignments",
            [version_id],
        )
        con.register("candidate_profiles", profiles)
        con.execute(
            f"insert into segments.segment_profiles select ?, {', '.join(profile_columns)} "
            "from candidate_profiles",
            [version_id],
        )
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise
    finally:
        con.unregister("candidate_assignments")
        con.unregister("candidate_profiles")
    return int(version_id)


def publish_version(con: duckdb.DuckDBPyConnection, version_id: int) -> dict:
    """Make a complete candidate the current version in one transaction.

    An earlier published version of the same as-of date becomes ``superseded`` (a re-run replaces
    its date's output) and a leftover candidate of that date ``failed``; versions of other dates
    are not touched.
    """
    ensure_segments_schema(con)
    con.execute("begin transaction")
    try:
        row = con.execute(
            "select as_of_date, status, customer_count from segments.segment_versions "
            "where version_id = ?",
            [version_id],
        ).fetchone()
        if row is None:
            raise PublishError(f"Segment version {version_id} does not exist.")
        as_of_date, status, expected_rows = row
        if status != "candidate":
            raise PublishError(
                f"Segment version {version_id} is '{status}', only a candidate can be published."
            )
        written = con.execute(
            "select count(*) from segments.customer_segments where version_id = ?", [version_id]
        ).fetchone()[0]
        if written != expected_rows:
            raise PublishError(
                f"Segment version {version_id} is incomplete: {written} of {expected_rows} "
                "customer rows written."
            )
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
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise
    return {"version_id": version_id, "as_of_date": as_of_date.isoformat(), "rows": written}


def current_version(con: duckdb.DuckDBPyConnection) -> dict | None:
    """The published version readers see now, or None before the first publish."""
    exists = con.execute(
        "select count(*) from information_schema.tables "
        "where table_schema = 'segments' and table_name = 'current_version'"
    ).fetchone()[0]
    if not exists:
        return None
    frame = con.execute("select * from segments.current_version").df()
    return None if frame.empty else frame.iloc[0].to_dict()
