"""A small JSON record per as-of date of what each step did, for the run summary.

The record is owner-only (``core.private_files``) and its texts pass ``core.masking.scrub_text``,
so an error message that quotes a landing line cannot copy an e-mail or phone number into it."""

from __future__ import annotations

import json
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from core.masking import scrub_text
from core.private_files import write_private_text
from core.settings import Settings, get_settings


def run_record_path(as_of_date: date, settings: Settings | None = None) -> Path:
    settings = settings or get_settings()
    return settings.reports_dir / "runs" / f"{as_of_date.isoformat()}.json"


# Which step the record heard from last: a run cleared from a middle task (dbt_build, say) after
# it had finished is under way again although its last task's entry is still there.
LATEST_STEP = "latest_step"


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
    cleared in Airflow) clears the failure. ``LATEST_STEP`` names the step recorded last.
    """
    path = run_record_path(as_of_date, settings)
    record = json.loads(path.read_text()) if path.exists() and not new_run else {}
    record[step] = _scrubbed(payload)
    record[LATEST_STEP] = step
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


def dates_in_flight(
    *, first_step: str, last_step: str, within: timedelta, settings: Settings | None = None
) -> set[date]:
    """The as-of dates whose run has recorded ``first_step`` and whose latest step is not
    ``last_step``, among the records written within ``within``: a run in progress (also one
    cleared from a middle task after it had finished), or one that failed recently and may be
    retried from the failed task. A record older than ``within`` counts as abandoned; one that
    cannot be read counts as in flight."""
    settings = settings or get_settings()
    horizon = time.time() - within.total_seconds()
    dates: set[date] = set()
    for path in (settings.reports_dir / "runs").glob("*.json"):
        try:
            day = date.fromisoformat(path.stem)
            if path.stat().st_mtime < horizon:
                continue
        except (OSError, ValueError):  # not a record, or replaced since the listing
            continue
        try:
            record = json.loads(path.read_text())
        except (OSError, ValueError):
            dates.add(day)
            continue
        # (A record written before LATEST_STEP existed: finished once it has the last step.)
        latest = record.get(LATEST_STEP, last_step if last_step in record else None)
        if first_step in record and latest != last_step:
            dates.add(day)
    return dates
