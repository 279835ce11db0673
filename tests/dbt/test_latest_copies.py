"""Which copy of an id dbt keeps when one day's file holds it twice with different content.

An export that appends an updated row lands both lines in raw (only a line repeated whole is
quarantined as ``duplicate_row``); the state models of latest copies (macro
``latest_known_copies``) keep the later line of the file, for orders, CRM records updated at the
same moment and events alike, whatever order raw holds the rows in. The copies once tied on
landing date, file and time, so the amount kept was arbitrary.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path

import duckdb
import pytest

from core.contract import SOURCE_COLUMNS
from core.settings import Settings, get_settings
from ingestion.load import ensure_raw_schema
from transform.dbt_build import run_dbt_build

pytestmark = pytest.mark.slow

AS_OF = date(2026, 6, 30)
DAY = "2026-06-29"
PAIRS = 12  # ids with two copies each: a fixed physical order could not pick every later line


def _customer(customer_id: str, email: str) -> dict[str, str]:
    return {
        "customer_id": customer_id,
        "first_name": "Ann",
        "last_name": "Lee",
        "email": email,
        "signup_at": "2026-01-02 10:00:00",
        "updated_at": "2026-06-29 08:00:00",
        "marketing_consent": "true",
    }


def _raw_rows() -> dict[str, list[tuple[int, dict[str, str]]]]:
    """Per raw table, (line in the day's file, row): every id twice, the copies differing; raw
    holds the later line first for the even ids, the earlier line first for the odd ones."""
    rows: dict[str, list[tuple[int, dict[str, str]]]] = {table: [] for table in SOURCE_COLUMNS}
    for i in range(PAIRS):
        early, late = 2 + i, 2 + PAIRS + i
        copies = {
            "orders": [
                {
                    "order_id": f"O{i}",
                    "customer_id": f"C{i}",
                    "ordered_at": "2026-06-29 10:00:00",
                    "amount": amount,
                    "status": "completed",
                }
                for amount in ("33.22", "5.00")
            ],
            "customers": [
                _customer(f"C{i}", email) for email in (f"old{i}@x.com", f"new{i}@x.com")
            ],
            "web_events": [
                {
                    "event_id": f"W{i}",
                    "session_id": f"S{i}",
                    "customer_id": f"C{i}",
                    "event_type": event_type,
                    "occurred_at": "2026-06-29 11:00:00",
                }
                for event_type in ("page_view", "checkout")
            ],
            "email_events": [
                {
                    "event_id": f"E{i}",
                    "customer_id": f"C{i}",
                    "campaign_id": "K1",
                    "event_type": event_type,
                    "occurred_at": "2026-06-29 12:00:00",
                }
                for event_type in ("sent", "open")
            ],
        }
        for table, (first, second) in copies.items():
            pair = [(early, first), (late, second)]
            rows[table] += pair[::-1] if i % 2 == 0 else pair
    return rows


def _create_raw(warehouse_path: Path) -> None:
    warehouse_path.parent.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(warehouse_path)) as con:
        ensure_raw_schema(con)  # the loader's raw tables, with the line of each row
        for table, rows in _raw_rows().items():
            columns = [*SOURCE_COLUMNS[table], "_partition_date", "_source_file", "_line_number"]
            con.executemany(
                f"insert into raw.{table} ({', '.join(columns)}) "
                f"values ({', '.join('?' for _ in columns)})",
                [
                    [
                        *(row.get(column) for column in SOURCE_COLUMNS[table]),
                        DAY,
                        f"{table}/date={DAY}/{table}.csv",
                        line,
                    ]
                    for line, row in rows
                ],
            )
        # Orders loaded before raw kept their line (no line number): the later time wins, as
        # before; raw holds the later copy first for the even ids.
        for i in range(PAIRS):
            copies = [("09:00:00", "1.00"), ("10:30:00", "2.00")]
            for time, amount in copies[::-1] if i % 2 == 0 else copies:
                con.execute(
                    "insert into raw.orders (order_id, customer_id, ordered_at, amount, status, "
                    "_partition_date, _source_file) values (?, ?, ?, ?, 'completed', ?, ?)",
                    [f"P{i}", f"C{i}", f"{DAY} {time}", amount, DAY, f"orders/date={DAY}/old.csv"],
                )


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    data_dir = tmp_path_factory.mktemp("latest_copies")
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setenv("SEGMENTS_DATA_DIR", str(data_dir))
        monkeypatch.setenv("SEGMENTS_WAREHOUSE", str(data_dir / "warehouse.duckdb"))
        settings = get_settings()
        _create_raw(settings.warehouse_path)
        run_dbt_build(AS_OF, settings=settings)
        yield settings


def _kept(settings: Settings, sql: str) -> dict[str, str]:
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        return dict(con.execute(sql).fetchall())


def test_the_later_line_of_the_file_wins_for_every_source(settings: Settings) -> None:
    ids = range(PAIRS)
    assert _kept(
        settings, "select order_id, amount::varchar from intermediate.int_orders_deduplicated"
    ) == {f"O{i}": "5.00" for i in ids} | {f"P{i}": "2.00" for i in ids}
    assert _kept(settings, "select customer_id, email from pii.pii_customer_latest_records") == {
        f"C{i}": f"new{i}@x.com" for i in ids
    }
    assert _kept(
        settings, "select event_id, event_type from intermediate.int_web_events_deduplicated"
    ) == {f"W{i}": "checkout" for i in ids}
    assert _kept(
        settings, "select event_id, event_type from intermediate.int_email_events_deduplicated"
    ) == {f"E{i}": "open" for i in ids}


def test_a_rebuild_from_raw_keeps_the_same_copies(settings: Settings) -> None:
    """Re-running the date (the state rebuilt from history) gives the same result."""
    before = _kept(
        settings, "select order_id, amount::varchar from intermediate.int_orders_deduplicated"
    )
    run_dbt_build(AS_OF, settings=settings, full_refresh=True)
    assert (
        _kept(
            settings,
            "select order_id, amount::varchar from intermediate.int_orders_deduplicated",
        )
        == before
    )
