"""Which batches ``quality.table_health`` measures each night, and by which columns.

Raw: the as-of day's partition of each source (text columns, parsed by the measurement). Marts:
the as-of slice of the marts analysts read. Keys give the duplicate rate, numeric columns the
outlier rate, a timestamp column the freshness.
"""

from __future__ import annotations

from datetime import date

from expectations.history import HealthSpec

RAW_KEYS = {
    "customers": ("customer_id",),
    "orders": ("order_id",),
    "web_events": ("event_id",),
    "email_events": ("event_id",),
}
RAW_NUMERIC = {"orders": ("amount",)}
RAW_TIMESTAMP = {
    "customers": "updated_at",
    "orders": "ordered_at",
    "web_events": "occurred_at",
    "email_events": "occurred_at",
}

MART_SPECS: dict[str, tuple[tuple[str, ...], tuple[str, ...], str | None]] = {
    # mart: (key columns, numeric columns, timestamp column)
    "customers": (("customer_id",), ("age_years",), "signup_at"),
    "customer_features": (
        ("customer_id",),
        ("order_count", "total_spend", "avg_order_value", "recency_days", "web_event_count"),
        "last_order_at",
    ),
    "customer_rfm": (("customer_id",), (), None),
    "customer_lifecycle": (("customer_id",), ("recency_days",), None),
    "cohort_retention": (("cohort_month", "months_since_first_order"), ("retention_rate",), None),
}


def raw_health_spec(source: str, dates: list[date], label: str) -> HealthSpec:
    return HealthSpec(
        table=f"raw.{source}",
        label=label,
        where="list_contains(?::date[], _partition_date)",
        params=[dates],
        batch_column="_partition_date",
        key_columns=RAW_KEYS.get(source, ()),
        numeric_columns=RAW_NUMERIC.get(source, ()),
        timestamp_column=RAW_TIMESTAMP.get(source),
    )


def mart_health_specs(as_of_date: date) -> list[HealthSpec]:
    return [
        HealthSpec(
            table=f"marts.{mart}",
            label=f"marts.{mart}",
            where="as_of_date = ?",
            params=[as_of_date],
            batch_column="as_of_date",
            key_columns=keys,
            numeric_columns=numeric,
            timestamp_column=timestamp,
        )
        for mart, (keys, numeric, timestamp) in MART_SPECS.items()
    ]
