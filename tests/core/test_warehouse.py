"""The warehouse under readers that do not take the pipeline's lock (an analyst's DuckDB
session): a writer waits for them, says so, and only gives up with a retried (transient) error;
the file is readable by its owner only."""

from __future__ import annotations

import logging
import os
import stat
import subprocess
import sys
import textwrap
from datetime import date
from pathlib import Path

import duckdb
import pytest
import yaml

from core.settings import get_settings
from core.warehouse import WarehouseBusyError, connect
from dag_support.failures import permanent_error_hint
from tests.conftest import ROOT


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


def test_connections_carry_the_memory_limit_and_spill_directory_from_the_settings(
    tmp_path, monkeypatch
):
    monkeypatch.setenv("SEGMENTS_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("SEGMENTS_WAREHOUSE", raising=False)
    monkeypatch.delenv("SEGMENTS_DUCKDB_TEMP_DIR", raising=False)
    monkeypatch.setenv("SEGMENTS_DUCKDB_MEMORY_LIMIT", "300MB")
    with connect() as con:
        limit, temp = con.execute(
            "select current_setting('memory_limit'), current_setting('temp_directory')"
        ).fetchone()
    assert limit == "286.1 MiB"  # DuckDB reports 300 MB in MiB
    spill = tmp_path / "data" / "duckdb_tmp"
    assert Path(temp) == spill
    assert stat.S_IMODE(spill.stat().st_mode) == 0o700  # spilled pages may hold personal data
    with connect(read_only=True) as con:
        assert con.execute("select current_setting('memory_limit')").fetchone()[0] == limit

    monkeypatch.setenv("SEGMENTS_DUCKDB_MEMORY_LIMIT", "a lot")
    with pytest.raises(ValueError, match="SEGMENTS_DUCKDB_MEMORY_LIMIT='a lot'"), connect():
        pass


# A grouped sort several times larger than 100 MB: spills to disk, or fails without a spill dir.
_BIG_AGGREGATION = (
    "create table grouped as select h, count(*) as n from "
    "(select md5(i::varchar) as h from range(2000000) t(i)) group by h order by h"
)


def test_a_query_larger_than_the_memory_limit_spills_to_the_temp_dir_instead_of_failing(
    tmp_path, monkeypatch
):
    monkeypatch.setenv("SEGMENTS_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("SEGMENTS_WAREHOUSE", raising=False)
    monkeypatch.setenv("SEGMENTS_DUCKDB_MEMORY_LIMIT", "100MB")
    spill = tmp_path / "spill"
    monkeypatch.setenv("SEGMENTS_DUCKDB_TEMP_DIR", str(spill))
    with connect() as con:
        before = spill.stat().st_mtime_ns
        con.execute(_BIG_AGGREGATION)
        assert con.execute("select count(*), sum(n) from grouped").fetchone() == (2_000_000,) * 2
        # A nested connection (a step that opens the warehouse while holding it) shares the
        # database, whose spill directory DuckDB no longer lets anyone set: it is left as is.
        with connect(read_only=False) as nested:
            assert nested.execute("select count(*) from grouped").fetchone() == (2_000_000,)
    assert spill.stat().st_mtime_ns > before  # DuckDB wrote (and removed) its spill files there

    # The same query under the same limit without a place to spill runs out of memory: the
    # spill directory is what made it succeed.
    with duckdb.connect() as con:
        con.execute("set memory_limit = '100MB'")
        con.execute("set temp_directory = ''")
        with pytest.raises(duckdb.OutOfMemoryException):
            con.execute(_BIG_AGGREGATION)


def test_a_connection_reads_and_writes_times_in_utc_on_a_machine_in_another_time_zone(tmp_path):
    """On a machine whose time zone is Berlin (TZ), a timestamptz turned into text or a plain
    timestamp is still UTC: a parse with an offset and the load log's ``now()``."""
    probe = textwrap.dedent(
        """
        from datetime import UTC, datetime
        from core.warehouse import connect
        with connect() as con:
            zone, parsed, now = con.execute(
                "select current_setting('TimeZone'), strftime(strptime("
                "'2026-06-30T11:00:00+0000', '%Y-%m-%dT%H:%M:%S%z'), '%H:%M'), now()::timestamp"
            ).fetchone()
        drift = abs((now - datetime.now(UTC).replace(tzinfo=None)).total_seconds())
        print(zone, parsed, drift < 600)
        """
    )
    env = {
        **os.environ,
        "TZ": "Europe/Berlin",
        "SEGMENTS_DATA_DIR": str(tmp_path / "data"),
        "PYTHONPATH": str(ROOT),
    }
    env.pop("SEGMENTS_WAREHOUSE", None)
    result = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert result.stdout.split() == ["UTC", "11:00", "True"]


def test_dbt_connections_are_in_utc_too():
    profile = yaml.safe_load((ROOT / "dbt_project" / "profiles.yml").read_text())
    (output,) = profile["customer_segmentation"]["outputs"].values()
    assert output["settings"]["TimeZone"] == "UTC"
