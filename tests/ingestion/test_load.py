"""Landing -> raw loading: idempotent per partition, as-of bounded, raw files untouched."""

from __future__ import annotations

import hashlib
import os
from datetime import date
from pathlib import Path

import duckdb
import pytest

from core.settings import get_settings
from ingestion.load import IngestionError, load_partitions, mark_validated

ORDERS_HEADER = "order_id,customer_id,ordered_at,amount,status\n"


def _write(landing: Path, source: str, day: str, text: str, name: str = "part.csv") -> Path:
    folder = landing / source / f"date={day}"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text)
    return path


def _tree_digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.fixture
def landing(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("SEGMENTS_DATA_DIR", str(tmp_path))
    landing = get_settings().landing_dir
    _write(
        landing,
        "orders",
        "2026-03-01",
        ORDERS_HEADER + "O1,C1,2026-03-01 09:00:00,10.00,completed\n"
        "O2,C2,2026-03-01 10:00:00,20.00,completed\n",
    )
    _write(
        landing,
        "orders",
        "2026-03-02",
        ORDERS_HEADER + "O3,C1,2026-03-02 09:00:00,30.00,completed\n"
        # a late-arriving order: placed on the 1st, landed on the 2nd
        "O4,C3,2026-03-01 23:00:00,5.00,completed\n",
    )
    _write(
        landing,
        "orders",
        "2026-03-03",
        ORDERS_HEADER + "O5,C2,2026-03-03 09:00:00,40.00,completed\n",
    )
    return landing


def _rows(con: duckdb.DuckDBPyConnection) -> list[tuple]:
    return con.execute("select * from raw.orders order by order_id").fetchall()


def test_loading_the_same_day_twice_leaves_exactly_the_same_rows(landing, tmp_path):
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    first = load_partitions(con, date(2026, 3, 2), sources=("orders",))
    mark_validated(con, first.validation_scope(), as_of_date=date(2026, 3, 2))  # gate passed
    rows_after_first = _rows(con)
    second = load_partitions(con, date(2026, 3, 2), sources=("orders",))

    assert first.sources["orders"].partitions_loaded == ["2026-03-01", "2026-03-02"]
    # The re-run reloads its own day only; unchanged history is skipped.
    assert second.sources["orders"].partitions_loaded == ["2026-03-02"]
    assert second.sources["orders"].partitions_unchanged == 1
    assert _rows(con) == rows_after_first
    assert len(rows_after_first) == 4


def test_partitions_the_gate_has_not_passed_are_reloaded_and_checked_again(landing, tmp_path):
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    load_partitions(con, date(2026, 3, 2), sources=("orders",))
    # The gate blocked that run, so nothing was marked validated: the next night re-checks.
    next_night = load_partitions(con, date(2026, 3, 3), sources=("orders",))
    assert next_night.validation_scope()["orders"] == [
        date(2026, 3, 1),
        date(2026, 3, 2),
        date(2026, 3, 3),
    ]
    mark_validated(con, next_night.validation_scope(), as_of_date=date(2026, 3, 3))
    after_pass = load_partitions(con, date(2026, 3, 3), sources=("orders",))
    assert after_pass.validation_scope()["orders"] == [date(2026, 3, 3)]


def test_partitions_after_the_as_of_date_are_not_loaded(landing, tmp_path):
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    load_partitions(con, date(2026, 3, 2), sources=("orders",))
    loaded = {r[0] for r in con.execute("select order_id from raw.orders").fetchall()}
    assert loaded == {"O1", "O2", "O3", "O4"}
    assert con.execute("select _partition_date from raw.orders where order_id = 'O4'").fetchone()[
        0
    ] == date(2026, 3, 2)


def test_a_corrected_earlier_file_replaces_its_partition(landing, tmp_path):
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    first = load_partitions(con, date(2026, 3, 3), sources=("orders",))
    mark_validated(con, first.validation_scope(), as_of_date=date(2026, 3, 3))
    _write(
        landing,
        "orders",
        "2026-03-01",
        ORDERS_HEADER + "O1,C1,2026-03-01 09:00:00,11.00,completed\n",
    )
    report = load_partitions(con, date(2026, 3, 3), sources=("orders",))

    assert report.sources["orders"].partitions_loaded == ["2026-03-01", "2026-03-03"]
    amounts = dict(
        con.execute(
            "select order_id, amount from raw.orders where _partition_date = '2026-03-01'"
        ).fetchall()
    )
    assert amounts == {"O1": "11.00"}  # O2 was removed from the corrected file


def _retime(landing: Path) -> None:
    """What a copy, a restore or a sync without times does: every file gets a new mtime."""
    for path in landing.rglob("*.csv"):
        stat = path.stat()
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 3_600 * 10**9))


def _load_log(con: duckdb.DuckDBPyConnection) -> dict[date, tuple]:
    return {
        day: (fingerprint, loaded_at)
        for day, fingerprint, loaded_at in con.execute(
            "select partition_date, fingerprint, loaded_at from raw._load_log"
        ).fetchall()
    }


def test_files_with_new_modification_times_and_the_same_bytes_are_not_reloaded(landing, tmp_path):
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    first = load_partitions(con, date(2026, 3, 3), sources=("orders",))
    mark_validated(con, first.validation_scope(), as_of_date=date(2026, 3, 3))
    before = _load_log(con)
    _retime(landing)

    report = load_partitions(con, date(2026, 3, 3), sources=("orders",)).sources["orders"]

    assert report.partitions_loaded == ["2026-03-03"]  # the as-of day only, as every night
    assert (report.partitions_unchanged, report.partitions_retimed) == (2, 2)
    after = _load_log(con)
    for day in (date(2026, 3, 1), date(2026, 3, 2)):
        assert after[day][1] == before[day][1]  # not loaded again
        assert after[day][0] != before[day][0]  # the new fingerprint is recorded ...
    # ... so the next night finds them current without reading their bytes.
    again = load_partitions(con, date(2026, 3, 3), sources=("orders",)).sources["orders"]
    assert (again.partitions_unchanged, again.partitions_retimed) == (2, 0)


def test_a_file_edited_in_place_to_the_same_size_is_reloaded(landing, tmp_path):
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    first = load_partitions(con, date(2026, 3, 3), sources=("orders",))
    mark_validated(con, first.validation_scope(), as_of_date=date(2026, 3, 3))
    path = landing / "orders" / "date=2026-03-01" / "part.csv"
    edited = path.read_text().replace("10.00", "19.00")
    assert len(edited) == path.stat().st_size
    path.write_text(edited)
    _retime(landing)

    report = load_partitions(con, date(2026, 3, 3), sources=("orders",)).sources["orders"]

    assert report.partitions_loaded == ["2026-03-01", "2026-03-03"]
    assert report.partitions_retimed == 1  # 03-02: new time, same bytes
    amount = con.execute("select amount from raw.orders where order_id = 'O1'").fetchone()[0]
    assert amount == "19.00"


def test_partitions_loaded_before_the_content_hash_existed_reload_once_when_retimed(
    landing, tmp_path
):
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    first = load_partitions(con, date(2026, 3, 3), sources=("orders",))
    mark_validated(con, first.validation_scope(), as_of_date=date(2026, 3, 3))
    con.execute("alter table raw._load_log drop column content_hash")  # a warehouse of older code
    _retime(landing)

    report = load_partitions(con, date(2026, 3, 3), sources=("orders",)).sources["orders"]
    assert report.partitions_loaded == ["2026-03-01", "2026-03-02", "2026-03-03"]
    assert (
        con.execute("select count(*) from raw._load_log where content_hash is null").fetchone()[0]
        == 0
    )


def test_landing_files_are_never_modified(landing, tmp_path):
    before = _tree_digest(landing)
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    load_partitions(con, date(2026, 3, 3), sources=("orders",))
    load_partitions(con, date(2026, 3, 3), sources=("orders",))
    assert _tree_digest(landing) == before


def test_values_are_kept_as_text_for_dbt_to_clean(landing, tmp_path):
    _write(
        landing,
        "orders",
        "2026-03-04",
        ORDERS_HEADER + "O6, C1 ,2026-03-04T09:00:00+02:00, 12.50 ,COMPLETED\n",
    )
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    load_partitions(con, date(2026, 3, 4), sources=("orders",))
    assert con.execute(
        "select customer_id, ordered_at, amount, status from raw.orders where order_id = 'O6'"
    ).fetchone() == (" C1 ", "2026-03-04T09:00:00+02:00", " 12.50 ", "COMPLETED")


def test_a_row_that_cannot_be_typed_is_quarantined_unchanged_with_its_reasons(landing, tmp_path):
    _write(
        landing,
        "orders",
        "2026-03-04",
        ORDERS_HEADER + "O6,C1,not a date,12abc,completed\nO7,C1,2026-03-04 08:00:00,3,completed\n",
    )
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    report = load_partitions(con, date(2026, 3, 4), sources=("orders",), run_id="run-1")
    assert con.execute(
        "select ordered_at, amount, _reasons, _run_id, _as_of_date, _source_file "
        "from quarantine.orders where order_id = 'O6'"
    ).fetchone() == (
        "not a date",
        "12abc",
        ["unparseable_timestamp", "unparseable_amount"],
        "run-1",
        date(2026, 3, 4),
        "orders/date=2026-03-04/part.csv",
    )
    assert con.execute(
        "select order_id from raw.orders where _partition_date = '2026-03-04'"
    ).fetchall() == [("O7",)]
    load = report.sources["orders"]
    assert (load.rows_in, load.rows_loaded, load.rows_quarantined) == (7, 6, 1)
    assert con.execute(
        "select rows_in, row_count, rows_quarantined from raw._load_log "
        "where partition_date = '2026-03-04'"
    ).fetchone() == (2, 1, 1)


def test_columns_in_another_order_and_extra_columns_are_accepted(landing, tmp_path):
    _write(
        landing,
        "orders",
        "2026-03-04",
        "status,amount,order_id,customer_id,ordered_at,coupon\n"
        "completed,7.5,O7,C9,2026-03-04 08:00:00,SPRING\n",
    )
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    report = load_partitions(con, date(2026, 3, 4), sources=("orders",))
    assert con.execute(
        "select customer_id, amount, status from raw.orders where order_id = 'O7'"
    ).fetchone() == ("C9", "7.5", "completed")
    assert report.sources["orders"].extra_columns == {"orders/date=2026-03-04/part.csv": ["coupon"]}


def test_a_missing_column_is_a_clear_error_naming_the_file(landing, tmp_path):
    bad = _write(
        landing, "orders", "2026-03-04", "order_id,customer_id,amount,status\nO8,C1,3.0,completed\n"
    )
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    with pytest.raises(IngestionError) as error:
        load_partitions(con, date(2026, 3, 4), sources=("orders",))
    assert str(bad) in str(error.value)
    assert "ordered_at" in str(error.value)
    # Nothing of the failed day was loaded.
    assert (
        con.execute(
            "select count(*) from raw.orders where _partition_date = '2026-03-04'"
        ).fetchone()[0]
        == 0
    )


def test_a_missing_day_is_reported_for_the_gate(landing, tmp_path):
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    report = load_partitions(con, date(2026, 3, 5), sources=("orders",))
    assert report.sources["orders"].missing_as_of_partition
    assert date(2026, 3, 5) in report.validation_scope()["orders"]


def test_a_batch_larger_than_a_duckdb_row_group_loads_every_row(landing, tmp_path):
    # DuckDB 2.0 loses the rows of a temp table filled with more than one row group (122,880
    # rows) inside a transaction; the loader stages them before its transaction. A first run's
    # batches of 64 days are that big from ~2,000 orders a day.
    rows = "".join(
        f"B{i},C{i % 97},2026-03-04 {i % 24:02d}:00:00,{1 + i % 50}.00,completed\n"
        for i in range(130_000)
    )
    _write(landing, "orders", "2026-03-04", ORDERS_HEADER + rows)
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    report = load_partitions(con, date(2026, 3, 4), sources=("orders",))
    assert report.sources["orders"].rows_loaded == 130_005
    assert con.execute(
        "select count(distinct order_id) from raw.orders where _partition_date = '2026-03-04'"
    ).fetchone() == (130_000,)


def test_compressed_and_upper_case_csv_files_load(landing, tmp_path):
    import gzip

    folder = landing / "orders" / "date=2026-03-04"
    folder.mkdir(parents=True)
    (folder / "a.csv.gz").write_bytes(
        gzip.compress((ORDERS_HEADER + "G1,C1,2026-03-04 08:00:00,3,completed\n").encode())
    )
    (folder / "B.CSV").write_text(ORDERS_HEADER + "G2,C1,2026-03-04 09:00:00,4,completed\n")
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    report = load_partitions(con, date(2026, 3, 4), sources=("orders",))
    assert con.execute(
        "select order_id, _source_file from raw.orders where _partition_date = '2026-03-04' "
        "order by 1"
    ).fetchall() == [
        ("G1", "orders/date=2026-03-04/a.csv.gz"),
        ("G2", "orders/date=2026-03-04/B.CSV"),
    ]
    assert report.sources["orders"].layout_problems == []


def test_what_cannot_be_loaded_is_reported_with_its_path(landing, tmp_path):
    orders = landing / "orders"
    (orders / "date=2026-13-45").mkdir()
    (orders / "date=2026-03-02" / "notes.xlsx").write_text("not a csv")
    (orders / "date=2026-03-03" / "part.csv").unlink()
    (orders / "misc").mkdir()
    (landing / "returns").mkdir()
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    report = load_partitions(con, date(2026, 3, 3), sources=("orders",))
    assert report.sources["orders"].layout_problems == [
        f"ignored {orders / 'date=2026-03-02' / 'notes.xlsx'}: csv files end in .csv, .csv.gz",
        f"empty partition {orders / 'date=2026-03-03'}: no csv file in it",
        f"ignored {orders / 'date=2026-13-45'}: 2026-13-45 is not a calendar date",
        f"ignored {orders / 'misc'}: not a date=YYYY-MM-DD partition folder",
    ]
    assert report.unknown_folders == [
        f"ignored {landing / 'returns'}: no source of {get_settings().sources_config} "
        "reads this folder"
    ]
    assert report.sources["orders"].partitions_loaded == ["2026-03-01", "2026-03-02"]


def test_a_header_naming_a_column_twice_is_an_error_naming_file_and_column(landing, tmp_path):
    bad = _write(
        landing,
        "orders",
        "2026-03-04",
        "order_id,customer_id,ordered_at,amount,status,amount\nO9,C1,2026-03-04,1,completed,2\n",
    )
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    with pytest.raises(IngestionError) as error:
        load_partitions(con, date(2026, 3, 4), sources=("orders",))
    assert str(error.value) == f"{bad}: column(s) amount appear more than once in the header."


def test_an_unterminated_quote_swallowing_lines_stops_the_load_naming_the_lines(landing, tmp_path):
    rows = [f"Q{i},C1,2026-03-04 08:00:00,{i},completed" for i in range(1, 21)]
    rows[7] = 'Q8,C1,2026-03-04 08:00:00,"8,completed'  # the quote is never closed
    bad = _write(landing, "orders", "2026-03-04", ORDERS_HEADER + "\n".join(rows) + "\n")
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    with pytest.raises(IngestionError) as error:
        load_partitions(con, date(2026, 3, 4), sources=("orders",))
    assert str(error.value).startswith(f"{bad}: lines 9..21 (13 lines) were read as one malformed")
    assert "max_malformed_lines (3)" in str(error.value)
    assert (
        con.execute(
            "select count(*) from raw.orders where _partition_date = '2026-03-04'"
        ).fetchone()[0]
        == 0
    )


def test_a_short_malformed_region_is_quarantined_with_the_lines_it_spans(landing, tmp_path):
    _write(
        landing,
        "orders",
        "2026-03-04",
        ORDERS_HEADER + "M1,C1,2026-03-04 08:00:00,1,completed,extra\n"
        "M2,C1,2026-03-04 09:00:00,2,completed\n\n"  # an empty line holds nothing: not lost
        'M3,C1,2026-03-04 10:00:00,3,"completed\nby phone"\n',  # a quoted value on two lines
    )
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    report = load_partitions(con, date(2026, 3, 4), sources=("orders",))
    assert con.execute(
        "select _line_number, _line_count, _reasons from quarantine.orders "
        "where _partition_date = '2026-03-04' and _line_count is not null"
    ).fetchall() == [(2, 1, ["wrong_column_count"])]
    load = report.sources["orders"]
    assert load.rows_in == load.rows_loaded + load.rows_quarantined


def _write_bytes(landing: Path, day: str, data: bytes, name: str = "part.csv") -> Path:
    folder = landing / "orders" / f"date={day}"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(data)
    return path


def test_a_byte_order_mark_before_a_quoted_header_loads_like_the_file_without_it(landing, tmp_path):
    # as R's write.csv and pandas' to_csv(encoding="utf-8-sig") write it
    header = ",".join(f'"{name}"' for name in ORDERS_HEADER.strip().split(","))
    _write_bytes(
        landing,
        "2026-03-04",
        b"\xef\xbb\xbf" + f"{header}\nU1,C1,2026-03-04 08:00:00,3.00,completed\n".encode(),
    )
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    report = load_partitions(con, date(2026, 3, 4), sources=("orders",))
    assert con.execute(
        "select order_id, amount from raw.orders where _partition_date = '2026-03-04'"
    ).fetchall() == [("U1", "3.00")]
    assert report.sources["orders"].extra_columns == {}


def test_a_file_holding_only_a_byte_order_mark_is_empty(landing, tmp_path):
    bad = _write_bytes(landing, "2026-03-04", b"\xef\xbb\xbf")
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    with pytest.raises(IngestionError) as error:
        load_partitions(con, date(2026, 3, 4), sources=("orders",))
    assert str(error.value).startswith(f"{bad}: the file is empty (no header row)")


@pytest.mark.parametrize(
    ("encoding", "found"),
    [
        ("utf-16", "the file is UTF-16 (it starts with a UTF-16 byte order mark)"),
        ("utf-16-le", "the header holds NUL bytes (a UTF-16 file without a byte order mark?)"),
    ],
)
def test_a_utf16_file_is_refused_saying_it_must_be_utf8(landing, tmp_path, encoding, found):
    text = ORDERS_HEADER + "W1,C1,2026-03-04 08:00:00,3.00,completed\n"
    bad = _write_bytes(landing, "2026-03-04", text.encode(encoding))
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    with pytest.raises(IngestionError) as error:
        load_partitions(con, date(2026, 3, 4), sources=("orders",))
    assert str(error.value).startswith(f"{bad}: {found}; files must be UTF-8.")


def test_hidden_files_in_a_partition_are_skipped_and_reported(landing, tmp_path):
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    first = load_partitions(con, date(2026, 3, 2), sources=("orders",))
    mark_validated(con, first.validation_scope(), as_of_date=date(2026, 3, 2))
    # what macOS leaves next to a file copied to a shared drive: an AppleDouble sidecar
    sidecar = _write_bytes(
        landing,
        "2026-03-01",
        b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X" + b"\x00" * 50,
        name="._part.csv",
    )
    (sidecar.parent / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")

    report = load_partitions(con, date(2026, 3, 2), sources=("orders",))
    assert report.sources["orders"].layout_problems == [
        f"ignored {sidecar.parent / '.DS_Store'}: a hidden file (its name starts with '.')",
        f"ignored {sidecar}: a hidden file (its name starts with '.')",
    ]
    # the partition's files are those it was loaded with: not reloaded
    assert report.sources["orders"].partitions_loaded == ["2026-03-02"]
    assert report.sources["orders"].partitions_unchanged == 1
    assert len(_rows(con)) == 4


def test_an_empty_last_column_without_a_name_is_ignored_like_an_extra_column(landing, tmp_path):
    # some exports end every line, the header's too, with the delimiter
    _write(
        landing,
        "orders",
        "2026-03-04",
        ORDERS_HEADER.replace("\n", ",\n") + "T1,C1,2026-03-04 08:00:00,3.00,completed,\n"
        "T2,C2,2026-03-04 09:00:00,4.00,completed, \n",
    )
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    report = load_partitions(con, date(2026, 3, 4), sources=("orders",))
    assert con.execute(
        "select order_id, amount, status from raw.orders where _partition_date = '2026-03-04' "
        "order by 1"
    ).fetchall() == [("T1", "3.00", "completed"), ("T2", "4.00", "completed")]
    assert report.sources["orders"].extra_columns == {
        "orders/date=2026-03-04/part.csv": ["(unnamed column 6)"]
    }


def test_values_in_an_unnamed_last_column_stop_the_load_naming_the_file(landing, tmp_path):
    bad = _write(
        landing,
        "orders",
        "2026-03-04",
        ORDERS_HEADER.replace("\n", ",\n") + "T1,C1,2026-03-04 08:00:00,3.00,completed,\n"
        "T2,C2,2026-03-04 09:00:00,4.00,completed,jane@example.com\n",
    )
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    with pytest.raises(IngestionError) as error:
        load_partitions(con, date(2026, 3, 4), sources=("orders",))
    assert str(error.value).startswith(
        f"{bad}: the header's last column (6) has no name, but 1 line(s) have a value in it. "
        "Examples: 'j***@e***.com'."
    )
    assert con.execute("select count(*) from raw.orders").fetchone() == (0,)


def test_a_column_without_a_name_is_an_error_naming_the_file_and_its_position(landing, tmp_path):
    bad = _write(
        landing,
        "orders",
        "2026-03-04",
        "order_id,customer_id,,ordered_at,amount,status\nT1,C1,,2026-03-04,3.00,completed\n",
    )
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    with pytest.raises(IngestionError) as error:
        load_partitions(con, date(2026, 3, 4), sources=("orders",))
    assert str(error.value) == (
        f"{bad}: column(s) 3 of the 6 in the header have no name "
        "(order_id, customer_id, , ordered_at, amount, status): name them in the header or "
        "remove them from the file."
    )


def test_a_file_mixing_line_endings_is_refused_saying_so(landing, tmp_path):
    # two exports joined: the first with \n, the second with \r\n
    rows = [f"E{i},C1,2026-03-04 08:00:00,{i}.00,completed" for i in range(1, 8)]
    text = ORDERS_HEADER + "\n".join(rows[:3]) + "\n" + "\r\n".join(rows[3:]) + "\r\n"
    bad = _write_bytes(landing, "2026-03-04", text.encode())
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    with pytest.raises(IngestionError) as error:
        load_partitions(con, date(2026, 3, 4), sources=("orders",))
    assert str(error.value).startswith(
        f"{bad}: the file mixes line endings (4 \\r\\n and 4 \\n line ends: two files joined?)"
    )
    assert "deliver the file again with one kind of line ending" in str(error.value)
    assert con.execute(
        "select count(*) from raw.orders where _partition_date = '2026-03-04'"
    ).fetchone() == (0,)


def test_raw_rows_keep_their_line_so_the_later_copy_of_an_id_is_known(landing, tmp_path):
    """Two lines of one order id with different amounts both load (only a line repeated whole is
    a duplicate); each raw row keeps its line in the file, which dbt uses to keep the later."""
    _write(
        landing,
        "orders",
        "2026-03-04",
        ORDERS_HEADER + "O7,C1,2026-03-04 09:00:00,33.22,completed\n"
        "O8,C2,2026-03-04 10:00:00,20.00,completed\n"
        "O7,C1,2026-03-04 09:00:00,5.00,completed\n",
    )
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    load_partitions(con, date(2026, 3, 4), sources=("orders",))
    assert con.execute(
        "select order_id, amount, _source_file, _line_number from raw.orders "
        "where _partition_date = '2026-03-04' order by _line_number"
    ).fetchall() == [
        ("O7", "33.22", "orders/date=2026-03-04/part.csv", 2),
        ("O8", "20.00", "orders/date=2026-03-04/part.csv", 3),
        ("O7", "5.00", "orders/date=2026-03-04/part.csv", 4),
    ]
