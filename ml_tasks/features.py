"""Read the customer features of one as-of date from the dbt marts."""

from __future__ import annotations

from datetime import date

import duckdb
import pandas as pd

# The behaviour the clusters are built on (all counts or amounts, all >= 0).
FEATURE_COLUMNS: tuple[str, ...] = (
    "recency_days",
    "order_count",
    "order_days",
    "total_spend",
    "avg_order_value",
    "tenure_days",
    "web_session_count",
    "web_event_count",
    "cart_add_count",
    "email_sent_count",
    "email_open_count",
    "email_click_count",
)


class MissingFeaturesError(RuntimeError):
    """The marts hold no features for the requested as-of date."""


def load_customer_features(con: duckdb.DuckDBPyConnection, as_of_date: date) -> pd.DataFrame:
    """All customers of the as-of slice, indexed by customer id, with a ``has_orders`` flag.

    Customers without an order have no behaviour to cluster on; the caller puts them in the
    prospect segment instead.
    """
    columns = ", ".join(FEATURE_COLUMNS)
    frame = con.execute(
        f"""
        select customer_id, {columns}, order_count > 0 as has_orders
        from marts.customer_features
        where as_of_date = ?
        order by customer_id
        """,
        [as_of_date],
    ).df()
    if frame.empty:
        raise MissingFeaturesError(
            f"marts.customer_features has no rows for as-of date {as_of_date}: "
            "the dbt stage must run for that date first."
        )
    frame = frame.set_index("customer_id")
    # Plain float64 (NaN, not pandas' NA) is what scikit-learn and the profiles expect; a missing
    # count means none happened, while recency and order value stay missing without orders.
    frame[list(FEATURE_COLUMNS)] = frame[list(FEATURE_COLUMNS)].astype("float64")
    counts = [c for c in FEATURE_COLUMNS if c not in {"recency_days", "avg_order_value"}]
    frame[counts] = frame[counts].fillna(0.0)
    frame["has_orders"] = frame["has_orders"].astype(bool)
    return frame
