"""A long dbt invocation says what it is doing at least every PROGRESS_EVERY_S seconds."""

from __future__ import annotations

import logging
import time
from types import SimpleNamespace

import pytest

from transform import dbt_build


def _event(name: str, **data: object) -> SimpleNamespace:
    return SimpleNamespace(info=SimpleNamespace(name=name), data=SimpleNamespace(**data))


def test_progress_lines_name_the_phase_then_the_nodes_done_of_all(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
):
    monkeypatch.setattr(dbt_build, "PROGRESS_EVERY_S", 0.05)
    progress = dbt_build._Progress("dbt build")
    with caplog.at_level(logging.INFO, logger=dbt_build.__name__), progress.heartbeat():
        time.sleep(0.2)
        progress.on_event(_event("ConcurrencyLine", node_count=165))
        for _ in range(3):
            progress.on_event(_event("NodeFinished"))
        time.sleep(0.2)

    lines = [record.getMessage() for record in caplog.records]
    assert any(line.startswith("dbt build: parsing and compiling the project") for line in lines)
    assert any(line.startswith("dbt build: 3/165 nodes done") for line in lines)
