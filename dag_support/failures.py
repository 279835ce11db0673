"""Which failures are worth a retry.

A blocked quality gate, a failing dbt model or test, a landing file that cannot be loaded or a
day that has not ended will fail the same way on every retry: retrying only delays the alert and
holds the warehouse. Those fail the task at once. Anything else (the warehouse lock held too
long, a full disk, a killed process) may pass on the next try and is left to the task's retries.

Errors are recognised by their class's dotted path (anywhere in its MRO), so classifying one never
imports Great Expectations, dbt or the loader.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

# Failures that repeat on a retry, with the hint the task log gives the operator.
PERMANENT_ERRORS: dict[str, str] = {
    "expectations.gate.QualityGateError": "fix the data (or the expectation), then clear the task",
    "transform.dbt_build.DbtBuildError": "fix the dbt model or test, then clear the task",
    "ingestion.sources.IngestionError": "fix the landing file or the sources config, then clear "
    "the task",
    "core.as_of.UnfinishedDayError": "run a date that has ended",
    "ml_tasks.config.ConfigError": "fix the segmentation config, then clear the task",
    "ml_tasks.recluster.ReclusterError": "change the recluster params, or run mode full",
    "ml_tasks.features.MissingFeaturesError": "rerun dbt_build for this date first",
    "ml_tasks.versions.PublishError": "rerun the date from recluster",
    "ml_tasks.versions.RollbackError": "pick a version `make versions` lists as kept",
    "pipeline.erasure.ErasureError": "check the customer id and give a reason",
    "activation.audiences.ExportError": "publish a version first, or fix SEGMENTS_EXPORT_PROFILE",
}


def permanent_error_hint(exc: BaseException) -> str | None:
    """The operator's next step when ``exc`` is a failure a retry cannot fix, else None."""
    for cls in type(exc).__mro__:
        hint = PERMANENT_ERRORS.get(f"{cls.__module__}.{cls.__qualname__}")
        if hint is not None:
            return hint
    return None


@contextmanager
def fail_fast_on_permanent_errors() -> Iterator[None]:
    """Inside an Airflow task: turn a permanent failure into ``AirflowFailException``, which
    fails the task without using its retries. Other exceptions pass through unchanged."""
    try:
        yield
    except Exception as exc:
        hint = permanent_error_hint(exc)
        if hint is None:
            raise
        from airflow.sdk.exceptions import AirflowFailException

        raise AirflowFailException(f"{type(exc).__name__}: {exc} (not retried: {hint})") from exc
