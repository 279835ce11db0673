"""The demo's orders as the pipeline sees them (valid completed orders of resolved persons), with
90 days of planted future after the as-of date, for the prediction tests."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import duckdb
import pandas as pd

from tools.demo_data import generate_demo_data

AS_OF = date(2026, 6, 30)
FUTURE_DAYS = 90


def demo_orders(root: Path, n_customers: int = 3000) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(orders: customer_id, ordered_date, amount; truth: person_id, orders_per_day,
    is_dropped_out), customers resolved to their person as identity resolution would."""
    generate_demo_data(
        root / "landing",
        root / "truth",
        n_customers=n_customers,
        seed=42,
        end_date=AS_OF + timedelta(days=FUTURE_DAYS),
        as_of_lag_days=FUTURE_DAYS,
    )
    orders = duckdb.sql(
        f"""
        select truth.person_id as customer_id, cast(orders.ordered_at as date) as ordered_date,
            cast(orders.amount as double) as amount, min(orders.order_id) as order_id
        from read_csv('{root}/landing/orders/*/*.csv', all_varchar = true) as orders
        inner join read_csv('{root}/truth/customers.csv', all_varchar = true) as truth
            using (customer_id)
        where orders.status = 'completed' and cast(orders.amount as double) between 0.01 and 99999
        group by all
        order by all
        """
    ).df()
    truth = pd.read_csv(root / "truth" / "purchase_rates.csv")
    return orders.drop(columns="order_id"), truth
