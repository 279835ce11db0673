"""The order history as purchase days, in an in-memory DuckDB, for the prediction models.

Built once per night: every customer has a dense integer key (``cid``, in customer_id order) and
the orders are merged per customer and day (``daily``: cid, day as days since 1970-01-01, summed
amount), about 16 bytes a purchase day instead of pandas frames of strings and dates. The
nightly step has the warehouse key and merge them (``predict.read_inputs``), so no order's
customer id leaves DuckDB; ``OrderHistory.from_orders`` does the same from orders (customer_id,
ordered_date, amount). Everything the models need at a cutoff date (the RFM summary of the CLV
models, the point-in-time propensity features, the outcome of the days after) is then one SQL
query per cutoff returning a compact frame.
"""

from __future__ import annotations

from datetime import date

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

EPOCH = date(1970, 1, 1)

# The propensity features at a cutoff day $d, from the purchase days up to it (inclusive); the
# windows count the days d-29..d (30 days), d-89..d, d-179..d.
_FEATURES_SQL = """
with known as (
    select
        cid,
        min(day) as first_day,
        max(day) as last_day,
        count(*) as n,
        sum(amount) as spend,
        count(*) filter (where day > $d - 30) as n30,
        count(*) filter (where day > $d - 90) as n90,
        count(*) filter (where day > $d - 180) as n180,
        coalesce(sum(amount) filter (where day > $d - 90), 0) as spend90
    from daily
    where day <= $d
    group by cid
)
select
    cid,
    cast($d - last_day as float) as recency_days,
    cast($d - first_day as float) as tenure_days,
    cast(n as float) as order_days,
    cast(spend as float) as total_spend,
    cast(spend / n as float) as mean_spend,
    cast(n30 as float) as order_days_30d,
    cast(n90 as float) as order_days_90d,
    cast(n180 as float) as order_days_180d,
    cast(spend90 as float) as spend_90d,
    cast(case when n > 1 then (last_day - first_day) / (n - 1) end as float) as mean_gap_days,
    cast($d - last_day - case when n > 1 then (last_day - first_day) / (n - 1) end as float)
        as days_since_expected_order
    {outcome}
from known
order by cid
"""
# 1 when the customer has a purchase day in ($d, $d + $h].
_OUTCOME_SQL = """,
    cast(cid in (select cid from daily where day > $d and day <= $d + $h) as tinyint) as bought"""

_RFM_SQL = """
select
    cid,
    count(*) - 1 as frequency,
    (max(day) - min(day)) / $unit as recency,
    ($d - min(day)) / $unit as T,
    case
        when count(*) > 1 then (sum(amount) - arg_min(amount, day)) / (count(*) - 1)
        else 0.0
    end as monetary_value
from daily
where day <= $d
group by cid
order by cid
"""


def day_number(day: date) -> int:
    return (day - EPOCH).days


class OrderHistory:
    """Purchase days per customer; ``customer_ids[cid]`` is the customer of key ``cid``.

    ``purchase_days`` (``cid``, ``day`` as days since 1970-01-01, the day's summed ``amount``;
    a pandas DataFrame or an Arrow table) holds one row per customer and day; the keys are
    positions in ``customer_ids``, which are in ascending order and may include customers
    without a purchase day. ``from_orders`` builds both from the orders themselves."""

    def __init__(self, purchase_days: pd.DataFrame | pa.Table, customer_ids: np.ndarray):
        self.con = duckdb.connect()
        self.con.register("purchase_days_frame", purchase_days)
        try:
            self.con.execute(
                """
                create table daily as
                select cast(cid as integer) as cid, cast(day as integer) as day,
                    cast(amount as double) as amount
                from purchase_days_frame
                order by cid, day
                """
            )
        finally:
            self.con.unregister("purchase_days_frame")
        self.customer_ids = np.asarray(customer_ids, dtype=object)

    @classmethod
    def from_orders(cls, orders: pd.DataFrame | pa.Table) -> OrderHistory:
        """From the orders (customer_id, ordered_date, amount): every customer with an order
        gets a dense key in customer_id order, and the orders are merged per customer and
        day."""
        con = duckdb.connect()
        columns = ["customer_id", "ordered_date", "amount"]
        frame = orders.select(columns) if isinstance(orders, pa.Table) else orders[columns]
        con.register("orders_frame", frame)
        try:
            con.execute(
                """
                create table customers as
                select customer_id, cast(row_number() over (order by customer_id) - 1 as integer)
                    as cid
                from (select distinct cast(customer_id as varchar) as customer_id
                      from orders_frame)
                """
            )
            purchase_days = con.sql(
                """
                select
                    customers.cid,
                    cast(cast(o.ordered_date as date) - date '1970-01-01' as integer) as day,
                    sum(cast(o.amount as double)) as amount
                from orders_frame as o
                inner join customers on customers.customer_id = cast(o.customer_id as varchar)
                group by all
                """
            ).to_arrow_table()
            customer_ids = con.execute(
                "select customer_id from customers order by cid"
            ).fetchnumpy()["customer_id"]
        finally:
            con.close()
        return cls(purchase_days, customer_ids)

    @classmethod
    def of(cls, orders: pd.DataFrame | pa.Table | OrderHistory) -> OrderHistory:
        return orders if isinstance(orders, OrderHistory) else cls.from_orders(orders)

    def positions(self, day: date, customer_ids: np.ndarray | pd.Series) -> np.ndarray:
        """The row of each of ``customer_ids`` among the customers with a purchase day up to
        ``day`` (the rows of ``rfm`` and ``features``), -1 for a customer without one. Cheap
        when ``customer_ids`` are this history's own (``predict.read_inputs``)."""
        buyers = self.con.execute(
            "select distinct cid from daily where day <= $d order by cid", {"d": day_number(day)}
        ).fetchnumpy()["cid"]
        row = np.full(len(self.customer_ids) + 1, -1, dtype="int64")  # the last: not a key
        row[buyers] = np.arange(len(buyers))
        return row[pd.Index(self.customer_ids).get_indexer(np.asarray(customer_ids))]

    def features(self, day: date, horizon_days: int | None = None) -> pd.DataFrame:
        """The propensity features (float32) of every customer with a purchase day up to
        ``day``, by ``cid``; with ``horizon_days``, also ``bought`` (a purchase day in the
        ``horizon_days`` after ``day``)."""
        outcome = _OUTCOME_SQL if horizon_days is not None else ""
        params = {"d": day_number(day)}
        if horizon_days is not None:
            params["h"] = int(horizon_days)
        return self.con.execute(_FEATURES_SQL.format(outcome=outcome), params).df()

    def rfm(self, day: date, time_unit_days: float = 1.0) -> pd.DataFrame:
        """Frequency, recency, T (in ``time_unit_days``) and the mean repeat spend of every
        customer with a purchase day up to ``day``, by ``cid``."""
        params = {"d": day_number(day), "unit": float(time_unit_days)}
        return self.con.execute(_RFM_SQL, params).df()

    def ids(self, cid: pd.Series | np.ndarray) -> np.ndarray:
        return self.customer_ids[np.asarray(cid)]

    def purchase_days_between(self, after: date, until: date, cids: np.ndarray) -> int:
        """Purchase days in (after, until] of the customers ``cids``."""
        self.con.register("wanted", pd.DataFrame({"cid": np.asarray(cids, dtype="int32")}))
        try:
            return self.con.execute(
                "select count(*) from daily where day > $a and day <= $u "
                "and cid in (select cid from wanted)",
                {"a": day_number(after), "u": day_number(until)},
            ).fetchall()[0][0]
        finally:
            self.con.unregister("wanted")
