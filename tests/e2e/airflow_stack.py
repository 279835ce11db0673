"""A real Airflow for the tests: PostgreSQL, API server, scheduler and DAG processor, and a client
for the REST API the UI uses (``/api/v2``, bearer token from ``POST /auth/token``)."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from typing import Any

from tools.local_airflow import LocalAirflow

TERMINAL_RUN_STATES = {"success", "failed"}


class AirflowApi:
    """The REST API as the UI calls it, authenticated like a user (FAB login -> JWT)."""

    def __init__(self, airflow: LocalAirflow) -> None:
        self.base = airflow.url
        token = self._call(
            "POST",
            "/auth/token",
            {"username": airflow.admin_user, "password": airflow.admin_password},
            auth=False,
        )
        self.token = token["access_token"]

    def _call(self, method: str, path: str, body: Any = None, *, auth: bool = True) -> Any:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if auth:
            headers["Authorization"] = f"Bearer {self.token}"
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.base + path, data, headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                text = response.read()
        except urllib.error.HTTPError as exc:
            raise AssertionError(
                f"{method} {path} -> HTTP {exc.code}: {exc.read().decode()[:2000]}"
            ) from exc
        return json.loads(text) if text else None

    def get(self, path: str) -> Any:
        return self._call("GET", path)

    def post(self, path: str, body: Any) -> Any:
        return self._call("POST", path, body)

    def patch(self, path: str, body: Any) -> Any:
        return self._call("PATCH", path, body)

    def dag_runs(self, dag_id: str) -> list[dict]:
        return self.get(f"/api/v2/dags/{dag_id}/dagRuns?limit=100&order_by=logical_date")[
            "dag_runs"
        ]

    def task_instances(self, dag_id: str, run_id: str) -> list[dict]:
        quoted = urllib.parse.quote(run_id, safe="")
        return self.get(f"/api/v2/dags/{dag_id}/dagRuns/{quoted}/taskInstances")["task_instances"]


def wait_for(
    condition: Callable[[], Any], *, timeout_s: float, what: str, every_s: float = 3.0
) -> Any:
    """Poll until ``condition()`` returns something truthy; fail with ``what`` after timeout."""
    deadline = time.monotonic() + timeout_s
    last = None
    while time.monotonic() < deadline:
        last = condition()
        if last:
            return last
        time.sleep(every_s)
    raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")
