"""The nightly DAG imports cleanly and is wired the way the pipeline promises."""

from __future__ import annotations

from datetime import UTC, date, datetime
from itertools import pairwise

import pytest

from core.as_of import UnfinishedDayError, as_of_date_from_context


@pytest.fixture(scope="module")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    from tests.conftest import ROOT

    return DagBag(dag_folder=str(ROOT / "dags"))


@pytest.fixture(scope="module")
def dag(dagbag):
    return dagbag.dags["customer_segmentation"]


def test_dags_import_without_errors(dagbag):
    assert dagbag.import_errors == {}
    assert "customer_segmentation" in dagbag.dags


def test_stages_run_in_order(dag):
    order = [
        "ingest", "validate_raw", "dbt_build", "validate_marts", "recluster", "publish",
        "export_audiences",
    ]  # fmt: skip
    for upstream, downstream in pairwise(order):
        assert downstream in dag.get_task(upstream).downstream_task_ids, (upstream, downstream)
    # The predictions follow the mart gate and the segments, and do not hold publish back.
    assert {"validate_marts", "publish"} <= dag.get_task("predict").upstream_task_ids
    assert dag.get_task("predict").trigger_rule == "none_failed"
    assert set(dag.task_ids) == {*order, "predict"}


def test_only_one_writer_at_a_time(dag):
    assert dag.max_active_runs == 1
    assert {task.pool for task in dag.tasks} == {"duckdb_warehouse"}


def test_runs_nightly_for_the_previous_day_without_catchup(dag):
    assert dag.catchup is False
    from airflow.serialization.encoders import coerce_to_core_timetable

    # The scheduler's view of the timetable (the SDK object only declares it).
    interval = coerce_to_core_timetable(dag.timetable).infer_manual_data_interval(
        run_after=datetime(2026, 7, 1, 3, 0, tzinfo=UTC)
    )
    # The run after 02:00 on July 1st processes June 30th.
    assert interval.start.date() == date(2026, 6, 30)
    assert dag.doc_md and "As-of date" in dag.doc_md


def test_as_of_date_is_the_logical_date_unless_overridden():
    logical = datetime(2026, 6, 30, 0, 0, tzinfo=UTC)
    today = date(2026, 7, 1)
    assert as_of_date_from_context({"logical_date": logical, "params": {}}, today=today) == date(
        2026, 6, 30
    )
    assert as_of_date_from_context(
        {"logical_date": logical, "params": {"as_of_date": "2026-05-01"}}, today=today
    ) == date(2026, 5, 1)
    # A manual run without a logical date falls back to its data interval.
    assert as_of_date_from_context(
        {"logical_date": None, "data_interval_start": logical, "params": {}}, today=today
    ) == date(2026, 6, 30)
    with pytest.raises(ValueError, match="as_of_date"):
        as_of_date_from_context({"params": {}}, today=today)


def test_a_day_that_has_not_ended_is_refused():
    # The UI's default logical date is "now": that day's data is not complete yet.
    now = datetime(2026, 7, 1, 9, 30, tzinfo=UTC)
    with pytest.raises(UnfinishedDayError, match="2026-07-01 has not ended"):
        as_of_date_from_context({"logical_date": now, "params": {}}, today=date(2026, 7, 1))
    with pytest.raises(UnfinishedDayError):
        as_of_date_from_context(
            {"logical_date": now, "params": {"as_of_date": "2026-07-02"}}, today=date(2026, 7, 1)
        )
