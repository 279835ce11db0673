"""
### Nightly customer segmentation

Turns the day's landed customer data into published customer segments:

`ingest` → `validate_raw` → `dbt_build` → `validate_marts` → `recluster` → `publish` →
`export_audiences`, then `predict`

* **Sources.** `ingest` reads the sources config (`SEGMENTS_SOURCES_CONFIG`; default the demo's
  landing layout, `ingestion/sources.yml`): daily `date=` folders or growing snapshot files, their
  columns mapped to the contract. A user's own files take the same path as the demo's: row
  rules, quarantine, both gates. See docs/bring-your-own-data.md.
* **As-of date.** The run's logical date is the as-of date *D*: every stage computes from landing
  partitions dated ≤ *D* and events up to the end of *D* (UTC). The scheduled run for *D* starts at
  02:00 UTC on *D + 1*. Re-running *D* (clear the run, or backfill over it) replaces *D*'s outputs
  and nothing else; the `as_of_date` param overrides the date for a manual run.
* **Quality gates.** A failed blocking expectation stops the run before `publish`; the previously
  published segments stay current.
* **Recluster.** `auto` (default) assigns customers to the current model when drift is small and
  refits on the configured cadence or when drift passes its threshold; `full` always refits (with
  an optional fixed `k`); `assign` never does. A model that misses the acceptance thresholds is
  stored as *rejected*: `publish` is skipped and the previous version stays current.
* **Predict.** Customer lifetime value and churn/purchase propensity of every customer
  (`segments.customer_predictions`); runs after `publish` (also when it was skipped), so it never
  delays or blocks the segments. A propensity model that misses its thresholds is stored as
  rejected and the previous one keeps scoring. See docs/predictions.md.
* **One writer.** DuckDB allows one writing process per file, so every task runs in the
  `duckdb_warehouse` pool (1 slot) and only one run is active at a time: a backfill and the
  nightly run queue behind each other.

**Trigger form** (▶ *Trigger*): `as_of_date` (a past day, YYYY-MM-DD), `full_refresh` (dbt
`--full-refresh`, e.g. after a seed's columns changed), `recluster_mode` (`full` refits, `assign`
reuses the current model) and `k` (fixes the number of segments, implies a refit).

**Backfill** (*Backfill* in the trigger dialog, or `POST /api/v2/backfills`): one run per day in
date order, each day its own as-of date and its own segment version.

**Failures.** Retried twice with backoff when the cause may pass (warehouse busy, I/O); a blocked
quality gate or a failing dbt model fails at once (clear the task after the fix). A failed task
logs one `FAILED ...` line with the reason and posts it to `SEGMENTS_ALERT_WEBHOOK_URL` if set; a
run still unfinished 4 h after it was queued (`SEGMENTS_LATE_AFTER_HOURS`) logs a `LATE ...` line
(and posts it).

Outputs: the audience files (`$SEGMENTS_REPORTS_DIR/exports/audiences/current/`: members, entered
and exited per segment, consenting customers only), `segments.current_segments` (view),
`segments.segment_membership_changes`, `segments.segment_versions`,
`segments.customer_segments`, `segments.segment_profiles`, `segments.segment_transitions`, and
the dbt marts (one slice per as-of date) `marts.customers`, `marts.customer_features`,
`marts.customer_rfm`, `marts.customer_lifecycle`, `marts.customer_lifecycle_transitions`,
`marts.cohort_retention`, `marts.signup_cohort_retention`, `marts.behavioural_cohort_retention`,
`marts.returned_orders`, `marts.cancelled_orders`.
"""

from __future__ import annotations

from airflow.sdk import (
    AsyncCallback,
    CronDataIntervalTimetable,
    DeadlineAlert,
    DeadlineReference,
    Param,
    dag,
    get_current_context,
    task,
)

from dag_support.alerts import run_is_late
from dag_support.assets import SEGMENTS_PUBLISHED
from dag_support.failures import fail_fast_on_permanent_errors
from dag_support.schedule import schedule_end, schedule_start
from dag_support.task_defaults import OWNER, late_after, task_defaults

WAREHOUSE_POOL = "duckdb_warehouse"
# A nightly run normally takes minutes; one still running this long after it was queued is late.
LATE_AFTER = late_after()


def _as_of():
    from core.as_of import as_of_date_from_context

    context = get_current_context()
    return as_of_date_from_context(context), context["run_id"]


@dag(
    dag_id="customer_segmentation",
    schedule=CronDataIntervalTimetable("0 2 * * *", timezone="UTC"),
    # 2026-01-01 onwards; a demo ends where its landed data ends (dag_support/schedule.py).
    start_date=schedule_start(),
    end_date=schedule_end(),
    catchup=False,
    max_active_runs=1,
    default_args=task_defaults(WAREHOUSE_POOL),
    deadline=DeadlineAlert(
        reference=DeadlineReference.DAGRUN_QUEUED_AT,
        interval=LATE_AFTER,
        callback=AsyncCallback(
            run_is_late, kwargs={"limit": f"{LATE_AFTER.total_seconds() / 3600:g} h"}
        ),
    )
    if LATE_AFTER
    else None,
    params={
        "as_of_date": Param(
            None,
            type=["null", "string"],
            format="date",
            pattern=r"^\d{4}-\d{2}-\d{2}$",
            title="As-of date",
            description="Override the as-of date (YYYY-MM-DD, a day that has ended); empty uses "
            "the run's logical date.",
        ),
        "full_refresh": Param(
            False,
            type="boolean",
            title="dbt full refresh",
            description="Run dbt with --full-refresh (rebuilds seeds, views and tables; the marts "
            "keep their history). Needed after a seed's columns changed.",
        ),
        "recluster_mode": Param(
            "config",
            type="string",
            enum=["config", "auto", "full", "assign"],
            values_display={
                "config": "config: the segmentation config's refresh.mode",
                "auto": "auto: refit on cadence or drift, else assign",
                "full": "full: refit",
                "assign": "assign: reuse the current model",
            },
            title="Recluster mode",
            description="config (default): the segmentation config's refresh.mode. auto: refit "
            "on cadence or drift, else assign; full: refit; assign: reuse the current model.",
        ),
        "k": Param(
            None,
            type=["null", "integer"],
            minimum=2,
            maximum=30,
            title="Number of segments (k)",
            description="Fix the number of segments (implies a full recluster); empty: chosen.",
        ),
        "refit_predictions": Param(
            False,
            type="boolean",
            title="Refit the prediction models",
            description="Fit the CLV and propensity models tonight even if the current ones are "
            "younger than predictions.refit_every_days (they are reused until then) or a fit "
            "that young was rejected (it is not tried again until then).",
        ),
    },
    tags=["segmentation", "nightly"],
    owner_links={OWNER: "mailto:data-engineering@segments.local"},
    doc_md=__doc__,
)
def customer_segmentation():
    @task
    def ingest() -> dict:
        """Load the configured sources up to the as-of date into the raw schema (idempotent)."""
        from pipeline import steps

        with fail_fast_on_permanent_errors():
            as_of_date, run_id = _as_of()
            return steps.ingest(as_of_date, run_id=run_id)

    @task
    def validate_raw(load_report: dict) -> dict:
        """Great Expectations suites on the raw partitions this run loaded (blocking gate)."""
        from pipeline import steps

        with fail_fast_on_permanent_errors():
            as_of_date, run_id = _as_of()
            return steps.validate_raw(as_of_date, load_report["validation_scope"], run_id=run_id)

    @task
    def dbt_build() -> dict:
        """dbt build of staging, intermediate and marts for the as-of date, with dbt tests.

        The log has one line per dbt node (model, seed, test) with its status and time; the
        per-node results are this task's return value (XCom) and in the run record.
        """
        from pipeline import steps

        with fail_fast_on_permanent_errors():
            as_of_date, _ = _as_of()
            full_refresh = bool(get_current_context()["params"].get("full_refresh"))
            return steps.build_marts(as_of_date, full_refresh=full_refresh)

    @task
    def validate_marts() -> dict:
        """Great Expectations suites on the as-of slice of the marts (blocking gate)."""
        from pipeline import steps

        with fail_fast_on_permanent_errors():
            as_of_date, run_id = _as_of()
            return steps.validate_marts(as_of_date, run_id=run_id)

    @task
    def recluster() -> dict:
        """Assign or refit (model selection, stable ids, personas); store the version."""
        from pipeline import steps

        with fail_fast_on_permanent_errors():
            as_of_date, run_id = _as_of()
            params = get_current_context()["params"]
            mode = params.get("recluster_mode")
            return steps.recluster(
                as_of_date,
                run_id=run_id,
                mode=None if mode == "config" else mode,
                k=params.get("k"),
            )

    @task
    def predict() -> dict:
        """Customer lifetime value (BG/NBD + Gamma-Gamma) and churn/purchase propensity for the
        as-of date; models younger than predictions.refit_every_days are reused, a rejected one
        is stored, the previous one stays in use and the kind is not fitted again until then."""
        from pipeline import steps

        with fail_fast_on_permanent_errors():
            as_of_date, run_id = _as_of()
            refit = bool(get_current_context()["params"].get("refit_predictions"))
            return steps.predict(as_of_date, run_id=run_id, refit=refit)

    @task(outlets=[SEGMENTS_PUBLISHED])
    def publish(candidate: dict) -> dict:
        """Make the candidate version current in one transaction (skipped when rejected)."""
        from airflow.sdk.exceptions import AirflowSkipException

        from pipeline import steps

        with fail_fast_on_permanent_errors():
            as_of_date, _ = _as_of()
            try:
                return steps.publish(as_of_date, candidate["version_id"])
            except steps.NothingToPublish as skip:
                raise AirflowSkipException(str(skip)) from skip

    @task
    def export_audiences(published: dict) -> dict:
        """Per segment: members, entered and exited lists (CSV, Parquet, manifest), only
        customers with marketing consent; ``current/`` follows the current version."""
        from pipeline import steps

        with fail_fast_on_permanent_errors():
            as_of_date, _ = _as_of()
            return steps.export_audiences(as_of_date, published["version_id"])

    raw_gate = validate_raw(ingest())
    marts = dbt_build()
    mart_gate = validate_marts()
    candidate = recluster()
    raw_gate >> marts >> mart_gate >> candidate
    published = publish(candidate)
    exported = export_audiences(published)
    # After the segments and their audiences (so a slow or failed prediction never holds them
    # back), whatever publish did: a skipped publish (rejected segments) still gets predictions.
    predictions = predict.override(trigger_rule="none_failed")()
    [mart_gate, published, exported] >> predictions


customer_segmentation()
