"""How the DAGs behave for the people who operate them: retries, alerts, trigger form, docs."""

from __future__ import annotations

import copy
import json
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from types import SimpleNamespace

import pytest

from core.warehouse import WarehouseBusyError
from dag_support.alerts import failure_line, on_task_failure, post_webhook, run_is_late
from dag_support.failures import fail_fast_on_permanent_errors
from transform.dbt_build import DbtBuildError


@pytest.fixture(scope="module")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    from tests.conftest import ROOT

    with pytest.MonkeyPatch.context() as monkeypatch:
        # As deployed: the lateness alert on (the test suite turns it off for dag.test()).
        monkeypatch.setenv("SEGMENTS_LATE_AFTER_HOURS", "4")
        bag = DagBag(dag_folder=str(ROOT / "dags"))
    assert bag.import_errors == {}
    return bag


@pytest.fixture(scope="module")
def nightly(dagbag):
    return dagbag.dags["customer_segmentation"]


def test_every_task_retries_with_backoff_and_alerts_on_failure(dagbag):
    for dag in dagbag.dags.values():
        assert dag.tags and "segmentation" in dag.tags, dag.dag_id
        assert dag.doc_md, dag.dag_id
        for task in dag.tasks:
            assert task.owner == "data-engineering", task.task_id
            assert task.pool == "duckdb_warehouse", task.task_id
            assert task.retries == 2, task.task_id
            assert task.retry_exponential_backoff, task.task_id
            assert task.on_failure_callback, task.task_id
            assert task.doc_md, f"{dag.dag_id}.{task.task_id} has no doc for the UI"


def test_nightly_schedule_and_lateness_alert(nightly):
    assert nightly.catchup is False
    assert nightly.max_active_runs == 1
    assert str(nightly.timetable.timezone) in {"UTC", "Timezone('UTC')"}
    (deadline,) = nightly.deadline
    assert deadline.interval == timedelta(hours=4)
    assert deadline.callback.path == "dag_support.alerts.run_is_late"


def test_publish_announces_the_asset_the_export_dag_waits_for(dagbag, nightly):
    from dag_support.assets import SEGMENTS_PUBLISHED

    assert SEGMENTS_PUBLISHED in nightly.get_task("publish").outlets
    export = dagbag.dags["segment_export"]
    assert list(export.timetable.asset_condition.objects) == [SEGMENTS_PUBLISHED]
    # Audiences are written after every publish without anyone unpausing anything.
    assert export.is_paused_upon_creation is False
    assert nightly.get_task("export_audiences").upstream_task_ids == {"publish"}


@pytest.mark.parametrize(
    ("conf", "ok"),
    [
        ({}, True),
        ({"as_of_date": "2026-06-30", "full_refresh": True, "recluster_mode": "full"}, True),
        ({"recluster_mode": "assign", "k": 6}, True),
        ({"as_of_date": "30/06/2026"}, False),
        ({"as_of_date": "2026-13-01"}, False),
        ({"recluster_mode": "config"}, True),
        ({"recluster_mode": "sometimes"}, False),
        ({"k": 1}, False),
        ({"k": 31}, False),
        ({"full_refresh": "yes"}, False),
        ({"refit_predictions": True}, True),
        ({"refit_predictions": "sometimes"}, False),
    ],
)
def test_trigger_form_validates_its_params(nightly, conf, ok):
    from airflow.sdk.exceptions import ParamValidationError

    def validate() -> dict:
        params = copy.deepcopy(nightly.params)
        for name, value in conf.items():
            params[name] = value
        return params.validate()

    if ok:
        assert validate()["full_refresh"] is bool(conf.get("full_refresh", False))
    else:
        with pytest.raises(ParamValidationError):
            validate()


def test_permanent_failures_skip_the_retries_transient_ones_keep_them():
    from airflow.sdk.exceptions import AirflowFailException

    from expectations import QualityGateError

    with (
        pytest.raises(AirflowFailException, match=r"DbtBuildError: model x failed.*not retried"),
        fail_fast_on_permanent_errors(),
    ):
        raise DbtBuildError("model x failed")
    gate_error = QualityGateError.__new__(QualityGateError)
    Exception.__init__(gate_error, "raw.orders: amount not numeric")
    with (
        pytest.raises(AirflowFailException, match="QualityGateError"),
        fail_fast_on_permanent_errors(),
    ):
        raise gate_error
    with pytest.raises(WarehouseBusyError), fail_fast_on_permanent_errors():
        raise WarehouseBusyError("locked for 3600 s")


class _Webhook:
    """A real HTTP server on a free localhost port that records what is posted to it."""

    def __init__(self, status: int = 200) -> None:
        received = self.received = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers["Content-Length"])
                received.append(json.loads(self.rfile.read(length)))
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks/secret-token"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


def _failure_context(exc: BaseException) -> dict:
    ti = SimpleNamespace(
        dag_id="customer_segmentation",
        task_id="validate_raw",
        run_id="scheduled__2026-06-30T00:00:00+00:00",
        try_number=1,
        max_tries=2,
    )
    return {
        "ti": ti,
        "run_id": ti.run_id,
        "params": {},
        "logical_date": datetime(2026, 6, 30, tzinfo=UTC),
        "exception": exc,
    }


def test_failure_callback_logs_one_line_and_posts_it(monkeypatch, caplog):
    from airflow.sdk.exceptions import AirflowFailException

    try:
        with fail_fast_on_permanent_errors():
            raise DbtBuildError("dbt build failed:\n  model customer_rfm: division by zero")
    except AirflowFailException as exc:
        context = _failure_context(exc)
    line = failure_line(context)
    assert "\n" not in line
    assert line.startswith("FAILED customer_segmentation.validate_raw for as-of 2026-06-30")
    assert "try 1 of 3" in line and line.endswith(
        "DbtBuildError: dbt build failed: | model customer_rfm: division by zero"
    )

    with _Webhook() as hook:
        monkeypatch.setenv("SEGMENTS_ALERT_WEBHOOK_URL", hook.url)
        with caplog.at_level("ERROR", logger="dag_support.alerts"):
            on_task_failure(context)
    assert [record.getMessage() for record in caplog.records] == [line]
    (posted,) = hook.received
    assert posted["text"] == line
    assert posted["task_id"] == "validate_raw" and posted["as_of_date"] == "2026-06-30"


def test_no_webhook_configured_or_a_broken_one_never_raises(monkeypatch, caplog):
    monkeypatch.delenv("SEGMENTS_ALERT_WEBHOOK_URL", raising=False)
    assert post_webhook("x", {}) is False
    with _Webhook(status=500) as hook:
        assert post_webhook("x", {}, url=hook.url) is False
    with caplog.at_level("WARNING", logger="dag_support.alerts"):
        assert post_webhook("x", {}, url="http://127.0.0.1:9/hooks/secret-token") is False
    assert "secret-token" not in caplog.text


def test_late_run_callback_posts(monkeypatch):
    import asyncio

    with _Webhook() as hook:
        monkeypatch.setenv("SEGMENTS_ALERT_WEBHOOK_URL", hook.url)
        dag_run = {"dag_id": "customer_segmentation", "run_id": "scheduled__2026-06-30"}
        asyncio.run(run_is_late({"dag_run": dag_run}, limit="4 h"))
    (posted,) = hook.received
    assert posted["event"] == "run_late"
    assert posted["text"] == (
        "LATE customer_segmentation run scheduled__2026-06-30: not finished 4 h after it was queued"
    )


def test_the_trigger_form_shows_real_defaults(nightly):
    """No literal ``null`` preselected in a dropdown: recluster mode defaults to the config's."""
    params = nightly.params
    assert params["recluster_mode"] == "config"
    schema = params.get_param("recluster_mode").schema
    assert None not in schema["enum"]
    assert set(schema["values_display"]) == set(schema["enum"])


def test_the_schedule_ends_where_the_landed_data_ends(monkeypatch):
    """make ui sets the end to the demo's last landed day: no run for a day without data."""
    from airflow.dag_processing.dagbag import DagBag

    from tests.conftest import ROOT

    monkeypatch.setenv("SEGMENTS_SCHEDULE_END_DATE", "2026-07-07")
    dag = DagBag(dag_folder=str(ROOT / "dags" / "customer_segmentation.py")).dags[
        "customer_segmentation"
    ]
    assert dag.end_date == datetime(2026, 7, 7, 23, 59, 59, 999999, tzinfo=UTC)
    assert dag.start_date == datetime(2026, 1, 1, tzinfo=UTC)
