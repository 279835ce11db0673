"""The ``default_args`` every task of the pipeline's DAGs shares: owner, pool, retries, alert."""

from __future__ import annotations

import os
from datetime import timedelta
from typing import Any

from dag_support.alerts import on_task_failure

OWNER = "data-engineering"
LATE_AFTER_ENV = "SEGMENTS_LATE_AFTER_HOURS"
DEFAULT_LATE_AFTER_HOURS = 4.0


def late_after() -> timedelta | None:
    """How long after it was queued a run counts as late (``SEGMENTS_LATE_AFTER_HOURS``, default
    4; ``0`` turns the deadline alert off).

    ``make run`` and the ``dag.test()`` tests turn it off: in Airflow 3.3.2, ``dag.test()`` (and
    so ``airflow dags test``) hands the scheduler code a DAG whose deadline alerts were never
    saved, and a successful run then fails looking them up. The scheduler, where lateness
    matters, is not affected.
    """
    hours = float(os.environ.get(LATE_AFTER_ENV, DEFAULT_LATE_AFTER_HOURS))
    return timedelta(hours=hours) if hours > 0 else None


def task_defaults(pool: str) -> dict[str, Any]:
    """Transient failures (warehouse busy, I/O) get two more tries, 2 then 4 minutes later;
    permanent ones (quality gates, dbt, bad files) fail at once, see ``dag_support.failures``. A
    task that failed for good logs one line and posts it to the webhook (``dag_support.alerts``)."""
    return {
        "owner": OWNER,
        "pool": pool,
        "retries": 2,
        "retry_delay": timedelta(minutes=2),
        "retry_exponential_backoff": 2.0,
        "max_retry_delay": timedelta(minutes=30),
        "on_failure_callback": on_task_failure,
    }
