"""The run record behind `make run`'s summary tells the truth about retries and new attempts."""

from __future__ import annotations

from datetime import date

from core.run_record import read_record, record_step

DAY = date(2026, 6, 30)


def test_a_retried_step_that_succeeds_clears_its_failure(tmp_path, monkeypatch):
    monkeypatch.setenv("SEGMENTS_DATA_DIR", str(tmp_path))
    record_step(DAY, "run", {"run_id": "r1"}, new_run=True)
    record_step(DAY, "failure", {"step": "publish", "error": "PublishError: locked"})
    record_step(DAY, "recluster", {"version_id": 3})  # another step does not clear it
    assert "failure" in read_record(DAY)
    record_step(DAY, "publish", {"version_id": 3})
    assert "failure" not in read_record(DAY)


def test_a_new_attempt_starts_an_empty_record(tmp_path, monkeypatch):
    monkeypatch.setenv("SEGMENTS_DATA_DIR", str(tmp_path))
    record_step(DAY, "publish", {"version_id": 1})
    record_step(DAY, "run", {"run_id": "r2"}, new_run=True)
    record_step(DAY, "failure", {"step": "ingest", "error": "IngestionError: missing column"})
    assert set(read_record(DAY)) == {"run", "failure", "latest_step"}
