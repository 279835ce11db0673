"""The nightly DAG's scheduling window: which as-of dates the scheduler may create runs for.

``SEGMENTS_SCHEDULE_START_DATE`` (default 2026-01-01) and ``SEGMENTS_SCHEDULE_END_DATE`` (default:
none, runs go on every night) are the first and last as-of dates of scheduled runs, as
``YYYY-MM-DD``. A deployment leaves the end open. A demo whose landing data ends on some day sets
the end to that day (``make ui`` does, from the landed partitions), so unpausing the DAG cannot
create a run for a day that has no data; runs for any landed day can still be triggered.
"""

from __future__ import annotations

import os

import pendulum

START_ENV = "SEGMENTS_SCHEDULE_START_DATE"
END_ENV = "SEGMENTS_SCHEDULE_END_DATE"
DEFAULT_START = "2026-01-01"


def _day(value: str, name: str) -> pendulum.DateTime:
    try:
        return pendulum.parse(value, tz="UTC").start_of("day")
    except (ValueError, pendulum.parsing.exceptions.ParserError) as error:
        raise ValueError(f"{name}={value!r} is not a date (YYYY-MM-DD)") from error


def schedule_start() -> pendulum.DateTime:
    return _day(os.environ.get(START_ENV) or DEFAULT_START, START_ENV)


def schedule_end() -> pendulum.DateTime | None:
    """The last as-of date of a scheduled run (the logical date of its data interval), if any.

    The data interval of as-of date D starts at 02:00 UTC on D, so the end is D at 23:59:59: the
    run for D is allowed, the run for D + 1 is not.
    """
    value = os.environ.get(END_ENV)
    return _day(value, END_ENV).end_of("day") if value else None
