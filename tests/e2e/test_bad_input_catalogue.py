"""The bad-input catalogue: each case is a broken delivery fed into the real pipeline.

A demo warehouse (1,000 customers) runs one good night through the real steps (the functions the
Airflow tasks call: ingest, validate_raw, dbt build, validate_marts, recluster, publish). Each
case then copies that warehouse and landing area, breaks the next day's delivery the way real
feeds break, and runs the next night. Every case asserts what the user gets, either a clear error
(file or table, rule, count, masked examples) or the bad rows in ``quarantine.<source>`` with
their reason codes and the good rows loaded, and, whatever happened, that no landing file was
modified and ``segments.current_segments`` is what it was.

A case whose bad rows are quarantined stops after the raw gate passed; a night going on from
there to publish with bad rows set aside is ``test_a_night_with_quarantined_rows_publishes``.
What the user sees for each case is written to ``test-output/bad-input-catalogue/<case>.txt``.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from core.contract import SOURCE_COLUMNS
from expectations import QualityGateError
from ingestion.load import IngestionError
from pipeline import steps
from tests.conftest import ROOT
from tools.demo_data import generate_demo_data
from tools.summary import summarize

pytestmark = pytest.mark.slow

BASE_DAY = date(2026, 6, 30)  # the demo's as-of date: the good night
DAY = BASE_DAY + timedelta(days=1)  # the night each case breaks
OUTPUT_DIR = ROOT / "test-output" / "bad-input-catalogue"
ORDERS_HEADER = ["order_id", "customer_id", "ordered_at", "amount", "status"]


@dataclass
class Night:
    data_dir: Path
    landing: Path
    error: Exception | None
    ingest: dict | None
    gate: dict | None

    def query(self, sql: str, params: list | None = None) -> list[tuple]:
        with duckdb.connect(str(self.data_dir / "warehouse.duckdb"), read_only=True) as con:
            return con.execute(sql, params or []).fetchall()

    def quarantined(self, source: str) -> list[dict]:
        with duckdb.connect(str(self.data_dir / "warehouse.duckdb"), read_only=True) as con:
            frame = con.execute(
                f"select * from quarantine.{source} where _partition_date = ?", [DAY]
            ).df()
        return frame.to_dict(orient="records")


def _point_at(monkeypatch: pytest.MonkeyPatch, data_dir: Path, landing: Path) -> None:
    monkeypatch.setenv("SEGMENTS_DATA_DIR", str(data_dir))
    monkeypatch.setenv("SEGMENTS_LANDING_DIR", str(landing))
    monkeypatch.delenv("SEGMENTS_WAREHOUSE", raising=False)
    monkeypatch.delenv("SEGMENTS_REPORTS_DIR", raising=False)


def _run_night(day: date, *, through_publish: bool = False) -> tuple[Exception | None, dict, dict]:
    """The real steps for ``day``, in DAG order, until one raises."""
    run_id = f"catalogue-{day}"
    ingest = gate = None
    try:
        ingest = steps.ingest(day, run_id=run_id)
        gate = steps.validate_raw(day, ingest["validation_scope"], run_id=run_id)
        if through_publish:
            steps.build_marts(day)
            steps.validate_marts(day, run_id=run_id)
            version = steps.recluster(day, run_id=run_id)
            steps.publish(day, version["version_id"])
    except (IngestionError, QualityGateError) as exc:
        return exc, ingest, gate
    return None, ingest, gate


@pytest.fixture(scope="module")
def good_night(tmp_path_factory) -> tuple[Path, Path]:
    """A warehouse after one good night, and its landing area."""
    root = tmp_path_factory.mktemp("catalogue")
    landing = root / "landing"
    generate_demo_data(landing, root / "truth", n_customers=1000, seed=7)
    data_dir = root / "data"
    with pytest.MonkeyPatch.context() as monkeypatch:
        _point_at(monkeypatch, data_dir, landing)
        error, _, _ = _run_night(BASE_DAY, through_publish=True)
    assert error is None, error
    return data_dir, landing


def _digest(folder: Path) -> dict[str, str]:
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def _current_segments(data_dir: Path) -> pd.DataFrame:
    with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as con:
        return con.execute("select * from segments.current_segments order by customer_id").df()


def _partition(landing: Path, source: str) -> Path:
    return landing / source / f"date={DAY.isoformat()}"


def _rows(landing: Path, source: str) -> list[dict[str, str]]:
    with (_partition(landing, source) / f"{source}.csv").open(newline="") as handle:
        return list(csv.DictReader(handle))


def _write(path: Path, header: list[str], rows: list[dict | list]) -> Path:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow(
            [row.get(column, "") for column in header] if isinstance(row, dict) else row
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(buffer.getvalue(), encoding="utf-8")
    return path


def _extra_orders(landing: Path, rows: list[dict[str, str]], name: str = "extra.csv") -> Path:
    """A second orders file for the day (as a late upstream export would add)."""
    return _write(_partition(landing, "orders") / name, ORDERS_HEADER, rows)


def _order(landing: Path, **changes: str) -> dict[str, str]:
    """A valid order of a known customer of the day, with ``changes`` applied."""
    template = _rows(landing, "orders")[0]
    return {**template, "order_id": "BAD-" + "-".join(sorted(changes)), **changes}


def _customer(landing: Path, **changes: str) -> dict[str, str]:
    template = _rows(landing, "customers")[0]
    return {**template, "customer_id": "C9000001", "email": "new.person@example.com", **changes}


def _feed(
    good_night: tuple[Path, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    case: str,
    breaks: Callable[[Path], object],
) -> Night:
    """Copy the good night, let ``breaks`` damage the next day's landing files, run the night,
    and check what must hold whatever the case: landing untouched, current segments unchanged."""
    base_dir, base_landing = good_night
    data_dir, landing = tmp_path / "data", tmp_path / "landing"
    data_dir.mkdir()
    shutil.copy2(base_dir / "warehouse.duckdb", data_dir / "warehouse.duckdb")
    shutil.copytree(base_landing, landing)
    breaks(landing)
    _point_at(monkeypatch, data_dir, landing)
    landed = _digest(landing)
    segments_before = _current_segments(data_dir)

    error, ingest, gate = _run_night(DAY)

    assert _digest(landing) == landed, "the pipeline modified a landing file"
    pd.testing.assert_frame_equal(_current_segments(data_dir), segments_before)
    night = Night(data_dir, landing, error, ingest, gate)
    _show(case, night)
    return night


def _show(case: str, night: Night) -> None:
    """Write what the user sees for the case (the error, or what went to quarantine)."""
    OUTPUT_DIR.mkdir(parents=True, exist_ok=True)
    if night.error is not None:
        text = f"BLOCKED ({type(night.error).__name__}):\n{night.error}\n"
    else:
        lines = ["Run goes on; quarantined rows of the day:"]
        for source in ("customers", "orders", "web_events", "email_events"):
            for row in night.quarantined(source):
                values = {
                    key: (
                        value[:40] + "..." if isinstance(value, str) and len(value) > 40 else value
                    )
                    for key, value in row.items()
                    if value is not None and (not key.startswith("_") or key == "_line_number")
                }
                lines.append(f"  quarantine.{source}: {list(row['_reasons'])} {values}")
        text = "\n".join(lines) + "\n"
    (OUTPUT_DIR / f"{case}.txt").write_text(text, encoding="utf-8")


def _blocked_by(night: Night, kind: type[Exception], *fragments: str) -> str:
    assert isinstance(night.error, kind), f"expected {kind.__name__}, got {night.error!r}"
    message = str(night.error)
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in:\n{message}"
    return message


def _reasons(night: Night, source: str) -> list[list[str]]:
    assert night.error is None, night.error
    return [list(row["_reasons"]) for row in night.quarantined(source)]


def _physical_lines(path: Path) -> int:
    """Data lines of a landing file (after the header, empty lines aside)."""
    data = path.read_bytes()
    if path.name.lower().endswith(".gz"):
        data = gzip.decompress(data)
    return sum(1 for line in data.splitlines()[1:] if line.strip())


def _assert_lines_reconcile(night: Night, source: str, day: date = DAY) -> None:
    """Nothing lost: every data line of the day's files is in a loaded row or in quarantine (a
    malformed region counts the lines it spans)."""
    folder = night.landing / source / f"date={day.isoformat()}"
    physical = sum(
        _physical_lines(path)
        for path in folder.iterdir()
        if path.name.lower().endswith((".csv", ".csv.gz"))
    )
    # a record spans one line plus the line breaks inside its quoted values
    values = ", ".join(f"coalesce(\"{column}\", '')" for column in SOURCE_COLUMNS[source])
    spans = f"1 + len(regexp_extract_all(concat({values}), '\\r\\n|\\r|\\n'))"
    ((loaded,),) = night.query(
        f"select coalesce(sum({spans}), 0) from raw.{source} where _partition_date = ?", [day]
    )
    ((quarantined,),) = night.query(
        f"select coalesce(sum(coalesce(_line_count, {spans})), 0) from quarantine.{source} "
        "where _partition_date = ?",
        [day],
    )
    assert loaded + quarantined == physical, (loaded, quarantined, physical)
    ((rows_in, row_count, rows_quarantined, rows_erased),) = night.query(
        "select rows_in, row_count, rows_quarantined, coalesce(rows_erased, 0) "
        "from raw._load_log where source = ? and partition_date = ?",
        [source, day],
    )
    assert rows_in == row_count + rows_quarantined + rows_erased


# --- files that cannot be loaded as they are: a clear error naming the file -----------------


def test_an_empty_file_is_refused_naming_it(good_night, tmp_path, monkeypatch):
    night = _feed(
        good_night,
        tmp_path,
        monkeypatch,
        "empty_file",
        lambda landing: (_partition(landing, "orders") / "late.csv").write_bytes(b""),
    )
    _blocked_by(night, IngestionError, "orders/date=2026-07-01/late.csv", "the file is empty")


def test_a_missing_column_is_refused_naming_file_and_column(good_night, tmp_path, monkeypatch):
    def breaks(landing: Path) -> None:
        rows = _rows(landing, "orders")
        _write(_partition(landing, "orders") / "orders.csv", [*ORDERS_HEADER[:3], "status"], rows)

    night = _feed(good_night, tmp_path, monkeypatch, "missing_column", breaks)
    _blocked_by(night, IngestionError, "orders/date=2026-07-01/orders.csv", "missing column(s)")
    assert "amount" in str(night.error)


def test_a_wrong_delimiter_is_refused_with_the_reason(good_night, tmp_path, monkeypatch):
    def breaks(landing: Path) -> None:
        path = _partition(landing, "orders") / "orders.csv"
        path.write_text(path.read_text().replace(",", ";"))

    night = _feed(good_night, tmp_path, monkeypatch, "wrong_delimiter", breaks)
    _blocked_by(night, IngestionError, "orders.csv", "semicolon-separated")


def test_an_extra_column_is_loaded_without_it_and_reported(good_night, tmp_path, monkeypatch):
    def breaks(landing: Path) -> None:
        rows = [{**row, "coupon": "=SUM(A1)"} for row in _rows(landing, "orders")]
        _write(_partition(landing, "orders") / "orders.csv", [*ORDERS_HEADER, "coupon"], rows)

    night = _feed(good_night, tmp_path, monkeypatch, "extra_column", breaks)
    assert night.error is None
    extra = night.ingest["sources"]["orders"]["extra_columns"]
    assert extra == {"orders/date=2026-07-01/orders.csv": ["coupon"]}
    assert night.quarantined("orders") == []


# --- rows that cannot be used: quarantined, unchanged, with a reason; good rows go on -------


@pytest.mark.parametrize(
    ("case", "changes", "reasons"),
    [
        ("wrong_types", {"amount": "twelve", "ordered_at": "yesterday"},
         ["unparseable_timestamp", "unparseable_amount"]),
        ("future_timestamp", {"ordered_at": "2027-01-01 10:00:00"}, ["future_timestamp"]),
        ("negative_amount", {"amount": "-25.00"}, ["negative_amount"]),
        ("absurd_amount", {"amount": "1e12"}, ["amount_out_of_range"]),
        ("null_customer_id", {"customer_id": ""}, ["missing_customer_id"]),
        ("unknown_customer", {"customer_id": "C9999999"}, ["unknown_customer"]),
        ("long_string", {"status": "x" * 1_000_000}, ["invalid_status", "value_too_long"]),
        ("order_in_1900", {"ordered_at": "1900-01-01 10:00:00"}, ["before_business_start"]),
        ("order_at_epoch", {"ordered_at": "epoch"}, "special_date_value"),
        ("order_at_minus_infinity", {"ordered_at": "-infinity"}, "special_date_value"),
        ("order_with_zone_name", {"ordered_at": "2026-07-01 10:00:00 EST"},
         ["unknown_time_zone"]),
        ("order_before_christ", {"ordered_at": "2026-07-01 10:00:00 BC"}, "date_with_era"),
        ("negative_zero_amount", {"amount": "-0.00"}, ["negative_amount"]),
    ],
)  # fmt: skip
def test_a_bad_order_is_quarantined_and_the_good_ones_load(
    good_night, tmp_path, monkeypatch, case, changes, reasons
):
    night = _feed(
        good_night,
        tmp_path,
        monkeypatch,
        case,
        lambda landing: _extra_orders(landing, [_order(landing, **changes)]),
    )
    (found,) = _reasons(night, "orders")
    if isinstance(reasons, str):  # this code, and maybe others the value breaks too
        assert reasons in found, found
    else:
        assert found == reasons
    (row,) = night.quarantined("orders")
    for column, value in changes.items():  # unchanged, as it landed
        assert (row[column] or "") == value  # an empty CSV field reads as null
    assert row["_source_file"] == "orders/date=2026-07-01/extra.csv"
    assert row["_run_id"] == f"catalogue-{DAY}"
    good = len(_rows(night.landing, "orders"))
    assert night.query("select count(*) from raw.orders where _partition_date = ?", [DAY]) == [
        (good,)
    ]
    load = night.ingest["sources"]["orders"]
    assert load["rows_in"] == load["rows_loaded"] + load["rows_quarantined"] == good + 1
    _assert_lines_reconcile(night, "orders")


@pytest.mark.parametrize(
    ("case", "changes", "reasons"),
    [
        ("age_minus_5", {"birth_date": f"{DAY.year + 5}-01-15"}, ["impossible_age"]),
        ("age_300", {"birth_date": f"{DAY.year - 300}-01-15"}, ["impossible_age"]),
        ("malformed_email", {"email": "olivia.hall@@example"}, ["invalid_email"]),
        ("unparseable_birth_date", {"birth_date": "31/02/1990"}, ["unparseable_birth_date"]),
        ("signup_in_1900", {"signup_at": "1900-01-01 00:00:00"}, ["before_business_start"]),
    ],
)
def test_a_bad_crm_record_is_quarantined(good_night, tmp_path, monkeypatch, case, changes, reasons):
    def breaks(landing: Path) -> None:
        header = list(_rows(landing, "customers")[0])
        _write(
            _partition(landing, "customers") / "late.csv", header, [_customer(landing, **changes)]
        )

    night = _feed(good_night, tmp_path, monkeypatch, case, breaks)
    assert _reasons(night, "customers") == [reasons]
    _assert_lines_reconcile(night, "customers")
    assert night.query("select count(*) from raw.customers where customer_id = 'C9000001'") == [
        (0,)
    ]


def test_events_of_an_unknown_customer_are_quarantined(good_night, tmp_path, monkeypatch):
    def breaks(landing: Path) -> None:
        rows = _rows(landing, "email_events")
        stray = {**rows[0], "event_id": "E-STRAY", "customer_id": "C7777777"}
        _write(_partition(landing, "email_events") / "late.csv", list(rows[0]), [stray])

    night = _feed(good_night, tmp_path, monkeypatch, "unknown_customer_in_events", breaks)
    assert _reasons(night, "email_events") == [["unknown_customer"]]


def test_non_utf8_bytes_quarantine_their_line(good_night, tmp_path, monkeypatch):
    def breaks(landing: Path) -> None:
        good = _order(landing, order_id="LATIN-1")
        line = ",".join(good[column] for column in ORDERS_HEADER).replace("completed", "compl\xe9t")
        path = _partition(landing, "orders") / "extra.csv"
        path.write_bytes((",".join(ORDERS_HEADER) + "\n").encode() + line.encode("latin-1") + b"\n")

    night = _feed(good_night, tmp_path, monkeypatch, "non_utf8", breaks)
    (row,) = night.quarantined("orders")
    assert (list(row["_reasons"]), row["_line_number"]) == (["invalid_encoding"], 2)
    assert "LATIN-1" in row["_raw_line"]


def test_a_truncated_last_line_is_quarantined(good_night, tmp_path, monkeypatch):
    def breaks(landing: Path) -> None:
        path = _partition(landing, "orders") / "orders.csv"
        text = path.read_text()
        path.write_text(text + "O-CUT,C0000640,2026-07-01 1")  # the export died mid-line

    night = _feed(good_night, tmp_path, monkeypatch, "truncated_last_line", breaks)
    (row,) = night.quarantined("orders")
    assert list(row["_reasons"]) == ["wrong_column_count"]
    assert row["_raw_line"] == "O-CUT,C0000640,2026-07-01 1"


def test_timestamps_with_and_without_offsets_load_together(good_night, tmp_path, monkeypatch):
    def breaks(landing: Path) -> None:
        rows = [
            _order(landing, order_id="TZ-1", ordered_at="2026-07-01T10:00:00+02:00"),
            _order(landing, order_id="TZ-2", ordered_at="2026-07-01 08:00:00"),
            _order(landing, order_id="TZ-3", ordered_at="2026-07-01T08:00:00Z"),
        ]
        _extra_orders(landing, rows)

    night = _feed(good_night, tmp_path, monkeypatch, "mixed_timezones", breaks)
    assert night.quarantined("orders") == []
    # Loaded as they landed; dbt's parse_timestamp reads all three as 08:00 UTC (see
    # test_a_night_with_quarantined_rows_publishes).
    assert night.query(
        "select ordered_at from raw.orders where order_id like 'TZ-%' order by order_id"
    ) == [("2026-07-01T10:00:00+02:00",), ("2026-07-01 08:00:00",), ("2026-07-01T08:00:00Z",)]


def test_formula_text_is_loaded_as_text(good_night, tmp_path, monkeypatch):
    formula = "=cmd|' /C calc'!A0"
    night = _feed(
        good_night,
        tmp_path,
        monkeypatch,
        "formula_text",
        lambda landing: _write(
            _partition(landing, "customers") / "late.csv",
            list(_rows(landing, "customers")[0]),
            [_customer(landing, city=formula)],
        ),
    )
    assert night.query("select city from raw.customers where customer_id = 'C9000001'") == [
        (formula,)
    ]  # that it is never exported as a live formula: test_a_night_with_quarantined_rows_publishes


# --- deliveries that are broken as a whole: the night is blocked, naming the rule -----------


def test_a_header_only_orders_file_blocks_the_night(good_night, tmp_path, monkeypatch):
    night = _feed(
        good_night,
        tmp_path,
        monkeypatch,
        "header_only",
        lambda landing: _write(_partition(landing, "orders") / "orders.csv", ORDERS_HEADER, []),
    )
    _blocked_by(
        night, QualityGateError, "raw.orders partition 2026-07-01", "expect_table_row_count"
    )


def test_a_day_without_orders_blocks_the_night(good_night, tmp_path, monkeypatch):
    night = _feed(
        good_night,
        tmp_path,
        monkeypatch,
        "no_data_day",
        lambda landing: shutil.rmtree(_partition(landing, "orders")),
    )
    _blocked_by(
        night,
        QualityGateError,
        "expect_column_distinct_values_to_contain_set(_partition_date)",
        "missing values: '2026-07-01'",
    )


def test_the_day_delivered_twice_blocks_on_duplicate_rows(good_night, tmp_path, monkeypatch):
    def breaks(landing: Path) -> None:
        partition = _partition(landing, "orders")
        shutil.copy2(partition / "orders.csv", partition / "orders (1).csv")

    night = _feed(good_night, tmp_path, monkeypatch, "duplicate_day_partition", breaks)
    message = _blocked_by(night, QualityGateError, "quarantine.orders partition 2026-07-01")
    rows = _rows(night.landing, "orders")
    distinct = len({tuple(row.values()) for row in rows})
    duplicates = 2 * len(rows) - distinct
    assert f"{duplicates:,} of {2 * len(rows):,} incoming rows quarantined" in message
    assert f"duplicate_row {duplicates:,}" in message
    assert "'file': 'orders/date=2026-07-01/orders" in message  # example rows name their file


def test_ten_times_the_usual_volume_blocks_the_night(good_night, tmp_path, monkeypatch):
    def breaks(landing: Path) -> None:
        day = _rows(landing, "orders")
        copies = [
            {**row, "order_id": f"{row['order_id']}-{copy}"} for copy in range(9) for row in day
        ]
        _extra_orders(landing, copies, name="replayed.csv")

    night = _feed(good_night, tmp_path, monkeypatch, "ten_times_volume", breaks)
    message = _blocked_by(
        night, QualityGateError, "raw.orders partition 2026-07-01", "expect_table_row_count"
    )
    assert "the batch has" in message and "between" in message


def test_many_bad_rows_block_with_reasons_and_masked_examples(good_night, tmp_path, monkeypatch):
    def breaks(landing: Path) -> None:
        header = list(_rows(landing, "customers")[0])
        bad = [
            _customer(landing, customer_id=f"C91{i:05d}", email=f"jane.doe{i}@@example.com")
            for i in range(12)
        ]
        _write(_partition(landing, "customers") / "late.csv", header, bad)

    night = _feed(good_night, tmp_path, monkeypatch, "many_malformed_emails", breaks)
    message = _blocked_by(
        night,
        QualityGateError,
        "quarantine.customers partition 2026-07-01",
        "invalid_email 12",
        "customers/date=2026-07-01/late.csv",
    )
    assert "jane.doe" not in message and "example.com" not in message  # PII masked
    assert "'j***@" in message


# --- the same day twice, a fix, and a whole night with quarantined rows ---------------------


def test_the_same_day_loaded_twice_gives_the_same_rows(good_night, tmp_path, monkeypatch):
    night = _feed(
        good_night,
        tmp_path,
        monkeypatch,
        "same_day_twice",
        lambda landing: _extra_orders(landing, [_order(landing, amount="-1")]),
    )

    def rows() -> list[list[tuple]]:
        return [
            night.query(f"{select} where _partition_date = ? order by all", [DAY])
            for select in (
                "select * from raw.orders",
                "select * exclude (_quarantined_at) from quarantine.orders",
            )
        ]

    first = rows()
    error, _, _ = _run_night(DAY)
    assert error is None
    assert rows() == first
    assert len(first[1]) == 1


def test_a_quarantined_row_fixed_upstream_loads_on_the_rerun(good_night, tmp_path, monkeypatch):
    night = _feed(
        good_night,
        tmp_path,
        monkeypatch,
        "fixed_and_reingested",
        lambda landing: _extra_orders(landing, [_order(landing, order_id="FIX-1", amount="1e12")]),
    )
    assert _reasons(night, "orders") == [["amount_out_of_range"]]
    # The sender corrects its file (the pipeline never does) and the date is run again.
    _extra_orders(night.landing, [_order(night.landing, order_id="FIX-1", amount="120.00")])
    error, _, _ = _run_night(DAY)
    assert error is None
    assert night.quarantined("orders") == []
    assert night.query("select amount from raw.orders where order_id = 'FIX-1'") == [("120.00",)]


def test_a_night_with_quarantined_rows_publishes(good_night, tmp_path, monkeypatch):
    formula_id = "=SUM(A1:A9)"

    def breaks(landing: Path) -> None:
        _extra_orders(
            landing,
            [
                _order(landing, order_id="NEG-1", amount="-5.00"),
                _order(landing, order_id="TZ-1", ordered_at="2026-07-01T10:00:00+02:00"),
                {**_order(landing, order_id="F-1"), "customer_id": formula_id},
            ],
        )
        header = list(_rows(landing, "customers")[0])
        _write(
            _partition(landing, "customers") / "late.csv",
            header,
            [
                _customer(
                    landing,
                    customer_id=formula_id,
                    email="f.x@example.com",
                    marketing_consent="true",
                )
            ],
        )

    night = _feed(good_night, tmp_path, monkeypatch, "night_with_quarantine", breaks)
    assert _reasons(night, "orders") == [["negative_amount"]]

    error, _, _ = _run_night(DAY, through_publish=True)

    assert error is None
    assert night.query("select as_of_date from segments.current_version") == [(DAY,)]
    assert night.query(
        "select count(*) from staging.stg_shop__orders where order_id = 'NEG-1'"
    ) == [(0,)]
    assert night.query(
        "select ordered_at from staging.stg_shop__orders where order_id = 'TZ-1'"
    ) == [(pd.Timestamp("2026-07-01 08:00:00").to_pydatetime(),)]
    exported = steps.export_audiences(DAY)
    text = "".join(p.read_text() for p in Path(exported["path"]).glob("*-members.csv"))
    assert "\n'=SUM(A1:A9)," in text and "\n=SUM" not in text


# --- the attack cases of issue 14: quotes, layout, late reference data, retractions --------


def _stray_quote(landing: Path, source: str, line: int) -> Path:
    """Open a quote on data line ``line`` of the day's file and never close it."""
    path = _partition(landing, source) / f"{source}.csv"
    lines = path.read_text().splitlines(keepends=True)
    fields = lines[line].split(",")
    fields[2] = '"' + fields[2]
    lines[line] = ",".join(fields)
    path.write_text("".join(lines))
    return path


@pytest.mark.parametrize("source", ["orders", "email_events"])
def test_a_stray_quote_blocks_naming_the_file_and_lines(good_night, tmp_path, monkeypatch, source):
    night = _feed(
        good_night,
        tmp_path,
        monkeypatch,
        f"stray_quote_{source}",
        lambda landing: _stray_quote(landing, source, 3),
    )
    message = _blocked_by(
        night,
        IngestionError,
        f"{source}/date=2026-07-01/{source}.csv: lines ",
        "unterminated quote",
    )
    assert "Nothing of this batch was loaded" in message
    # nothing of the day reached raw: the night stops before the batch is written
    assert night.query(f"select count(*) from raw.{source} where _partition_date = ?", [DAY]) == [
        (0,)
    ]


@pytest.mark.parametrize(
    ("case", "quoted", "reasons"),
    [
        ("quoted_line_break_status", '2026-07-01 10:00:00,12.00,"compl\neted"', ["invalid_status"]),
        ("quoted_line_break_timestamp", '"2026-07-01\n10:00:00",12.00,completed',
         ["unparseable_timestamp"]),
    ],
)  # fmt: skip
def test_a_quoted_line_break_keeps_every_line(
    good_night, tmp_path, monkeypatch, case, quoted, reasons
):
    def breaks(landing: Path) -> None:
        path = _extra_orders(landing, [_order(landing, order_id="OK-1")])
        with path.open("a") as handle:  # a value with a line break inside its quotes
            handle.write(f"QB-1,C0000640,{quoted}\n")

    night = _feed(good_night, tmp_path, monkeypatch, case, breaks)
    assert _reasons(night, "orders") == [reasons]
    _assert_lines_reconcile(night, "orders")


def test_a_duplicate_header_column_is_refused_naming_file_and_column(
    good_night, tmp_path, monkeypatch
):
    def breaks(landing: Path) -> None:
        rows = [[*row.values(), row["amount"]] for row in _rows(landing, "orders")]
        _write(_partition(landing, "orders") / "orders.csv", [*ORDERS_HEADER, "amount"], rows)

    night = _feed(good_night, tmp_path, monkeypatch, "duplicate_header_column", breaks)
    _blocked_by(
        night,
        IngestionError,
        "orders/date=2026-07-01/orders.csv",
        "column(s) amount appear more than once",
    )


def test_a_partition_date_that_is_no_date_is_reported(good_night, tmp_path, monkeypatch):
    def breaks(landing: Path) -> None:
        folder = landing / "orders" / "date=2026-13-45"
        folder.mkdir()
        shutil.copy2(_partition(landing, "orders") / "orders.csv", folder / "orders.csv")

    night = _feed(good_night, tmp_path, monkeypatch, "impossible_partition_date", breaks)
    assert night.error is None, night.error
    (problem,) = night.ingest["sources"]["orders"]["layout_problems"]
    assert "orders/date=2026-13-45" in problem and "not a calendar date" in problem
    _assert_lines_reconcile(night, "orders")


@pytest.mark.parametrize(
    ("case", "name", "pack"),
    [("upper_case_extension", "extra.CSV", bytes), ("gzip_csv", "extra.csv.gz", gzip.compress)],
)
def test_other_csv_file_names_load(good_night, tmp_path, monkeypatch, case, name, pack):
    def breaks(landing: Path) -> None:
        rows = [_order(landing, order_id=f"{case}-{i}") for i in range(3)]
        text = _extra_orders(landing, rows, name="staged.tmp")
        (text.parent / name).write_bytes(pack(text.read_bytes()))
        text.unlink()

    night = _feed(good_night, tmp_path, monkeypatch, case, breaks)
    assert night.error is None, night.error
    assert night.query(
        "select _source_file, count(*) from raw.orders where order_id like ? group by all",
        [f"{case}-%"],
    ) == [(f"orders/date=2026-07-01/{name}", 3)]
    _assert_lines_reconcile(night, "orders")


def test_a_folder_no_source_reads_is_reported(good_night, tmp_path, monkeypatch):
    def breaks(landing: Path) -> None:
        folder = landing / "refunds" / f"date={DAY.isoformat()}"
        folder.mkdir(parents=True)
        _write(folder / "refunds.csv", ["refund_id", "order_id"], [["R1", "O1"]])

    night = _feed(good_night, tmp_path, monkeypatch, "unknown_source_folder", breaks)
    assert night.error is None, night.error
    (problem,) = night.ingest["unknown_folders"]
    assert "landing/refunds" in problem and "no source" in problem


def test_an_empty_partition_folder_is_reported(good_night, tmp_path, monkeypatch):
    night = _feed(
        good_night,
        tmp_path,
        monkeypatch,
        "empty_partition_folder",
        lambda landing: (
            (landing / "web_events" / "date=2026-06-15.tmp").mkdir()
            or (landing / "email_events" / "date=2024-01-01").mkdir()
        ),
    )
    assert night.error is None, night.error
    problems = night.ingest["sources"]["email_events"]["layout_problems"]
    assert any("email_events/date=2024-01-01" in p and "empty partition" in p for p in problems)
    (problem,) = night.ingest["sources"]["web_events"]["layout_problems"]
    assert "date=2026-06-15.tmp" in problem and "not a date=YYYY-MM-DD" in problem


def _late_customer(landing: Path, day: date) -> None:
    """C9000001's CRM record, landing on ``day``."""
    folder = landing / "customers" / f"date={day.isoformat()}"
    person = {  # nobody else's: identity resolution keeps them apart
        "first_name": "Nadia",
        "last_name": "Quist",
        "phone": "+1-555-010-9999",
        "birth_date": "1980-03-03",
    }
    _write(
        folder / "late.csv",
        list(_rows(landing, "customers")[0]),
        [_customer(landing, **person)],
    )


def _order_before_its_customer(landing: Path) -> None:
    _extra_orders(landing, [_order(landing, order_id="EARLY-1", customer_id="C9000001")])


def test_an_order_before_its_customer_loads_when_the_customer_arrives(
    good_night, tmp_path, monkeypatch
):
    night = _feed(
        good_night, tmp_path, monkeypatch, "order_before_customer", _order_before_its_customer
    )
    assert _reasons(night, "orders") == [["unknown_customer"]]
    next_day = DAY + timedelta(days=1)
    _late_customer(night.landing, next_day)
    landed = _digest(night.landing)

    error, ingest, _ = _run_night(next_day)

    assert error is None, error
    assert _digest(night.landing) == landed
    assert ingest["sources"]["orders"]["rows_released"] == 1
    assert DAY.isoformat() in ingest["validation_scope"]["orders"]  # the gate sees it again
    summary, _ = summarize(next_day)
    assert "1 row of earlier days released from quarantine" in summary
    assert night.quarantined("orders") == []
    assert night.query("select _partition_date from raw.orders where order_id = 'EARLY-1'") == [
        (DAY,)
    ]
    assert night.query(
        "select source, partition_date, _line_number, quarantined_as, released_as_of_date "
        "from raw._released"
    ) == [("orders", DAY, 2, ["unknown_customer"], next_day)]
    assert night.query(
        "select rows_released from raw._load_log where source = 'orders' and partition_date = ?",
        [DAY],
    ) == [(1,)]
    _assert_lines_reconcile(night, "orders")


def test_an_order_whose_customer_comes_after_the_window_stays_quarantined(
    good_night, tmp_path, monkeypatch
):
    config = tmp_path / "quality.yml"
    config.write_text((ROOT / "expectations" / "quality.yml").read_text())
    with config.open("a") as handle:
        handle.write("\n")
    config.write_text(
        config.read_text().replace("late_reference_days: 7", "late_reference_days: 1")
    )
    monkeypatch.setenv("SEGMENTS_QUALITY_CONFIG", str(config))
    night = _feed(
        good_night, tmp_path, monkeypatch, "customer_after_window", _order_before_its_customer
    )
    later = DAY + timedelta(days=2)  # one day past the window
    _late_customer(night.landing, later)

    error, ingest, _ = _run_night(later)

    assert error is None, error
    assert ingest["sources"]["orders"]["rows_released"] == 0
    assert _reasons(night, "orders") == [["unknown_customer"]]
    assert night.query("select count(*) from raw.orders where order_id = 'EARLY-1'") == [(0,)]
    _assert_lines_reconcile(night, "orders")


def test_an_empty_redelivery_empties_its_partition(good_night, tmp_path, monkeypatch):
    old = date(2026, 6, 15)

    def breaks(landing: Path) -> None:
        _write(landing / "orders" / f"date={old.isoformat()}" / "orders.csv", ORDERS_HEADER, [])

    night = _feed(good_night, tmp_path, monkeypatch, "empty_redelivery", breaks)
    assert night.error is None, night.error
    assert old.isoformat() in night.ingest["sources"]["orders"]["partitions_loaded"]
    assert night.query("select count(*) from raw.orders where _partition_date = ?", [old]) == [(0,)]
    assert night.query(
        "select rows_in, row_count, rows_quarantined from raw._load_log "
        "where source = 'orders' and partition_date = ?",
        [old],
    ) == [(0, 0, 0)]
    _assert_lines_reconcile(night, "orders", old)
    _assert_lines_reconcile(night, "orders")


# --- late reference data and retractions reach the marts (these cases run dbt) -------------


def _base_and_slice(data_dir: Path, day: date) -> dict[str, pd.DataFrame]:
    """The incremental base model of orders and the marts' slices of ``day``."""
    tables = {
        "staging.base_shop__orders": "select * exclude (loaded_at) from {} order by all",
        "marts.customer_rfm": "select * from {} where as_of_date = ? order by all",
        "marts.customer_features": "select * from {} where as_of_date = ? order by all",
    }
    with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as con:
        return {
            table: con.execute(sql.format(table), [day] if "?" in sql else []).df()
            for table, sql in tables.items()
        }


def test_a_released_order_reaches_the_marts(good_night, tmp_path, monkeypatch):
    night = _feed(
        good_night, tmp_path, monkeypatch, "released_to_marts", _order_before_its_customer
    )
    steps.build_marts(DAY)  # the base model takes the day without the order
    next_day = DAY + timedelta(days=1)
    _late_customer(night.landing, next_day)
    error, _, _ = _run_night(next_day)
    assert error is None, error

    steps.build_marts(next_day)

    assert night.query(
        "select landed_date from staging.base_shop__orders where order_id = 'EARLY-1'"
    ) == [(DAY,)]
    assert night.query(
        "select order_count from marts.customer_features where customer_id = 'C9000001' "
        "and as_of_date = ?",
        [next_day],
    ) == [(1,)]


def test_after_a_retraction_the_incremental_build_equals_a_full_refresh(
    good_night, tmp_path, monkeypatch
):
    old = date(2026, 6, 15)

    def breaks(landing: Path) -> None:
        _write(landing / "orders" / f"date={old.isoformat()}" / "orders.csv", ORDERS_HEADER, [])

    night = _feed(good_night, tmp_path, monkeypatch, "retraction_in_marts", breaks)
    assert night.error is None, night.error
    refreshed = tmp_path / "refreshed"
    refreshed.mkdir()
    shutil.copy2(night.data_dir / "warehouse.duckdb", refreshed / "warehouse.duckdb")

    steps.build_marts(DAY)
    monkeypatch.setenv("SEGMENTS_DATA_DIR", str(refreshed))
    steps.build_marts(DAY, full_refresh=True)

    incremental, full = _base_and_slice(night.data_dir, DAY), _base_and_slice(refreshed, DAY)
    assert night.query(
        "select count(*) from staging.base_shop__orders where landed_date = ?", [old]
    ) == [(0,)]
    for table, frame in incremental.items():
        assert len(frame), table
        pd.testing.assert_frame_equal(frame, full[table], obj=table)
