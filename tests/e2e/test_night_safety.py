"""A night survives SIGKILL, and readers of the published copy never see a half night.

One good night (as-of ``BASE_DAY``) on a small demo (200 customers) is the starting point of
every scenario, each on its own copy of the data folder:

* the reference: the next night (``DAY``) uninterrupted, run in this process while another
  process polls the documented read path (``published.duckdb``) the whole time;
* the crash chain: the same night killed with SIGKILL inside ``dbt build``, rerun and killed
  inside the publishing transaction, rerun and killed while the published copy is written, and
  rerun to the end. After every kill the warehouse opens, the version current (in the warehouse
  and in the published copy) is complete, and it is not the killed night's unless that night's
  publish committed; at the end every mart slice and the current segments equal the
  reference's, row for row.

The nights run the real steps (``pipeline.steps``: the functions the Airflow tasks call) in a
child process, ``night_process.py``, which kills itself at the chosen point.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from datetime import date
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from tests.conftest import ROOT
from tools.demo_data import generate_demo_data

pytestmark = pytest.mark.slow

BASE_DAY = date(2026, 6, 29)
DAY = date(2026, 6, 30)
N_CUSTOMERS = 200
NIGHT = ROOT / "tests" / "e2e" / "night_process.py"


def _env(data_dir: Path, landing: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(SEGMENTS_DATA_DIR=str(data_dir), SEGMENTS_LANDING_DIR=str(landing))
    for name in ("SEGMENTS_WAREHOUSE", "SEGMENTS_REPORTS_DIR"):
        env.pop(name, None)
    return env


def _night(data_dir: Path, landing: Path, day: date, kill_at: str | None = None):
    command = [sys.executable, str(NIGHT), day.isoformat()]
    if kill_at:
        command += ["--kill-at", kill_at]
    return subprocess.run(
        command,
        env=_env(data_dir, landing),
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> tuple[Path, Path]:
    """The data folder after one good night, and the landing area."""
    root = tmp_path_factory.mktemp("night-safety")
    landing = root / "landing"
    generate_demo_data(landing, root / "truth", n_customers=N_CUSTOMERS, seed=11)
    data_dir = root / "base"
    night = _night(data_dir, landing, BASE_DAY)
    assert night.returncode == 0, night.stderr[-3000:]
    return data_dir, landing


def _copy(base: tuple[Path, Path], target: Path) -> Path:
    shutil.copytree(base[0], target)
    return target


def _frame(con: duckdb.DuckDBPyConnection, sql: str, params: list | None = None) -> pd.DataFrame:
    frame = con.execute(sql, params or []).df()
    for column in frame.columns:  # DuckDB's parallel float sums may differ in the last bits
        if pd.api.types.is_float_dtype(frame[column]):
            frame[column] = frame[column].round(9)
    frame = frame.astype(str)
    return frame.sort_values(list(frame.columns)).reset_index(drop=True)


def _outcome(data_dir: Path) -> dict[str, pd.DataFrame]:
    """What a night leaves for its date: every mart's slice, the raw and quarantined rows, the
    current segments (as the warehouse and as the published copy show them)."""
    tables: dict[str, pd.DataFrame] = {}
    with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as con:
        relations = con.execute(
            """
            select table_schema, table_name, bool_or(column_name = 'as_of_date')
            from information_schema.columns
            where table_schema in ('marts', 'raw', 'quarantine') and table_name not like '\\_%'
                escape '\\'
            group by all order by all
            """
        ).fetchall()
        for schema, table, is_sliced in relations:
            if schema == "marts" and is_sliced:
                sql = f'select * from marts."{table}" where as_of_date = ?'
                tables[f"marts.{table}"] = _frame(con, sql, [DAY])
            elif schema != "marts":
                drop = "exclude (_run_id, _quarantined_at)" if schema == "quarantine" else ""
                sql = f'select * {drop} from {schema}."{table}"'
                tables[f"{schema}.{table}"] = _frame(con, sql)
        tables["current_segments"] = _frame(
            con,
            "select customer_id, segment_id, segment_name, as_of_date "
            "from segments.current_segments",
        )
    with duckdb.connect(str(data_dir / "published.duckdb"), read_only=True) as con:
        tables["published current_segments"] = _frame(
            con,
            "select customer_id, segment_id, segment_name, as_of_date "
            "from segments.current_segments",
        )
    return tables


def _current(data_dir: Path) -> dict:
    """The current version as the warehouse and the published copy show it, with whether each
    is complete (every member row of the version is there)."""
    with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as con:
        version_id, as_of, expected, status = con.execute(
            "select version_id, as_of_date, customer_count, status from segments.current_version"
        ).fetchone()
        members = con.execute(
            "select count(*) from segments.customer_segments where version_id = ?", [version_id]
        ).fetchone()[0]
    with duckdb.connect(str(data_dir / "published.duckdb"), read_only=True) as con:
        copy_version, copy_as_of = con.execute(
            "select version_id, as_of_date from published_version"
        ).fetchone()
        copy_expected, copy_members = con.execute(
            "select (select customer_count from segments.current_version), "
            "(select count(*) from segments.current_segments)"
        ).fetchone()
    return {
        "warehouse": (version_id, as_of, status, members == expected),
        "copy": (copy_version, copy_as_of, copy_members == copy_expected),
    }


@pytest.fixture(scope="module")
def reference(base, tmp_path_factory):
    """The next night uninterrupted, in this process, while another process polls the published
    copy: (its outcome, the reader's observations, when publish started and ended)."""
    data_dir = _copy(base, tmp_path_factory.mktemp("reference") / "data")
    observations = data_dir.parent / "reader.jsonl"
    stop = data_dir.parent / "stop"
    copy = str(data_dir / "published.duckdb")
    reader = subprocess.Popen([sys.executable, "-c", _READER, copy, str(observations), str(stop)])
    from pipeline import steps

    timings: dict[str, float] = {}
    try:
        with pytest.MonkeyPatch.context() as monkeypatch:
            for name, value in _env(data_dir, base[1]).items():
                monkeypatch.setenv(name, value)
            monkeypatch.delenv("SEGMENTS_WAREHOUSE", raising=False)
            monkeypatch.delenv("SEGMENTS_REPORTS_DIR", raising=False)
            timings["night_started"] = time.time()
            run_id = f"reference-{DAY}"
            ingest = steps.ingest(DAY, run_id=run_id)
            steps.validate_raw(DAY, ingest["validation_scope"], run_id=run_id)
            timings["dbt_started"] = time.time()
            steps.build_marts(DAY)
            timings["dbt_ended"] = time.time()
            steps.validate_marts(DAY, run_id=run_id)
            version = steps.recluster(DAY, run_id=run_id)
            timings["publish_started"] = time.time()
            steps.publish(DAY, version["version_id"])
            timings["publish_ended"] = time.time()
            time.sleep(1.0)  # the reader's next polls see the new version
    finally:
        stop.touch()
        reader.wait(timeout=120)
    seen = [json.loads(line) for line in observations.read_text().splitlines()]
    return _outcome(data_dir), seen, timings, version["version_id"]


# The reader: opens the published copy read-only over and over (as an analyst's tool would),
# reads which version it shows and checks the copy is whole, and writes one JSON line per poll.
_READER = textwrap.dedent(
    """
    import json, sys, time
    from pathlib import Path
    import duckdb

    copy, out, stop = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
    with out.open("w") as sink:
        while not stop.exists():
            started = time.time()
            try:
                with duckdb.connect(copy, read_only=True) as con:
                    version = con.execute("select version_id from published_version").fetchone()[0]
                    whole = con.execute(
                        "select (select customer_count from segments.current_version) "
                        "= (select count(*) from segments.current_segments)"
                    ).fetchone()[0]
                    time.sleep(0.05)  # hold the copy open a moment, as a query would
                row = {"at": started, "version": version, "whole": bool(whole)}
            except Exception as error:
                row = {"at": started, "error": f"{type(error).__name__}: {error}"}
            sink.write(json.dumps(row) + "\\n")
            sink.flush()
            time.sleep(0.05)
    """
)


def test_a_reader_of_the_published_copy_never_fails_and_sees_the_night_only_after_publish(
    base, reference
):
    _, seen, timings, new_version = reference
    errors = [row for row in seen if "error" in row]
    assert errors == []
    assert all(row["whole"] for row in seen)
    during_dbt = [row for row in seen if timings["dbt_started"] <= row["at"] < timings["dbt_ended"]]
    assert len(during_dbt) >= 5, "the reader polled while dbt wrote the warehouse"
    before = {row["version"] for row in seen if row["at"] < timings["publish_started"]}
    after = {row["version"] for row in seen if row["at"] > timings["publish_ended"]}
    assert new_version not in before
    assert len(before) == 1  # the base night's version, all night long
    assert after == {new_version}


def _assert_nothing_partial_is_current(data_dir: Path, *, new_committed: bool) -> None:
    state = _current(data_dir)
    _, as_of, status, complete = state["warehouse"]
    assert status == "published" and complete
    assert as_of == (DAY if new_committed else BASE_DAY)
    _, copy_as_of, copy_complete = state["copy"]
    assert copy_complete
    # The copy is swapped in after the commit: a kill in between leaves the previous copy.
    assert copy_as_of == BASE_DAY


def test_a_night_killed_in_dbt_and_in_publish_reruns_to_the_uninterrupted_result(
    base, reference, tmp_path
):
    data_dir = _copy(base, tmp_path / "data")
    landing = base[1]
    landing_before = {
        path: path.read_bytes() for path in sorted(landing.rglob("*")) if path.is_file()
    }

    for kill_at, commits in (("dbt", False), ("publish", False), ("published_copy", True)):
        night = _night(data_dir, landing, DAY, kill_at=kill_at)
        assert night.returncode == -signal.SIGKILL, (kill_at, night.stderr[-3000:])
        assert "KILL " in night.stdout, (kill_at, night.stdout[-2000:])
        _assert_nothing_partial_is_current(data_dir, new_committed=commits)

    rerun = _night(data_dir, landing, DAY)
    assert rerun.returncode == 0, rerun.stderr[-3000:]

    expected, *_ = reference
    assert len(expected["marts.customer_features"]) >= N_CUSTOMERS // 2
    assert len(expected["current_segments"]) >= N_CUSTOMERS // 2
    actual = _outcome(data_dir)
    assert sorted(actual) == sorted(expected)
    for name, frame in expected.items():
        pd.testing.assert_frame_equal(actual[name], frame, obj=name)
    assert _current(data_dir)["copy"][1] == DAY
    with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as con:
        statuses = con.execute(
            "select status, count(*) from segments.segment_versions where as_of_date = ? "
            "group by all order by all",
            [DAY],
        ).fetchall()
    # The killed nights' versions are never current: left failed or superseded, one published.
    assert dict(statuses)["published"] == 1
    assert {path: path.read_bytes() for path in landing_before} == landing_before
    assert not list(data_dir.glob(".published.duckdb.*")), "the killed copy's scratch is gone"
