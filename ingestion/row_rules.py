"""Row rules: what makes one landed row unusable, as SQL the loader evaluates in DuckDB.

A row that breaks a rule is not loaded into ``raw.<source>``: the loader moves it, unchanged, to
``quarantine.<source>`` with one reason code per broken rule, and the good rows go on. The gates
(``expectations.suites``) then judge the batch as a whole, including the share quarantined.

Why SQL and not Great Expectations: a rule here must say *which rows* fail, for every row of every
file, at ingestion time and for tens of millions of rows on a first run; GX judges a batch (share,
counts, examples), which is what the suites use it for. The two meet in the quarantine-share
expectation and in ``quality.validation_results``, where each reason code is recorded per run.

Values are text in the landing files; the parsing here is the same dbt's staging models do
(``clean_text``, ``parse_timestamp``), so a row that passes these rules parses in dbt.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from core.contract import EMAIL_EVENT_TYPES, ORDER_STATUSES, SOURCE_COLUMNS, WEB_EVENT_TYPES
from core.quality_config import QualityConfig
from core.sql_text import (
    EMAIL_REGEX,
    ERA_REGEX,
    MERIDIEM_REGEX,
    SPECIAL_DATE_REGEX,
    UTC_NAME_REGEX,
    ZONE_NAME_REGEX,
    clean,
    parse_timestamp,
)
from core.warehouse import quote_ident

# Reason codes of lines DuckDB's CSV reader could not split into the contract's columns.
MALFORMED_LINE_REASONS = {
    "INVALID ENCODING": "invalid_encoding",
    "INVALID UNICODE": "invalid_encoding",
    "TOO MANY COLUMNS": "wrong_column_count",
    "MISSING COLUMNS": "wrong_column_count",
    "LINE SIZE OVER MAXIMUM": "line_too_long",
}
MALFORMED_LINE_DEFAULT = "malformed_line"

# Every reason code with what it means: the README's table and the error messages use these.
REASONS: dict[str, str] = {
    "missing_customer_id": "customer_id is empty",
    "missing_order_id": "order_id is empty",
    "missing_event_id": "event_id is empty",
    "missing_session_id": "session_id is empty",
    "missing_timestamp": "a required timestamp is empty",
    "unparseable_timestamp": (
        "a timestamp is not a date-time (YYYY-MM-DD HH:MM[:SS][offset], the offset as Z, +02, "
        "+0200, +02:00 or GMT+02:00; not a one-digit offset, not AM/PM)"
    ),
    "future_timestamp": "a timestamp lies after the end of its landing day (+ tolerance)",
    "unparseable_birth_date": "birth_date is not a date (YYYY-MM-DD)",
    "impossible_age": "birth_date gives an age outside the configured range",
    "invalid_email": "email is not shaped like name@domain.tld",
    "invalid_consent": "marketing_consent is not a boolean (true/false, yes/no, 1/0)",
    "unparseable_amount": "amount is empty or not a number",
    "negative_amount": "amount is below zero",
    "amount_out_of_range": "amount is above max_order_amount",
    "invalid_status": "status is not one of the contract's order statuses",
    "invalid_event_type": "event_type is not one of the contract's event types",
    "unknown_customer": "customer_id has no CRM record landed by the as-of date",
    "quarantined_customer": "customer_id's CRM record is itself in quarantine",
    "duplicate_row": "the same source line (or configured key) is already in the partition",
    "value_too_long": "a text value is longer than max_text_length",
    "invalid_encoding": "the line is not UTF-8 text",
    "wrong_column_count": "the line has more or fewer fields than the header",
    "line_too_long": "the line is longer than the CSV reader's maximum",
    "malformed_line": "the line cannot be read as CSV",
}


# The rules that look a row up elsewhere (a repeat of an earlier line, a customer id the CRM data
# lacks): their condition is ``None`` in ``RowRules.checks``, and ``RowRules.rejected_sql``
# finds their rows in a narrow query of its own.
_LOOKED_UP = None


@dataclass(frozen=True)
class RowRules:
    """The reason codes of one source for one load.

    ``checks`` are the rules in the order their codes are listed: (code, condition), where the
    condition is an SQL expression over the incoming rows (the contract's columns plus
    ``_partition_date``, ``_source_file``, ``_line_number`` and ``_line_key``) and the values
    ``prepared`` computes from them once per row (each column cleaned, each timestamp parsed).
    A looked-up rule has no condition (``_LOOKED_UP``): ``duplicate_row``, and for the sources
    that reference a customer ``unknown_customer`` and ``quarantined_customer``. They read
    three relations the loader provides: ``_known_customers`` and ``_quarantined_customers``
    (one column, ``customer_id``), and ``_repeated_line_keys`` (one column, ``_line_key``: at
    least every key staged more than once). ``rejected_sql`` puts them together.

    Why prepared values: a rule set names the same cleaned or parsed value up to eight times
    (``future_timestamp``, ``special_date_value``, ``before_business_start``...), and DuckDB
    evaluates each occurrence inside the ``case`` branches again; computed once they cost a
    fifth.

    Why the looked-up rules apart: a join inside the query that carries every column of every
    row (the lookup's hash join probes with the whole row) cost as much as all the other rules
    together; over the few columns a lookup needs, and merged on the rejected rows only, it
    costs a fraction. The duplicate check is a narrow window over the repeated keys only.
    """

    source: str
    checks: tuple[tuple[str, str | None], ...]
    # Computed in order, each stage over the one before: alias -> expression.
    prepared: tuple[dict[str, str], ...]

    def rejected_sql(self, relation: str) -> str:
        """``_row`` and ``_reasons`` (``varchar[]``, in the order of ``checks``) of each row of
        ``relation`` that breaks a rule. ``relation`` is read twice (inline, not a CTE, so
        neither read holds the rows); it has a unique ``_row`` besides the incoming columns."""
        merged, computed = [], 0
        for code, condition in self.checks:
            if condition is _LOOKED_UP:
                found = f"list_contains(looked_up._codes, '{code}')"
                merged.append(f"case when {found} then '{code}' end")
            else:
                computed += 1
                merged.append(f"computed._slots[{computed}]")
        return (
            f"select _row, list_filter([{', '.join(merged)}], lambda reason: reason is not null) "
            f"as _reasons from ({self._computed_sql(relation)}) as computed "
            f"full join ({self._looked_up_sql(relation)}) as looked_up using (_row)"
        )

    def _computed_sql(self, relation: str) -> str:
        """The rows that break a computed rule, with one slot per such rule: its code or null."""
        slots = ", ".join(
            f"case when {condition} then '{code}' end"
            for code, condition in self.checks
            if condition is not _LOOKED_UP
        )
        query = f"select * from {relation}"
        for stage in self.prepared:
            items = ", ".join(f"{expression} as {alias}" for alias, expression in stage.items())
            query = f"select *, {items} from ({query}) as incoming"
        return (
            f"select _row, _slots from (select _row, [{slots}] as _slots from ({query}) as rows) "
            "where list_count(_slots) > 0"
        )

    def _looked_up_sql(self, relation: str) -> str:
        """The rows that break a looked-up rule, with their codes (``_codes``)."""
        lookups = " union all ".join(
            lookup(relation)
            for code, lookup in _LOOKUPS.items()
            if (code, _LOOKED_UP) in self.checks
        )
        return f"select _row, list(_code) as _codes from ({lookups}) group by _row"


def _duplicate_rows(relation: str) -> str:
    """The later copies of a repeated line (or configured key) in its partition: the first (by
    file and line) loads. The window runs over the rows of the keys staged more than once only
    (``_repeated_line_keys``, a superset of the repeats within a partition)."""
    return (
        f"select _row, 'duplicate_row' as _code from {relation} "
        "semi join _repeated_line_keys as repeated using (_line_key) "
        "qualify row_number() over ("
        "partition by _partition_date, _line_key order by _source_file, _line_number) > 1"
    )


def _unresolved_customers(relation: str) -> str:
    """The rows whose (cleaned) customer id has no CRM record by the as-of date: those whose CRM
    record is in quarantine say so. The lookups' empty ids are left out: one null among them
    makes ``in`` null for every id not found, which would let unknown customers through."""
    known = "select customer_id from _known_customers where customer_id is not null"
    quarantined = "select customer_id from _quarantined_customers where customer_id is not null"
    return (
        f"select _row, case when _customer in ({quarantined}) then 'quarantined_customer' "
        "else 'unknown_customer' end as _code "
        f"from (select _row, {_cleaned('customer_id')} as _customer from {relation}) as referenced "
        f"where _customer is not null and _customer not in ({known})"
    )


# Per looked-up code, the query of its rows (``_row``, ``_code``); one query may give two codes.
_LOOKUPS = {
    "duplicate_row": _duplicate_rows,
    "unknown_customer": _unresolved_customers,
}


def _value(column: str) -> str:
    """The column cleaned (``clean``), prepared once per row."""
    return quote_ident(f"_rule_value_{column}")


def _parsed(column: str) -> str:
    """The column's cleaned text as a UTC timestamp (``parse_timestamp``), prepared once."""
    return quote_ident(f"_rule_time_{column}")


_AMOUNT = quote_ident("_rule_amount")
_BIRTH = quote_ident("_rule_birth_date")


def _cleaned(column: str) -> str:
    """``clean``, with its regex only for text that starts or ends with a character at or below
    the space (the regex's ``\\s`` is ASCII whitespace): most values need no trim, and the
    regex was the costliest part of the row rules. (``substring(text, -1)``, the last character,
    costs two thirds of ``right(text, 1)``.) Text compares byte by byte, so ``< '!'`` holds
    exactly when the first byte is at or below the space (or the text is empty): a quarter
    cheaper than decoding the character with ``ascii``. A character beyond ASCII starts with a
    byte above it."""
    text = quote_ident(column)
    return (
        f"case when {text} < '!' or substring({text}, -1) < '!' then {clean(column)} "
        f"else nullif({text}, '') end"
    )


def _prepared(source: str) -> tuple[dict[str, str], ...]:
    columns = SOURCE_COLUMNS[source]
    values = {_value(column): _cleaned(column) for column in columns}
    derived = {
        _parsed(column): parse_timestamp(_value(column)) for column in _MOMENT_COLUMNS[source]
    }
    for column in (*_MOMENT_COLUMNS[source], *(("birth_date",) if source == "customers" else ())):
        # The last character, not a digit. (``ascii(right(...)) not between 48 and 57`` cost
        # twice as much: ``right`` is slower than ``substring``, and ``between`` computed it twice.)
        last = f"substring({_value(column)}, -1)"
        derived[_ends_in_word(column)] = f"not contains('0123456789', {last})"
    if "amount" in columns:
        derived[_AMOUNT] = f"try_cast({_value('amount')} as double)"
    if "birth_date" in columns:
        derived[_BIRTH] = f"try_cast({_value('birth_date')} as date)"
    return values, derived


def row_rules(
    source: str, config: QualityConfig, as_of_date: date, *, keep_anonymous_orders: bool = False
) -> RowRules:
    """``keep_anonymous_orders`` (the orders source's ``anonymous_orders: keep``): an order
    without a customer id is a guest order, not a ``missing_customer_id``; every other rule
    still applies."""
    if source == "orders":
        source_checks = _orders(config, as_of_date, keep_anonymous=keep_anonymous_orders)
    else:
        source_checks = _SOURCE_CHECKS[source](config, as_of_date)
    checks = [*source_checks, *_common_checks(source, config)]
    checks += _plausibility_checks(source, config)  # the plausible-window block below
    return RowRules(source, tuple(checks), _prepared(source))


def _common_checks(source: str, config: QualityConfig) -> list[tuple[str, str | None]]:
    lengths = ", ".join(
        f"coalesce(length({quote_ident(column)}), 0)" for column in SOURCE_COLUMNS[source]
    )
    return [
        # ``_line_key``: the whole source line, or the key the sources config declares; the
        # first copy (by file and line) loads.
        ("duplicate_row", _LOOKED_UP),
        ("value_too_long", f"greatest({lengths}) > {int(config.max_text_length)}"),
    ]


def _required(column: str, code: str) -> tuple[str, str]:
    return code, f"{_value(column)} is null"


def _timestamp_checks(column: str, config: QualityConfig, *, required: bool) -> list[tuple]:
    value = _value(column)
    parsed = _parsed(column)
    latest = (
        f"_partition_date + interval 1 day + interval {float(config.future_tolerance_hours)} hour"
    )
    checks = [
        # a line break inside the value: DuckDB reads it as a space, staging's format does not
        (
            "unparseable_timestamp",
            f"{value} is not null and ({parsed} is null "
            f"or contains({value}, chr(10)) or contains({value}, chr(13)))",
        ),
        ("future_timestamp", f"{parsed} > {latest}"),
    ]
    if required:
        checks.insert(0, ("missing_timestamp", f"{value} is null"))
    return checks


def _in_set(column: str, values: tuple[str, ...], code: str) -> tuple[str, str]:
    listed = ", ".join(f"'{value}'" for value in values)
    return code, f"coalesce(lower({_value(column)}) not in ({listed}), true)"


def _customer_reference(*, required: bool) -> list[tuple[str, str | None]]:
    checks = [("unknown_customer", _LOOKED_UP), ("quarantined_customer", _LOOKED_UP)]
    if required:
        checks.insert(0, _required("customer_id", "missing_customer_id"))
    return checks


def _customers(config: QualityConfig, as_of_date: date) -> list[tuple[str, str]]:
    birth = _BIRTH
    age = f"datediff('day', {birth}, DATE '{as_of_date.isoformat()}') / 365.25"
    consent = _value("marketing_consent")
    return [
        _required("customer_id", "missing_customer_id"),
        *_timestamp_checks("signup_at", config, required=True),
        *_timestamp_checks("updated_at", config, required=True),
        (
            "unparseable_birth_date",
            f"{_value('birth_date')} is not null and {birth} is null",
        ),
        (
            "impossible_age",
            f"{age} < {float(config.min_age_years)} or {age} > {float(config.max_age_years)}",
        ),
        (
            "invalid_email",
            f"{_value('email')} is not null "
            f"and not regexp_full_match({_value('email')}, '{EMAIL_REGEX}')",
        ),
        (
            "invalid_consent",
            f"{consent} is not null and try_cast(lower({consent}) as boolean) is null",
        ),
    ]


def _orders(
    config: QualityConfig, as_of_date: date, *, keep_anonymous: bool = False
) -> list[tuple[str, str]]:
    amount = _AMOUNT
    return [
        _required("order_id", "missing_order_id"),
        # A guest order (kept by the sources config) has no customer; a given id must be known.
        *_customer_reference(required=not keep_anonymous),
        *_timestamp_checks("ordered_at", config, required=True),
        ("unparseable_amount", f"{amount} is null or isnan({amount}) or isinf({amount})"),
        # '-0.00' too: a minus sign on an order amount is a refund or an error, never a sale
        ("negative_amount", f"{amount} < 0 or starts_with({_value('amount')}, '-')"),
        ("amount_out_of_range", f"{amount} > {float(config.max_order_amount)}"),
        _in_set("status", ORDER_STATUSES, "invalid_status"),
    ]


def _web_events(config: QualityConfig, as_of_date: date) -> list[tuple[str, str]]:
    return [
        _required("event_id", "missing_event_id"),
        _required("session_id", "missing_session_id"),
        # Visitors who never logged in have no customer_id: only a given id must be known.
        *_customer_reference(required=False),
        _in_set("event_type", WEB_EVENT_TYPES, "invalid_event_type"),
        *_timestamp_checks("occurred_at", config, required=True),
    ]


def _email_events(config: QualityConfig, as_of_date: date) -> list[tuple[str, str]]:
    return [
        _required("event_id", "missing_event_id"),
        *_customer_reference(required=True),
        _in_set("event_type", EMAIL_EVENT_TYPES, "invalid_event_type"),
        *_timestamp_checks("occurred_at", config, required=True),
    ]


_SOURCE_CHECKS = {
    "customers": _customers,
    "orders": _orders,
    "web_events": _web_events,
    "email_events": _email_events,
}


# --- Plausibility: dates and timestamps inside the plausible window ------------------------------
# A value that parses is not yet a plausible one: 'epoch' and '-infinity' parse (1970-01-01 and
# minus infinity), '... BC' parses with the era dropped, '10:00:00 EST' with the zone applied by
# DuckDB's own table (or dropped by a plain timestamp cast), and 1900 parses as 1900. Such values
# would count as real spend and history (a tenure of 46,000 days), so each has its own reason
# code. The window's upper end is ``future_timestamp`` above (landing day + tolerance).

PLAUSIBILITY_REASONS: dict[str, str] = {
    "special_date_value": "a date or timestamp is a special value (epoch, infinity, now, today)",
    "date_with_era": "a date or timestamp carries an era (BC/AD)",
    "unknown_time_zone": "a timestamp ends in a zone name (EST, PST, CET): give a UTC offset",
    "before_business_start": "a date or timestamp lies before business_start_date",
}
REASONS.update(PLAUSIBILITY_REASONS)

# The columns holding a moment in time, per source (birth_date: only the value rules apply; its
# range is impossible_age's).
_MOMENT_COLUMNS = {
    "customers": ("signup_at", "updated_at"),
    "orders": ("ordered_at",),
    "web_events": ("occurred_at",),
    "email_events": ("occurred_at",),
}


def _ends_in_word(column: str) -> str:
    """Whether the cleaned value ends in something else than a digit: every pattern below (a
    special word, an era, a zone name) ends in a letter, a dot or a bracket, so an ordinary
    timestamp skips their regexes, the costliest part of the row rules."""
    return quote_ident(f"_rule_word_end_{column}")


def _special_value(column: str) -> str:
    return (
        f"({_ends_in_word(column)} "
        f"and regexp_matches(lower({_value(column)}), '{SPECIAL_DATE_REGEX}'))"
    )


def _has_era(column: str) -> str:
    return f"({_ends_in_word(column)} and regexp_matches({_value(column)}, '{ERA_REGEX}'))"


def _plausible_moment_checks(column: str, config: QualityConfig) -> list[tuple[str, str]]:
    value = _value(column)
    parsed = _parsed(column)
    start = date.fromisoformat(config.business_start_date).isoformat()
    return [
        # Only for text that parses: a word DuckDB cannot read is unparseable_timestamp already.
        (
            "special_date_value",
            f"{parsed} is not null and ({_special_value(column)} or isinf({parsed}))",
        ),
        ("date_with_era", _has_era(column)),
        (
            "unknown_time_zone",
            f"{_ends_in_word(column)} and regexp_matches({value}, '{ZONE_NAME_REGEX}') "
            f"and not regexp_matches({value}, '{ERA_REGEX}') "
            f"and not regexp_matches({value}, '{UTC_NAME_REGEX}') "
            f"and not regexp_matches({value}, '{MERIDIEM_REGEX}')",
        ),
        ("before_business_start", f"{parsed} < TIMESTAMP '{start}'"),
    ]


def _plausibility_checks(source: str, config: QualityConfig) -> list[tuple[str, str]]:
    checks = [
        check
        for column in _MOMENT_COLUMNS[source]
        for check in _plausible_moment_checks(column, config)
    ]
    if source == "customers":
        checks += [
            (
                "special_date_value",
                f"{_BIRTH} is not null and {_special_value('birth_date')}",
            ),
            ("date_with_era", _has_era("birth_date")),
        ]
    return checks
