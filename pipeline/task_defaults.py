"""The ``default_args`` every task of the pipeline's DAGs shares: owner, pool, retries, alert."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from pipeline.alerts import on_task_failure

OWNER = "data-engineering"


def task_defaults(pool: str) -> dict[str, Any]:
    """Transient failures (warehouse busy, I/O) get two more tries, 2 then 4 minutes later;
    permanent ones (quality gates, dbt, bad files) fail at once, see ``pipeline.failures``. A task
    that failed for good logs one line and posts it to the webhook (``pipeline.alerts``)."""
    return {
        "owner": OWNER,
        "pool": pool,
        "retries": 2,
        "retry_delay": timedelta(minutes=2),
        "retry_exponential_backoff": 2.0,
        "max_retry_delay": timedelta(minutes=30),
        "on_failure_callback": on_task_failure,
    }
