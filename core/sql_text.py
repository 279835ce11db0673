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
# A time of day followed by a UTC offset (Z, +02, +02:00, -0530): such timestamps are converted
# to UTC; timestamps without one are taken as UTC already (dbt's parse_timestamp does the same).
OFFSET_REGEX = r"\d{2}:\d{2}(:\d{2}(\.\d+)?)?\s*(Z|[+-]\d{2}(:?\d{2})?)$"


def clean(column: str) -> str:
    """Trimmed text (any whitespace), null when empty: dbt's ``clean_text``."""
    return f"nullif(regexp_replace({quote_ident(column)}, '^\\s+|\\s+$', '', 'g'), '')"


def parse_timestamp(expression: str) -> str:
    """A UTC timestamp from text with or without an offset: dbt's ``parse_timestamp``."""
    return (
        f"case when regexp_matches({expression}, '{OFFSET_REGEX}') "
        f"then timezone('UTC', try_cast({expression} as timestamptz)) "
        f"else try_cast({expression} as timestamp) end"
    )


# Text DuckDB parses as a date or timestamp but that is no real moment: 'epoch' (1970-01-01),
# '[-]infinity', and words DuckDB resolves at query time (row rule special_date_value).
SPECIAL_DATE_REGEX = r"^[-+]?(epoch|infinity|inf|now|today|tomorrow|yesterday|allballs)$"
# An era after the date or time ('... BC', 'AD', '(BCE)'): DuckDB drops it (date_with_era).
ERA_REGEX = r"(?i)[\d\s]\(?(b\.?c\.?e?|a\.?d\.?|c\.?e\.?)\)?$"
# A time followed by a zone name or abbreviation ('10:00:00 EST', 'Europe/Paris'), which DuckDB
# resolves by its own table or drops (unknown_time_zone); UTC and GMT are the offset 0.
ZONE_NAME_REGEX = r"\d\s*[A-Za-z][A-Za-z/_]{1,}$"
UTC_NAME_REGEX = r"(?i)\d\s*(utc|gmt)$"
