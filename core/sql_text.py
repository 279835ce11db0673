"""How landing text is read in SQL: the expressions the loader's row rules and the quality gates
share. dbt's staging macros ``clean_text`` and ``parse_timestamp`` implement the same rules in
the dbt project (two languages, one rule: change both together)."""

from __future__ import annotations

from core.warehouse import quote_ident

# The characters DuckDB's regex ``\s`` matches (RE2's: tab, newline, form feed, carriage return,
# space), which ``clean`` trims. Written out for the regexes pandas evaluates too (the gates, via
# GX): pandas hands a pattern with ``\s`` to Python's ``re`` one value at a time, whose ``\s`` also
# takes Unicode spaces dbt does not trim; with the characters listed it runs in pyarrow (RE2),
# about three times faster, and judges a value as dbt's staging reads it.
SPACE = r"\t\n\f\r "
# Anchored e-mail shape: something@something.tld, no spaces.
EMAIL_REGEX = rf"^[^@{SPACE}]+@[^@{SPACE}]+\.[^@{SPACE}]+$"
# A time of day (HH:MM, HH:MM:SS, HH:MM:SS.ffffff).
TIME_OF_DAY_REGEX = r"\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?"
# A UTC offset after the time of day: Z, or +02 / +0200 / +02:00 (up to 14 hours), with or without
# a space and UTC or GMT before it ('10:00:00 GMT+0200', '10:00:00 UTC+02:00', '10:00:00 +02:00').
# Such timestamps are converted to UTC; timestamps without one are taken as UTC already (dbt's
# parse_timestamp does the same). The spaces are ``SPACE`` for the gates' pandas (see above).
_SIGNED_OFFSET = r"[+-](?:0\d|1[0-4])(?::?[0-5]\d)?"
_ZONE_PREFIX = rf"(?:(?i:utc|gmt)[{SPACE}]*)?"
UTC_OFFSET_REGEX = rf"(?:Z|{_ZONE_PREFIX}{_SIGNED_OFFSET})"
# A timestamp's end with an offset, in groups for the cast: '\1\2\3' (the time, then Z or the
# signed offset) drops the space and the zone name between them, which the cast cannot read.
OFFSET_REGEX = rf"({TIME_OF_DAY_REGEX})[{SPACE}]*(?:(Z)|{_ZONE_PREFIX}({_SIGNED_OFFSET}))$"
# Anything else after the time of day that holds a digit or a sign ('+2', 'CET+1', '+02:00:00',
# 'GMT+25'), or a 12-hour clock's AM/PM: DuckDB's cast to timestamp drops it and reads the time
# as UTC, so such a value is no timestamp (unparseable_timestamp). A trailing word (a zone name,
# an era) is left to the cast and to the row rules unknown_time_zone and date_with_era.
UNREADABLE_SUFFIX_REGEX = (
    rf"{TIME_OF_DAY_REGEX}(?:[+-]|[^0-9:.][^0-9+-]*[0-9+-]|\s*[AaPp]\.?[Mm]\.?$)"
)
MERIDIEM_REGEX = r"\d\s*[AaPp]\.?[Mm]\.?$"


def clean(column: str) -> str:
    """Trimmed text (any whitespace), null when empty: dbt's ``clean_text``."""
    return f"nullif(regexp_replace({quote_ident(column)}, '^\\s+|\\s+$', '', 'g'), '')"


def parse_timestamp(expression: str) -> str:
    """A UTC timestamp from text with or without an offset (``OFFSET_REGEX``), null when
    unparseable or followed by something the cast would drop (``UNREADABLE_SUFFIX_REGEX``):
    dbt's ``parse_timestamp``."""
    return (
        f"case when regexp_matches({expression}, '{OFFSET_REGEX}') "
        "then timezone('UTC', try_cast("
        f"regexp_replace({expression}, '{OFFSET_REGEX}', '\\1\\2\\3') as timestamptz)) "
        f"when regexp_matches({expression}, '{UNREADABLE_SUFFIX_REGEX}') then null "
        f"else try_cast({expression} as timestamp) end"
    )


# Text DuckDB parses as a date or timestamp but that is no real moment: 'epoch' (1970-01-01),
# '[-]infinity', and words DuckDB resolves at query time (row rule special_date_value).
SPECIAL_DATE_REGEX = r"^[-+]?(epoch|infinity|inf|now|today|tomorrow|yesterday|allballs)$"
# An era after the date or time ('... BC', 'AD', '(BCE)'): DuckDB drops it (date_with_era).
ERA_REGEX = r"(?i)[\d\s]\(?(b\.?c\.?e?|a\.?d\.?|c\.?e\.?)\)?$"
# A time followed by a zone name or abbreviation ('10:00:00 EST', 'Europe/Paris'), which DuckDB
# resolves by its own table or drops (unknown_time_zone); UTC, GMT and Z are the offset 0.
# A 12-hour clock's AM/PM is no zone: such a time is unparseable (UNREADABLE_SUFFIX_REGEX).
ZONE_NAME_REGEX = r"\d\s*[A-Za-z][A-Za-z/_]*$"
UTC_NAME_REGEX = r"(?i)\d\s*(utc|gmt|z)$"
