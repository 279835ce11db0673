"""The raw gates' shape rules judge a value as dbt's staging reads it.

A shape rule (``expect_column_values_to_match_regex``) says whether dbt will parse a text value:
``clean_text`` trims the spaces DuckDB's regex ``\\s`` knows, then a cast reads what is left. GX
evaluates the rule with pandas' ``str.contains``, as here. A value padded with a space DuckDB
does not trim (a no-break space, a vertical tab) does not parse in dbt, so it must not pass the
rule either. (DuckDB's date cast also reads a vertical tab around a date, its timestamp cast does
not; the rules take neither.)
"""

from __future__ import annotations

import duckdb
import pandas as pd
import pytest

from core.sql_text import EMAIL_REGEX, clean, parse_timestamp
from expectations.suites import AMOUNT_REGEX, BOOLEAN_REGEX, DATE_REGEX, TIMESTAMP_REGEX

PADDINGS = ["", " ", "\t", "\n", "\r\n", "\f", "\xa0", "\u2003"]


def _dbt_reads(values: list[str], cast: str) -> list[bool]:
    """Whether dbt's staging reads each value (cleaned, then ``cast`` of ``{v}``)."""
    rows = duckdb.execute(
        f"select ({cast.replace('{v}', clean('value'))}) is not null "
        "from unnest(?::varchar[]) with ordinality as t(value, n) order by n",
        [values],
    ).fetchall()
    return [row[0] for row in rows]


def _rule_accepts(values: list[str], regex: str) -> list[bool]:
    return list(pd.Series(values, dtype="str").astype(str).str.contains(regex))


@pytest.mark.parametrize(
    ("regex", "shapes", "cast"),
    [
        (DATE_REGEX, ["2026-03-05"], "try_cast({v} as date)"),
        (
            TIMESTAMP_REGEX,
            [
                "2026-03-05 10:11:12",
                "2026-03-05T10:11+02:00",
                "2026-03-05 10:11:12.5Z",
                "2026-03-05 10:11:12 GMT+0200",
                "2026-03-05 10:11:12 +02",
            ],
            parse_timestamp("{v}"),
        ),
        (AMOUNT_REGEX, ["12.50", "-3", "0"], "try_cast({v} as decimal(18, 2))"),
        (BOOLEAN_REGEX, ["true", "No", "1"], "try_cast(lower({v}) as boolean)"),
    ],
)
def test_a_padded_value_passes_the_rule_exactly_when_dbt_parses_it(regex, shapes, cast):
    values = [f"{pad}{shape}{pad}" for shape in shapes for pad in PADDINGS]
    assert _rule_accepts(values, regex) == _dbt_reads(values, cast)
    # Both sides vary: the ASCII spaces are trimmed, the others are not.
    assert any(_dbt_reads(values, cast)) and not all(_dbt_reads(values, cast))


def test_an_address_with_any_space_is_not_an_email():
    addresses = ["ann@example.com", "ann smith@example.com", "ann@exa\tmple.com", "a@b.c"]
    assert _rule_accepts(addresses, EMAIL_REGEX) == [True, False, False, True]
    accepted = duckdb.execute(
        f"select regexp_full_match(a, '{EMAIL_REGEX}') "
        "from unnest(?::varchar[]) with ordinality as t(a, n) order by n",
        [addresses],
    ).fetchall()
    assert [row[0] for row in accepted] == [True, False, False, True]
