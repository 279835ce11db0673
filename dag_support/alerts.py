"""Telling people a run failed or is late: one log line, and a webhook post when configured.

``on_task_failure`` is the tasks' ``on_failure_callback`` (Airflow calls it once a task has failed
for good, after its retries); ``run_is_late`` is the DAG's deadline-alert callback (the triggerer
awaits it when a run is still unfinished at its deadline). Both write one line that says what,
for which as-of date and why, and post it as JSON to ``SEGMENTS_ALERT_WEBHOOK_URL`` when that is
set (``{"text": ...}`` is what Slack, Mattermost and Teams incoming webhooks expect). A broken
webhook never fails the run: the post is tried once and a problem is logged. The error text is
passed through ``core.masking.scrub_text`` first (e-mail addresses, phone numbers and quoted
source lines masked), so an alert never carries a customer's identifiers even when a message did.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import urllib.request
from collections.abc import Mapping
from typing import Any

from core.masking import scrub_text

log = logging.getLogger(__name__)

WEBHOOK_ENV = "SEGMENTS_ALERT_WEBHOOK_URL"
WEBHOOK_TIMEOUT_S = 10.0
MAX_REASON_CHARS = 500


def failure_line(context: Mapping[str, Any]) -> str:
    """One line: which task of which run failed, for which as-of date, and why."""
    ti = context.get("ti") or context.get("task_instance")
    dag_id = getattr(ti, "dag_id", None) or getattr(context.get("dag"), "dag_id", "?")
    task_id = getattr(ti, "task_id", "?")
    run_id = context.get("run_id") or getattr(ti, "run_id", "?")
    try_number = getattr(ti, "try_number", None)
    max_tries = getattr(ti, "max_tries", None)
    tries = f", try {try_number} of {max_tries + 1}" if try_number and max_tries is not None else ""
    return (
        f"FAILED {dag_id}.{task_id} for as-of {_as_of(context)} (run {run_id}{tries}): "
        f"{_reason(context.get('exception'))}"
    )


def on_task_failure(context: Mapping[str, Any]) -> None:
    """``on_failure_callback`` of the pipeline's tasks."""
    line = failure_line(context)
    log.error(line)
    post_webhook(line, _payload(context, event="task_failed"))


async def run_is_late(context: Mapping[str, Any], **kwargs: Any) -> None:
    """Deadline-alert callback: the run is still not finished at its deadline."""
    dag_run = context.get("dag_run")
    dag_id = _get(dag_run, "dag_id") or kwargs.get("dag_id", "?")
    run_id = _get(dag_run, "run_id") or "?"
    limit = kwargs.get("limit", "its deadline")
    line = f"LATE {dag_id} run {run_id}: not finished {limit} after it was queued"
    log.warning(line)
    payload = {"event": "run_late", "dag_id": dag_id, "run_id": run_id}
    await asyncio.to_thread(post_webhook, line, payload)


def post_webhook(line: str, payload: Mapping[str, Any], url: str | None = None) -> bool:
    """POST ``{"text": line, **payload}`` to the configured webhook; True when it answered 2xx."""
    url = url or os.environ.get(WEBHOOK_ENV, "").strip()
    if not url:
        return False
    body = json.dumps({"text": line, **payload}, default=str).encode()
    request = urllib.request.Request(
        url, data=body, method="POST", headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=WEBHOOK_TIMEOUT_S) as response:
            ok = 200 <= response.status < 300
    except Exception as exc:  # an unreachable webhook must not hide the original failure
        log.warning("Could not post the alert to the webhook %s: %s", _host(url), exc)
        return False
    if not ok:
        log.warning("The alert webhook %s answered HTTP %s", _host(url), response.status)
    return ok


def _payload(context: Mapping[str, Any], *, event: str) -> dict[str, Any]:
    ti = context.get("ti") or context.get("task_instance")
    return {
        "event": event,
        "dag_id": getattr(ti, "dag_id", None),
        "task_id": getattr(ti, "task_id", None),
        "run_id": context.get("run_id") or getattr(ti, "run_id", None),
        "as_of_date": _as_of(context),
        "try_number": getattr(ti, "try_number", None),
        "error": _reason(context.get("exception")),
    }


def _as_of(context: Mapping[str, Any]) -> str:
    params = context.get("params") or {}
    if params.get("as_of_date"):
        return str(params["as_of_date"])
    for key in ("logical_date", "data_interval_start"):
        moment = context.get(key)
        if moment is not None:
            return moment.date().isoformat() if hasattr(moment, "date") else str(moment)
    return "?"


def _reason(exc: BaseException | str | None) -> str:
    """The error on one line: its class and message, lines joined with " | ", shortened. An
    ``AirflowFailException`` raised by ``dag_support.failures`` is reported as the error it
    wraps."""
    if exc is None:
        return "no exception recorded (see the task log)"
    if isinstance(exc, BaseException) and type(exc).__name__ == "AirflowFailException":
        exc = exc.__cause__ or exc
    text = scrub_text(exc if isinstance(exc, str) else f"{type(exc).__name__}: {exc}")
    line = " | ".join(part.strip() for part in text.splitlines() if part.strip())
    return line if len(line) <= MAX_REASON_CHARS else line[: MAX_REASON_CHARS - 3] + "..."


def _get(obj: Any, name: str) -> Any:
    if isinstance(obj, Mapping):
        return obj.get(name)
    return getattr(obj, name, None)


def _host(url: str) -> str:
    """The webhook's scheme and host only: its path often carries a secret token."""
    scheme, _, rest = url.partition("://")
    return f"{scheme}://{rest.split('/', 1)[0]}"
