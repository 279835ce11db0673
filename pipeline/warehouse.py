"""The DuckDB warehouse: one writing process at a time.

DuckDB lets one process open a database file for writing. Airflow already serialises the tasks
(one-slot pool, one active run), but backfills, ``make`` targets and tests may still start a second
writer; ``writer_lock`` makes that second writer wait for the first instead of failing with a lock
error.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
from filelock import FileLock, Timeout

from pipeline.settings import Settings, get_settings

log = logging.getLogger(__name__)

DEFAULT_LOCK_TIMEOUT_S = float(os.environ.get("SEGMENTS_LOCK_TIMEOUT_S", "3600"))


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
    timeout = DEFAULT_LOCK_TIMEOUT_S if timeout_s is None else timeout_s
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
