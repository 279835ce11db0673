"""The data contract between the stages (see docs/architecture.md): one definition, used by the
loader that implements it, the demo generator that produces it and the gate that checks it.

The landing contract is declared here; the marts' columns are declared in dbt's model contracts
and read from there (``mart_columns``)."""

from __future__ import annotations

import functools
from pathlib import Path

import yaml

from core.settings import Settings, get_settings

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

# Added by the loader to every raw row: its landing partition, file and line in the file.
RAW_TECHNICAL_COLUMNS: tuple[str, ...] = ("_partition_date", "_source_file", "_line_number")

ORDER_STATUSES: tuple[str, ...] = ("completed", "cancelled", "returned")
WEB_EVENT_TYPES: tuple[str, ...] = (
    "page_view", "product_view", "search", "add_to_cart", "checkout",
)  # fmt: skip
EMAIL_EVENT_TYPES: tuple[str, ...] = ("sent", "open", "click", "bounce", "unsubscribe")

# The columns of marts.customer_features the clustering relies on (ml_tasks, issue 5's contract).
CLUSTERING_FEATURE_COLUMNS: tuple[str, ...] = (
    "as_of_date", "customer_id", "signup_at", "first_order_at", "last_order_at",
    "order_count", "order_days", "total_spend", "avg_order_value", "recency_days",
    "tenure_days", "web_session_count", "web_event_count", "cart_add_count",
    "email_sent_count", "email_open_count", "email_click_count",
)  # fmt: skip

# The dbt marts' columns are declared once, in dbt's model contracts (``contract: enforced``):
# models/marts/_marts__models.yml of the dbt project.
MARTS_MODELS_FILE = Path("models") / "marts" / "_marts__models.yml"


def mart_columns(settings: Settings | None = None) -> dict[str, tuple[str, ...]]:
    """Each mart's columns in table order, read from the dbt project's model contracts."""
    settings = settings or get_settings()
    return _read_mart_columns(settings.dbt_project_dir / MARTS_MODELS_FILE)


@functools.cache
def _read_mart_columns(path: Path) -> dict[str, tuple[str, ...]]:
    models = yaml.safe_load(path.read_text(encoding="utf-8"))["models"]
    return {model["name"]: tuple(c["name"] for c in model["columns"]) for model in models}


def __getattr__(name: str) -> dict[str, tuple[str, ...]]:
    # ``MART_COLUMNS`` reads the dbt project when first asked for, not at import time.
    if name == "MART_COLUMNS":
        return mart_columns()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
