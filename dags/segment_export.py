"""
### Export the audiences of the current customer segments

Runs whenever a segment version is published (data-aware schedule on the Asset
`customer_segments_published`; active on creation, nobody needs to unpause it) and writes the
audience files of the current version to `$SEGMENTS_REPORTS_DIR/exports/audiences/` (per segment:
members, entered, exited; CSV and Parquet; a `manifest.json`; only customers with marketing
consent), then points `current/` at them. The nightly DAG's `export_audiences` task does the same
right after `publish`, so a run without a scheduler (`make run`, `dag.test()`) exports too; a
version already exported is not written twice.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import dag, task

from dag_support.assets import SEGMENTS_PUBLISHED
from dag_support.task_defaults import task_defaults

WAREHOUSE_POOL = "duckdb_warehouse"


@dag(
    dag_id="segment_export",
    schedule=[SEGMENTS_PUBLISHED],
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    is_paused_upon_creation=False,
    default_args=task_defaults(WAREHOUSE_POOL),
    tags=["segmentation", "export"],
    doc_md=__doc__,
)
def segment_export():
    @task
    def export_audiences() -> dict:
        """Write the current version's audience files (atomically, `current/` swapped)."""
        from pipeline import steps

        return steps.export_current_audiences()

    export_audiences()


segment_export()
