"""Bring your own data: a line-level transactions file, mapped by a sources config, through the
nightly path (the loader with its row rules and quarantine, the raw gate, dbt build, the marts'
gate, reclustering and publishing: ``pipeline.steps``, what the DAG's tasks call); the marts are
checked against values computed here, independently, with pandas from the same lines.

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

from core.quality_config import load_quality_config
from core.settings import get_settings
from ingestion.load import IngestionError, load_partitions
from ingestion.sources import SourcesConfigError, load_sources_config
from pipeline import steps

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
    "1009;F;2;30/06/2011 16:00;3.00;14000",  # the as-of day has orders (the raw gate wants some)
]

CONFIG = """
sources:
  orders:
    path: retail/*.csv
    layout: snapshot
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


def run_nightly_steps(as_of: date, run_id: str = "byod") -> dict:
    """What the nightly DAG's tasks run, in order, without Airflow (tests/e2e runs the DAG)."""
    loaded = steps.ingest(as_of, run_id=run_id)
    steps.validate_raw(as_of, loaded["validation_scope"], run_id=run_id)
    steps.build_marts(as_of)
    steps.validate_marts(as_of, run_id=run_id)
    version = steps.recluster(as_of, run_id=run_id)
    steps.publish(as_of, version["version_id"])
    return {"loaded": loaded, "version_id": version["version_id"]}


def generated_lines(n_customers: int = 160, seed: int = 3) -> list[str]:
    """Customers 20000+ of four kinds, as a shop's log holds them: frequent big spenders,
    repeat buyers, recent one-time buyers and one-time buyers lapsed for over 180 days."""
    rng = random.Random(seed)
    # kind: (orders, months, year, price multiplier)
    kinds = (
        ((5, 9), (3, 6), 2011, 4),  # frequent big spenders
        ((2, 4), (2, 6), 2011, 1),  # repeat buyers
        ((1, 1), (5, 6), 2011, 1),  # recent one-time buyers
        ((1, 1), (6, 11), 2010, 1),  # one-time buyers lapsed for over 180 days
    )
    lines = []
    invoice = 5000
    for customer in range(20000, 20000 + n_customers):
        (low, high), (first, last), year, multiplier = kinds[customer % len(kinds)]
        for _ in range(rng.randint(low, high)):
            invoice += 1
            day = rng.randint(1, 28)
            month = rng.randint(first, last)
            for item in range(rng.randint(1, 3)):
                price = rng.choice([1.25, 2.5, 4.95, 12.0]) * multiplier
                lines.append(
                    f"{invoice};P{item};{rng.randint(1, 6)};{day:02d}/{month:02d}/{year} "
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


def run_user_night(root: Path, lines: list[str], config: str, run_id: str) -> tuple[Path, dict]:
    """``lines`` as ``root/retail/transactions.csv`` described by ``config``, through the nightly
    steps for AS_OF with the data under ``root/data``: (the warehouse file, the steps' result)."""
    (root / "retail").mkdir()
    (root / "retail" / "transactions.csv").write_text("\n".join([HEADER, *lines]) + "\n")
    (root / "config.yml").write_text(config)
    data_dir = root / "data"
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setenv("SEGMENTS_DATA_DIR", str(data_dir))
        monkeypatch.setenv("SEGMENTS_SOURCES_CONFIG", str(root / "config.yml"))
        monkeypatch.delenv("SEGMENTS_WAREHOUSE", raising=False)
        monkeypatch.delenv("SEGMENTS_LANDING_DIR", raising=False)
        result = run_nightly_steps(AS_OF, run_id=run_id)
    return data_dir / "warehouse.duckdb", result


@pytest.fixture(scope="module")
def byod_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str], dict]:
    lines = HAND_LINES + generated_lines()
    warehouse, result = run_user_night(tmp_path_factory.mktemp("byod"), lines, CONFIG, "byod")
    return warehouse, lines, result


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


def load_with(
    folder: Path, config: str, as_of: date, **files: str
) -> tuple[duckdb.DuckDBPyConnection, dict]:
    """Write the files and the config into ``folder`` and load them (the nightly loader, an
    in-memory warehouse); returns the connection and the report of the source ``orders``."""
    for name, text in files.items():
        (folder / name.replace("__", ".")).write_text(text)
    (folder / "config.yml").write_text(config)
    con = duckdb.connect()
    report = load_partitions(
        con,
        as_of,
        sources_config=load_sources_config(folder / "config.yml"),
        config=load_quality_config(),
        run_id="test",
    )
    return con, report.sources["orders"]


def reasons(con: duckdb.DuckDBPyConnection) -> list[tuple]:
    return con.execute(
        "select _line_number, _reasons from quarantine.orders order by _line_number"
    ).fetchall()


def test_lines_no_column_tells_apart_all_load_and_revenue_is_the_independent_sum(
    tmp_path: Path,
) -> None:
    # No product column mapped: invoice 1 has two lines with the same quantity and price, which
    # only the (unmapped) stock code tells apart. Both are real lines and both count; only the
    # line repeated whole is a duplicate.
    lines = [
        "1;A;2;05/01/2024 10:00;10.00;c1",
        "1;B;2;05/01/2024 10:00;10.00;c1",
        "1;C;1;05/01/2024 10:00;5.50;c1",
        "2;A;3;06/01/2024 09:00;1.25;c2",
        "2;A;3;06/01/2024 09:00;1.25;c2",  # the whole line again: a duplicate
        "3;D;1;06/01/2024 12:00;7.00;c2",
    ]
    config = CONFIG.replace("      product_id: StockCode\n", "").replace(
        "path: retail/*.csv", "path: t.csv"
    )
    con, load = load_with(tmp_path, config, date(2024, 1, 6), t__csv="\n".join([HEADER, *lines]))
    distinct = pd.Series(list(dict.fromkeys(lines))).str.split(";", expand=True)
    expected = (distinct[2].astype(int) * distinct[4].astype(float)).sum()
    (revenue,) = con.execute("select sum(amount::decimal(18, 2)) from raw.orders").fetchone()
    assert float(revenue) == pytest.approx(expected, abs=0.001)  # 45.5 + 3.75 + 7
    assert con.execute("select order_id, amount from raw.orders order by 1").fetchall() == [
        ("1", "45.5"),
        ("2", "3.75"),
        ("3", "7.0"),
    ]
    # every source line is loaded or quarantined, the duplicate by its line number
    assert (load.rows_in, load.rows_loaded, load.rows_quarantined) == (6, 5, 1)
    assert reasons(con) == [(6, ["duplicate_row"])]
    assert con.execute("select _raw_line from quarantine.orders").fetchone() == (lines[4],)


def test_a_date_format_that_does_not_match_stops_the_load_naming_file_column_and_examples(
    tmp_path: Path,
) -> None:
    lines = [f"{i};A;1;2024-01-{i:02d} 10:00;3.00;c{i}" for i in range(1, 9)]
    with pytest.raises(IngestionError) as raised:
        load_with(
            tmp_path,
            CONFIG.replace("path: retail/*.csv", "path: t.csv"),
            date(2024, 1, 9),
            t__csv="\n".join([HEADER, *lines]),
        )
    message = str(raised.value)
    assert str(tmp_path / "t.csv") in message
    assert "'invoicedate' (orders.ordered_at)" in message
    assert "date_format '%d/%m/%Y %H:%M'" in message
    assert "8 of 8 values (100.0%)" in message
    assert "'2024-01-01 10:00', '2024-01-02 10:00'" in message
    assert "2024-01-06 10:00'" not in message  # up to 5 examples


def test_customer_values_in_a_failed_parse_are_masked(tmp_path: Path) -> None:
    (tmp_path / "crm.csv").write_text("id,joined,mail\nc1,ann@example.com,x\nc2,bob,y\n")
    config = (
        "sources:\n  orders:\n    path: o.csv\n    columns: {customer_id: c, ordered_at: d, "
        "amount: a}\n  customers:\n    path: crm.csv\n    date_format: '%Y-%m-%d'\n"
        "    columns: {customer_id: id, signup_at: joined, email: mail}\n"
    )
    with pytest.raises(IngestionError) as raised:
        load_with(tmp_path, config, date(2024, 1, 1), o__csv="c,d,a\nc1,2024-01-01,3\n")
    assert "ann" not in str(raised.value) and "example" not in str(raised.value)
    assert "'a***@e***.com', 'xxx'" in str(raised.value)  # core/masking.py's policy


def test_an_order_of_150000_is_quarantined_with_its_reason(tmp_path: Path) -> None:
    # Order grain, decimal comma and thousands dots, a currency symbol: the parse is the
    # config's, the rule (max_order_amount) the same as for the demo's landing files.
    config = (
        "sources:\n  orders:\n    path: o.csv\n    delimiter: ';'\n    decimal: ','\n"
        "    thousands: '.'\n    currency_symbol: '€'\n"
        "    columns: {order_id: nr, customer_id: kunde, ordered_at: datum, amount: betrag}\n"
    )
    text = (
        "nr;kunde;datum;betrag\n"
        "1;k1;2024-01-01 10:00:00;1.234,50 €\n"
        "2;k2;2024-01-01 11:00:00;150.000,00 €\n"
        "3;k3;2024-01-01 12:00:00;99,90\n"
    )
    con, load = load_with(tmp_path, config, date(2024, 1, 1), o__csv=text)
    assert con.execute("select order_id, amount from raw.orders order by 1").fetchall() == [
        ("1", "1234.50"),
        ("3", "99.90"),
    ]
    assert con.execute(
        "select order_id, amount, _reasons, _line_number, _raw_line from quarantine.orders"
    ).fetchall() == [
        ("2", "150000.00", ["amount_out_of_range"], 3, "2;k2;2024-01-01 11:00:00;150.000,00 €")
    ]
    assert (load.rows_in, load.rows_loaded, load.rows_quarantined) == (3, 2, 1)


def test_a_headerless_file_loads_every_line(tmp_path: Path) -> None:
    config = (
        "sources:\n  orders:\n    path: o.txt\n    format: text\n    header: false\n"
        "    column_names: [nr, cust, day, time, value]\n"
        "    columns: {order_id: nr, customer_id: cust, ordered_at: day, amount: value}\n"
    )
    text = "A-1  x1   2024-03-01 10:00  12.50\nA-2  x22  2024-03-02 11:30   7.00\n"
    con, load = load_with(tmp_path, config, date(2024, 3, 2), o__txt=text)
    assert con.execute(
        "select order_id, customer_id, amount from raw.orders order by 1"
    ).fetchall() == [
        ("A-1", "x1", "12.50"),
        ("A-2", "x22", "7.00"),
    ]
    assert (load.rows_in, load.rows_loaded) == (2, 2)
    csv_config = (
        "sources:\n  orders:\n    path: o.csv\n    header: false\n"
        "    column_names: [nr, cust, at, value]\n"
        "    columns: {order_id: nr, customer_id: cust, ordered_at: at, amount: value}\n"
    )
    con, load = load_with(
        tmp_path,
        csv_config,
        date(2024, 3, 2),
        o__csv="A-1,x1,2024-03-01 10:00,12.50\nA-2,x22,2024-03-02 11:30,7.00\n",
    )
    assert con.execute("select order_id from raw.orders order by 1").fetchall() == [
        ("A-1",),
        ("A-2",),
    ]
    assert (load.rows_in, load.rows_loaded) == (2, 2)


def test_a_header_that_does_not_match_the_config_names_both(tmp_path: Path) -> None:
    config = (
        "sources:\n  orders:\n    path: o.csv\n"
        "    columns: {order_id: nr, customer_id: client, ordered_at: at, amount: value}\n"
    )
    with pytest.raises(IngestionError) as raised:
        load_with(
            tmp_path, config, date(2024, 3, 2), o__csv="nr,customer,at,value\n1,c,2024-03-01,3\n"
        )
    message = str(raised.value)
    assert "the header (nr, customer, at, value)" in message
    assert "sources.orders.columns names client" in message


def test_order_level_parquet_without_order_ids_and_compact_dates(tmp_path: Path) -> None:
    pd.DataFrame(
        {
            "client": ["a", "a", "b"],
            "day": ["20240105", "20240105", "20240210"],
            "total": ["10.5", "10.5", "7"],
        }
    ).to_parquet(tmp_path / "sales.parquet")
    con, load = load_with(
        tmp_path,
        "sources:\n  orders:\n    path: sales.parquet\n    format: parquet\n"
        "    date_format: yyyymmdd\n"
        "    columns: {customer_id: client, ordered_at: day, amount: total}\n",
        date(2024, 2, 10),
    )
    rows = con.execute(
        "select order_id, customer_id, ordered_at, amount, status, _partition_date "
        "from raw.orders order by order_id"
    ).fetchall()
    # no order id: each line is an order, named by its file and line; the row repeated whole
    # is a duplicate (a file exported twice), quarantined
    assert rows == [
        ("sales.parquet:1", "a", "2024-01-05 00:00:00", "10.5", "completed", date(2024, 1, 5)),
        ("sales.parquet:3", "b", "2024-02-10 00:00:00", "7", "completed", date(2024, 2, 10)),
    ]
    assert reasons(con) == [(2, ["duplicate_row"])]
    assert (load.rows_in, load.rows_loaded, load.rows_quarantined) == (3, 2, 1)


def test_whitespace_aligned_text(tmp_path: Path) -> None:
    con, _ = load_with(
        tmp_path,
        "sources:\n  orders:\n    path: orders.txt\n    format: text\n"
        "    columns: {order_id: order_no, customer_id: cust, ordered_at: when, amount: value}\n",
        date(2024, 3, 2),
        orders__txt="order_no  cust   when                 value\n"
        "A-1       x1     2024-03-01 10:00:00  12.50\n"
        "A-2       x22    2024-03-02 11:30:00   7.00\n",
    )
    rows = con.execute("select order_id, customer_id, amount from raw.orders order by 1").fetchall()
    assert rows == [("A-1", "x1", "12.50"), ("A-2", "x22", "7.00")]


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ("sources:\n  web_events:\n    path: x.csv\n", "the 'orders' source is required"),
        ("sources:\n  orders:\n    path: nothing*.csv\n", "no file matches"),
        ("sources:\n  shop:\n    path: x.csv\n", "unknown source(s) shop"),
        (
            "sources:\n  orders:\n    path: x.csv\n    grain: lines\n"
            "    columns: {customer_id: c, ordered_at: d}\n",
            "quantity, unit_price must be mapped",
        ),
        (
            "sources:\n  orders:\n    path: x.csv\n    format: xlsx\n",
            "'xlsx' is not one of csv, text, parquet",
        ),
        (
            "sources:\n  orders:\n    path: x.csv\n    header: false\n",
            "header: false needs column_names",
        ),
        ("sources:\n  orders:\n    path: x.csv\n    delimeter: ';'\n", "unknown key(s) delimeter"),
    ],
)
def test_bad_configs_are_refused_with_a_clear_message(tmp_path: Path, config, message) -> None:
    (tmp_path / "x.csv").write_text("c,d,a\n1,2024-01-01,3\n")
    (tmp_path / "config.yml").write_text(config)
    with pytest.raises(SourcesConfigError) as raised:
        load_sources_config(tmp_path / "config.yml")
    assert message in str(raised.value)


def test_a_mapped_column_missing_from_the_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(IngestionError, match="client"):
        load_with(
            tmp_path,
            "sources:\n  orders:\n    path: x.csv\n"
            "    columns: {customer_id: client, ordered_at: d, amount: a}\n",
            date(2024, 1, 1),
            x__csv="c,d,a\n1,2024-01-01,3\n",
        )
    assert (tmp_path / "x.csv").read_text() == "c,d,a\n1,2024-01-01,3\n"  # never modified


def test_the_shipped_config_is_the_demo_landing_layout(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("SEGMENTS_LANDING_DIR", str(tmp_path / "landing"))
    monkeypatch.delenv("SEGMENTS_SOURCES_CONFIG", raising=False)
    config = load_sources_config(settings=get_settings())
    assert config.available_sources == ["customers", "orders", "web_events", "email_events"]
    orders = config.sources["orders"]
    assert (orders.layout, orders.path, orders.identity) == (
        "daily_partitions",
        tmp_path / "landing" / "orders",
        True,
    )


def test_a_date_format_with_an_offset_loads_the_utc_time_whatever_the_session_time_zone(
    tmp_path: Path,
) -> None:
    """``%z`` makes the parse a timestamptz, which DuckDB writes out in the session's time zone
    (the machine's unless set): the loaded text is the UTC time on a session in Berlin too."""
    config = (
        "sources:\n  orders:\n    path: o.csv\n    delimiter: ';'\n"
        "    date_format: '%Y-%m-%dT%H:%M:%S%z'\n"
        "    columns: {order_id: nr, customer_id: kunde, ordered_at: datum, amount: betrag}\n"
    )
    (tmp_path / "o.csv").write_text(
        "nr;kunde;datum;betrag\n"
        "1;k1;2026-06-30T11:00:00+0000;1.00\n"
        "2;k2;2026-06-30T10:00:00+0200;2.00\n"
        "3;k3;2026-06-30T23:30:00-0500;3.00\n"
    )
    (tmp_path / "config.yml").write_text(config)
    con = duckdb.connect()
    con.execute("set TimeZone = 'Europe/Berlin'")
    load_partitions(
        con,
        date(2026, 7, 1),
        sources_config=load_sources_config(tmp_path / "config.yml"),
        config=load_quality_config(),
        run_id="test",
    )
    assert con.execute("select order_id, ordered_at from raw.orders order by 1").fetchall() == [
        ("1", "2026-06-30 11:00:00"),
        ("2", "2026-06-30 08:00:00"),
        ("3", "2026-07-01 04:30:00"),
    ]


DECIMAL_COMMA = (
    "sources:\n  orders:\n    path: o.csv\n    delimiter: ';'\n    decimal: ','\n"
    "    columns: {order_id: nr, customer_id: kunde, ordered_at: datum, amount: betrag}\n"
)


def _decimal_comma_file(amounts: list[str]) -> str:
    rows = [f"{n};k{n};2024-01-01 10:00:00;{amount}" for n, amount in enumerate(amounts, 1)]
    return "\n".join(["nr;kunde;datum;betrag", *rows]) + "\n"


def test_a_dot_in_an_amount_with_a_decimal_comma_is_quarantined_not_read_as_a_decimal_point(
    tmp_path: Path,
) -> None:
    """With ``decimal: ','`` and no thousands mark, ``1.234`` is no number of the file's own
    (a European 1.234 is one thousand two hundred thirty-four): quarantined, never 1.234."""
    amounts = ["12,50", "1.234", "7", *[f"{n},00" for n in range(1, 30)]]
    con, load = load_with(
        tmp_path, DECIMAL_COMMA, date(2024, 1, 1), o__csv=_decimal_comma_file(amounts)
    )
    assert con.execute("select amount from raw.orders where order_id in ('1', '3')").fetchall() == [
        ("12.50",),
        ("7",),
    ]
    assert con.execute(
        "select order_id, _reasons, _raw_line from quarantine.orders"
    ).fetchall() == [("2", ["unparseable_amount"], "2;k2;2024-01-01 10:00:00;1.234")]
    assert (load.rows_in, load.rows_loaded, load.rows_quarantined) == (32, 31, 1)


def test_a_dot_in_the_currency_symbol_is_no_decimal_point(tmp_path: Path) -> None:
    config = DECIMAL_COMMA.replace("decimal: ','\n", "decimal: ','\n    currency_symbol: 'Fr.'\n")
    amounts = ["Fr. 12,50", "Fr. 1.5", *[f"Fr. {n},00" for n in range(1, 30)]]
    con, load = load_with(tmp_path, config, date(2024, 1, 1), o__csv=_decimal_comma_file(amounts))
    assert con.execute("select amount from raw.orders where order_id = '1'").fetchall() == [
        ("12.50",)
    ]
    assert reasons(con) == [(3, ["unparseable_amount"])]
    assert (load.rows_in, load.rows_loaded, load.rows_quarantined) == (31, 30, 1)


def test_a_dot_with_thousands_dot_configured_is_a_thousands_mark(tmp_path: Path) -> None:
    config = DECIMAL_COMMA.replace("decimal: ','\n", "decimal: ','\n    thousands: '.'\n")
    con, load = load_with(
        tmp_path, config, date(2024, 1, 1), o__csv=_decimal_comma_file(["1.234", "1.234,5"])
    )
    assert con.execute("select amount from raw.orders order by order_id").fetchall() == [
        ("1234",),
        ("1234.5",),
    ]
    assert load.rows_quarantined == 0


def test_amounts_with_dots_under_a_decimal_comma_stop_the_load_saying_why(tmp_path: Path) -> None:
    with pytest.raises(IngestionError) as raised:
        load_with(
            tmp_path,
            DECIMAL_COMMA,
            date(2024, 1, 1),
            o__csv=_decimal_comma_file(["12.50", "3.99", "1,00"]),
        )
    message = str(raised.value)
    assert "does not parse as a number with decimal ','" in message
    assert "a '.' is refused: set thousands '.' if it marks thousands" in message
    assert "2 of 3 values" in message
