"""The published copy: what analysts read, written whole after each publish and rollback."""

from __future__ import annotations

import stat
import subprocess
import sys
import textwrap
from datetime import date

import duckdb
import pytest

from core.read_copy import connect_published, published_path, refresh_published_copy
from core.warehouse import connect
from ml_tasks.versions import publish_version, rollback_to, write_version
from tests.version_candidates import make_candidate


@pytest.fixture
def warehouse(tmp_path, monkeypatch):
    monkeypatch.setenv("SEGMENTS_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("SEGMENTS_WAREHOUSE", raising=False)
    with connect() as con:
        con.execute("create schema marts")
        con.execute("create table marts.customer_features (as_of_date date, customer_id varchar)")
        con.execute(
            "insert into marts.customer_features values "
            "('2026-06-29', 'a'), ('2026-06-30', 'a'), ('2026-06-30', 'b')"
        )
        con.execute("create table marts.undated (x integer)")
        con.execute("insert into marts.undated values (1)")
        con.execute("create schema pii")
        con.execute("create table pii.customer_identifiers as select 'ann@example.com' as email")
    return tmp_path / "warehouse.duckdb"


def _published(path) -> tuple[list, list, list]:
    with duckdb.connect(str(path), read_only=True) as con:
        return (
            con.execute("select version_id, as_of_date from published_version").fetchall(),
            con.execute(
                "select customer_id, segment_id from segments.current_segments order by 1"
            ).fetchall(),
            con.execute(
                "select schema_name from duckdb_schemas() where database_name = current_database() "
                "order by 1"
            ).fetchall(),
        )


def test_publish_writes_the_copy_with_the_current_version_and_its_marts_slice(warehouse):
    assert not published_path(warehouse).exists()
    with connect() as con:
        version = write_version(con, make_candidate(date(2026, 6, 30), {"a": 1, "b": 2}))
        assert not published_path(warehouse).exists()  # a candidate is not published
        publish_version(con, version)

    about, members, schemas = _published(published_path(warehouse))
    assert about == [(version, date(2026, 6, 30))]
    assert members == [("a", 1), ("b", 2)]
    assert ("pii",) not in schemas and ("raw",) not in schemas
    with connect_published() as con:
        assert con.execute("select count(*) from marts.customer_features").fetchone() == (2,)
        assert con.execute("select count(*) from marts.undated").fetchone() == (1,)
    mode = stat.S_IMODE(published_path(warehouse).stat().st_mode)
    assert mode & 0o007 == 0  # not world-readable
    assert not list(warehouse.parent.glob(".published.duckdb.*"))


def test_the_predictions_of_the_published_date_reach_the_copy_when_refreshed(warehouse):
    """The night's predict step runs after publish and refreshes the copy: analysts see the
    predictions of the published as-of date (not other dates') and the models behind them."""
    with connect() as con:
        version = write_version(con, make_candidate(date(2026, 6, 30), {"a": 1, "b": 2}))
        publish_version(con, version)
        with connect_published() as copy:
            assert copy.execute(
                "select count(*) from duckdb_tables() where table_name = 'customer_predictions'"
            ).fetchone() == (0,)
        con.execute(
            "create table segments.customer_predictions (as_of_date date, customer_id varchar, "
            "clv_12m double)"
        )
        con.execute(
            "insert into segments.customer_predictions values "
            "('2026-06-29', 'a', 1.0), ('2026-06-30', 'a', 2.0), ('2026-06-30', 'b', 3.0)"
        )
        con.execute("create table segments.prediction_models as select 1 as model_id")
        assert refresh_published_copy(con) == str(published_path(warehouse))
    with connect_published() as copy:
        assert copy.execute(
            "select customer_id, clv_12m from segments.customer_predictions order by 1"
        ).fetchall() == [("a", 2.0), ("b", 3.0)]
        assert copy.execute("select model_id from segments.prediction_models").fetchall() == [(1,)]


def test_a_rollback_rewrites_the_copy(warehouse):
    with connect() as con:
        first = write_version(con, make_candidate(date(2026, 6, 29), {"a": 1}))
        publish_version(con, first)
        second = write_version(con, make_candidate(date(2026, 6, 30), {"a": 2, "b": 2}))
        publish_version(con, second)
        assert _published(published_path(warehouse))[0] == [(second, date(2026, 6, 30))]
        rollback_to(con, first, by="test", reason="bad night")
    about, members, _ = _published(published_path(warehouse))
    assert about == [(first, date(2026, 6, 29))]
    assert members == [("a", 1)]


def test_a_reader_holding_the_copy_open_blocks_neither_publish_nor_its_own_reads(warehouse):
    with connect() as con:
        first = write_version(con, make_candidate(date(2026, 6, 29), {"a": 1}))
        publish_version(con, first)
    reader = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                f"""
                import sys, duckdb
                con = duckdb.connect({str(published_path(warehouse))!r}, read_only=True)
                print(con.execute("select version_id from published_version").fetchone()[0])
                sys.stdout.flush()
                sys.stdin.readline()  # hold the copy open until told
                print(con.execute("select version_id from published_version").fetchone()[0])
                """
            ),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert reader.stdout.readline().strip() == str(first)
        with connect() as con:  # the warehouse itself is not held by the reader
            second = write_version(con, make_candidate(date(2026, 6, 30), {"a": 2}))
            publish_version(con, second)
        out, _ = reader.communicate("go\n", timeout=60)
    finally:
        reader.kill()
    assert out.strip() == str(first)  # the open copy stays the one it opened, whole
    assert reader.returncode == 0
    assert _published(published_path(warehouse))[0] == [(second, date(2026, 6, 30))]


def test_an_in_memory_warehouse_has_no_copy(tmp_path):
    con = duckdb.connect()
    version = write_version(con, make_candidate(date(2026, 6, 30), {"a": 1}))
    publish_version(con, version)
    assert list(tmp_path.iterdir()) == []


def test_a_copy_that_cannot_be_written_leaves_the_previous_one_and_the_publish_stands(
    warehouse, monkeypatch, caplog
):
    from core import read_copy

    with connect() as con:
        first = write_version(con, make_candidate(date(2026, 6, 29), {"a": 1}))
        publish_version(con, first)

        def disk_full(*args):
            raise OSError(28, "No space left on device")

        monkeypatch.setattr(read_copy, "_fill", disk_full)
        second = write_version(con, make_candidate(date(2026, 6, 30), {"a": 2}))
        with caplog.at_level("ERROR"):
            result = publish_version(con, second)
        current = con.execute("select version_id from segments.current_version").fetchone()

    assert current == (second,) and result["published_copy"] is None
    assert "published copy could not be written" in caplog.text
    assert _published(published_path(warehouse))[0] == [(first, date(2026, 6, 29))]
    assert not list(warehouse.parent.glob(".published.duckdb.*"))


def _predictions_tables(con) -> None:
    con.execute(
        "create table segments.customer_predictions (as_of_date date, customer_id varchar, "
        "clv_12m double)"
    )
    con.execute("insert into segments.customer_predictions values ('2026-06-30', 'a', 2.0)")
    con.execute("create table segments.prediction_models as select 1 as model_id")


def test_after_predict_only_what_changes_is_rewritten_while_the_version_stays(warehouse):
    """The refresh after predict starts from the copy of the same version: the predictions,
    models and version metadata are new, the marts slice is the one the publish wrote."""
    with connect() as con:
        version = write_version(con, make_candidate(date(2026, 6, 30), {"a": 1, "b": 2}))
        publish_version(con, version)
        _predictions_tables(con)
        # Written after the publish: a refresh that rewrote the slice would show it.
        con.execute("insert into marts.customer_features values ('2026-06-30', 'c')")
        rejected = write_version(con, make_candidate(date(2026, 7, 1), {"a": 1}))
        assert refresh_published_copy(con, changed_only=True) == str(published_path(warehouse))
    about, members, _ = _published(published_path(warehouse))
    assert about == [(version, date(2026, 6, 30))]
    assert members == [("a", 1), ("b", 2)]
    with connect_published() as copy:
        assert copy.execute("select count(*) from marts.customer_features").fetchone() == (2,)
        assert copy.execute("select clv_12m from segments.customer_predictions").fetchall() == [
            (2.0,)
        ]
        assert copy.execute("select model_id from segments.prediction_models").fetchall() == [(1,)]
        versions = copy.execute("select version_id from segments.segment_versions order by 1")
        assert versions.fetchall() == [(version,), (rejected,)]
    assert not list(warehouse.parent.glob(".published.duckdb.*"))


def test_after_predict_a_copy_of_another_version_is_written_whole(warehouse):
    with connect() as con:
        first = write_version(con, make_candidate(date(2026, 6, 29), {"a": 1}))
        publish_version(con, first)
        of_first = warehouse.parent / "first.duckdb"
        of_first.write_bytes(published_path(warehouse).read_bytes())
        second = write_version(con, make_candidate(date(2026, 6, 30), {"a": 2, "b": 3}))
        publish_version(con, second)
        _predictions_tables(con)
        # The copy in place shows the first version (e.g. the second's copy failed to write).
        of_first.replace(published_path(warehouse))
        refresh_published_copy(con, changed_only=True)
    about, members, _ = _published(published_path(warehouse))
    assert about == [(second, date(2026, 6, 30))]
    assert members == [("a", 2), ("b", 3)]
    with connect_published() as copy:
        assert copy.execute("select count(*) from marts.customer_features").fetchone() == (2,)
        assert copy.execute("select count(*) from segments.customer_predictions").fetchone() == (1,)
    assert not list(warehouse.parent.glob(".published.duckdb.*"))
