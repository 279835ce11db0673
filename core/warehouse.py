"""The DuckDB warehouse: one writing process at a time.

DuckDB lets one process open a database file for writing. Airflow already serialises the tasks
(one-slot pool, one active run), but backfills, ``make`` targets and tests may still start a second
writer; ``writer_lock`` makes that second writer wait for the first instead of failing with a lock
error.

A process that does not take ``writer_lock`` (an analyst's DuckDB shell or notebook holding the
warehouse open, even read-only) also blocks a writer: DuckDB then refuses the open with "Conflicting
lock is held". ``connect`` and ``wait_until_writable`` treat that as a wait, retried until the lock
timeout, with a log line that says who holds it and where to read instead (the published copy,
``core.read_copy``); only after the timeout is it an error, ``WarehouseBusyError``, which the
pipeline's tasks retry. The warehouse file is readable by its owner only (``0o600``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
from filelock import FileLock, Timeout

from core.settings import Settings, get_settings

log = logging.getLogger(__name__)


class WarehouseBusyError(RuntimeError):
    """Another process held the warehouse for longer than the lock timeout (transient: retried)."""


# DuckDB's message when another process holds the file ("Could not set lock on file ...:
# Conflicting lock is held in <program> (PID n) by user u").
_LOCK_CONFLICT_MARKERS = ("Conflicting lock is held", "Could not set lock on file")
# First wait between two attempts to open a file another process holds; doubles up to the maximum.
_RETRY_FIRST_S = 0.2
_RETRY_MAX_S = 5.0


def is_lock_conflict(error: BaseException | str) -> bool:
    """Whether an error (or an error message, e.g. dbt's) is DuckDB refusing a file that another
    process holds open."""
    return any(marker in str(error) for marker in _LOCK_CONFLICT_MARKERS)


def _holder(error: BaseException) -> str:
    """Who holds the file, from DuckDB's message ("in python3 (PID 123) by user ann")."""
    text = str(error)
    start = text.find("Conflicting lock is held in ")
    if start < 0:
        return "another process"
    return text[start + len("Conflicting lock is held in ") :].splitlines()[0].rstrip(". ")


def utc_session(con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    """``con`` with its session time zone UTC. DuckDB takes the machine's (``TZ``) otherwise, and
    turns a ``timestamptz`` into text or a plain timestamp in it: ``now()::timestamp`` (the load
    log's times) and a ``%z`` date format's parse would be local times written as UTC. dbt's
    profile sets the same (``dbt_project/profiles.yml``)."""
    con.execute("set TimeZone = 'UTC'")
    return con


def open_with_retry(
    path: Path, *, read_only: bool = False, timeout_s: float, what: str = "Warehouse"
) -> duckdb.DuckDBPyConnection:
    """``duckdb.connect`` that waits while another process holds the file, up to ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    pause = _RETRY_FIRST_S
    logged = False
    while True:
        try:
            return utc_session(duckdb.connect(str(path), read_only=read_only))
        except duckdb.IOException as error:
            if not is_lock_conflict(error):
                raise
            if not logged:
                log.warning(
                    "%s %s is held open by %s; waiting up to %.0f s for it to close (analysts "
                    "and tools should read the published copy instead: docs/outputs.md)",
                    what,
                    path,
                    _holder(error),
                    timeout_s,
                )
                logged = True
            if time.monotonic() + pause > deadline:
                raise WarehouseBusyError(
                    f"{what} {path} stayed open in {_holder(error)} for {timeout_s:.0f} s, so it "
                    "could not be opened for writing; close that session (analysts read the "
                    "published copy, docs/outputs.md) and retry. This is retried, not a data error."
                ) from error
            time.sleep(pause)
            pause = min(pause * 2, _RETRY_MAX_S)


def apply_resource_limits(con: duckdb.DuckDBPyConnection, settings: Settings) -> None:
    """Set DuckDB's memory limit and spill directory on a warehouse connection, from the
    settings (``SEGMENTS_DUCKDB_MEMORY_LIMIT``, ``SEGMENTS_DUCKDB_TEMP_DIR``): a query larger than
    the limit spills there instead of taking the machine's memory. dbt sets the same two through
    its profile (``dbt_project/profiles.yml``)."""
    settings.spill_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        con.execute(f"set memory_limit = '{_sql_text(settings.duckdb_memory_limit)}'")
    except duckdb.Error as error:
        raise ValueError(
            f"SEGMENTS_DUCKDB_MEMORY_LIMIT={settings.duckdb_memory_limit!r} is not a memory "
            f"size DuckDB accepts (e.g. 2GB, 512MB): {error}"
        ) from error
    # A second connection to a file this process has open shares its database, and DuckDB
    # refuses to switch the spill directory once it has been used, even to the same path.
    spill = str(settings.spill_dir)
    if con.execute("select current_setting('temp_directory')").fetchone()[0] != spill:
        con.execute(f"set temp_directory = '{_sql_text(spill)}'")


def _sql_text(value: str) -> str:
    return value.replace("'", "''")


def wait_until_writable(settings: Settings | None = None) -> None:
    """Wait (``open_with_retry``) until no other process holds the warehouse, then close it:
    for a writer that opens the file itself (dbt). The caller holds ``writer_lock``."""
    settings = settings or get_settings()
    open_with_retry(settings.warehouse_path, timeout_s=settings.lock_timeout_s).close()
    make_private(settings.warehouse_path)


def make_private(path: Path) -> None:
    """Owner read/write only, for a file that may hold personal data (the warehouse, its WAL)."""
    for candidate in (path, path.with_name(path.name + ".wal")):
        with contextlib.suppress(FileNotFoundError):
            if candidate.stat().st_mode & 0o077:
                os.chmod(candidate, 0o600)


@contextmanager
def writer_lock(settings: Settings | None = None, timeout_s: float | None = None) -> Iterator[None]:
    """Hold the single-writer lock of the warehouse (waits for the current holder)."""
    settings = settings or get_settings()
    settings.warehouse_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    # One lock object per path in this process, so nested use (a task that holds the lock and
    # then opens a connection) re-enters instead of deadlocking on itself.
    lock = FileLock(str(settings.lock_path), is_singleton=True, thread_local=False)
    timeout = settings.lock_timeout_s if timeout_s is None else timeout_s
    try:
        lock.acquire(timeout=0)
    except Timeout:
        log.info(
            "Warehouse %s is in use by another writer; waiting up to %.0f s",
            settings.warehouse_path,
            timeout,
        )
        try:
            lock.acquire(timeout=timeout)
        except Timeout as exc:
            raise WarehouseBusyError(
                f"Warehouse {settings.warehouse_path} stayed locked by another process for "
                f"{timeout:.0f} s (lock file {settings.lock_path})."
            ) from exc
    try:
        yield
    finally:
        lock.release()


@contextmanager
def connect(
    settings: Settings | None = None, *, read_only: bool = False
) -> Iterator[duckdb.DuckDBPyConnection]:
    """Open the warehouse with its memory limit and spill directory set
    (``apply_resource_limits``). Writers hold the file lock for the whole connection."""
    settings = settings or get_settings()
    path: Path = settings.warehouse_path
    if read_only:
        if not path.exists():
            raise FileNotFoundError(
                f"Warehouse {path} does not exist yet: run the pipeline first (make run)."
            )
        # A read-only open still conflicts with an open writer, so wait for the lock too.
        with writer_lock(settings):
            con = open_with_retry(path, read_only=True, timeout_s=settings.lock_timeout_s)
            try:
                apply_resource_limits(con, settings)
                yield con
            finally:
                con.close()
        return
    with writer_lock(settings):
        con = open_with_retry(path, timeout_s=settings.lock_timeout_s)
        make_private(path)
        try:
            apply_resource_limits(con, settings)
            yield con
        finally:
            con.close()


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """All or nothing. A failed commit has already rolled back, so the rollback here must not
    replace the real error with "no transaction is active"."""
    con.execute("begin transaction")
    try:
        yield
        con.execute("commit")
    except BaseException:
        with contextlib.suppress(duckdb.TransactionException):
            con.execute("rollback")
        raise


def quote_ident(identifier: str) -> str:
    """A SQL identifier (column, table or view name), double-quoted and escaped."""
    return '"' + identifier.replace('"', '""') + '"'


def drop_primary_key(con: duckdb.DuckDBPyConnection, schema: str, table: str, ddl: str) -> bool:
    """Move the rows of ``schema.table`` into the table ``ddl`` creates, the same columns without
    the primary key (DuckDB cannot drop a key in place), when the table still has its key: once,
    for warehouses made before the key was dropped. Views over the table bind by name and keep
    working. Returns whether it moved anything."""
    keyed = con.execute(
        "select count(*) from duckdb_constraints() where schema_name = ? and table_name = ? "
        "and constraint_type = 'PRIMARY KEY'",
        [schema, table],
    ).fetchone()[0]
    if not keyed:
        return False
    name, kept = quote_ident(table), quote_ident(f"{table}_keyed")
    with transaction(con):
        con.execute(f"alter table {quote_ident(schema)}.{name} rename to {kept}")
        con.execute(ddl)
        con.execute(
            f"insert into {quote_ident(schema)}.{name} by name "
            f"select * from {quote_ident(schema)}.{kept}"
        )
        con.execute(f"drop table {quote_ident(schema)}.{kept}")
    log.info("%s.%s: the primary key dropped, its rows kept", schema, table)
    return True
