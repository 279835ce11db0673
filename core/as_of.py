"""The as-of date of a run: the one date every stage computes for."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Any


class UnfinishedDayError(ValueError):
    """The as-of date has not ended yet, so its data is incomplete."""


def as_of_date_from_context(context: Mapping[str, Any], *, today: date | None = None) -> date:
    """The run's as-of date: the ``as_of_date`` param if given, else the logical date (UTC).

    The DAG's data-interval timetable makes the logical date the start of the day being
    processed, so the scheduled run for day D (started after D ends) has as-of date D, and
    ``airflow dags test <dag> D`` or a backfill over D reproduces exactly that day. A day that
    has not ended (UTC) is refused: a run triggered from the UI with the default logical date
    ("now") would otherwise publish segments from half a day.
    """
    params = context.get("params") or {}
    override = params.get("as_of_date")
    if override:
        as_of = date.fromisoformat(str(override))
    else:
        moment = next(
            (
                context[key]
                for key in ("logical_date", "data_interval_start")
                if isinstance(context.get(key), datetime)
            ),
            None,
        )
        if moment is None:
            raise ValueError(
                "The run has neither an as_of_date param nor a logical date: trigger it with a "
                "logical date or set the as_of_date param (YYYY-MM-DD)."
            )
        as_of = moment.astimezone(UTC).date() if moment.tzinfo else moment.date()
    today = today or datetime.now(UTC).date()
    if as_of >= today:
        raise UnfinishedDayError(
            f"As-of date {as_of} has not ended yet (today is {today} UTC), so its data is "
            "incomplete. Trigger the run with a logical date before today, or set the as_of_date "
            "param to the last complete day."
        )
    return as_of
