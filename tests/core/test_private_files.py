"""Run records and validation reports are readable by their owner only, whatever the umask."""

from __future__ import annotations

import os
import stat
from datetime import date

from core.run_record import read_record, record_step, run_record_path
from expectations.report import GateReport


def _mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_run_record_is_owner_only_and_its_texts_are_scrubbed(tmp_path, monkeypatch):
    monkeypatch.setenv("SEGMENTS_DATA_DIR", str(tmp_path / "data"))
    previous = os.umask(0o022)
    try:
        record_step(
            date(2026, 6, 30),
            "failure",
            {"step": "ingest", "error": "IngestionError: line 'C1,Ann,Lee,ann@x.com,+1 555 0100'"},
        )
    finally:
        os.umask(previous)
    path = run_record_path(date(2026, 6, 30))
    assert _mode(path) == 0o600
    for folder in (path.parent, path.parent.parent, tmp_path / "data"):
        assert _mode(folder) & 0o077 == 0, folder
    error = read_record(date(2026, 6, 30))["failure"]["error"]
    assert "Ann" not in error and "ann@" not in error and "555" not in error
    assert error.startswith("IngestionError: line ")


def test_a_validation_report_is_owner_only(tmp_path):
    report = GateReport(stage="raw", run_id="r1", scope={}, started_at="2026-07-01T02:00:00")
    previous = os.umask(0o022)
    try:
        path = report.write_json(tmp_path / "reports" / "validation" / "r1-raw.json")
    finally:
        os.umask(previous)
    assert _mode(path) == 0o600
    assert _mode(path.parent) & 0o077 == 0
