"""
### Erase one customer on request (GDPR art. 17, CCPA deletion)

Trigger with the customer id and the reason (a ticket number): removes the person from the raw,
quarantine, staging, intermediate, pii, marts and segments schemas (every version's member rows
and membership changes included) and from the audience exports, and records the request in
`audit.erasure_requests` (hashed ids, when, who, why; never the identifiers). Later loads of old
landing files keep the person out. The landing files belong to the upstream system: ask it to
delete the person there too. Same step as `make forget CUSTOMER=... REASON=...`.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import Param, dag, get_current_context, task

from dag_support.failures import fail_fast_on_permanent_errors
from dag_support.task_defaults import task_defaults

WAREHOUSE_POOL = "duckdb_warehouse"


@dag(
    dag_id="customer_erasure",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    is_paused_upon_creation=False,
    default_args=task_defaults(WAREHOUSE_POOL),
    params={
        "customer_id": Param(type="string", minLength=1, description="The customer to erase."),
        "reason": Param(type="string", minLength=3, description="Why (a ticket number; recorded)."),
    },
    tags=["segmentation", "privacy"],
    doc_md=__doc__,
)
def customer_erasure():
    @task
    def forget() -> dict:
        """Erase the person everywhere and record the request (hashes only)."""
        from pipeline.erasure import forget as erase

        context = get_current_context()
        params = context["params"]
        by = getattr(context["dag_run"], "triggering_user_name", None) or "airflow"
        with fail_fast_on_permanent_errors():
            return erase(params["customer_id"], by=by, reason=params["reason"])

    forget()


customer_erasure()
