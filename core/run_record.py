"""A small JSON record per as-of date of what each step did, for the run summary.

The record is owner-only (``core.private_files``) and its texts pass ``core.masking.scrub_text``,
so an error message that quotes a landing line cannot copy an e-mail or phone number into it."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

from core.masking import scrub_text
from core.private_files import write_private_text
from core.settings import Settings, get_settings


def run_record_path(as_of_date: date, settings: Settings | None = None) -> Path:
    settings = settings or get_settings()
    return settings.reports_dir / "runs" / f"{as_of_date.isoformat()}.json"


def record_step(
    as_of_date: date,
    step: str,
    payload: dict[str, Any],
    settings: Settings | None = None,
    *,
    new_run: bool = False,
) -> None:
    """Store one step's outcome in the as-of date's record.

    The first step of a run passes ``new_run=True`` so a re-run does not show the steps of an
    earlier attempt as its own. A step that succeeds after it had failed (a task retried or
    cleared in Airflow) clears the failure.
    """
    path = run_record_path(as_of_date, settings)
    record = json.loads(path.read_text()) if path.exists() and not new_run else {}
    record[step] = _scrubbed(payload)
    if record.get("failure", {}).get("step") == step and step != "failure":
        del record["failure"]  # a retry of the failed step succeeded
    write_private_text(path, json.dumps(record, indent=2, sort_keys=True, default=str))


def _scrubbed(value: Any) -> Any:
    """Every text of a payload with what looks like personal data masked (``scrub_text``):
    error messages carry examples from every layer, not all of them masked at the source."""
    if isinstance(value, str):
        return scrub_text(value)
    if isinstance(value, dict):
        return {key: _scrubbed(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_scrubbed(item) for item in value]
    return value


def read_record(as_of_date: date, settings: Settings | None = None) -> dict[str, Any]:
    path = run_record_path(as_of_date, settings)
    return json.loads(path.read_text()) if path.exists() else {}
