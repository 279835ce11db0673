"""The warehouse under readers that do not take the pipeline's lock (an analyst's DuckDB
session): a writer waits for them, says so, and only gives up with a retried (transient) error;
the file is readable by its owner only."""

from __future__ import annotations

import logging
import stat
import subprocess
import sys
import textwrap
from datetime import date
from pathlib import Path

import duckdb
import pytest

from core.settings import get_settings
from core.warehouse import WarehouseBusyError, connect
from dag_support.failures import permanent_error_hint


@pytest.fixture
def warehouse(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("SEGMENTS_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("SEGMENTS_WAREHOUSE", raising=False)
    with connect() as con:
        con.execute("create table t as select 1 as x")
    return get_settings().warehouse_path


def _hold_open(path: Path, seconds: float) -> subprocess.Popen:
    """Another process holding the warehouse open read-only, as an analyst's session does."""
    reader = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                f"""
                import sys, time, duckdb
                con = duckdb.connect({str(path)!r}, read_only=True)
                print("open", flush=True)
                time.sleep({seconds})
                con.close()
                """
            ),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert reader.stdout.readline().strip() == "open"
    return reader


def test_the_warehouse_and_its_folder_are_private(warehouse):
    assert stat.S_IMODE(warehouse.stat().st_mode) == 0o600
    assert stat.S_IMODE(warehouse.parent.stat().st_mode) & 0o077 == 0


def test_a_writer_waits_for_a_reader_outside_the_pipeline_and_says_so(warehouse, caplog):
    reader = _hold_open(warehouse, 2.0)
    try:
        with caplog.at_level(logging.WARNING), connect() as con:
            con.execute("insert into t values (2)")
    finally:
        reader.wait(timeout=60)
    assert "is held open by" in caplog.text and "published copy" in caplog.text
    with duckdb.connect(str(warehouse), read_only=True) as con:
        assert con.execute("select count(*) from t").fetchone() == (2,)


def test_a_reader_held_past_the_timeout_is_a_retried_busy_error(warehouse, monkeypatch):
    monkeypatch.setenv("SEGMENTS_LOCK_TIMEOUT_S", "1")
    reader = _hold_open(warehouse, 30.0)
    try:
        with pytest.raises(WarehouseBusyError) as caught, connect():
            pass
    finally:
        reader.kill()
        reader.wait()
    assert str(warehouse) in str(caught.value) and "retried" in str(caught.value)
    assert permanent_error_hint(caught.value) is None  # Airflow retries it


def test_dbt_build_meeting_a_reader_is_busy_not_a_dbt_error(warehouse, monkeypatch):
    from transform.dbt_build import DbtBuildError, run_dbt_build

    monkeypatch.setenv("SEGMENTS_LOCK_TIMEOUT_S", "1")
    reader = _hold_open(warehouse, 60.0)
    try:
        with pytest.raises(WarehouseBusyError) as caught:
            run_dbt_build(date(2026, 6, 30))
    finally:
        reader.kill()
        reader.wait()
    assert not isinstance(caught.value, DbtBuildError)
    assert permanent_error_hint(caught.value) is None
