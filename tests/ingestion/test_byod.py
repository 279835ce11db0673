"""Bring your own data: a line-level transactions file, mapped by a YAML config, through the
real loader, dbt build and reclustering; the marts are checked against values computed here,
independently, with pandas from the same lines.

The file looks like a public retail transaction log (semicolon-delimited, day-first dates):
invoice number, stock code, quantity, invoice date, unit price, customer id. It holds a
cancellation (invoice 'C...'), returns (negative quantities, inside an order and on their own),
a line without a customer id, an exact duplicate line and an order after the as-of date; plus
generated customers so that clustering has something to cluster.
"""

from __future__ import annotations

import random
from datetime import date
from decimal import Decimal
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from core.settings import get_settings
from ingestion.byod import ByodConfigError, load_byod, load_config
from pipeline.byod import run_byod

AS_OF = date(2011, 6, 30)
HEADER = "InvoiceNo;StockCode;Quantity;InvoiceDate;UnitPrice;CustomerID"
HAND_LINES = [
    "1001;A;2;05/01/2011 10:00;3.50;17850",
    "1001;B;1;05/01/2011 10:00;10.00;17850",
    "1001;B;1;05/01/2011 10:00;10.00;17850",  # the same line exported twice
    "1002;A;5;20/03/2011 09:30;2.00;17850",
    "C1003;A;-2;21/03/2011 10:00;2.00;17850",  # cancellation
    "1004;C;3;15/06/2011 14:00;4.00;12583",
    "1004;D;-1;15/06/2011 14:00;4.00;12583",  # a returned line inside an order
    "1005;A;1;30/06/2011 11:00;2.00;",  # no customer id
    "1006;E;10;01/07/2011 12:00;1.50;12583",  # after the as-of date
    "1007;A;1;02/02/2011 08:00;100.00;13047",
    "1008;A;-3;10/05/2011 08:00;5.00;13047",  # a return on its own
]

CONFIG = """
sources:
  orders:
    path: retail/*.csv
    format: csv
    delimiter: ";"
    date_format: "%d/%m/%Y %H:%M"
    grain: lines
    cancelled_order_pattern: "^C"
    columns:
      order_id: InvoiceNo
      customer_id: CustomerID
      ordered_at: InvoiceDate
      product_id: StockCode
      quantity: Quantity
      unit_price: UnitPrice
"""


def generated_lines(n_customers: int = 120, seed: int = 3) -> list[str]:
    """Customers 20000+ with a few orders each, big and small spenders, recent and lapsed."""
    rng = random.Random(seed)
    lines = []
    invoice = 5000
    for customer in range(20000, 20000 + n_customers):
        heavy = customer % 3 == 0
        for _ in range(rng.randint(4, 9) if heavy else rng.randint(1, 2)):
            invoice += 1
            day = rng.randint(1, 28)
            month = rng.randint(3, 6) if heavy else rng.randint(1, 3)
            for item in range(rng.randint(1, 3)):
                price = rng.choice([1.25, 2.5, 4.95, 12.0]) * (3 if heavy else 1)
                lines.append(
                    f"{invoice};P{item};{rng.randint(1, 6)};{day:02d}/{month:02d}/2011 "
                    f"{rng.randint(8, 18):02d}:00;{price:.2f};{customer}"
                )
    return lines


def expected_rfm(lines: list[str]) -> pd.DataFrame:
    """Frequency, monetary and recency per customer, computed from the lines with pandas."""
    rows = [line.split(";") for line in lines]
    frame = pd.DataFrame(rows, columns=HEADER.split(";")).drop_duplicates()
    frame["Quantity"] = frame["Quantity"].astype(int)
    frame["UnitPrice"] = frame["UnitPrice"].astype(float)
    frame["at"] = pd.to_datetime(frame["InvoiceDate"], format="%d/%m/%Y %H:%M")
    kept = frame[
        (frame["at"] < pd.Timestamp(AS_OF) + pd.Timedelta(days=1))
        & ~frame["InvoiceNo"].str.startswith("C")
        & (frame["Quantity"] > 0)
        & (frame["CustomerID"] != "")
    ].copy()
    kept["total"] = kept["Quantity"] * kept["UnitPrice"]
    orders = kept.groupby(["CustomerID", "InvoiceNo"]).agg(total=("total", "sum"), at=("at", "min"))
    per_customer = orders.groupby("CustomerID").agg(
        order_count=("total", "size"), total_spend=("total", "sum"), last=("at", "max")
    )
    per_customer["recency_days"] = (
        pd.Timestamp(AS_OF) - per_customer["last"].dt.normalize()
    ).dt.days
    return per_customer


@pytest.fixture(scope="module")
def byod_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str], dict]:
    root = tmp_path_factory.mktemp("byod")
    (root / "retail").mkdir()
    lines = HAND_LINES + generated_lines()
    (root / "retail" / "transactions.csv").write_text("\n".join([HEADER, *lines]) + "\n")
    (root / "config.yml").write_text(CONFIG)
    data_dir = root / "data"
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setenv("SEGMENTS_DATA_DIR", str(data_dir))
        monkeypatch.delenv("SEGMENTS_WAREHOUSE", raising=False)
        result = run_byod(root / "config.yml", AS_OF, settings=get_settings())
    return data_dir / "warehouse.duckdb", lines, result


def query(warehouse: Path, sql: str, params: list | None = None) -> pd.DataFrame:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.execute(sql, params or []).df()


@pytest.mark.slow
def test_frequency_monetary_recency_match_an_independent_computation(byod_run) -> None:
    warehouse, lines, _ = byod_run
    features = query(
        warehouse,
        "select * from marts.customer_features where as_of_date = ?",
        [AS_OF],
    ).set_index("customer_id")
    expected = expected_rfm(lines)
    for customer in ["17850", "12583", "13047", "20000", "20001", "20003", "20117"]:
        row = features.loc[customer]
        want = expected.loc[customer]
        assert row["order_count"] == want["order_count"], customer
        assert float(row["total_spend"]) == pytest.approx(want["total_spend"], abs=0.005)
        assert row["recency_days"] == want["recency_days"], customer
    # the hand-made ones, worked out by hand as well
    assert features.loc["17850", ["order_count", "recency_days"]].tolist() == [2, 102]
    assert features.loc["17850", "total_spend"] == Decimal("27.00")  # 7 + 10 + 10; dup dropped
    assert features.loc["17850", "cancelled_order_count"] == 1
    assert features.loc["12583", "total_spend"] == Decimal("12.00")  # the returned line apart
    assert features.loc["12583", "returned_order_count"] == 1
    assert features.loc["13047", "returned_order_count"] == 1
    # every customer with a known id is there; the line without one belongs to nobody
    assert set(features.index) == set(expected.index)


@pytest.mark.slow
def test_absent_sources_give_null_features_and_the_rest_still_runs(byod_run) -> None:
    warehouse, _, result = byod_run
    features = query(
        warehouse, "select * from marts.customer_features where as_of_date = ?", [AS_OF]
    )
    for column in (
        "web_session_count",
        "email_sent_count",
        "engagement_score",
        "tenure_days",
        "email_open_rate",
        "bounce_rate",
    ):
        assert features[column].isna().all(), column
    assert features["signup_at"].isna().all()
    for mart in ("customer_rfm", "customer_lifecycle", "cohort_retention"):
        count = query(
            warehouse, f"select count(*) as n from marts.{mart} where as_of_date = ?", [AS_OF]
        )
        assert count["n"].iloc[0] > 0, mart
    segments = query(warehouse, "select * from segments.current_segments")
    assert len(segments) == len(features)
    assert result["version_id"] == 1
    statuses = query(
        warehouse,
        "select order_id, status from intermediate.int_orders_deduplicated order by order_id",
    ).set_index("order_id")["status"]
    assert statuses["C1003-R"] == "cancelled"
    assert statuses["1004-R"] == "returned"
    assert statuses["1008-R"] == "returned"
    assert statuses["1001"] == "completed"
    assert "1006" not in statuses.index  # placed after the as-of date
    kept_apart = {
        mart: sorted(
            query(warehouse, f"select order_id from marts.{mart} where as_of_date = ?", [AS_OF])[
                "order_id"
            ]
        )
        for mart in ("returned_orders", "cancelled_orders")
    }
    assert kept_apart == {"returned_orders": ["1004-R", "1008-R"], "cancelled_orders": ["C1003-R"]}


def test_order_level_parquet_without_order_ids_and_compact_dates(tmp_path: Path) -> None:
    pd.DataFrame(
        {
            "client": ["a", "a", "b"],
            "day": ["20240105", "20240105", "20240210"],
            "total": ["10.5", "10.5", "7"],
        }
    ).to_parquet(tmp_path / "sales.parquet")
    (tmp_path / "config.yml").write_text(
        "sources:\n  orders:\n    path: sales.parquet\n    format: parquet\n"
        "    date_format: yyyymmdd\n"
        "    columns: {customer_id: client, ordered_at: day, amount: total}\n"
    )
    with duckdb.connect() as con:
        loaded = load_byod(con, load_config(tmp_path / "config.yml"))
        rows = con.execute(
            "select customer_id, ordered_at, amount, status, _partition_date from raw.orders "
            "order by order_id"
        ).fetchall()
    assert loaded["orders"] == 3  # no order id: each row is an order, the same-looking two too
    assert rows[0] == ("a", "2024-01-05 00:00:00", "10.5", "completed", date(2024, 1, 5))
    assert rows[2][:2] == ("b", "2024-02-10 00:00:00")


def test_whitespace_aligned_text(tmp_path: Path) -> None:
    (tmp_path / "orders.txt").write_text(
        "order_no  cust   when                 value\n"
        "A-1       x1     2024-03-01 10:00:00  12.50\n"
        "A-2       x22    2024-03-02 11:30:00   7.00\n"
    )
    (tmp_path / "config.yml").write_text(
        "sources:\n  orders:\n    path: orders.txt\n    format: text\n"
        "    columns: {order_id: order_no, customer_id: cust, ordered_at: when, amount: value}\n"
    )
    with duckdb.connect() as con:
        load_byod(con, load_config(tmp_path / "config.yml"))
        rows = con.execute(
            "select order_id, customer_id, amount from raw.orders order by 1"
        ).fetchall()
    assert rows == [("A-1", "x1", "12.50"), ("A-2", "x22", "7.00")]


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ("sources:\n  web_events:\n    path: x.csv\n", "the 'orders' source is required"),
        ("sources:\n  orders:\n    path: nothing*.csv\n", "no file matches 'nothing*.csv'"),
        ("sources:\n  shop:\n    path: x.csv\n", "unknown source(s) shop"),
        (
            "sources:\n  orders:\n    path: x.csv\n    grain: lines\n"
            "    columns: {customer_id: c, ordered_at: d}\n",
            "quantity, unit_price must be mapped",
        ),
        (
            "sources:\n  orders:\n    path: x.csv\n    format: xlsx\n",
            "'xlsx' is not one of csv, parquet, text",
        ),
    ],
)
def test_bad_configs_are_refused_with_a_clear_message(tmp_path: Path, config, message) -> None:
    (tmp_path / "x.csv").write_text("c,d,a\n1,2024-01-01,3\n")
    (tmp_path / "config.yml").write_text(config)
    with pytest.raises(ByodConfigError) as raised:
        load_config(tmp_path / "config.yml")
    assert message in str(raised.value)


def test_a_mapped_column_missing_from_the_file_is_named(tmp_path: Path) -> None:
    (tmp_path / "x.csv").write_text("c,d,a\n1,2024-01-01,3\n")
    (tmp_path / "config.yml").write_text(
        "sources:\n  orders:\n    path: x.csv\n"
        "    columns: {customer_id: client, ordered_at: d, amount: a}\n"
    )
    with duckdb.connect() as con, pytest.raises(ByodConfigError, match="client"):
        load_byod(con, load_config(tmp_path / "config.yml"))
    assert (tmp_path / "x.csv").read_text() == "c,d,a\n1,2024-01-01,3\n"  # never modified
