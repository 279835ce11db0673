"""Guest orders: ``anonymous_orders: keep`` in the orders source of the sources config.

A real retailer's log (about a quarter of the UCI Online Retail lines) has lines without a
customer id. By default they are quarantined as ``missing_customer_id``; a source that declares
them legitimate loads them into raw.orders with a null customer id, every other row rule still
applying, and the raw gate does not block on them.
"""

from __future__ import annotations

import random
from dataclasses import asdict
from datetime import date
from pathlib import Path

import pytest

from expectations import QualityGateError, validate_raw
from ingestion.sources import SourcesConfigError, load_sources_config
from tests.ingestion.test_byod import (
    AS_OF,
    CONFIG,
    HAND_LINES,
    HEADER,
    expected_rfm,
    generated_lines,
    load_with,
    query,
    reasons,
    run_user_night,
)
from tools.summary import _ingest_lines

DAY = date(2011, 6, 30)
KEEP = CONFIG.replace("    grain: lines\n", "    grain: lines\n    anonymous_orders: keep\n")
ONE_FILE = "path: t.csv"


def config(text: str) -> str:
    return text.replace("path: retail/*.csv", ONE_FILE)


def quarter_anonymous(orders: int = 40) -> list[str]:
    """One line per order on DAY; every fourth has no customer id (UCI's share)."""
    return [
        f"{n};A;{1 + n % 3};30/06/2011 {8 + n % 10:02d}:00;2.50;{'' if n % 4 == 0 else f'c{n}'}"
        for n in range(1, orders + 1)
    ]


LINES = [
    "1;A;2;30/06/2011 10:00;3.50;c1",
    "2;A;1;30/06/2011 11:00;2.00;",  # a guest order
    "2;B;3;30/06/2011 11:00;1.00;",  # its second line
    "3;A;1;30/06/2011 12:00;150000.00;",  # a guest line breaking another rule
]


def test_with_keep_a_line_without_customer_is_loaded_not_quarantined(tmp_path: Path) -> None:
    con, load = load_with(tmp_path, config(KEEP), DAY, t__csv="\n".join([HEADER, *LINES]))
    rows = con.execute(
        "select order_id, customer_id, amount from raw.orders order by order_id"
    ).fetchall()
    assert rows == [("1", "c1", "7.0"), ("2", None, "5.0")]
    # every other row rule still applies to a guest line
    quarantined = con.execute("select order_id, _reasons from quarantine.orders").fetchall()
    assert quarantined == [("3", ["amount_out_of_range"])]
    assert (load.rows_in, load.rows_loaded, load.rows_quarantined) == (4, 3, 1)
    # two guest lines loaded, making one guest order; the run summary says so
    assert (load.anonymous_rows_loaded, load.anonymous_raw_rows) == (2, 1)
    summary = "\n".join(_ingest_lines({"sources": {"orders": asdict(load)}}))
    assert "2 anonymous order rows (= 1 order) without a customer id: kept" in summary


def test_by_default_a_line_without_customer_is_quarantined(tmp_path: Path) -> None:
    con, load = load_with(tmp_path, config(CONFIG), DAY, t__csv="\n".join([HEADER, *LINES]))
    assert con.execute("select order_id, customer_id from raw.orders").fetchall() == [("1", "c1")]
    assert reasons(con) == [
        (3, ["missing_customer_id"]),
        (4, ["missing_customer_id"]),
        (5, ["missing_customer_id", "amount_out_of_range"]),
    ]
    assert (load.rows_in, load.rows_loaded, load.rows_quarantined) == (4, 1, 3)
    assert (load.anonymous_rows_loaded, load.anonymous_raw_rows) == (0, 0)
    assert "anonymous" not in "\n".join(_ingest_lines({"sources": {"orders": asdict(load)}}))


@pytest.mark.parametrize(
    ("mode", "blocks"), [("keep", False), ("quarantine", True)], ids=["keep", "default"]
)
def test_the_raw_gate_passes_a_quarter_of_guest_lines_only_when_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: str, blocks: bool
) -> None:
    monkeypatch.setenv("SEGMENTS_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("SEGMENTS_REPORTS_DIR", raising=False)
    text = config(KEEP if mode == "keep" else CONFIG)
    con, load = load_with(tmp_path, text, DAY, t__csv="\n".join([HEADER, *quarter_anonymous()]))
    kept = load_sources_config(tmp_path / "config.yml").sources["orders"].keeps_anonymous_orders
    assert kept is (mode == "keep")
    assert load.rows_quarantined == (10 if blocks else 0)
    if blocks:
        with pytest.raises(QualityGateError) as raised:
            validate_raw(con, {"orders": [DAY]}, as_of_date=DAY, anonymous_orders_kept=kept)
        assert "quarantine" in str(raised.value)
    else:
        report = validate_raw(con, {"orders": [DAY]}, as_of_date=DAY, anonymous_orders_kept=kept)
        assert report.to_dict()["success"] is True
        nulls = con.execute("select count(*) from raw.orders where customer_id is null")
        assert nulls.fetchone() == (10,)


def test_kept_guest_orders_do_not_pass_the_gate_unexempted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The exemption is the declaration's: the same loaded rows, judged without it, block on the
    # customer_id key rule.
    monkeypatch.setenv("SEGMENTS_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("SEGMENTS_REPORTS_DIR", raising=False)
    con, _ = load_with(
        tmp_path, config(KEEP), DAY, t__csv="\n".join([HEADER, *quarter_anonymous()])
    )
    with pytest.raises(QualityGateError) as raised:
        validate_raw(con, {"orders": [DAY]}, as_of_date=DAY)
    assert "customer_id" in str(raised.value)


@pytest.mark.parametrize(
    ("source", "value", "message"),
    [
        ("orders", "yes", "sources.orders.anonymous_orders: expected one of quarantine, keep"),
        ("orders", "Keep", "got 'Keep'"),
        ("web_events", "keep", "sources.web_events.anonymous_orders: only orders"),
    ],
)
def test_a_bad_anonymous_orders_value_is_a_config_error_naming_the_key(
    tmp_path: Path, source: str, value: str, message: str
) -> None:
    (tmp_path / "x.csv").write_text("c,d,a\n1,2024-01-01,3\n")
    text = "sources:\n  orders:\n    path: x.csv\n"
    if source != "orders":
        text += f"  {source}:\n    path: x.csv\n"
    text += f"    anonymous_orders: {value}\n"
    (tmp_path / "config.yml").write_text(text)
    with pytest.raises(SourcesConfigError) as raised:
        load_sources_config(tmp_path / "config.yml")
    assert message in str(raised.value)


def guest_lines(count: int, seed: int = 11) -> list[str]:
    """Guest invoices spread over the months before the as-of date, big ones among them."""
    rng = random.Random(seed)
    return [
        f"{90000 + n};G;{rng.randint(1, 6)};{rng.randint(1, 28):02d}/{rng.randint(1, 6):02d}/2011 "
        f"{rng.randint(8, 18):02d}:00;{rng.choice([2.5, 40.0, 300.0]):.2f};"
        for n in range(count)
    ]


@pytest.fixture(scope="module")
def guest_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str], dict]:
    """The nightly steps on a log where a quarter of the lines are guest lines, kept."""
    known = HAND_LINES + generated_lines()
    lines = known + guest_lines(len(known) // 3)
    warehouse, result = run_user_night(tmp_path_factory.mktemp("guests"), lines, KEEP, "guests")
    return warehouse, lines, result


@pytest.mark.slow
def test_kept_guest_orders_pass_the_nightly_path_and_belong_to_nobody(guest_run) -> None:
    warehouse, lines, result = guest_run
    load = result["loaded"]["sources"]["orders"]
    guests = [line for line in lines if line.endswith(";")]
    assert len(guests) / len(lines) > 0.24
    assert load["anonymous_rows_loaded"] == len(guests)
    assert load["rows_quarantined"] == 1  # only the duplicate line
    # the guest orders are in staging, none is attached to a customer
    guest_orders = query(
        warehouse,
        "select count(*) as n from intermediate.int_orders_deduplicated where customer_id is null",
    )["n"].iloc[0]
    assert guest_orders == len({line.split(";")[0] for line in guests})
    attributed = query(
        warehouse,
        "select count(*) as n from intermediate.int_orders_attributed where order_id like '9____'",
    )["n"].iloc[0]
    assert attributed == 0
    # per-customer numbers are those computed without the guest lines: nobody got their spend
    features = query(
        warehouse, "select * from marts.customer_features where as_of_date = ?", [AS_OF]
    ).set_index("customer_id")
    expected = expected_rfm([line for line in lines if not line.endswith(";")])
    assert set(features.index) == set(expected.index)
    joined = features.join(expected, rsuffix="_want")
    assert (joined["order_count"] == joined["order_count_want"]).all()
    assert joined["total_spend"].astype(float).to_numpy() == pytest.approx(
        joined["total_spend_want"].to_numpy(), abs=0.005
    )
    segments = query(warehouse, "select customer_id from segments.current_segments")
    assert segments["customer_id"].notna().all() and len(segments) == len(features)
