"""The demo data's calendar, in one place for the generator and the benchmarks: the landing
history runs from ``DEMO_START`` to ``DEMO_END``, and behaviour is anchored on ``DEMO_AS_OF``,
``AS_OF_LAG_DAYS`` before the last landing day, so that the as-of day's late rows (1-3 days)
are in the landing history too. (The Makefile's ``DEMO_DATE`` repeats ``DEMO_AS_OF``.)"""

from __future__ import annotations

from datetime import date, timedelta

DEMO_START = date(2025, 7, 1)
DEMO_END = date(2026, 7, 7)
AS_OF_LAG_DAYS = 7
DEMO_AS_OF = DEMO_END - timedelta(days=AS_OF_LAG_DAYS)
