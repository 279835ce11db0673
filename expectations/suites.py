"""The expectation suites of the quality gates, declared in code (one suite per table).

Every expectation carries ``meta={"severity": ...}``:

* ``blocking``: the run stops, because the next stage would compute wrong numbers from this data;
* ``warning``: worth a look, reported but never stops the run.

Two kinds of rules guard the raw data. Row rules (``ingestion.row_rules``, SQL in the loader)
decide which single rows are unusable and move them to ``quarantine.<source>``; the suites here
judge a batch as a whole: its schema, that the day arrived (freshness), its volume against the
trailing days, the distribution of order amounts, keys filled and unique, value sets, formats,
and the share of its rows quarantined (``quarantine_suite``). The value and format rules overlap
the row rules on purpose: they also guard raw rows written by other means, and a row rule that
was loosened by mistake. Raw data is deliberately a
little messy (dbt's staging models clean it), so raw rules are tolerant (``mostly``) and exist to
catch a broken delivery. GX ignores nulls in value checks (regex, value set, ranges), which is why
such columns also have a not-null rule. Marts are built by us, so their rules are strict.

The column sets and value sets come from ``core.contract`` (docs/architecture.md), the one
definition the loader implements and the gate checks.

Importing this module imports Great Expectations (~5 s), so the gate imports it at run time.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import great_expectations as gx
import great_expectations.expectations as gxe

from core.contract import (
    CLUSTERING_FEATURE_COLUMNS,
    EMAIL_EVENT_TYPES,
    ORDER_STATUSES,
    RAW_TECHNICAL_COLUMNS,
    SOURCE_COLUMNS,
    WEB_EVENT_TYPES,
    mart_columns,
)
from core.quality_config import QualityConfig
from core.sql_text import EMAIL_REGEX, SPACE, UTC_OFFSET_REGEX
from expectations.report import BLOCKING, WARNING

RAW_SCHEMA = "raw"
MARTS_SCHEMA = "marts"

# The suite parameter holding the partition date a raw batch must contain: the newest one in
# scope, i.e. the as-of day (set by the gate at run time).
NEWEST_PARTITION_PARAMETER = "newest_partition_date"
# The fewest rows a raw batch may have: 1 for the as-of day's partition (0 when a source has no
# partition in scope). History caught up in the same run is not held to it (a shop's first days
# may have no orders): its suites leave the freshness rules out.
MIN_ROWS_PARAMETER = "min_rows"
# Volume band of the as-of day: a share of the trailing median of daily rows (None = no bound,
# e.g. for history caught up in one run or too little history to compare with).
VOLUME_MIN_PARAMETER = "volume_min_rows"
VOLUME_MAX_PARAMETER = "volume_max_rows"
# Band of the as-of day's mean order amount around the trailing median of daily means.
MEAN_AMOUNT_MIN_PARAMETER = "mean_amount_min"
MEAN_AMOUNT_MAX_PARAMETER = "mean_amount_max"
# The gate reads the order amount as a number under this name (raw columns are text).
AMOUNT_VALUE_COLUMN = "amount_value"
# 1 for a row of the batch that was quarantined, 0 for one loaded (quarantine suites).
QUARANTINED_COLUMN = "is_quarantined"
QUARANTINE_SCHEMA = "quarantine"
# The key whose hash picks the sample of a raw history batch (expectations.reading): a duplicated
# key's copies are sampled together, so the duplicate share of the sample is the batch's.
SAMPLE_KEYS = {
    "orders": "order_id",
    "customers": "customer_id",
    "web_events": "event_id",
    "email_events": "event_id",
}


# What dbt's staging can parse. Anchored, because GX's pandas regex check is ``str.contains``;
# non-capturing groups, because pandas warns about capturing groups on every run; the spaces
# dbt's ``clean_text`` trims spelled out (``SPACE``), so pandas runs them in pyarrow.
_PADDING = f"[{SPACE}]*"
TIMESTAMP_REGEX = (
    rf"^{_PADDING}\d{{4}}-\d{{2}}-\d{{2}}[ T]\d{{2}}:\d{{2}}(?::\d{{2}}(?:\.\d{{1,6}})?)?"
    rf"(?:{_PADDING}{UTC_OFFSET_REGEX})?{_PADDING}$"
)
DATE_REGEX = rf"^{_PADDING}\d{{4}}-\d{{2}}-\d{{2}}{_PADDING}$"
AMOUNT_REGEX = rf"^{_PADDING}-?\d+(?:\.\d+)?{_PADDING}$"
BOOLEAN_REGEX = rf"(?i)^{_PADDING}(?:true|false|yes|no|t|f|y|n|1|0){_PADDING}$"
RFM_SCORE_REGEX = r"^[1-5]{3}$"

# Raw tolerances: how much mess a healthy delivery may contain before we call it broken.
KEY_MOSTLY = 0.99
PARSEABLE_MOSTLY = 0.98
VALUE_SET_MOSTLY = 0.99
DUPLICATE_MOSTLY = 0.95
# Optional CRM attributes (the demo leaves ~2% of birth dates empty).
OPTIONAL_MOSTLY = 0.95
# Web events of visitors who never logged in have no customer_id, and a young shop's early months
# are mostly such visitors (the demo's first month: 22%). A broken column empties it entirely;
# more than half missing is that, not traffic getting more anonymous.
WEB_CUSTOMER_ID_MOSTLY = 0.5
# Orders of a source that keeps anonymous (guest) orders: below this share with a customer id,
# the raw gate warns (never blocks).
ANONYMOUS_ORDERS_CUSTOMER_ID_MOSTLY = 0.5

# A plausible average order value; outside it, amounts were probably parsed in the wrong unit.
AVG_ORDER_VALUE_BAND = (0, 10_000)


def _meta(severity: str) -> dict[str, Any]:
    return {"severity": severity}


def _not_null(column: str, severity: str, mostly: float = 1.0) -> gxe.Expectation:
    return gxe.ExpectColumnValuesToNotBeNull(column=column, mostly=mostly, meta=_meta(severity))


def _parseable(
    column: str, regex: str, severity: str = BLOCKING, filled_mostly: float = PARSEABLE_MOSTLY
) -> list[gxe.Expectation]:
    """A text column that dbt will parse: filled and in the expected shape (both tolerant)."""
    return [
        _not_null(column, severity, filled_mostly),
        gxe.ExpectColumnValuesToMatchRegex(
            column=column, regex=regex, mostly=PARSEABLE_MOSTLY, meta=_meta(severity)
        ),
    ]


def _in_set(column: str, values: tuple[str, ...]) -> list[gxe.Expectation]:
    return [
        _not_null(column, BLOCKING, VALUE_SET_MOSTLY),
        gxe.ExpectColumnValuesToBeInSet(
            column=column, value_set=list(values), mostly=VALUE_SET_MOSTLY, meta=_meta(BLOCKING)
        ),
    ]


def _raw_schema(source: str) -> gxe.Expectation:
    return gxe.ExpectTableColumnsToMatchSet(
        column_set=[*SOURCE_COLUMNS[source], *RAW_TECHNICAL_COLUMNS],
        exact_match=True,
        meta=_meta(BLOCKING),
    )


def _not_empty(severity: str) -> gxe.Expectation:
    return gxe.ExpectTableRowCountToBeBetween(min_value=1, meta=_meta(severity))


def _volume(severity: str) -> gxe.Expectation:
    """The as-of day's rows within a band of the trailing median (a file delivered ten times,
    or a tenth of it); the gate sets the band from ``raw._load_log``."""
    return gxe.ExpectTableRowCountToBeBetween(
        min_value={"$PARAMETER": VOLUME_MIN_PARAMETER},
        max_value={"$PARAMETER": VOLUME_MAX_PARAMETER},
        meta=_meta(severity),
    )


def _arrived(severity: str) -> gxe.Expectation:
    """A raw batch has rows when it must (the as-of day), whatever history comes with it."""
    return gxe.ExpectTableRowCountToBeBetween(
        min_value={"$PARAMETER": MIN_ROWS_PARAMETER}, meta=_meta(severity)
    )


def _only_on_the_day(as_of_day: bool, *rules: gxe.Expectation) -> list[gxe.Expectation]:
    """Freshness rules are the as-of day's: history caught up in the same run may have empty
    days and holds no newest partition (its parameters made these rules pass whatever the
    rows), so its chunks are not validated against them."""
    return list(rules) if as_of_day else []


def _suite(name: str, expectations: list[gxe.Expectation]) -> gx.ExpectationSuite:
    # The constructor, unlike ``add_expectation``, needs no active data context, so the suites
    # can be declared (and inspected in tests) before the gate builds its context.
    return gx.ExpectationSuite(name=name, expectations=expectations)


def raw_orders_suite(
    *, anonymous_orders_kept: bool = False, as_of_day: bool = True
) -> gx.ExpectationSuite:
    """Orders drive every RFM number, so most of their rules block."""
    return _suite(
        "raw.orders",
        [
            _raw_schema("orders"),
            # Freshness: the batch has rows, and the newest partition in scope (the as-of day)
            # has some: a day without a single order means its file did not arrive or arrived
            # empty. Older partitions may be empty (the first days of a shop's history are).
            *_only_on_the_day(
                as_of_day,
                _arrived(BLOCKING),
                gxe.ExpectColumnDistinctValuesToContainSet(
                    column="_partition_date",
                    value_set={"$PARAMETER": NEWEST_PARTITION_PARAMETER},
                    meta=_meta(BLOCKING),
                ),
            ),
            _not_null("order_id", BLOCKING, KEY_MOSTLY),
            # Rows written twice are deduplicated by dbt (the demo plants ~1%, and GX counts both
            # copies); a share beyond this means a file was delivered twice.
            gxe.ExpectColumnValuesToBeUnique(
                column="order_id", mostly=DUPLICATE_MOSTLY, meta=_meta(WARNING)
            ),
            _orders_customer_id(anonymous_orders_kept),
            *_parseable("ordered_at", TIMESTAMP_REGEX),
            *_parseable("amount", AMOUNT_REGEX),
            *_in_set("status", ORDER_STATUSES),
        ],
    )


def _orders_customer_id(anonymous_orders_kept: bool) -> gx.Expectation:
    # A source that declares ``anonymous_orders: keep`` loads guest orders with no customer id:
    # they are exempt from the key rule. Only a day mostly without customers (an emptied or
    # wrongly mapped column, more likely than a shop turned anonymous) is still reported.
    if anonymous_orders_kept:
        return _not_null("customer_id", WARNING, ANONYMOUS_ORDERS_CUSTOMER_ID_MOSTLY)
    return _not_null("customer_id", BLOCKING, KEY_MOSTLY)


def raw_customers_suite() -> gx.ExpectationSuite:
    """CRM records: identity and timestamps block; contact details only warn (dbt nulls them)."""
    return _suite(
        "raw.customers",
        [
            # No row-count rule: days without CRM changes are normal (the demo has many).
            _raw_schema("customers"),
            _not_null("customer_id", BLOCKING, KEY_MOSTLY),
            *_parseable("signup_at", TIMESTAMP_REGEX),
            # updated_at decides which version of a customer wins.
            *_parseable("updated_at", TIMESTAMP_REGEX),
            gxe.ExpectColumnValuesToMatchRegex(
                column="email", regex=EMAIL_REGEX, mostly=0.95, meta=_meta(WARNING)
            ),
            *_parseable("birth_date", DATE_REGEX, severity=WARNING, filled_mostly=OPTIONAL_MOSTLY),
            gxe.ExpectColumnValuesToMatchRegex(
                column="marketing_consent",
                regex=BOOLEAN_REGEX,
                mostly=PARSEABLE_MOSTLY,
                meta=_meta(WARNING),
            ),
        ],
    )


def raw_web_events_suite(*, as_of_day: bool = True) -> gx.ExpectationSuite:
    return _suite(
        "raw.web_events",
        [
            _raw_schema("web_events"),
            # A site without a single tracked event for a day means tracking broke, but segments
            # can still be computed from orders, so it only warns.
            *_only_on_the_day(as_of_day, _arrived(WARNING)),
            _not_null("event_id", BLOCKING, KEY_MOSTLY),
            _not_null("session_id", BLOCKING, KEY_MOSTLY),
            _not_null("customer_id", BLOCKING, WEB_CUSTOMER_ID_MOSTLY),
            *_in_set("event_type", WEB_EVENT_TYPES),
            *_parseable("occurred_at", TIMESTAMP_REGEX),
        ],
    )


def raw_email_events_suite() -> gx.ExpectationSuite:
    return _suite(
        "raw.email_events",
        [
            # No row-count rule: campaigns are not sent every day.
            _raw_schema("email_events"),
            _not_null("event_id", BLOCKING, KEY_MOSTLY),
            _not_null("customer_id", BLOCKING, KEY_MOSTLY),
            _not_null("campaign_id", WARNING, KEY_MOSTLY),
            *_in_set("event_type", EMAIL_EVENT_TYPES),
            *_parseable("occurred_at", TIMESTAMP_REGEX),
        ],
    )


def _mart_schema(table: str) -> gxe.Expectation:
    # exact_match=False: a mart may gain columns; the contract only promises these. Of
    # customer_features the gate requires what the clustering reads.
    columns = CLUSTERING_FEATURE_COLUMNS if table == "customer_features" else mart_columns()[table]
    return gxe.ExpectTableColumnsToMatchSet(
        column_set=list(columns), exact_match=False, meta=_meta(BLOCKING)
    )


def _unique_key(column: str) -> list[gxe.Expectation]:
    return [
        _not_null(column, BLOCKING),
        gxe.ExpectColumnValuesToBeUnique(column=column, meta=_meta(BLOCKING)),
    ]


def _at_least(column: str, minimum: float, severity: str = BLOCKING) -> gxe.Expectation:
    # Nulls are allowed (e.g. recency_days of a customer without orders): GX skips them here.
    return gxe.ExpectColumnValuesToBeBetween(column=column, min_value=minimum, meta=_meta(severity))


def customer_features_suite() -> gx.ExpectationSuite:
    """The clustering input: one row per customer, no negative counts, money or ages."""
    low, high = AVG_ORDER_VALUE_BAND
    return _suite(
        "marts.customer_features",
        [
            _mart_schema("customer_features"),
            _not_empty(BLOCKING),
            *_unique_key("customer_id"),
            _at_least("order_count", 0),
            _at_least("total_spend", 0),
            _at_least("recency_days", 0),
            _at_least("tenure_days", 0, WARNING),
            gxe.ExpectColumnValuesToBeBetween(
                column="avg_order_value",
                min_value=low,
                max_value=high,
                mostly=0.99,
                meta=_meta(WARNING),
            ),
            gxe.ExpectColumnPairValuesAToBeGreaterThanB(
                column_A="order_count",
                column_B="order_days",
                or_equal=True,
                ignore_row_if="either_value_is_missing",
                meta=_meta(WARNING),
            ),
            # Opens can be tracked without a matching send (forwarded mails), but not often.
            gxe.ExpectColumnPairValuesAToBeGreaterThanB(
                column_A="email_sent_count",
                column_B="email_open_count",
                or_equal=True,
                ignore_row_if="either_value_is_missing",
                mostly=0.95,
                meta=_meta(WARNING),
            ),
        ],
    )


def customer_rfm_suite() -> gx.ExpectationSuite:
    """RFM scores are quintiles: anything outside 1..5 breaks segment naming."""
    scores = ("recency_score", "frequency_score", "monetary_score")
    return _suite(
        "marts.customer_rfm",
        [
            _mart_schema("customer_rfm"),
            _not_empty(BLOCKING),
            *_unique_key("customer_id"),
            *[_not_null(score, BLOCKING) for score in scores],
            *[
                gxe.ExpectColumnValuesToBeBetween(
                    column=score, min_value=1, max_value=5, meta=_meta(BLOCKING)
                )
                for score in scores
            ],
            gxe.ExpectColumnValuesToMatchRegex(
                column="rfm_score", regex=RFM_SCORE_REGEX, meta=_meta(WARNING)
            ),
            # A null segment means the seed rfm_segment_names lacks a score combination.
            _not_null("rfm_segment", WARNING),
        ],
    )


def cohort_retention_suite() -> gx.ExpectationSuite:
    return _suite(
        "marts.cohort_retention",
        [
            _mart_schema("cohort_retention"),
            _not_empty(BLOCKING),
            _not_null("cohort_month", BLOCKING),
            _at_least("months_since_first_order", 0),
            gxe.ExpectCompoundColumnsToBeUnique(
                column_list=["cohort_month", "months_since_first_order"], meta=_meta(BLOCKING)
            ),
            _not_null("retention_rate", BLOCKING),
            gxe.ExpectColumnValuesToBeBetween(
                column="retention_rate", min_value=0, max_value=1, meta=_meta(BLOCKING)
            ),
            _at_least("cohort_size", 1, WARNING),
            gxe.ExpectColumnPairValuesAToBeGreaterThanB(
                column_A="cohort_size",
                column_B="active_customers",
                or_equal=True,
                ignore_row_if="either_value_is_missing",
                meta=_meta(WARNING),
            ),
        ],
    )


LIFECYCLE_STAGES = ("voided", "prospect", "new", "active", "loyal", "at_risk", "churned")


def customers_mart_suite() -> gx.ExpectationSuite:
    """One row per resolved customer; ages the loader's row rules let through."""
    return _suite(
        "marts.customers",
        [
            _mart_schema("customers"),
            _not_empty(BLOCKING),
            *_unique_key("customer_id"),
            gxe.ExpectColumnValuesToBeBetween(
                column="age_years", min_value=0, max_value=120, meta=_meta(BLOCKING)
            ),
            # No e-mail format rule here: malformed addresses never get past the row rules, and
            # a regex over every customer's address costs a second a night at 1M customers.
            _at_least("source_record_count", 1),
        ],
    )


def customer_lifecycle_suite() -> gx.ExpectationSuite:
    return _suite(
        "marts.customer_lifecycle",
        [
            _mart_schema("customer_lifecycle"),
            _not_empty(BLOCKING),
            *_unique_key("customer_id"),
            _not_null("lifecycle_stage", BLOCKING),
            gxe.ExpectColumnValuesToBeInSet(
                column="lifecycle_stage", value_set=list(LIFECYCLE_STAGES), meta=_meta(BLOCKING)
            ),
        ],
    )


def customer_lifecycle_transitions_suite() -> gx.ExpectationSuite:
    return _suite(
        "marts.customer_lifecycle_transitions",
        [
            _mart_schema("customer_lifecycle_transitions"),
            # Its stages are customer_lifecycle's, checked there.
            *_unique_key("customer_id"),
        ],
    )


def _retention_suite(table: str, cohort: str, offset: str) -> gx.ExpectationSuite:
    return _suite(
        f"marts.{table}",
        [
            _mart_schema(table),
            _not_null(cohort, BLOCKING),
            _at_least(offset, 0),
            gxe.ExpectCompoundColumnsToBeUnique(column_list=[cohort, offset], meta=_meta(BLOCKING)),
            gxe.ExpectColumnValuesToBeBetween(
                column="retention_rate", min_value=0, max_value=1, meta=_meta(BLOCKING)
            ),
        ],
    )


def _kept_apart_orders_suite(table: str) -> gx.ExpectationSuite:
    """Returned / cancelled orders: may be empty on a given day, never duplicated."""
    return _suite(
        f"marts.{table}",
        [
            _mart_schema(table),
            *_unique_key("order_id"),
            _not_null("customer_id", BLOCKING),
            _at_least("amount", 0, WARNING),
        ],
    )


def quarantine_suite(source: str, max_share: float) -> gx.ExpectationSuite:
    """The share of a batch's incoming rows the row rules quarantined: a few bad rows are set
    aside and the run goes on; a larger share means the delivery is broken (the gate works out
    ``max_share`` per batch from ``quarantine_max_share`` and ``quarantine_min_rows``)."""
    return _suite(
        f"{QUARANTINE_SCHEMA}.{source}",
        [
            gxe.ExpectColumnValuesToBeInSet(
                column=QUARANTINED_COLUMN,
                value_set=[0],
                mostly=round(1 - max_share, 9),
                meta=_meta(BLOCKING),
            )
        ],
    )


def allowed_quarantine_share(config: QualityConfig, incoming_rows: int) -> float:
    """The share of ``incoming_rows`` that may be quarantined without blocking: the configured
    share, but never fewer than ``quarantine_min_rows - 1`` rows."""
    if incoming_rows <= 0:
        return config.quarantine_max_share
    floor = (config.quarantine_min_rows - 1) / incoming_rows
    return min(1.0, max(config.quarantine_max_share, floor))


# Copies of one id in one day's files that differ (a line repeated whole is quarantined as
# duplicate_row): dbt keeps one, the later line of the file (macro latest_known_copies), and the
# gate warns with their count and examples, so a conflicting export is seen, not silently
# resolved. Of customers only copies updated at the same moment conflict (else updated_at
# decides which record is the latest).
CONFLICTING_COPY_COLUMNS: dict[str, tuple[str, ...]] = {
    "customers": ("customer_id", "updated_at"),
    "orders": ("order_id",),
    "web_events": ("event_id",),
    "email_events": ("event_id",),
}


def _conflicting_copies(source: str) -> list[gxe.Expectation]:
    columns = CONFLICTING_COPY_COLUMNS.get(source)
    if not columns:
        return []
    return [
        gxe.ExpectCompoundColumnsToBeUnique(
            column_list=[*columns, "_partition_date"], meta=_meta(WARNING)
        )
    ]


def as_of_day_rules(source: str) -> list[gxe.Expectation]:
    """Rules of the as-of day's partition alone: volume for every source and for orders the mean
    amount, which compare it with the trailing days (history caught up in one run has nothing
    to compare with), and the copies of one id that differ within the day's files."""
    # Orders and web events of a normal day are steady; CRM changes (a full export delivered
    # instead of the day's changes is harmless: dbt keeps the latest record) and campaign-driven
    # e-mail are bursty by nature, so their volume only warns.
    rules = [_volume(BLOCKING if source in ("orders", "web_events") else WARNING)]
    rules += _conflicting_copies(source)
    if source == "orders":
        # Distribution: amounts delivered in cents or another currency move the mean.
        rules.append(
            gxe.ExpectColumnMeanToBeBetween(
                column=AMOUNT_VALUE_COLUMN,
                min_value={"$PARAMETER": MEAN_AMOUNT_MIN_PARAMETER},
                max_value={"$PARAMETER": MEAN_AMOUNT_MAX_PARAMETER},
                meta=_meta(BLOCKING),
            )
        )
    return rules


def raw_suites(
    *, as_of_day: bool = True, anonymous_orders_kept: bool = False
) -> dict[str, gx.ExpectationSuite]:
    """Suite per raw source name (the keys of ``validate_raw``'s ``partitions``): for the as-of
    day's partition, or (``as_of_day=False``) for older partitions loaded in the same run.
    ``anonymous_orders_kept``: the orders source declares ``anonymous_orders: keep``."""
    suites = {
        "customers": raw_customers_suite(),
        "orders": raw_orders_suite(
            anonymous_orders_kept=anonymous_orders_kept, as_of_day=as_of_day
        ),
        "web_events": raw_web_events_suite(as_of_day=as_of_day),
        "email_events": raw_email_events_suite(),
    }
    if as_of_day:
        for source, suite in suites.items():
            suites[source] = _suite(suite.name, [*suite.expectations, *as_of_day_rules(source)])
    return suites


# The derived columns of each mart counted in days or months from a date in the data: inside the
# plausible window (business_start_date .. the as-of date) they cannot exceed the window's length.
# A 1900 signup (tenure of 46,000 days) or a '-infinity' order must not reach the segments.
_DAYS_COLUMNS = {
    "customer_features": ("tenure_days", "recency_days"),
    "customer_lifecycle": ("recency_days", "days_since_first_order"),
}
_MONTHS_COLUMNS = {
    "cohort_retention": ("months_since_first_order",),
    "signup_cohort_retention": ("months_since_signup",),
    "behavioural_cohort_retention": ("months_since_first_order",),
}


def plausible_window_rules(
    table: str, as_of_date: date, config: QualityConfig
) -> list[gxe.Expectation]:
    """Blocking range rules of ``table``'s derived day and month columns for ``as_of_date``."""
    start = date.fromisoformat(config.business_start_date)
    max_days = max((as_of_date - start).days, 0)
    max_months = max((as_of_date.year - start.year) * 12 + as_of_date.month - start.month, 0)
    rules = [
        gxe.ExpectColumnValuesToBeBetween(
            column=column, min_value=0, max_value=max_days, meta=_meta(BLOCKING)
        )
        for column in _DAYS_COLUMNS.get(table, ())
    ]
    rules += [
        gxe.ExpectColumnValuesToBeBetween(
            column=column, min_value=0, max_value=max_months, meta=_meta(BLOCKING)
        )
        for column in _MONTHS_COLUMNS.get(table, ())
    ]
    return rules


def mart_suites(
    as_of_date: date | None = None, config: QualityConfig | None = None
) -> dict[str, gx.ExpectationSuite]:
    """Suite per mart table name (in ``marts``); with ``as_of_date`` and ``config``, plus the
    plausible-window rules of that date (``plausible_window_rules``)."""
    suites = _mart_suites()
    if as_of_date is None or config is None:
        return suites
    return {
        table: _suite(
            suite.name, [*suite.expectations, *plausible_window_rules(table, as_of_date, config)]
        )
        for table, suite in suites.items()
    }


def _mart_suites() -> dict[str, gx.ExpectationSuite]:
    return {
        "customers": customers_mart_suite(),
        "customer_features": customer_features_suite(),
        "customer_rfm": customer_rfm_suite(),
        "customer_lifecycle": customer_lifecycle_suite(),
        "customer_lifecycle_transitions": customer_lifecycle_transitions_suite(),
        "cohort_retention": cohort_retention_suite(),
        "signup_cohort_retention": _retention_suite(
            "signup_cohort_retention", "signup_month", "months_since_signup"
        ),
        "behavioural_cohort_retention": _retention_suite(
            "behavioural_cohort_retention", "cohort_name", "months_since_first_order"
        ),
        "returned_orders": _kept_apart_orders_suite("returned_orders"),
        "cancelled_orders": _kept_apart_orders_suite("cancelled_orders"),
    }
