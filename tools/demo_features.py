"""Customer features straight from demo landing files, computed the way the marts compute them
(partitions dated up to the as-of date, events before the end of that day, completed orders with
a plausible amount), without dbt: fast enough for the segmentation tests. Unlike the marts, CRM
near-duplicates are not merged (harder than what the pipeline sees after identity resolution)."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import duckdb
import pandas as pd

SOURCES = ("customers", "orders", "web_events", "email_events")


def connect_landing(root: Path) -> duckdb.DuckDBPyConnection:
    """Views over the landing files (as text, plus the partition ``date``) and the truth."""
    con = duckdb.connect()
    for source in SOURCES:
        con.execute(
            f"create view {source} as select * from read_csv('{root}/landing/{source}/*/*.csv', "
            "header = true, all_varchar = true, hive_partitioning = true)"
        )
    con.execute(
        f"create view truth as select * from read_csv('{root}/truth/customers.csv', "
        "header = true, all_varchar = true)"
    )
    return con


def customer_features(root: Path, as_of: date) -> pd.DataFrame:
    """Per customer_id as of ``as_of``, the way the pipeline computes them: partitions dated up to
    ``as_of``, events before the end of that day, completed orders with a plausible amount."""
    end = as_of + timedelta(days=1)
    con = connect_landing(root)
    return (
        con.execute(
            f"""
        with crm as (
            select customer_id, min(signup_at::timestamp) as signup_at from customers
            where date::date <= '{as_of}' group by 1
        ),
        valid_orders as (
            select distinct order_id, customer_id, ordered_at::timestamp as ordered_at,
                amount::double as amount
            from orders
            where date::date <= '{as_of}' and ordered_at::timestamp < '{end}'
                and status = 'completed' and amount::double > 0 and amount::double < 100000
        ),
        order_features as (
            select customer_id, date '{as_of}' - max(ordered_at)::date as recency_days,
                count(*) as order_count, count(distinct ordered_at::date) as order_days,
                sum(amount) as total_spend
            from valid_orders group by 1
        ),
        voided as (
            select customer_id, count(distinct order_id) as voided_order_count
            from orders
            where date::date <= '{as_of}' and ordered_at::timestamp < '{end}'
                and not (status = 'completed' and amount::double > 0
                         and amount::double < 100000)
            group by 1
        ),
        web as (
            select customer_id, count(distinct session_id) as web_session_count,
                count(distinct event_id) as web_event_count,
                count(distinct event_id) filter (event_type = 'add_to_cart') as cart_add_count
            from web_events
            where date <= '{as_of}' and occurred_at::timestamp < '{end}'
                and customer_id is not null
            group by 1
        ),
        email as (
            select customer_id,
                count(distinct event_id) filter (event_type = 'sent') as email_sent_count,
                count(distinct event_id) filter (event_type = 'open') as email_open_count,
                count(distinct event_id) filter (event_type = 'click') as email_click_count
            from email_events
            where date <= '{as_of}' and occurred_at::timestamp < '{end}'
            group by 1
        )
        select crm.customer_id, order_features.recency_days,
            coalesce(order_count, 0) as order_count, coalesce(order_days, 0) as order_days,
            coalesce(total_spend, 0) as total_spend,
            coalesce(total_spend / order_count, 0) as avg_order_value,
            date '{as_of}' - signup_at::date as tenure_days,
            coalesce(web_session_count, 0) as web_session_count,
            coalesce(web_event_count, 0) as web_event_count,
            coalesce(cart_add_count, 0) as cart_add_count,
            coalesce(email_sent_count, 0) as email_sent_count,
            coalesce(email_open_count, 0) as email_open_count,
            coalesce(email_click_count, 0) as email_click_count,
            coalesce(voided_order_count, 0) as voided_order_count
        from crm
        left join order_features using (customer_id)
        left join web using (customer_id)
        left join email using (customer_id)
        left join voided using (customer_id)
        order by crm.customer_id
        """
        )
        .df()
        .set_index("customer_id")
    )
