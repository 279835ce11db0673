"""The data contract between the stages (see docs/architecture.md): one definition, used by the
loader that implements it, the demo generator that produces it and the gate that checks it."""

from __future__ import annotations

# Landing files and raw tables: these columns, all text.
SOURCE_COLUMNS: dict[str, tuple[str, ...]] = {
    "customers": (
        "customer_id", "first_name", "last_name", "email", "phone", "birth_date", "gender",
        "city", "state", "country", "income_band", "signup_at", "marketing_consent", "updated_at",
    ),
    "orders": ("order_id", "customer_id", "ordered_at", "amount", "status"),
    "web_events": (
        "event_id", "session_id", "customer_id", "anonymous_id", "event_type", "occurred_at",
    ),
    "email_events": ("event_id", "customer_id", "campaign_id", "event_type", "occurred_at"),
}  # fmt: skip
SOURCES: tuple[str, ...] = tuple(SOURCE_COLUMNS)

# Added by the loader to every raw row.
RAW_TECHNICAL_COLUMNS: tuple[str, ...] = ("_partition_date", "_source_file")

ORDER_STATUSES: tuple[str, ...] = ("completed", "cancelled", "returned")
WEB_EVENT_TYPES: tuple[str, ...] = (
    "page_view", "product_view", "search", "add_to_cart", "checkout",
)  # fmt: skip
EMAIL_EVENT_TYPES: tuple[str, ...] = ("sent", "open", "click", "bounce", "unsubscribe")

# The dbt marts, in column order. customer_features' first 17 columns are what the clustering
# reads (ml_tasks.features); the columns after them were added by the dbt layer's features.
MART_COLUMNS: dict[str, tuple[str, ...]] = {
    "customers": (
        "as_of_date", "customer_id", "first_name", "last_name", "email", "phone", "city",
        "state", "country", "gender", "income_band", "age_years", "source_record_count",
        "has_marketing_consent", "is_imputed_age_years", "is_imputed_gender",
        "is_imputed_income_band", "signup_at",
    ),
    "customer_features": (
        "as_of_date", "customer_id", "signup_at", "first_order_at", "last_order_at",
        "order_count", "order_days", "total_spend", "avg_order_value", "recency_days",
        "tenure_days", "web_session_count", "web_event_count", "cart_add_count",
        "email_sent_count", "email_open_count", "email_click_count",
        "cancelled_order_count", "returned_order_count", "orders_per_month", "simple_clv",
        "avg_pages_per_session", "bounce_rate", "cart_abandonment_rate", "sessions_last_90_days",
        "email_open_rate", "email_click_rate", "days_since_last_engagement", "engagement_score",
        "order_share_q1", "order_share_q2", "order_share_q3", "order_share_q4",
        "order_share_weekend", "total_spend_winsorized", "avg_order_value_winsorized",
        "is_spend_outlier",
    ),
    "customer_rfm": (
        "as_of_date", "customer_id", "recency_score", "frequency_score", "monetary_score",
        "rfm_score", "rfm_segment",
    ),
    "cohort_retention": (
        "as_of_date", "cohort_month", "months_since_first_order", "cohort_size",
        "active_customers", "retention_rate", "revenue",
    ),
    "signup_cohort_retention": (
        "as_of_date", "signup_month", "months_since_signup", "cohort_size", "active_customers",
        "retention_rate", "revenue",
    ),
    "behavioural_cohort_retention": (
        "as_of_date", "cohort_name", "months_since_first_order", "cohort_size",
        "active_customers", "retention_rate", "revenue",
    ),
    "customer_lifecycle": (
        "as_of_date", "customer_id", "lifecycle_stage", "order_count", "recency_days",
        "days_since_first_order",
    ),
    "customer_lifecycle_transitions": (
        "as_of_date", "customer_id", "previous_stage", "lifecycle_stage", "has_changed_stage",
        "previous_as_of_date",
    ),
    "returned_orders": (
        "as_of_date", "order_id", "customer_id", "amount", "ordered_date", "ordered_at",
    ),
    "cancelled_orders": (
        "as_of_date", "order_id", "customer_id", "amount", "ordered_date", "ordered_at",
    ),
}  # fmt: skip
# The columns of customer_features the clustering relies on (ml_tasks, issue 5's contract).
CLUSTERING_FEATURE_COLUMNS: tuple[str, ...] = MART_COLUMNS["customer_features"][:17]
