"""The as-of date of a run: the one date every stage computes for."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from typing import Any


def as_of_date_from_context(context: Mapping[str, Any]) -> date:
    """The run's as-of date: the ``as_of_date`` param if given, else the logical date (UTC).

    The DAG's data-interval timetable makes the logical date the start of the day being
    processed, so the scheduled run for day D (started after D ends) has as-of date D, and
    ``airflow dags test <dag> D`` or a backfill over D reproduces exactly that day.
    """
    params = context.get("params") or {}
    override = params.get("as_of_date")
    if override:
        return date.fromisoformat(str(override))
    for key in ("logical_date", "data_interval_start"):
        value = context.get(key)
        if isinstance(value, datetime):
            return _utc_date(value)
    raise ValueError(
        "The run has neither an as_of_date param nor a logical date: trigger it with a logical "
        "date or set the as_of_date param (YYYY-MM-DD)."
    )


def _utc_date(moment: datetime) -> date:
    if moment.tzinfo is None:
        return moment.date()
    from datetime import UTC

    return moment.astimezone(UTC).date()
