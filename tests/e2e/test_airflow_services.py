"""The pipeline the way its users run it: a real scheduler, API server and DAG processor on a real
PostgreSQL metadata DB, driven through the REST API the UI uses, and the UI in a real browser.

One Airflow for the module (started once, stopped and its processes killed even on failure):
a 3-day backfill created with ``POST /api/v2/backfills`` while the nightly scheduled run starts
(unpausing the DAG makes the scheduler create the latest nightly run, as it does in production),
then a rerun of one backfilled date, then a headless Chromium that logs in and looks at the DAG.
Needs Debian's ``postgresql`` and ``chromium`` (``make test`` installs them).
"""

from __future__ import annotations

import json
import os
import shutil
import time
import urllib.parse
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from tests.conftest import ROOT
from tests.e2e.airflow_stack import TERMINAL_RUN_STATES, AirflowApi, wait_for
from tests.e2e.local_postgres import LocalPostgres, free_port, postgres_bin_dir
from tools.demo_data import generate_demo_data
from tools.local_airflow import LocalAirflow

pytestmark = pytest.mark.slow

DAG_ID = "customer_segmentation"
EXPORT_DAG_ID = "segment_export"
STAGES = [
    "ingest", "validate_raw", "dbt_build", "validate_marts", "recluster", "publish",
    "export_audiences", "predict",
]  # fmt: skip
CHROMIUM = Path("/usr/bin/chromium")
OUTPUT_DIR = ROOT / "test-output" / "e2e"
# Messages DuckDB and our lock give when two writers meet; none may appear in any task log.
LOCK_ERRORS = ("Could not set lock", "Conflicting lock", "WarehouseBusyError")

TODAY = datetime.now(UTC).date()
# Three past days inside the demo history (the demo's behaviour is anchored a week before its end).
BACKFILL_DATES = [TODAY - timedelta(days=6), TODAY - timedelta(days=5), TODAY - timedelta(days=4)]


def _browser(playwright):
    """Debian's chromium, never a downloaded one; no sandbox as root in CI; no background
    traffic of its own (the network tests count every request)."""
    return playwright.chromium.launch(
        executable_path=str(CHROMIUM),
        headless=True,
        args=[
            "--headless",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            *(["--no-sandbox"] if os.geteuid() == 0 else []),
        ],
    )


def test_make_ui_with_the_demo_schedules_no_run_the_demo_has_no_data_for(tmp_path):
    """``make ui`` on the demo (history up to 2026-07-07, long past): unpausing the DAG must not
    make the scheduler create a nightly run for a day without landed data, which would fail."""
    from tools.local_airflow import schedule_env

    bin_dir = postgres_bin_dir()
    if bin_dir is None:
        pytest.skip("PostgreSQL server not installed (make test installs Debian's postgresql)")
    data_dir = tmp_path / "data"
    # The demo's landing history (make demo-data's dates), few customers: no task runs here.
    generate_demo_data(data_dir / "landing", data_dir / "truth", n_customers=200, seed=3)
    postgres = LocalPostgres(bin_dir).start()
    # What make ui adds for the landed data (tools/local_airflow.py main).
    local = _local_airflow(
        tmp_path / "airflow", postgres.url, data_dir, **schedule_env(data_dir / "landing")
    )
    assert local.extra_env["SEGMENTS_SCHEDULE_END_DATE"] == "2026-07-07"
    try:
        local.init()
        local.start(("api-server", "scheduler", "dag-processor"))
        local.wait_healthy()
        api = AirflowApi(local)
        wait_for(
            lambda: any(d["dag_id"] == DAG_ID for d in api.get("/api/v2/dags")["dags"]),
            timeout_s=120,
            what=f"the DAG processor to parse {DAG_ID}",
        )
        api.patch(f"/api/v2/dags/{DAG_ID}", {"is_paused": False})
        # The scheduler looks at an unpaused DAG on its next loop (idle sleep 0.5 s); give it
        # several, and the DAG processor a re-parse.
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            runs = api.dag_runs(DAG_ID)
            assert not [run for run in runs if run["state"] == "failed"], runs
            time.sleep(2)
        dag = api.get(f"/api/v2/dags/{DAG_ID}")
        assert dag["is_paused"] is False
        # No scheduled run at all: every day after 2026-07-07 lacks data, and catchup is off.
        assert [run for run in api.dag_runs(DAG_ID) if run["run_type"] == "scheduled"] == []
    finally:
        local.stop()
        postgres.stop()


# A user's own orders (not the demo): one growing snapshot file, semicolon-separated, day-first
# dates, decimal commas, described by a sources config.
USER_CONFIG = """
sources:
  orders:
    path: shop/orders.csv
    delimiter: ";"
    date_format: "%d.%m.%Y %H:%M"
    decimal: ","
    columns: {order_id: Bestellung, customer_id: Kunde, ordered_at: Datum, amount: Betrag}
"""
USER_BACKFILL_DATES = [date(2011, 6, 29), date(2011, 6, 30)]


def _user_orders(path: Path) -> int:
    """A shop's orders from March to the end of June 2011, from 150 customers of four kinds:
    frequent big spenders, repeat buyers, one-time buyers of June and one-time buyers of March
    (every day has orders, the backfilled days a usual number)."""
    import random

    rng = random.Random(5)
    first, last = date(2011, 3, 1), USER_BACKFILL_DATES[-1]
    days = [first + timedelta(days=n) for n in range((last - first).days + 1)]
    orders = []  # (day, customer, amount)
    for customer in range(1, 151):
        kind = customer % 4
        if kind == 0:  # frequent big spenders
            chosen = rng.sample(days, rng.randint(10, 15))
        elif kind == 1:  # repeat buyers
            chosen = rng.sample(days, rng.randint(3, 5))
        else:  # one-time buyers: June (kind 2) or March (kind 3)
            chosen = [rng.choice([day for day in days if day.month == (6 if kind == 2 else 3)])]
        for day in chosen:
            amount = rng.choice([9.5, 19.9, 45.0, 120.0]) * (4 if kind == 0 else 1)
            orders.append((day, customer, amount))
    lines = ["Bestellung;Kunde;Datum;Betrag"]
    for day, customer, amount in sorted(orders):
        decimal_comma = f"{amount:.2f}".replace(".", ",")
        lines.append(
            f"B{len(lines)};K{customer};{day:%d.%m.%Y} {rng.randint(8, 20):02d}:15;{decimal_comma}"
        )
    path.parent.mkdir(parents=True)
    path.write_text("\n".join(lines) + "\n")
    return len(lines) - 1


def test_a_backfill_of_a_users_own_data_through_the_rest_api(tmp_path):
    """The nightly DAG on a user's sources config, backfilled over two days with
    ``POST /api/v2/backfills`` on a real scheduler: each day loads, passes both gates and
    publishes its own version."""
    bin_dir = postgres_bin_dir()
    if bin_dir is None:
        pytest.skip("PostgreSQL server not installed (make test installs Debian's postgresql)")
    user = tmp_path / "user"
    orders = _user_orders(user / "shop" / "orders.csv")
    (user / "sources.yml").write_text(USER_CONFIG)
    data_dir = tmp_path / "data"
    postgres = LocalPostgres(bin_dir).start()
    local = _local_airflow(
        tmp_path / "airflow",
        postgres.url,
        data_dir,
        SEGMENTS_SOURCES_CONFIG=str(user / "sources.yml"),
        # The user's history is in 2011: the schedule covers it and ends with it, so unpausing
        # creates no nightly run for a day without data.
        SEGMENTS_SCHEDULE_START_DATE="2011-03-01",
        SEGMENTS_SCHEDULE_END_DATE=USER_BACKFILL_DATES[-1].isoformat(),
    )
    try:
        local.init()
        local.start(("api-server", "scheduler", "dag-processor"))
        local.wait_healthy()
        api = AirflowApi(local)
        wait_for(
            lambda: any(d["dag_id"] == DAG_ID for d in api.get("/api/v2/dags")["dags"]),
            timeout_s=120,
            what=f"the DAG processor to parse {DAG_ID}",
        )
        backfill = api.post(
            "/api/v2/backfills",
            {
                "dag_id": DAG_ID,
                "from_date": f"{USER_BACKFILL_DATES[0]}T00:00:00Z",
                "to_date": f"{USER_BACKFILL_DATES[-1]}T23:59:59Z",
                "max_active_runs": 1,
                "reprocess_behavior": "none",
                "run_backwards": False,
            },
        )
        api.patch(f"/api/v2/dags/{DAG_ID}", {"is_paused": False})

        def finished():
            runs = api.dag_runs(DAG_ID)
            done = len(runs) >= len(USER_BACKFILL_DATES) and all(
                run["state"] in TERMINAL_RUN_STATES for run in runs
            )
            return runs if done else None

        runs = wait_for(finished, timeout_s=900, what="the backfill of the user's data")
        assert sorted(
            (_day(run["logical_date"]), run["run_type"], run["state"]) for run in runs
        ) == [(day, "backfill", "success") for day in USER_BACKFILL_DATES]
        for run in runs:
            states = {
                ti["task_id"]: ti["state"] for ti in api.task_instances(DAG_ID, run["dag_run_id"])
            }
            assert states == dict.fromkeys(STAGES, "success"), run["dag_run_id"]
        assert api.get(f"/api/v2/backfills/{backfill['id']}")["dag_id"] == DAG_ID
        # Each publish triggers the export DAG, which holds the warehouse while it writes:
        # read when it is free.
        versions = wait_for(
            lambda: _versions_when_free(local), timeout_s=180, what="the warehouse to be free"
        )
        assert [(as_of, status) for _, as_of, status, _ in versions] == [
            (USER_BACKFILL_DATES[0], "published"),
            (USER_BACKFILL_DATES[1], "published"),
        ]
        loaded, quarantined, raw_rows = wait_for(
            lambda: _query_when_free(
                data_dir / "warehouse.duckdb",
                "select sum(row_count), sum(rows_quarantined), "
                "(select count(*) from raw.orders) from raw._load_log",
            ),
            timeout_s=180,
            what="the warehouse to be free",
        )
        # every line of the file is in raw (nothing to quarantine in it), once
        assert (loaded, quarantined, raw_rows) == (orders, 0, orders)
    finally:
        local.stop()
        postgres.stop()
        _keep_logs(local.home / "logs")


def _local_airflow(home: Path, db_url: str, data_dir: Path, **env: str) -> LocalAirflow:
    """make ui's Airflow on a test PostgreSQL, pointed at ``data_dir``."""
    return LocalAirflow(
        home=home,
        db_url=db_url,
        port=free_port(),
        admin_password="e2e-admin-pw",
        jwt_secret="e2e-jwt-secret-" + "x" * 48,
        api_secret_key="e2e-api-secret-" + "y" * 48,
        extra_env={
            "SEGMENTS_DATA_DIR": str(data_dir),
            "SEGMENTS_LANDING_DIR": str(data_dir / "landing"),
            # As deployed: the deadline alert on (the suite turns it off for dag.test()).
            "SEGMENTS_LATE_AFTER_HOURS": "4",
            # Parse the DAG folder and look for new runs often: the test should not idle.
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME": "0.5",
            **env,
        },
    )


@pytest.fixture(scope="module")
def airflow(tmp_path_factory) -> LocalAirflow:
    bin_dir = postgres_bin_dir()
    if bin_dir is None:
        pytest.skip("PostgreSQL server not installed (make test installs Debian's postgresql)")
    root = tmp_path_factory.mktemp("airflow-services")
    data_dir = root / "data"
    # Landing history up to today, so the nightly run the scheduler creates has its data.
    generate_demo_data(
        data_dir / "landing",
        data_dir / "truth",
        # Enough customers that every day has orders (the raw gate blocks an empty day).
        n_customers=1500,
        seed=11,
        start_date=TODAY - timedelta(days=370),
        end_date=TODAY,
    )
    postgres = LocalPostgres(bin_dir).start()
    local = _local_airflow(root / "airflow", postgres.url, data_dir)
    try:
        local.init()
        # Compose runs a triggerer too; nothing here defers, so the test saves the process.
        local.start(("api-server", "scheduler", "dag-processor"))
        local.wait_healthy()
        yield local
    finally:
        local.stop()
        postgres.stop()
        _keep_logs(local.home / "logs")


def _keep_logs(logs: Path) -> None:
    """Component and task logs to the test output folder, for a failure's post-mortem."""
    target = OUTPUT_DIR / "airflow-logs"
    shutil.rmtree(target, ignore_errors=True)
    if logs.exists():
        shutil.copytree(logs, target)


@pytest.fixture(scope="module")
def api(airflow) -> AirflowApi:
    client = AirflowApi(airflow)
    wait_for(
        lambda: any(d["dag_id"] == DAG_ID for d in client.get("/api/v2/dags")["dags"]),
        timeout_s=120,
        what=f"the DAG processor to parse {DAG_ID}",
    )
    return client


def _day(timestamp: str) -> date:
    return datetime.fromisoformat(timestamp.replace("Z", "+00:00")).date()


def _query_when_free(path: Path, sql: str) -> tuple | None:
    try:
        with duckdb.connect(str(path), read_only=True) as con:
            return con.execute(sql).fetchone()
    except duckdb.IOException:
        return None


def _versions_when_free(airflow: LocalAirflow) -> list[tuple] | None:
    try:
        return _versions(airflow)
    except duckdb.IOException:
        return None


def _versions(airflow: LocalAirflow) -> list[tuple]:
    path = Path(airflow.extra_env["SEGMENTS_DATA_DIR"]) / "warehouse.duckdb"
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute(
            "select version_id, as_of_date, status, run_id from segments.segment_versions "
            "order by version_id"
        ).fetchall()


@pytest.fixture(scope="module")
def backfill_and_nightly(airflow, api) -> dict:
    """The backfill and the nightly run, started together and waited for (the REST API only)."""
    started = time.monotonic()
    backfill = api.post(
        "/api/v2/backfills",
        {
            "dag_id": DAG_ID,
            # Runs whose logical date falls in the range: one per day, each day its own as-of.
            "from_date": f"{BACKFILL_DATES[0]}T00:00:00Z",
            "to_date": f"{BACKFILL_DATES[-1]}T23:59:59Z",
            "max_active_runs": 1,
            "reprocess_behavior": "none",
            "run_backwards": False,
        },
    )
    # The export DAG runs on each publish (Asset), competing for the warehouse too; it is active
    # on creation, so nobody unpauses it.
    # DAGs start paused. Unpausing lets the backfill run and makes the scheduler create the
    # latest nightly run (catchup is off), so both compete for the warehouse from here on.
    api.patch(f"/api/v2/dags/{DAG_ID}", {"is_paused": False})

    def all_finished():
        runs = api.dag_runs(DAG_ID)
        kinds = {run["run_type"] for run in runs}
        done = runs and all(run["state"] in TERMINAL_RUN_STATES for run in runs)
        return runs if done and {"backfill", "scheduled"} <= kinds else None

    runs = wait_for(all_finished, timeout_s=900, what="the backfill and the nightly run")
    # The scheduler marks the backfill complete on its next loop after the last run ends.
    finished = wait_for(
        lambda: (found := api.get(f"/api/v2/backfills/{backfill['id']}"))["completed_at"] and found,
        timeout_s=60,
        what="the backfill to be marked complete",
        every_s=1,
    )
    return {
        "backfill": finished,
        "runs": runs,
        "versions": _versions(airflow),
        "seconds": time.monotonic() - started,
    }


def test_backfill_and_nightly_run_publish_one_version_per_date_in_order(
    airflow, api, backfill_and_nightly
):
    runs = backfill_and_nightly["runs"]
    backfill_runs = [run for run in runs if run["run_type"] == "backfill"]
    (nightly,) = [run for run in runs if run["run_type"] == "scheduled"]
    print(f"backfill + nightly finished in {backfill_and_nightly['seconds']:.0f} s")

    # Three successful backfill runs, one per date, and the backfill marked complete.
    assert sorted(_day(run["logical_date"]) for run in backfill_runs) == BACKFILL_DATES
    assert {run["state"] for run in backfill_runs} == {"success"}
    assert backfill_and_nightly["backfill"]["completed_at"] is not None
    # The nightly run the scheduler created processed the last finished day.
    assert nightly["state"] == "success"
    nightly_date = _day(nightly["logical_date"])
    assert nightly_date in {TODAY - timedelta(days=1), TODAY - timedelta(days=2)}

    # Every task succeeded on its first try: nobody had to retry because of a lock.
    for run in runs:
        tries = {ti["task_id"]: (ti["state"], ti["try_number"]) for ti in api.task_instances(
            DAG_ID, run["dag_run_id"])}  # fmt: skip
        assert tries == dict.fromkeys(STAGES, ("success", 1)), run["dag_run_id"]
    task_logs = airflow.home / "logs" / f"dag_id={DAG_ID}"
    for log_file in task_logs.rglob("*.log"):
        text = log_file.read_text(errors="replace")
        assert not [e for e in LOCK_ERRORS if e in text], log_file
    # Per-model visibility: each dbt_build task log has a line per dbt model.
    dbt_logs = list(task_logs.rglob("task_id=dbt_build/*.log"))
    assert len(dbt_logs) >= len(runs)
    for log_file in dbt_logs:
        assert "dbt model marts.customer_features: success in" in log_file.read_text(), log_file
    # The scheduler's workers started from a process that imported the task libraries
    # (pipeline/preload.py): no gate, dbt or recluster task imported them itself.
    for task in ("validate_raw", "dbt_build", "validate_marts", "recluster"):
        task_log_files = list(task_logs.rglob(f"task_id={task}/*.log"))
        assert len(task_log_files) >= len(runs), task
        for log_file in task_log_files:
            text = log_file.read_text(errors="replace")
            assert "the task libraries were preloaded by the worker process" in text, log_file
    # A healthy run logs no error (dbt's semaphores once leaked: an ERROR in every dbt_build log).
    for log_file in task_logs.rglob("*.log"):
        errors = [
            line
            for line in log_file.read_text(errors="replace").splitlines()
            if '"level":"error"' in line.replace(" ", "") or "leaked semaphore" in line
        ]
        assert not errors, f"{log_file}: {errors[:3]}"

    # One published version per date, each from its own run; the backfill's in date order.
    versions = backfill_and_nightly["versions"]
    published = {as_of: run_id for _, as_of, status, run_id in versions if status == "published"}
    assert published.keys() == {*BACKFILL_DATES, nightly_date}
    by_run = {run["dag_run_id"]: _day(run["logical_date"]) for run in runs}
    assert {as_of: by_run[run_id] for as_of, run_id in published.items()} == {
        as_of: as_of for as_of in published
    }
    backfill_order = [as_of for _, as_of, _, _ in versions if as_of in BACKFILL_DATES]
    assert backfill_order == BACKFILL_DATES
    # The newest date is what readers see: a backfill of older dates does not replace it.
    path = Path(airflow.extra_env["SEGMENTS_DATA_DIR"]) / "warehouse.duckdb"
    with duckdb.connect(str(path), read_only=True) as con:
        current = con.execute("select as_of_date from segments.current_version").fetchone()[0]
    assert current == nightly_date


def test_each_publish_triggers_the_export_of_the_current_segments(
    airflow, api, backfill_and_nightly
):
    data_dir = Path(airflow.extra_env["SEGMENTS_DATA_DIR"])
    path = data_dir / "warehouse.duckdb"

    def exported_current():
        runs = api.dag_runs(EXPORT_DAG_ID)
        if not runs or any(run["state"] not in TERMINAL_RUN_STATES for run in runs):
            return None
        with duckdb.connect(str(path), read_only=True) as con:
            version_id, as_of = con.execute(
                "select version_id, as_of_date from segments.current_version"
            ).fetchone()
            rows = con.execute("select count(*) from segments.current_segments").fetchone()[0]
        root = data_dir / "reports" / "exports" / "audiences"
        export = next(iter(sorted(root.glob(f"v{version_id}-{as_of}-*/manifest.json"))), None)
        return (runs, export.parent, rows) if export else None

    runs, export, rows = wait_for(
        exported_current, timeout_s=180, what="the export of the current segment version"
    )
    assert {run["run_type"] for run in runs} == {"asset_triggered"}
    assert {run["state"] for run in runs} == {"success"}
    assert (export.parent / "current").resolve() == export
    manifest = json.loads((export / "manifest.json").read_text())
    left_out = sum(manifest["customers"]["left_out"].values())
    assert manifest["customers"]["exported"] + left_out == rows


def test_rerunning_one_date_repeats_only_that_date(airflow, api, backfill_and_nightly):
    runs = {_day(run["logical_date"]): run for run in backfill_and_nightly["runs"]}
    target = runs[BACKFILL_DATES[1]]
    run_path = f"/api/v2/dags/{DAG_ID}/dagRuns/{urllib.parse.quote(target['dag_run_id'], safe='')}"
    before = {version[0]: version for version in _versions(airflow)}

    # What "Clear" on a run does in the UI (the failed-date case: the same call, same effect).
    api.post(f"{run_path}/clear", {"dry_run": False})
    wait_for(
        lambda: (
            api.get(run_path)["state"] in TERMINAL_RUN_STATES
            and api.get(run_path)["end_date"] != target["end_date"]
        ),
        timeout_s=400,
        what=f"the rerun of {BACKFILL_DATES[1]}",
    )
    assert api.get(run_path)["state"] == "success"

    tries = {
        ti["task_id"]: ti["try_number"] for ti in api.task_instances(DAG_ID, target["dag_run_id"])
    }
    assert tries == dict.fromkeys(STAGES, 2)
    for as_of, run in runs.items():
        if as_of != BACKFILL_DATES[1]:
            assert api.get(f"/api/v2/dags/{DAG_ID}/dagRuns/"
                           f"{urllib.parse.quote(run['dag_run_id'], safe='')}")["end_date"] == (
                run["end_date"]
            ), f"{as_of} ran again"  # fmt: skip

    after = _versions(airflow)
    new = [v for v in after if v[0] not in before]
    assert [(v[1], v[2]) for v in new] == [(BACKFILL_DATES[1], "published")]
    for version_id, as_of, status, _ in after:
        if (
            version_id in before
            and as_of == BACKFILL_DATES[1]
            and before[version_id][2] == ("published")
        ):
            assert status == "superseded"
        elif version_id in before:
            assert status == before[version_id][2], (version_id, as_of)


def test_ui_shows_the_last_run_green(airflow, api, backfill_and_nightly):
    if not CHROMIUM.exists():
        pytest.skip("chromium not installed (make test installs Debian's chromium)")
    from playwright.sync_api import sync_playwright

    last = max(api.dag_runs(DAG_ID), key=lambda run: run["end_date"])
    OUTPUT_DIR.mkdir(parents=True, exist_ok=True)
    screenshot = OUTPUT_DIR / "customer_segmentation-last-run.png"
    screenshot.unlink(missing_ok=True)
    with sync_playwright() as playwright:
        # Debian's chromium, never a downloaded one; no sandbox as root in CI.
        browser = _browser(playwright)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.goto(f"{airflow.url}/")
            page.fill("input[name=username]", airflow.admin_user)
            page.fill("input[name=password]", airflow.admin_password)
            page.click("input[type=submit], button[type=submit]")
            page.wait_for_url(lambda url: "/login" not in url, timeout=30_000)

            page.goto(f"{airflow.url}/dags/{DAG_ID}")
            page.get_by_text(DAG_ID).first.wait_for(timeout=30_000)
            run_id = urllib.parse.quote(last["dag_run_id"], safe="")
            page.goto(f"{airflow.url}/dags/{DAG_ID}/runs/{run_id}")
            for task_id in STAGES:
                row = page.locator("tr", has=page.get_by_role("link", name=task_id, exact=True))
                row.get_by_text("Success").wait_for(timeout=30_000)
            assert page.locator("tr", has_text="Failed").count() == 0
            page.screenshot(path=str(screenshot), full_page=True)
        finally:
            browser.close()
    assert screenshot.stat().st_size > 10_000


def _offline_page(browser, leaks: list[str]):
    """A page whose every request that is not a local file or localhost is aborted and
    recorded in ``leaks``."""
    page = browser.new_page(viewport={"width": 1366, "height": 900})

    def route(route) -> None:
        url = route.request.url
        host = urllib.parse.urlsplit(url).hostname or ""
        if url.startswith(("file:", "data:", "about:")) or host in {"localhost", "127.0.0.1"}:
            route.continue_()
        else:
            leaks.append(url)
            route.abort()

    page.route("**/*", route)
    return page


def test_report_and_data_docs_open_with_no_network(airflow, backfill_and_nightly):
    """The current version's report and the Data Docs index in a browser cut off from the
    network: every section there, the numbers those of the tables, no request leaving."""
    if not CHROMIUM.exists():
        pytest.skip("chromium not installed (make test installs Debian's chromium)")
    from playwright.sync_api import sync_playwright

    from reporting.segment_report import SECTIONS, report_path

    data_dir = Path(airflow.extra_env["SEGMENTS_DATA_DIR"])
    with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as con:
        version_id, k = con.execute("select version_id, k from segments.current_version").fetchone()
        sizes = dict(
            con.execute(
                "select segment_id, customer_count from segments.segment_profiles "
                "where version_id = ?",
                [version_id],
            ).fetchall()
        )
    report = report_path(data_dir / "reports", version_id)
    index = data_dir / "gx" / "data_docs" / "index.html"
    OUTPUT_DIR.mkdir(parents=True, exist_ok=True)
    leaks: list[str] = []
    with sync_playwright() as playwright:
        browser = _browser(playwright)
        try:
            page = _offline_page(browser, leaks)
            errors: list[str] = []
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.goto(report.as_uri())
            for key, title in SECTIONS:
                section = page.locator(f"section#{key}")
                assert section.count() == 1, key
                assert section.locator("h2").inner_text() == title
            assert page.locator("section#choice-of-k tr.chosen td").first.inner_text() == str(k)
            shown = {
                int(card.get_attribute("data-segment-id")): int(
                    card.locator(".count").inner_text().replace(",", "")
                )
                for card in page.locator("article.persona").all()
            }
            assert shown == sizes
            assert page.locator("section#projection svg").count() == 1
            page.screenshot(
                path=str(OUTPUT_DIR / f"segment-report-v{version_id}.png"), full_page=True
            )

            page.goto(index.as_uri())
            # bootstrap-table (jQuery) fills the index from a script: rows mean the JS ran.
            page.locator("table tbody tr").first.wait_for(timeout=30_000)
            assert page.locator("table tbody tr").count() >= 2
            listed = page.locator("table tbody").first.inner_text()
            assert "marts." in listed or "raw." in listed, listed[:500]
            page.screenshot(path=str(OUTPUT_DIR / "data-docs-index.png"), full_page=True)
            # One validation page, through the index's own link.
            page.locator("table tbody tr").first.click()
            page.wait_for_load_state()
            assert "/validations/" in page.url
            page.locator("text=Overview").first.wait_for(timeout=30_000)
            page.screenshot(path=str(OUTPUT_DIR / "data-docs-validation.png"), full_page=True)
        finally:
            browser.close()
    assert not errors, errors
    assert leaks == [], leaks
