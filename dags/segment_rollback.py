"""
### Roll back the customer segments

Makes an earlier segment version current again, in one transaction: the version current until
now becomes `rolled_back`, and the change (who, when, why) is a row of
`segments.current_changes`.

**Trigger** this DAG from the UI (▶ *Trigger DAG*) with the `version_id` to return to and a
`reason`. `make versions` (or `segments.segment_versions`) lists the versions; only one that was
published and whose member rows are still kept can be made current.

The next nightly run publishes as usual and keeps segment ids stable against this version. To
hold the rolled-back segments for longer, pause `customer_segmentation`.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import Param, dag, get_current_context, task

from dag_support.failures import fail_fast_on_permanent_errors
from dag_support.task_defaults import task_defaults

WAREHOUSE_POOL = "duckdb_warehouse"


@dag(
    dag_id="segment_rollback",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args=task_defaults(WAREHOUSE_POOL),
    params={
        "version_id": Param(
            type="integer", minimum=1, description="The segment version to make current."
        ),
        "reason": Param(
            type="string", minLength=3, description="Why (recorded with the rollback)."
        ),
    },
    tags=["segmentation", "operations"],
    doc_md=__doc__,
)
def segment_rollback():
    @task
    def rollback() -> dict:
        """Make the chosen version current and record who, when and why."""
        from pipeline import steps

        context = get_current_context()
        params = context["params"]
        by = getattr(context["dag_run"], "triggering_user_name", None) or "airflow"
        with fail_fast_on_permanent_errors():
            return steps.rollback(int(params["version_id"]), by=by, reason=params["reason"])

    @task
    def export_audiences(rolled_back: dict) -> dict:
        """Point the audience files' `current/` at the version now current."""
        from pipeline import steps

        with fail_fast_on_permanent_errors():
            return steps.export_current_audiences()

    export_audiences(rollback())


segment_rollback()
