"""The libraries the tasks import that take seconds each, imported once per worker, not per task.

Every Airflow task runs in a process of its own, and importing Great Expectations took about
4 s of each gate's 5-7 s at 1M customers, dbt about 2.5 s and scikit-learn about 2 s of the
steps that use them (docs/benchmarks.md). The LocalExecutor forks each task from one of its
worker processes; with ``[scheduler] mp_start_method = forkserver`` and this list as
``[scheduler] mp_forkserver_preload`` (``tools.local_airflow.compose_settings``, the same in
docker-compose.yml), the workers start from a process that imported these libraries once, and
every task inherits them copy-on-write. ``tools.bench`` runs its stages the same way.

matplotlib's pyplot is cheaper (about 0.25 s with the others loaded) but three tasks of every
night import it to draw the segment report (recluster, publish, predict).

Only third-party libraries are listed: the pipeline's own modules are imported by each task, so
a changed file is used by the next task without restarting the scheduler. pymc-marketing is not
listed: pytensor reads its compile directory when imported (``ml_tasks.clv``).
"""

from __future__ import annotations

import sys

TASK_LIBRARIES = (
    "great_expectations",  # validate_raw, validate_marts
    "dbt.cli.main",  # dbt_build
    "dbt.adapters.duckdb",
    "sklearn.cluster",  # recluster
    "sklearn.compose",
    "sklearn.decomposition",
    "sklearn.impute",
    "sklearn.metrics",
    "sklearn.mixture",
    "sklearn.neighbors",
    "sklearn.pipeline",
    "sklearn.preprocessing",
    "sklearn.calibration",  # predict
    "sklearn.ensemble",
    "sklearn.frozen",
    "sklearn.inspection",
    "sklearn.model_selection",
    "matplotlib.pyplot",  # the segment report, drawn by recluster, publish and predict
)


def forkserver_preload() -> str:
    """The value of Airflow's ``mp_forkserver_preload`` setting."""
    return ", ".join(TASK_LIBRARIES)


def not_preloaded() -> list[str]:
    """The task libraries this process has not imported yet (all of them in a task process
    that was not forked from a preloaded worker)."""
    return [name for name in TASK_LIBRARIES if name not in sys.modules]
