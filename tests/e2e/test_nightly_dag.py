"""The whole nightly DAG, run with Airflow's ``dag.test()`` on generated demo data.

Real Airflow (SQLite metadata DB), real dbt, real Great Expectations, real DuckDB files and real
scikit-learn. One nightly run is shared by the read-only tests; tests that run the DAG again work
on a copy of its warehouse so they cannot disturb each other.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from tests.conftest import ROOT
from tools.broken_day import write_broken_delivery
from tools.demo_data import generate_demo_data
from tools.planted_truth import ari_against_truth, read_truth
from tools.summary import summarize

pytestmark = pytest.mark.slow

DEMO_DATE = date(2026, 6, 30)
N_CUSTOMERS = 3000
STAGES = [
    "ingest", "validate_raw", "dbt_build", "validate_marts", "recluster", "publish",
    "export_audiences", "predict",
]  # fmt: skip


@pytest.fixture(scope="session")
def airflow_db():
    completed = subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]


@pytest.fixture(scope="session")
def demo(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("demo")
    generate_demo_data(root / "landing", root / "truth", n_customers=N_CUSTOMERS, seed=7)
    return root


def _point_at(monkeypatch: pytest.MonkeyPatch, data_dir: Path, landing: Path) -> None:
    monkeypatch.setenv("SEGMENTS_DATA_DIR", str(data_dir))
    monkeypatch.setenv("SEGMENTS_LANDING_DIR", str(landing))
    monkeypatch.delenv("SEGMENTS_WAREHOUSE", raising=False)


def run_dag(as_of: date | None, conf: dict | None = None, dag_id: str = "customer_segmentation"):
    """Run a real DAG (for one as-of date); returns the run state and each task's state."""
    from airflow.dag_processing.dagbag import DagBag

    dag = DagBag(dag_folder=str(ROOT / "dags")).dags[dag_id]
    logical_date = datetime(as_of.year, as_of.month, as_of.day, tzinfo=UTC) if as_of else None
    dag_run = dag.test(logical_date=logical_date, run_conf=conf)
    states = {ti.task_id: str(ti.state) for ti in dag_run.get_task_instances()}
    states["run"] = str(dag_run.state)
    return states


def query(data_dir: Path, sql: str, params: list | None = None) -> pd.DataFrame:
    with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as con:
        return con.execute(sql, params or []).df()


def run_dag_cli(as_of: date, log_path: Path, dag_id: str = "customer_segmentation"):
    """``airflow dags test`` in a child process, as ``make run`` does (the as-of date as the
    ``as_of_date`` param, the logical date now), its output (stdout and
    stderr: Airflow's logs and whatever the task code or the interpreter print at exit) in
    ``log_path``; returns the run state and each task's state from the metadata DB."""
    from airflow.models import DagRun
    from airflow.utils.session import create_session

    started = datetime.now(UTC)
    conf = json.dumps({"as_of_date": as_of.isoformat()})
    with log_path.open("wb") as log_file:
        completed = subprocess.run(
            [sys.executable, "-m", "airflow", "dags", "test", dag_id, "--conf", conf],
            stdout=log_file,
            stderr=subprocess.STDOUT,
            check=False,
            timeout=900,
        )
    with create_session() as session:
        dag_run = (
            session.query(DagRun)
            .filter(DagRun.dag_id == dag_id, DagRun.run_after >= started)
            .order_by(DagRun.id.desc())
            .first()
        )
        assert dag_run is not None, log_path.read_text(errors="replace")[-3000:]
        states = {ti.task_id: str(ti.state) for ti in dag_run.get_task_instances(session=session)}
        states["run"] = str(dag_run.state)
        # The UI's run duration is end - start: the real run time, not days since the as-of date.
        states["seconds"] = str((dag_run.end_date - dag_run.start_date).total_seconds())
    states["exit_code"] = str(completed.returncode)
    return states


@pytest.fixture(scope="session")
def night(tmp_path_factory, demo, airflow_db) -> tuple[Path, dict[str, str]]:
    """One nightly run for the demo date, the way ``make run`` runs it, shared by the read-only
    tests (its output in ``night.log`` beside the data folder)."""
    data_dir = tmp_path_factory.mktemp("night")
    with pytest.MonkeyPatch.context() as monkeypatch:
        _point_at(monkeypatch, data_dir, demo / "landing")
        states = run_dag_cli(DEMO_DATE, data_dir.parent / f"{data_dir.name}.log")
    return data_dir, states


def _copy_of(night_dir: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "data"
    copy.mkdir()
    shutil.copy2(night_dir / "warehouse.duckdb", copy / "warehouse.duckdb")
    return copy


def test_nightly_run_publishes_a_version(night):
    data_dir, states = night
    seconds = float(states["seconds"])
    assert {key: value for key, value in states.items() if key != "seconds"} == {
        "run": "success",
        "exit_code": "0",
        **dict.fromkeys(STAGES, "success"),
    }
    assert 0 < seconds < 900, f"the run lasted {seconds:.0f} s in Airflow's eyes"
    current = query(data_dir, "select * from segments.current_segments")
    features = query(
        data_dir,
        "select customer_id from marts.customer_features where as_of_date = ?",
        [DEMO_DATE],
    )
    assert set(current["as_of_date"].dt.date) == {DEMO_DATE}
    assert sorted(current["customer_id"]) == sorted(features["customer_id"])
    versions = query(data_dir, "select * from segments.segment_versions")
    assert list(versions["status"]) == ["published"]
    # k is the clustering's; the business guards may split clusters into more segments
    splits = json.loads(versions["scores"].iloc[0])["guards"]["splits"]
    segments = current.loc[current["segment_id"] > 0, "segment_id"].nunique()
    assert versions["k"].iloc[0] + len(splits) == segments
    assert query(data_dir, "select count(*) as n from marts.customer_rfm")["n"].iloc[0] > 0
    assert query(data_dir, "select count(*) as n from marts.cohort_retention")["n"].iloc[0] > 0
    # Every customer of the as-of date has its predictions; the buyers have a lifetime value.
    predictions = query(
        data_dir,
        "select * from segments.customer_predictions where as_of_date = ?",
        [DEMO_DATE],
    )
    assert sorted(predictions["customer_id"]) == sorted(features["customer_id"])
    assert predictions.loc[predictions["has_orders"], "clv_12m"].notna().all()


def test_a_healthy_run_logs_no_error_line(night):
    data_dir, states = night
    assert states["run"] == "success"
    log = (data_dir.parent / f"{data_dir.name}.log").read_text(errors="replace")
    assert "publish" in log, "the run's output was not captured"
    errors = [line for line in log.splitlines() if re.search(r"\bERROR\b|\[error\s*\]", line)]
    assert not errors, "\n".join(errors[:20])


def test_the_version_report_shows_the_tables_numbers_and_loads_nothing(night):
    """One self-contained page per version, linked from the run record and the summary."""
    from reporting.segment_report import SECTIONS, report_path

    data_dir, _ = night
    record = json.loads((data_dir / "reports" / "runs" / f"{DEMO_DATE}.json").read_text())
    report = report_path(data_dir / "reports", 1)
    assert record["publish"]["report_path"] == record["predict"]["report_path"] == str(report)
    assert "report_path" not in record["recluster"]  # a candidate's report is drawn by publish
    page = report.read_text(encoding="utf-8")
    # Drawn again after predict: every persona card shows its predicted value and churn risk.
    segments = query(
        data_dir, "select count(*) as n from segments.segment_profiles where version_id = 1"
    )["n"][0]
    assert page.count("clv 12m: ") == segments
    for key, _ in SECTIONS:
        assert f"<section id='{key}'>" in page, key
    # No external reference of any kind: the page opens with no network.
    assert not re.search(r"https?:|//[a-z0-9.-]+\.[a-z]{2,}/|<script|<link|@import", page, re.I)
    profiles = query(
        data_dir,
        "select segment_id, customer_count from segments.segment_profiles where version_id = 1",
    )
    shown = {
        int(segment): int(count)
        for segment, count in re.findall(
            r"data-segment-id='(-?\d+)' data-customer-count='(\d+)'", page
        )
    }
    assert shown == dict(zip(profiles["segment_id"], profiles["customer_count"], strict=True))
    k = query(data_dir, "select k from segments.segment_versions where version_id = 1")["k"][0]
    assert f"data-chosen-k='{k}'" in page
    assert re.search(rf"<tr data-k='{k}' class='chosen'", page)


def test_segments_recover_the_planted_behaviour(night, demo):
    data_dir, _ = night
    current = query(data_dir, "select customer_id, segment_id from segments.current_segments")
    truth = read_truth(demo / "truth")
    ari, compared = ari_against_truth(current, truth)
    canonical_buyers = truth[(truth["segment"] != "prospect") & (truth["is_duplicate"] == "false")]
    assert compared >= 0.8 * len(canonical_buyers)
    assert ari >= 0.9, f"adjusted Rand index {ari:.3f} against the planted segments"
    planted = truth.loc[truth["segment"] != "prospect", "segment"].nunique()
    assert query(data_dir, "select k from segments.current_version")["k"].iloc[0] == planted


def test_summary_reports_the_published_segments(night, monkeypatch):
    data_dir, _ = night
    monkeypatch.setenv("SEGMENTS_DATA_DIR", str(data_dir))
    text, ok = summarize(DEMO_DATE)
    assert ok
    assert "Published segment version 1" in text
    assert "id customers  share  description" in text
    assert str(data_dir / "reports" / "segments" / "version-1.html") in text
    assert "BLOCKED" not in text
    assert str(data_dir / "warehouse.duckdb") in text


def test_rerun_and_earlier_date_touch_only_their_own_outputs(night, demo, tmp_path, monkeypatch):
    night_dir, _ = night
    data_dir = _copy_of(night_dir, tmp_path)
    _point_at(monkeypatch, data_dir, demo / "landing")
    features_sql = "select * from marts.customer_features where as_of_date = ? order by customer_id"
    before_features = query(data_dir, features_sql, [DEMO_DATE])
    before_segments = query(
        data_dir,
        "select customer_id, segment_id, segment_name "
        "from segments.current_segments order by customer_id",
    )

    # Re-running the same date gives the same result and replaces that date's version.
    assert run_dag(DEMO_DATE)["run"] == "success"
    pd.testing.assert_frame_equal(query(data_dir, features_sql, [DEMO_DATE]), before_features)
    after_segments = query(
        data_dir,
        "select customer_id, segment_id, segment_name "
        "from segments.current_segments order by customer_id",
    )
    pd.testing.assert_frame_equal(after_segments, before_segments)
    versions = query(
        data_dir, "select version_id, status from segments.segment_versions order by version_id"
    )
    assert list(versions["status"]) == ["superseded", "published"]

    # A run for an earlier date adds its own slice, ignores later data, and leaves the newer
    # as-of date's slice and current segments alone.
    earlier = DEMO_DATE - timedelta(days=30)
    assert run_dag(earlier)["run"] == "success"
    pd.testing.assert_frame_equal(query(data_dir, features_sql, [DEMO_DATE]), before_features)
    assert query(data_dir, "select distinct as_of_date from segments.current_segments")[
        "as_of_date"
    ].dt.date.tolist() == [DEMO_DATE]
    earlier_features = query(data_dir, features_sql, [earlier]).set_index("customer_id")
    cutoff = pd.Timestamp(earlier + timedelta(days=1))
    assert (earlier_features["last_order_at"].dropna() < cutoff).all()
    assert (earlier_features["signup_at"].dropna() < cutoff).all()

    expected = _order_counts_from_landing(demo, earlier)
    truth = pd.read_csv(demo / "truth" / "customers.csv", dtype=str)
    single_record = truth.groupby("person_id")["customer_id"].transform("count") == 1
    checked = sorted(set(truth.loc[single_record, "customer_id"]) & set(earlier_features.index))
    assert len(checked) > 100
    got = earlier_features.loc[checked, "order_count"].astype(int)
    want = expected.reindex(checked, fill_value=0).astype(int)
    mismatches = got[got != want]
    assert mismatches.empty, f"order counts differ for {len(mismatches)} customers"


def _order_counts_from_landing(demo: Path, as_of: date) -> pd.Series:
    """Completed, valid-amount orders known on the as-of date, computed straight from the files."""
    frames = []
    for folder in sorted((demo / "landing" / "orders").glob("date=*")):
        if date.fromisoformat(folder.name.removeprefix("date=")) > as_of:
            continue
        for path in folder.glob("*.csv"):
            frames.append(pd.read_csv(path, dtype=str, keep_default_na=False))
    orders = pd.concat(frames).drop_duplicates(subset="order_id")
    ordered_at = pd.to_datetime(orders["ordered_at"], errors="coerce")
    amount = pd.to_numeric(orders["amount"], errors="coerce")
    valid = (
        (orders["status"].str.strip().str.lower() == "completed")
        & (ordered_at < pd.Timestamp(as_of + timedelta(days=1)))
        & (amount > 0)
        & (amount < 100_000)
    )
    return orders[valid].groupby("customer_id").size()


def test_a_blocked_night_publishes_nothing(night, demo, tmp_path, monkeypatch):
    """The blocked-night demo of ``make run-blocked``: the same broken delivery, the same DAG."""
    night_dir, _ = night
    data_dir = _copy_of(night_dir, tmp_path)
    landing = tmp_path / "landing"
    shutil.copytree(demo / "landing", landing)
    broken_day = DEMO_DATE + timedelta(days=1)
    broken = write_broken_delivery(landing, broken_day)
    _point_at(monkeypatch, data_dir, landing)
    before = query(data_dir, "select * from segments.current_segments order by customer_id")

    states = run_dag(broken_day)

    assert states["run"] == "failed"
    assert states["validate_raw"] == "failed"
    assert states["publish"] != "success"
    pd.testing.assert_frame_equal(
        query(data_dir, "select * from segments.current_segments order by customer_id"), before
    )
    assert (
        query(
            data_dir,
            "select count(*) as n from segments.segment_versions where as_of_date = ?",
            [broken_day],
        )["n"].iloc[0]
        == 0
    )
    text, ok = summarize(broken_day)
    assert not ok
    # The summary names the rule, the table and partition, and the reason with its count.
    resent = sum(1 for _ in broken.open()) - 1
    assert f"quarantine.orders partition {broken_day}" in text
    assert "expect_column_values_to_be_in_set(is_quarantined)" in text
    assert f"unparseable_amount {resent:,}" in text
    assert "BLOCKED" in text

    # The next night re-checks the partition that never passed, so it is blocked again ...
    next_day = broken_day + timedelta(days=1)
    assert run_dag(next_day)["validate_raw"] == "failed"
    assert f"quarantine.orders partition {broken_day} (history)" in summarize(next_day)[0]
    # ... until the broken delivery is withdrawn: then the night publishes.
    broken.unlink()
    assert run_dag(next_day)["run"] == "success"
    assert query(data_dir, "select as_of_date from segments.current_version")[
        "as_of_date"
    ].dt.date.tolist() == [next_day]
    assert (
        query(
            data_dir,
            "select count(*) as n from quarantine.orders where _partition_date = ?",
            [broken_day],
        )["n"].iloc[0]
        < 10
    )  # only the demo's own planted mess is left


def _segment_of(data_dir: Path, version_id: int) -> pd.Series:
    frame = query(
        data_dir,
        "select customer_id, segment_id from segments.customer_segments where version_id = ?",
        [version_id],
    )
    return frame.set_index("customer_id")["segment_id"]


def test_next_night_keeps_ids_a_rejected_model_changes_nothing_and_rollback_works(
    night, demo, tmp_path, monkeypatch
):
    night_dir, _ = night
    data_dir = _copy_of(night_dir, tmp_path)
    _point_at(monkeypatch, data_dir, demo / "landing")
    first_id = int(query(data_dir, "select version_id from segments.current_version").iloc[0, 0])

    # The next night refits from scratch (trigger-form param) and keeps the segment ids.
    next_day = DEMO_DATE + timedelta(days=1)
    assert run_dag(next_day, {"recluster_mode": "full"})["run"] == "success"
    second = query(data_dir, "select version_id, mode from segments.current_version").iloc[0]
    assert second["mode"] == "full"
    before = _segment_of(data_dir, first_id)
    after = _segment_of(data_dir, int(second["version_id"]))
    common = before.index.intersection(after.index)
    assert (before[common] == after[common]).mean() >= 0.95

    # A model that misses the acceptance thresholds is stored as rejected; publish is skipped.
    strict = tmp_path / "strict.yml"
    strict.write_text("acceptance:\n  min_silhouette: 0.99\n")
    monkeypatch.setenv("SEGMENTS_ML_CONFIG", str(strict))
    current_before = query(data_dir, "select * from segments.current_segments order by customer_id")
    rejected_day = next_day + timedelta(days=1)
    states = run_dag(rejected_day, {"recluster_mode": "full"})
    assert states["recluster"] == "success" and states["publish"] == "skipped"
    rejected = query(
        data_dir,
        "select status, status_reason from segments.segment_versions where as_of_date = ?",
        [rejected_day],
    ).iloc[0]
    assert rejected["status"] == "rejected" and "min_silhouette 0.99" in rejected["status_reason"]
    record = json.loads((data_dir / "reports" / "runs" / f"{rejected_day}.json").read_text())
    assert Path(record["recluster"]["report_path"]).is_file()  # never published: drawn by recluster
    pd.testing.assert_frame_equal(
        query(data_dir, "select * from segments.current_segments order by customer_id"),
        current_before,
    )
    text, ok = summarize(rejected_day)
    assert not ok and "MODEL REJECTED" in text
    monkeypatch.delenv("SEGMENTS_ML_CONFIG")

    # Rollback to the first night's version, through the rollback DAG.
    states = run_dag(
        None, {"version_id": first_id, "reason": "e2e rollback"}, dag_id="segment_rollback"
    )
    assert states == {"run": "success", "rollback": "success", "export_audiences": "success"}
    assert query(data_dir, "select version_id from segments.current_version").iloc[0, 0] == first_id
    pd.testing.assert_series_equal(
        query(data_dir, "select customer_id, segment_id from segments.current_segments")
        .set_index("customer_id")["segment_id"]
        .sort_index(),
        before.sort_index(),
        check_names=False,
    )
    change = query(
        data_dir, "select * from segments.current_changes order by change_id desc limit 1"
    ).iloc[0]
    assert change["action"] == "rollback" and change["reason"] == "e2e rollback"
    assert change["previous_version_id"] == second["version_id"]
    status = query(
        data_dir,
        "select status from segments.segment_versions where version_id = ?",
        [int(second["version_id"])],
    ).iloc[0, 0]
    assert status == "rolled_back"


def test_the_night_exports_audiences_of_consenting_customers(night):
    data_dir, _ = night
    current = data_dir / "reports" / "exports" / "audiences" / "current"
    manifest = json.loads((current / "manifest.json").read_text())
    version = query(data_dir, "select version_id, as_of_date from segments.current_version")
    assert manifest["version_id"] == version["version_id"].iloc[0]
    assert manifest["as_of_date"] == DEMO_DATE.isoformat()
    members = query(
        data_dir,
        """
        select segments.customer_id, customers.has_marketing_consent
        from segments.current_segments as segments
        left join marts.customers as customers
            on segments.customer_id = customers.customer_id and customers.as_of_date = ?
        """,
        [DEMO_DATE],
    )
    consenting = members.loc[members["has_marketing_consent"].fillna(False).astype(bool)]
    exported = pd.concat(
        pd.read_parquet(path) for path in sorted(current.glob("segment-*-members.parquet"))
    )
    assert sorted(exported["customer_id"]) == sorted(consenting["customer_id"])
    assert 0 < len(exported) < len(members)
    said_no = members["has_marketing_consent"].notna() & ~members["has_marketing_consent"].fillna(
        False
    ).astype(bool)
    assert manifest["customers"] == {
        "exported": len(consenting),
        "left_out": {
            "no_consent": int(said_no.sum()),
            "consent_unknown": int(members["has_marketing_consent"].isna().sum()),
        },
    }
    for entry in manifest["files"]:
        path = current / entry["file"]
        assert hashlib.sha256(path.read_bytes()).hexdigest() == entry["sha256"]
        frame = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
        assert len(frame) == entry["rows"], entry["file"]
    # The first version: every member entered, nobody exited.
    entered = sum(e["rows"] for e in manifest["files"] if e["file"].endswith("-entered.csv"))
    exited = sum(e["rows"] for e in manifest["files"] if e["file"].endswith("-exited.csv"))
    assert (entered, exited) == (len(consenting), 0)
    assert set(exported.columns) == {
        "customer_id", "segment_id", "segment_name", "email_sha256", "phone_sha256"
    }  # fmt: skip


def test_the_nightly_dag_runs_a_users_own_files_through_a_sources_config(
    tmp_path, airflow_db, monkeypatch
):
    """Bring your own data is the nightly DAG with another sources config: a line-level
    transactions snapshot (tests/ingestion/test_byod.py's file) goes through the same loader,
    quarantine, gates, dbt build, recluster and publish as the demo."""
    from tests.ingestion import test_byod as retail

    (tmp_path / "retail").mkdir()
    lines = retail.HAND_LINES + retail.generated_lines()
    (tmp_path / "retail" / "transactions.csv").write_text("\n".join([retail.HEADER, *lines]) + "\n")
    (tmp_path / "sources.yml").write_text(retail.CONFIG)
    data_dir = tmp_path / "data"
    _point_at(monkeypatch, data_dir, tmp_path / "no-landing")
    monkeypatch.setenv("SEGMENTS_SOURCES_CONFIG", str(tmp_path / "sources.yml"))

    states = run_dag(None, {"as_of_date": retail.AS_OF.isoformat()})
    assert states == {"run": "success", **dict.fromkeys(STAGES, "success")}

    # every line of the file is loaded or quarantined with a reason; the order after the as-of
    # date waits for its own as-of date
    quarantined = query(
        data_dir, "select _line_number, _reasons from quarantine.orders order by _line_number"
    )
    assert [(line, list(codes)) for line, codes in quarantined.to_numpy().tolist()] == [
        (4, ["duplicate_row"]),
        (9, ["missing_customer_id"]),
    ]
    (rows_in,) = query(data_dir, "select sum(rows_in) as n from raw._load_log")["n"]
    assert rows_in == len(lines) - 1  # 1006 is placed after the as-of date
    features = query(
        data_dir,
        "select * from marts.customer_features where as_of_date = ?",
        [retail.AS_OF],
    ).set_index("customer_id")
    expected = retail.expected_rfm(lines)
    assert set(features.index) == set(expected.index)
    for customer, want in expected.iterrows():
        assert features.loc[customer, "order_count"] == want["order_count"], customer
        assert float(features.loc[customer, "total_spend"]) == pytest.approx(want["total_spend"])
    text, ok = summarize(retail.AS_OF)
    assert ok, text
    assert "orders" in text and "2 quarantined" in text
