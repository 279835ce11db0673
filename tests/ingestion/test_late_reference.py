"""Late reference data: an order quarantined only because its customer was not known yet is
loaded into its own partition when the CRM record lands, within late_reference_days."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from pathlib import Path

import duckdb
import pytest

from core.contract import SOURCE_COLUMNS
from core.quality_config import load_quality_config
from core.settings import get_settings
from ingestion.load import load_partitions, mark_validated

ORDERS_HEADER = "order_id,customer_id,ordered_at,amount,status\n"
DAY1, DAY2, DAY3 = date(2026, 3, 1), date(2026, 3, 2), date(2026, 3, 3)
SOURCES = ("customers", "orders")


def _write(landing: Path, source: str, day: date, text: str) -> None:
    folder = landing / source / f"date={day.isoformat()}"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "part.csv").write_text(text)


def _customer(customer_id: str, day: date) -> str:
    values = {
        "customer_id": customer_id,
        "first_name": "Ann",
        "last_name": "Lee",
        "email": f"{customer_id.lower()}@example.com",
        "birth_date": "1980-01-01",
        "signup_at": f"{day} 08:00:00",
        "updated_at": f"{day} 08:00:00",
        "marketing_consent": "true",
        "country": "US",
    }
    return ",".join(values.get(column, "") for column in SOURCE_COLUMNS["customers"]) + "\n"


def _crm(landing: Path, day: date, *ids: str) -> None:
    header = ",".join(SOURCE_COLUMNS["customers"]) + "\n"
    _write(landing, "customers", day, header + "".join(_customer(i, day) for i in ids))


@pytest.fixture
def landing(tmp_path, monkeypatch) -> Path:
    """Day 1: C1 known; O1 (C1) loads, O2 (C2) and O3 (C2, negative) are held."""
    monkeypatch.setenv("SEGMENTS_DATA_DIR", str(tmp_path))
    landing = get_settings().landing_dir
    _crm(landing, DAY1, "C1")
    _write(
        landing,
        "orders",
        DAY1,
        ORDERS_HEADER + "O1,C1,2026-03-01 09:00:00,10.00,completed\n"
        "O2,C2,2026-03-01 10:00:00,20.00,completed\n"
        "O3,C2,2026-03-01 11:00:00,-5.00,completed\n",
    )
    for day in (DAY2, DAY3):
        _write(
            landing, "orders", day, ORDERS_HEADER + f"X{day.day},C1,{day} 09:00:00,1,completed\n"
        )
    return landing


def _night(con, day: date, **config) -> dict:
    report = load_partitions(
        con,
        day,
        sources=SOURCES,
        run_id=f"night-{day}",
        config=replace(load_quality_config(), **config),
    )
    mark_validated(con, report.validation_scope(), as_of_date=day)
    return report


def _held(con) -> list[tuple]:
    return con.execute(
        "select order_id, _partition_date, _reasons from quarantine.orders order by order_id"
    ).fetchall()


def test_a_held_order_loads_into_its_partition_when_its_customer_arrives(landing, tmp_path):
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    _night(con, DAY1)
    assert [row[0] for row in _held(con)] == ["O2", "O3"]
    _crm(landing, DAY2, "C2")

    report = _night(con, DAY2)

    orders = report.sources["orders"]
    assert orders.rows_released == 1
    assert "2026-03-01" in orders.partitions_loaded  # re-evaluated, and checked by the gate again
    assert con.execute(
        "select _partition_date from raw.orders where order_id = 'O2'"
    ).fetchall() == [(DAY1,)]
    # every other rule still holds: the negative order of the same customer stays
    assert _held(con) == [("O3", DAY1, ["negative_amount"])]
    assert con.execute(
        "select rows_in, row_count, rows_quarantined, rows_released from raw._load_log "
        "where source = 'orders' and partition_date = ?",
        [DAY1],
    ).fetchall() == [(3, 2, 1, 1)]
    assert con.execute(
        "select source, partition_date, _source_file, _line_number, customer_id, "
        "quarantined_as, released_run_id from raw._released"
    ).fetchall() == [
        ("orders", DAY1, "orders/date=2026-03-01/part.csv", 3, "C2", ["unknown_customer"],
         "night-2026-03-02")
    ]  # fmt: skip

    again = _night(con, DAY2)  # a rerun of the night releases nothing twice

    assert again.sources["orders"].rows_released == 0
    assert con.execute("select count(*) from raw._released").fetchall() == [(1,)]
    assert con.execute("select count(*) from raw.orders where order_id = 'O2'").fetchall() == [(1,)]


def test_after_the_window_a_held_order_stays_in_quarantine(landing, tmp_path):
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    _night(con, DAY1, late_reference_days=1)
    _night(con, DAY2, late_reference_days=1)
    _crm(landing, DAY3, "C2")  # two days after the order: one past the window

    report = _night(con, DAY3, late_reference_days=1)

    assert report.sources["orders"].rows_released == 0
    assert "2026-03-01" not in report.sources["orders"].partitions_loaded
    assert [row[0] for row in _held(con)] == ["O2", "O3"]
    assert ["unknown_customer"] in [row[2] for row in _held(con)]


def test_a_window_of_zero_days_never_re_evaluates(landing, tmp_path):
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    _night(con, DAY1, late_reference_days=0)
    _crm(landing, DAY2, "C2")

    report = _night(con, DAY2, late_reference_days=0)

    assert report.sources["orders"].rows_released == 0
    assert [row[0] for row in _held(con)] == ["O2", "O3"]


def test_a_crm_record_quarantined_for_a_blank_id_lets_no_unknown_customer_through(
    landing, tmp_path
):
    # A blank id (spaces, quoted) is missing_customer_id: the record is quarantined, and its
    # cleaned id, null, sits among the quarantined ids the reference rules look up.
    header = ",".join(SOURCE_COLUMNS["customers"]) + "\n"
    blank = _customer("CX", DAY1).replace("CX", '"   "', 1)  # the id; the e-mail stays cx@...
    _write(landing, "customers", DAY1, header + _customer("C1", DAY1) + blank)
    con = duckdb.connect(str(tmp_path / "w.duckdb"))

    _night(con, DAY1)

    assert con.execute("select _reasons from quarantine.customers").fetchall() == [
        (["missing_customer_id"],)
    ]
    assert _held(con) == [
        ("O2", DAY1, ["unknown_customer"]),
        ("O3", DAY1, ["unknown_customer", "negative_amount"]),
    ]
    assert con.execute("select order_id from raw.orders").fetchall() == [("O1",)]
