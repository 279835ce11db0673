"""The published copy: the read-only DuckDB file analysts and tools query.

The warehouse has one writer at a time, and DuckDB refuses to open a file for writing while
another process holds it open, even read-only. So readers do not open the warehouse: after every
publish and every rollback the pipeline writes ``published.duckdb`` in the warehouse's folder and
swaps it into place with ``os.replace``. A reader that opens the path gets either
the previous complete copy or the new one, never half of one; a reader holding the previous copy
open keeps reading it (its file handle stays valid), and the next night writes a new file beside
it, so no reader can block or fail a night.

What the copy holds: the current version (``segments.current_segments``,
``segments.current_version``, its ``segment_profiles`` and ``segment_feature_stats``), every
version's metadata (``segments.segment_versions``, ``segments.current_changes``), and the slice of
every ``marts`` table for the current version's as-of date (no other schema: it holds no direct
identifiers). ``published_version`` (schema ``main``) says which version and when it was written.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from core.settings import Settings, get_settings
from core.warehouse import utc_session

log = logging.getLogger(__name__)

PUBLISHED_FILE_NAME = "published.duckdb"
# Group may read (analysts share the pipeline's group); no personal data is in the copy.
PUBLISHED_FILE_MODE = 0o640
_ALIAS = "published_copy_new"


def published_path(warehouse_path: Path) -> Path:
    """Where the published copy of the warehouse at ``warehouse_path`` lives."""
    return Path(warehouse_path).with_name(PUBLISHED_FILE_NAME)


def published_path_of(settings: Settings | None = None) -> Path:
    return published_path((settings or get_settings()).warehouse_path)


@contextmanager
def connect_published(settings: Settings | None = None) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-only connection to the published copy: the documented read path (never waits for
    and never blocks a night)."""
    path = published_path_of(settings)
    if not path.exists():
        raise FileNotFoundError(
            f"No published copy at {path} yet: it is written by the first publish (make run)."
        )
    con = utc_session(duckdb.connect(str(path), read_only=True))
    try:
        yield con
    finally:
        con.close()


def _database_file(con: duckdb.DuckDBPyConnection) -> Path | None:
    row = con.execute(
        "select path from duckdb_databases() where database_name = current_database()"
    ).fetchone()
    return Path(row[0]) if row and row[0] else None


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def write_published_copy(
    con: duckdb.DuckDBPyConnection, target: Path | None = None, *, changed_only: bool = False
) -> Path | None:
    """Write the published copy of the warehouse ``con`` is connected to and swap it into place.

    ``target`` defaults to ``published_path`` of that warehouse; an in-memory warehouse (unit
    tests) has no copy unless ``target`` is given. Returns the path written, or None.

    ``changed_only`` (after predict): when the copy in place shows the current version, the new
    one starts from a file copy of it and only the parts that change while a version stays
    current (``_fill_changing``) are rewritten; the version's members, profiles and marts slice,
    millions of rows, were written by the publish and are the same. Otherwise it is written whole.
    """
    if target is None:
        warehouse = _database_file(con)
        if warehouse is None:
            return None
        target = published_path(warehouse)
    target = Path(target)
    current = con.execute("select version_id, as_of_date from segments.current_version").fetchone()
    if current is None:
        return None  # nothing published yet: no copy to show
    version_id, as_of_date = current
    _remove_leftovers(target)
    scratch = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.tmp")
    # Only the changing parts: start from a copy of the copy in place, if it shows this version.
    changing_only = False
    if changed_only and target.exists():
        shutil.copyfile(target, scratch)
        changing_only = _shown_version(scratch) == (version_id, as_of_date)
        if not changing_only:
            scratch.unlink()
    con.execute(f"attach '{str(scratch).replace(chr(39), chr(39) * 2)}' as {_ALIAS}")
    try:
        if changing_only:
            _fill_changing(con, as_of_date)
            con.execute(f"update {_ALIAS}.main.published_version set written_at = now()::timestamp")
        else:
            _fill(con, int(version_id), as_of_date)
        con.execute(f"detach {_ALIAS}")
        os.chmod(scratch, PUBLISHED_FILE_MODE)
        with open(scratch, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(scratch, target)
        _fsync_dir(target.parent)
    except BaseException:
        with contextlib.suppress(duckdb.Error):
            con.execute(f"detach database if exists {_ALIAS}")
        _remove_leftovers(target)
        raise
    log.info("Published copy %s: version %s, as-of %s", target, version_id, as_of_date)
    return target


def refresh_published_copy(
    con: duckdb.DuckDBPyConnection, *, changed_only: bool = False
) -> str | None:
    """Rewrite the readers' copy after a step that changed what it shows (publish, rollback,
    the night's predictions: ``changed_only``, see ``write_published_copy``); its path, or None.
    What the step wrote is already committed when this runs, so a failure here (a full disk)
    must not fail the step: a retry could not redo it. It is logged as an error; readers keep
    the previous copy until the next refresh."""
    try:
        path = write_published_copy(con, changed_only=changed_only)
    except Exception as error:
        log.error(
            "The published copy could not be written (%s: %s); readers see the previous one "
            "until the next publish, rollback or predictions",
            type(error).__name__,
            error,
        )
        return None
    return None if path is None else str(path)


def _shown_version(path: Path) -> tuple | None:
    """The (version id, as-of date) a copy file shows, or None if it cannot be read as one."""
    try:
        with duckdb.connect(str(path), read_only=True) as copy:
            return copy.execute("select version_id, as_of_date from published_version").fetchone()
    except duckdb.Error:
        return None


def _has_table(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> bool:
    return bool(
        con.execute(
            "select count(*) from information_schema.tables where table_catalog = "
            "current_database() and table_schema = ? and table_name = ?",
            [schema, table],
        ).fetchone()[0]
    )


# Small tables that change without a publish (a recluster adds a version; predict its models).
_METADATA = ("current_version", "segment_versions", "current_changes")


def _fill(con: duckdb.DuckDBPyConnection, version_id: int, as_of_date) -> None:
    new = _ALIAS
    con.execute(f"create schema {new}.segments")
    con.execute(f"create schema {new}.marts")
    con.execute(
        f"create table {new}.segments.current_segments as select * from segments.current_segments"
    )
    for name in ("segment_profiles", "segment_feature_stats"):
        con.execute(
            f"create table {new}.segments.{name} as "
            f"select * from segments.{name} where version_id = ?",
            [version_id],
        )
    _fill_changing(con, as_of_date)
    marts = con.execute(
        """
        select table_name, bool_or(column_name = 'as_of_date') as is_sliced
        from information_schema.columns
        where table_schema = 'marts' and table_catalog = current_database()
        group by table_name order by table_name
        """
    ).fetchall()
    for table, is_sliced in marts:
        where = " where as_of_date = ?" if is_sliced else ""
        con.execute(
            f"create table {new}.marts.{_quote(table)} as select * from marts.{_quote(table)}"
            + where,
            [as_of_date] if is_sliced else [],
        )
    con.execute(
        f"""
        create table {new}.main.published_version as
        select ?::integer as version_id, ?::date as as_of_date,
            now()::timestamp as written_at
        """,
        [version_id, as_of_date],
    )


def _fill_changing(con: duckdb.DuckDBPyConnection, as_of_date) -> None:
    """The parts of the copy that change while the current version stays: the versions'
    metadata, and the predictions of the published as-of date (written by the night's predict
    step, after publish) with the models behind them. Replaces them if the copy has them."""
    new = _ALIAS
    for name in _METADATA:
        con.execute(
            f"create or replace table {new}.segments.{name} as select * from segments.{name}"
        )
    if _has_table(con, "segments", "customer_predictions"):
        con.execute(
            f"create or replace table {new}.segments.customer_predictions as "
            "select * from segments.customer_predictions where as_of_date = ?",
            [as_of_date],
        )
    if _has_table(con, "segments", "prediction_models"):
        con.execute(
            f"create or replace table {new}.segments.prediction_models as "
            "select * from segments.prediction_models"
        )


def _remove_leftovers(target: Path) -> None:
    """Scratch files of a copy that was interrupted (a killed process)."""
    for leftover in target.parent.glob(f".{target.name}.*.tmp*"):
        with contextlib.suppress(FileNotFoundError):
            leftover.unlink()


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
