"""
### Export the current customer segments

Runs whenever `customer_segmentation` publishes a segment version (data-aware schedule on the
Asset `customer_segments_published`), and writes the current segments to
`$SEGMENTS_REPORTS_DIR/exports/segments-v<version>-<as-of>.csv` plus `segments-current.csv` for
the tools outside the warehouse (CRM, ads, email). A night whose model was rejected publishes
nothing, so nothing is exported.
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
    default_args=task_defaults(WAREHOUSE_POOL),
    tags=["segmentation", "export"],
    doc_md=__doc__,
)
def segment_export():
    @task
    def export_current_segments() -> dict:
        """Write the current version's members to CSV (atomically replaced)."""
        from activation.export import export_current_segments as export

        return export()

    export_current_segments()


segment_export()
