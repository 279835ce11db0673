"""Customer features with planted behaviour groups, written where the recluster reads them.

Each group has a centre per feature (money and counts on the log1p scale, recency and tenure in
days); customers scatter around their group's centre. ``nudge`` makes the next night's small
changes: a day older, a little noise.
"""

from __future__ import annotations

from datetime import date

import duckdb
import numpy as np
import pandas as pd

LOG_FEATURES = (
    "order_count", "order_days", "total_spend", "avg_order_value", "web_session_count",
    "web_event_count", "cart_add_count", "email_sent_count", "email_open_count",
    "email_click_count",
)  # fmt: skip
DAY_FEATURES = ("recency_days", "tenure_days")

# log1p-scale centres of LOG_FEATURES, then recency and tenure in days.
GROUPS: dict[str, tuple[list[float], float, float]] = {
    "champions": ([3.0, 2.9, 7.5, 4.5, 4.0, 5.5, 3.0, 3.5, 3.0, 2.0], 10, 600),
    "regulars": ([2.0, 1.9, 5.5, 3.5, 3.0, 4.5, 2.0, 3.5, 2.0, 1.0], 40, 500),
    "lapsed": ([1.2, 1.1, 4.0, 2.8, 1.0, 2.0, 0.5, 3.5, 0.5, 0.1], 280, 700),
    "newcomers": ([0.7, 0.7, 3.5, 2.8, 1.5, 3.0, 1.0, 1.0, 0.7, 0.3], 15, 30),
}
# A behaviour that appears later: email-driven buyers who never browse the site.
NEW_GROUP = ("email_buyers", ([1.6, 1.5, 5.0, 3.4, 0.0, 0.0, 0.0, 4.5, 4.0, 3.5], 20, 200))


def planted_customers(
    n: int, seed: int, groups: dict | None = None, prefix: str = "C", prospects: int = 20
) -> pd.DataFrame:
    """``n`` customers split evenly over ``groups`` plus ``prospects`` without orders; the
    ``group`` column holds the truth."""
    groups = groups or GROUPS
    rng = np.random.default_rng(seed)
    names = list(groups)
    truth = np.array(names)[rng.integers(0, len(names), n)]
    rows = {}
    logs = np.array([groups[g][0] for g in truth])
    logs = np.clip(logs + rng.normal(0, 0.2, logs.shape), 0, None)
    for i, column in enumerate(LOG_FEATURES):
        rows[column] = np.expm1(logs[:, i])
    for column in ("order_count", "order_days"):
        rows[column] = np.maximum(np.round(rows[column]), 1)
    rows["recency_days"] = np.clip(
        [groups[g][1] for g in truth] * np.exp(rng.normal(0, 0.2, n)), 0, None
    )
    rows["tenure_days"] = np.clip(
        [groups[g][2] for g in truth] * np.exp(rng.normal(0, 0.15, n)), 1, None
    )
    frame = pd.DataFrame(rows, index=[f"{prefix}{i:06d}" for i in range(n)])
    frame["group"] = truth
    if prospects:
        empty = pd.DataFrame(
            {c: 0.0 for c in LOG_FEATURES} | {"recency_days": np.nan, "tenure_days": 50.0},
            index=[f"P{i:05d}" for i in range(prospects)],
        )
        empty["avg_order_value"] = np.nan
        empty["group"] = "prospect"
        frame = pd.concat([frame, empty])
    frame.index.name = "customer_id"
    return frame


def nudge(frame: pd.DataFrame, seed: int) -> pd.DataFrame:
    """The next night: everyone a day older, activity moved by a little noise."""
    rng = np.random.default_rng(seed)
    nudged = frame.copy()
    for column in ("web_event_count", "email_sent_count", "total_spend"):
        nudged[column] = nudged[column] * np.exp(rng.normal(0, 0.03, len(nudged)))
    nudged["recency_days"] += 1
    nudged["tenure_days"] += 1
    return nudged


def write_features(con: duckdb.DuckDBPyConnection, as_of: date, frame: pd.DataFrame) -> None:
    """Store a night's features as the ``marts.customer_features`` slice of ``as_of``."""
    con.execute("create schema if not exists marts")
    data = frame.drop(columns="group").reset_index()
    data.insert(0, "as_of_date", pd.Timestamp(as_of))
    con.register("night_features", data)
    exists = con.execute(
        "select count(*) from information_schema.tables "
        "where table_schema = 'marts' and table_name = 'customer_features'"
    ).fetchone()[0]
    if exists:
        con.execute("delete from marts.customer_features where as_of_date = ?", [as_of])
        con.execute("insert into marts.customer_features by name select * from night_features")
    else:
        con.execute(
            "create table marts.customer_features as "
            "select as_of_date::date as as_of_date, * exclude (as_of_date) from night_features"
        )
    con.unregister("night_features")
