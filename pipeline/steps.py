"""The pipeline's steps as plain functions: what each Airflow task runs, callable without Airflow.

Each step opens the warehouse itself (holding the single-writer lock), works on the as-of date it
is given, records its outcome for the run summary and returns a small JSON-serialisable dict.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

import duckdb

from core.read_copy import refresh_published_copy
from core.run_record import dates_in_flight, record_step
from core.settings import Settings, get_settings
from core.slices import dated_tables, prune_as_of_slices
from core.warehouse import connect
from pipeline.preload import TASK_LIBRARIES, not_preloaded

log = logging.getLogger(__name__)

# A run is in flight from its ``ingest`` (which starts the date's record with FIRST_STEP) until
# its last task, ``predict``, is the latest step it recorded (a run cleared from dbt_build after
# it had finished is in flight again); retention keeps its date's slices meanwhile. A run whose
# record has not moved for IN_FLIGHT_HOLD (a failure nobody retried within a week, a worker that
# died) no longer holds them.
FIRST_STEP = "run"
LAST_STEP = "predict"
IN_FLIGHT_HOLD = timedelta(days=7)


class NothingToPublish(Exception):
    """The version is not publishable by design (its model was rejected): not a failure."""


def _records_failure(name: str) -> Callable[[Callable[..., dict]], Callable[..., dict]]:
    """On failure, note which step (named like its Airflow task) failed and why in the as-of
    date's run record; a later success of the same step (a retry) clears the note. Each step
    first logs whether its process inherited the task libraries (``pipeline.preload``)."""

    def decorate(step: Callable[..., dict]) -> Callable[..., dict]:
        @functools.wraps(step)
        def wrapper(as_of_date: date, *args: Any, **kwargs: Any) -> dict:
            _log_preloaded(name)
            try:
                return step(as_of_date, *args, **kwargs)
            except NothingToPublish:
                raise
            except Exception as exc:
                record_step(
                    as_of_date,
                    "failure",
                    {"step": name, "error": f"{type(exc).__name__}: {exc}"},
                    kwargs.get("settings"),
                )
                raise

        return wrapper

    return decorate


def _log_preloaded(step: str) -> None:
    missing = not_preloaded()
    if not missing:
        log.info("%s: the task libraries were preloaded by the worker process", step)
    elif len(missing) == len(TASK_LIBRARIES):
        log.info(
            "%s: no task library was preloaded; this process imports what it uses itself "
            "(seconds each: see pipeline/preload.py)",
            step,
        )
    else:
        log.info("%s: task libraries not preloaded: %s", step, ", ".join(missing))


@_records_failure("ingest")
def ingest(as_of_date: date, *, run_id: str = "manual", settings: Settings | None = None) -> dict:
    """Load the configured sources (``SEGMENTS_SOURCES_CONFIG``; default the demo's landing
    layout) up to the as-of date into ``raw``; returns what the gate checks."""
    from ingestion.load import load_partitions

    settings = settings or get_settings()
    # A new attempt at this date: its record starts empty, so nothing of an earlier attempt is
    # shown as this run's, even if this step fails.
    record_step(as_of_date, FIRST_STEP, {"run_id": run_id}, settings, new_run=True)
    with connect(settings) as con:
        report = load_partitions(con, as_of_date, settings=settings, run_id=run_id)
    result = report.to_dict()
    result["validation_scope"] = {
        source: [d.isoformat() for d in dates]
        for source, dates in report.validation_scope().items()
    }
    record_step(as_of_date, "ingest", result, settings)
    return result


@_records_failure("validate_raw")
def validate_raw(
    as_of_date: date,
    validation_scope: dict[str, list[str]],
    *,
    run_id: str = "manual",
    settings: Settings | None = None,
) -> dict:
    """Quality gate on the raw partitions just loaded; raises QualityGateError when blocked."""
    from expectations import QualityGateError
    from expectations import validate_raw as run_raw_suites
    from ingestion.load import mark_validated
    from ingestion.sources import load_sources_config

    settings = settings or get_settings()
    orders = load_sources_config(settings=settings).sources.get("orders")
    kept = bool(orders and orders.keeps_anonymous_orders)
    partitions = {
        source: [date.fromisoformat(d) for d in dates] for source, dates in validation_scope.items()
    }
    with connect(settings) as con:
        try:
            report = run_raw_suites(
                con, partitions, run_id=run_id, as_of_date=as_of_date, anonymous_orders_kept=kept
            )
        except QualityGateError as exc:
            record_step(as_of_date, "validate_raw", exc.report.to_dict(), settings)
            raise
        mark_validated(con, partitions, as_of_date=as_of_date)
    result = report.to_dict()
    record_step(as_of_date, "validate_raw", result, settings)
    return result


@_records_failure("dbt_build")
def build_marts(
    as_of_date: date, *, full_refresh: bool = False, settings: Settings | None = None
) -> dict:
    """dbt build (seeds, models, tests) for the as-of date."""
    from ingestion.sources import load_sources_config
    from transform.dbt_build import run_dbt_build

    settings = settings or get_settings()
    # The sources the config has: the features of one it does not have are null, not 0.
    available = load_sources_config(settings=settings).available_sources
    result = run_dbt_build(
        as_of_date,
        settings=settings,
        full_refresh=full_refresh,
        dbt_vars={"available_sources": available},
    )
    payload = result.to_dict()
    record_step(as_of_date, "dbt_build", payload, settings)
    return payload


@_records_failure("validate_marts")
def validate_marts(
    as_of_date: date, *, run_id: str = "manual", settings: Settings | None = None
) -> dict:
    """Quality gate on the as-of slice of the marts; raises QualityGateError when blocked."""
    from expectations import QualityGateError
    from expectations import validate_marts as run_mart_suites

    settings = settings or get_settings()
    with connect(settings) as con:
        try:
            report = run_mart_suites(con, as_of_date, run_id=run_id)
        except QualityGateError as exc:
            record_step(as_of_date, "validate_marts", exc.report.to_dict(), settings)
            raise
    result = report.to_dict()
    record_step(as_of_date, "validate_marts", result, settings)
    return result


@_records_failure("recluster")
def recluster(
    as_of_date: date,
    *,
    run_id: str = "manual",
    mode: str | None = None,
    k: int | None = None,
    settings: Settings | None = None,
) -> dict:
    """Fit (or assign) the segments of the as-of date and store them as a version: a candidate,
    or a rejected one when the model misses the acceptance thresholds."""
    from ml_tasks.recluster import recluster as fit_and_store

    settings = settings or get_settings()
    with connect(settings) as con:
        result = fit_and_store(con, as_of_date, run_id=run_id, mode=mode, k=k)
        # A rejected version is never published: its report is drawn now. A candidate's is
        # drawn by publish, with its status, and again by predict with its predicted value.
        if result["status"] == "rejected":
            result["report_path"] = _write_report(con, result["version_id"], settings)
    record_step(as_of_date, "recluster", result, settings)
    return result


def _write_report(con: Any, version_id: int, settings: Settings) -> str | None:
    """The version's HTML report (reporting.segment_report); a report that cannot be written
    is a warning, never a reason to hold back the segments."""
    from reporting import write_segment_report

    try:
        path = write_segment_report(con, version_id, settings.reports_dir)
    except Exception as error:
        log.warning(
            "No report for segment version %d: %s: %s", version_id, type(error).__name__, error
        )
        return None
    log.info("Segment report of version %d: %s", version_id, path.as_uri())
    return str(path)


@_records_failure("predict")
def predict(
    as_of_date: date,
    *,
    run_id: str = "manual",
    refit: bool = False,
    settings: Settings | None = None,
) -> dict:
    """Customer lifetime value and churn/purchase propensity for the as-of date: the models of
    the night (reused while young, ``refit`` fits them anyway; a rejected one is stored, the
    current accepted one is used) and every customer's predictions, replacing the date's slice."""
    from ml_tasks.predict import predict as fit_and_store

    settings = settings or get_settings()
    with connect(settings) as con:
        # pytensor's compile cache: its default (~/.pytensor, or PYTENSOR_FLAGS), shared by every
        # process and run, so only the first fit on a machine compiles.
        result = fit_and_store(con, as_of_date, run_id=run_id, refit=refit)
        # Analysts see the predictions: only what predict changed is rewritten in the copy.
        result["published_copy"] = refresh_published_copy(con, changed_only=True)
        # The personas' predicted value and churn risk: the report of the version published
        # for this date is drawn again now that the date's predictions exist.
        published = con.execute(
            "select max(version_id) from segments.segment_versions "
            "where as_of_date = ? and status = 'published'",
            [as_of_date],
        ).fetchone()[0]
        if published is not None:
            result["report_path"] = _write_report(con, published, settings)
    for kind, model in result["models"].items():
        if model["status"] == "rejected":
            log.warning("Prediction model %s rejected: %s", kind, model["status_reason"])
    record_step(as_of_date, LAST_STEP, result, settings)
    return result


@_records_failure("publish")
def publish(as_of_date: date, version_id: int, *, settings: Settings | None = None) -> dict:
    """Publish the candidate version (current unless a later as-of date is), then apply the
    retention of the segmentation config: the member rows of the older versions, and the as-of
    slices of the marts and predictions no kept version needs (``_prune_slices``)."""
    from ml_tasks.config import load_config
    from ml_tasks.versions import publish_version

    settings = settings or get_settings()
    versions = load_config().versions
    keep = versions.keep_member_rows
    with connect(settings) as con:
        status, reason = con.execute(
            "select status, status_reason from segments.segment_versions where version_id = ?",
            [version_id],
        ).fetchone() or (None, None)
        if status == "rejected":
            raise NothingToPublish(
                f"Segment version {version_id} was rejected: {reason}. "
                "The previous version stays current."
            )
        result = publish_version(con, version_id, keep_member_rows=keep)
        # Rewritten now that the version is published (the recluster wrote it as a candidate).
        result["report_path"] = _write_report(con, version_id, settings)
        result["slices_deleted"] = _prune_slices(
            con, as_of_date - timedelta(days=versions.keep_slices_days), settings
        )
    log.info(
        "Published segment version %d for %s%s",
        version_id,
        as_of_date,
        "" if result["current"] else " (not current: a later as-of date is)",
    )
    if result["retired_versions"]:
        log.info("Retention retired versions %s (member rows pruned)", result["retired_versions"])
    record_step(as_of_date, "publish", result, settings)
    return result


def _prune_slices(
    con: duckdb.DuckDBPyConnection, before: date, settings: Settings | None = None
) -> dict[str, int] | None:
    """Delete the marts' and the predictions' slices of the as-of dates before ``before``, except
    the dates of the versions a rollback can return to (``ml_tasks.versions.reusable_as_of_dates``:
    its audiences and report read them), the dates of the runs in flight (``IN_FLIGHT_HOLD``: a
    backfilled date between its ``dbt_build`` and its ``predict`` reads its slices), and the day
    before each (a rerun of that date compares its customers' lifecycle stages with it,
    ``customer_lifecycle_transitions``). Rows deleted per table, or None when the delete failed:
    retention is housekeeping, so that is a warning (the run summary shows it) and the next
    publish deletes them. The version is published by then; failing the task would leave its
    retry nothing to publish."""
    from ml_tasks.predict import PREDICTIONS_TABLE
    from ml_tasks.versions import reusable_as_of_dates

    try:
        tables = dated_tables(con, "marts")
        if PREDICTIONS_TABLE in dated_tables(con, PREDICTIONS_TABLE.split(".")[0]):
            tables.append(PREDICTIONS_TABLE)
        in_flight = dates_in_flight(
            first_step=FIRST_STEP, last_step=LAST_STEP, within=IN_FLIGHT_HOLD, settings=settings
        )
        held = reusable_as_of_dates(con) | in_flight
        if older := sorted(day.isoformat() for day in in_flight if day < before):
            log.info("Retention keeps the slices of the runs in flight: %s", ", ".join(older))
        kept = held | {day - timedelta(days=1) for day in held}
        return prune_as_of_slices(con, tables, before=before, keep_dates=kept)
    except Exception as exc:  # any: after the publish's commit nothing may fail the step
        log.warning("Retention left the old as-of slices (the next publish retries): %s", exc)
        return None


@_records_failure("export_audiences")
def export_audiences(
    as_of_date: date, version_id: int | None = None, *, settings: Settings | None = None
) -> dict:
    """Write the audience files of the version (default: the current one) and point
    ``current/`` at the current version's (only customers with marketing consent)."""
    settings = settings or get_settings()
    result = _export(settings, version_id)
    record_step(as_of_date, "export_audiences", result, settings)
    return result


def export_current_audiences(*, settings: Settings | None = None) -> dict:
    """The audiences of the current version (the ``segment_export`` DAG, after a publish)."""
    settings = settings or get_settings()
    result = _export(settings, None)
    record_step(date.fromisoformat(result["as_of_date"]), "export_audiences", result, settings)
    return result


def _export(settings: Settings, version_id: int | None) -> dict:
    from activation.audiences import export_audiences as export

    with connect(settings) as con:
        return export(con, settings=settings, version_id=version_id).to_dict()


def rollback(version_id: int, *, by: str, reason: str, settings: Settings | None = None) -> dict:
    """Make an earlier published version current again (one transaction, recorded)."""
    from ml_tasks.versions import rollback_to

    settings = settings or get_settings()
    with connect(settings) as con:
        result = rollback_to(con, version_id, by=by, reason=reason)
    log.info(
        "Rolled back from version %s to version %d (as-of %s) by %s: %s",
        result["rolled_back_version_id"],
        version_id,
        result["as_of_date"],
        by,
        reason,
    )
    return result
