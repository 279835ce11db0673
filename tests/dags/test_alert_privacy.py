"""The failure alert (log line and webhook) never carries a customer's identifiers."""

from __future__ import annotations

from dag_support.alerts import failure_line, on_task_failure
from tests.dags.test_operations import _failure_context, _Webhook


def test_the_alert_masks_addresses_phones_and_quoted_lines(monkeypatch, caplog):
    error = RuntimeError(
        "orders/date=2026-07-01/orders.csv line 12 could not be read: "
        "'C1,Quorra,Zwyndell,quorra.z@example.com,+1 555 010 0199,1985-04-12'; "
        "contact jane.doe@example.com"
    )
    context = _failure_context(error)
    line = failure_line(context)
    with _Webhook() as hook:
        monkeypatch.setenv("SEGMENTS_ALERT_WEBHOOK_URL", hook.url)
        with caplog.at_level("ERROR", logger="dag_support.alerts"):
            on_task_failure(context)
    (posted,) = hook.received
    for text in (line, caplog.text, posted["text"], posted["error"]):
        for secret in ("Quorra", "Zwyndell", "quorra.z", "jane.doe", "example.com", "0199"):
            assert secret not in text, (secret, text)
        assert "orders/date=2026-07-01/orders.csv line 12" in text
