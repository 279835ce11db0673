"""The DuckDB warehouse: one writing process at a time.

DuckDB lets one process open a database file for writing. Airflow already serialises the tasks
(one-slot pool, one active run), but backfills, ``make`` targets and tests may still start a second
writer; ``writer_lock`` makes that second writer wait for the first instead of failing with a lock
error.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
from filelock import FileLock, Timeout

from core.settings import Settings, get_settings

log = logging.getLogger(__name__)


class WarehouseBusyError(RuntimeError):
    """Another process held the warehouse for longer than the lock timeout."""


@contextmanager
def writer_lock(settings: Settings | None = None, timeout_s: float | None = None) -> Iterator[None]:
    """Hold the single-writer lock of the warehouse (waits for the current holder)."""
    settings = settings or get_settings()
    settings.warehouse_path.parent.mkdir(parents=True, exist_ok=True)
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
    """Open the warehouse. Writers hold the file lock for the whole connection."""
    settings = settings or get_settings()
    path: Path = settings.warehouse_path
    if read_only:
        if not path.exists():
            raise FileNotFoundError(
                f"Warehouse {path} does not exist yet: run the pipeline first (make run)."
            )
        # A read-only open still conflicts with an open writer, so wait for the lock too.
        with writer_lock(settings):
            con = duckdb.connect(str(path), read_only=True)
            try:
                yield con
            finally:
                con.close()
        return
    with writer_lock(settings):
        con = duckdb.connect(str(path))
        try:
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
