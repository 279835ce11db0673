"""How landing text is read in SQL: the expressions the loader's row rules and the quality gates
share. dbt's staging macros ``clean_text`` and ``parse_timestamp`` implement the same rules in
the dbt project (two languages, one rule: change both together)."""

from __future__ import annotations

from core.warehouse import quote_ident

# Anchored e-mail shape: something@something.tld, no spaces.
EMAIL_REGEX = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
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
