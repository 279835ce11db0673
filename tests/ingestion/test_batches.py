"""Catching up on history in batches bounded by partitions and bytes: every line is loaded or
quarantined exactly once whatever the batch size, and duplicates are still found."""

from __future__ import annotations

import itertools
from datetime import date
from pathlib import Path

import duckdb
import pytest

from core.settings import get_settings
from ingestion import load
from ingestion.load import load_partitions, plan_batches

HEADER = "order_id,customer_id,ordered_at,amount,status\n"


@pytest.mark.parametrize(
    ("sizes", "max_partitions", "max_bytes"),
    [
        ([], 64, 100),
        ([10] * 10, 3, 1000),
        ([10] * 10, 64, 25),
        ([5, 200, 5, 5, 300, 1, 1], 64, 100),  # partitions larger than the budget
        ([1, 2, 3, 4, 5, 6, 7, 8, 9], 4, 12),
        ([0, 0, 0], 2, 1),
    ],
)
def test_batches_cover_every_partition_once_in_order_within_bounds(
    sizes: list[int], max_partitions: int, max_bytes: int
) -> None:
    batches = plan_batches(sizes, max_partitions, max_bytes)

    assert [index for batch in batches for index in batch] == list(range(len(sizes)))
    for batch in batches:
        assert 1 <= len(batch) <= max_partitions
        # Over the budget only when a single partition is larger than it.
        assert sum(sizes[i] for i in batch) <= max_bytes or len(batch) == 1
    # Greedy: a batch ends only because the next partition would not fit.
    for batch, following in itertools.pairwise(batches):
        next_size = sizes[following.start]
        assert len(batch) == max_partitions or sum(sizes[i] for i in batch) + next_size > max_bytes


def _write(landing: Path, day: str, name: str, lines: list[str]) -> None:
    folder = landing / "orders" / f"date={day}"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(HEADER + "".join(line + "\n" for line in lines))


@pytest.fixture
def landing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SEGMENTS_DATA_DIR", str(tmp_path))
    landing = get_settings().landing_dir
    for offset in range(5):
        day = f"2026-03-0{offset + 1}"
        _write(
            landing,
            day,
            "a.csv",
            [
                f"A{offset}1,C1,{day} 09:00:00,10.00,completed",
                f"A{offset}2,C2,{day} 10:00:00,20.00,completed",
                f"A{offset}3,,{day} 11:00:00,5.00,completed",  # missing customer
            ],
        )
    # The 3rd: a second file repeating a line of the first (a duplicate across files of one
    # partition), a line repeated within the file, and a line the reader cannot split.
    _write(
        landing,
        "2026-03-03",
        "b.csv",
        [
            "B1,C1,2026-03-03 08:00:00,1.00,completed",
            "A21,C1,2026-03-03 09:00:00,10.00,completed",
            "B1,C1,2026-03-03 08:00:00,1.00,completed",
            "B2,C2,2026-03-03 12:00:00,2.00,completed,extra",
            "B3,C2,2026-03-03 13:00:00,3.00,completed",
        ],
    )
    # The same line on another day is no duplicate (duplicates are judged within a partition).
    _write(landing, "2026-03-04", "b.csv", ["B1,C1,2026-03-03 08:00:00,1.00,completed"])
    return landing


def _load(tmp_path: Path, name: str) -> tuple[duckdb.DuckDBPyConnection, load.LoadReport]:
    con = duckdb.connect(str(tmp_path / f"{name}.duckdb"))
    return con, load_partitions(con, date(2026, 3, 5), sources=("orders",), run_id=name)


def _quarantined(con: duckdb.DuckDBPyConnection) -> list[tuple]:
    return con.execute(
        "select _partition_date, _source_file, _line_number, order_id, _reasons "
        "from quarantine.orders order by all"
    ).fetchall()


def test_small_batches_load_and_quarantine_exactly_what_one_batch_does(
    landing: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    whole, whole_report = _load(tmp_path, "whole")

    batches: list[list[Path]] = []
    stage = load._stage_incoming

    def counting_stage(con, spec, files_by_header, as_of_date):
        batches.append([path for group in files_by_header.values() for path in group])
        return stage(con, spec, files_by_header, as_of_date)

    # A budget of one byte: every partition is a batch of its own.
    monkeypatch.setattr(load, "BATCH_BYTES", 1)
    monkeypatch.setattr(load, "_stage_incoming", counting_stage)
    small, small_report = _load(tmp_path, "small")

    assert len(batches) == 5
    assert sorted(path for batch in batches for path in batch) == sorted(landing.rglob("*.csv"))
    raw = "select * from raw.orders order by all"
    assert small.execute(raw).fetchall() == whole.execute(raw).fetchall()
    assert _quarantined(small) == _quarantined(whole)
    for report in (whole_report, small_report):
        orders = report.sources["orders"]
        # 15 lines in the a files, 5 + 1 in the b files: each loaded or quarantined once.
        assert orders.rows_in == 21
        assert orders.rows_loaded + orders.rows_quarantined == 21
        assert orders.rows_quarantined == 5 + 3  # 5 missing customers, 2 duplicates, 1 split

    third = [row for row in _quarantined(small) if row[0] == date(2026, 3, 3)]
    by_line = {(row[1], row[2]): (row[3], row[4]) for row in third}
    # Line numbers count the header as line 1, per file.
    assert by_line[("orders/date=2026-03-03/a.csv", 4)] == ("A23", ["missing_customer_id"])
    # b.csv's line 3 repeats a.csv's line 2: the first copy (by file and line) loads.
    assert by_line[("orders/date=2026-03-03/b.csv", 3)] == ("A21", ["duplicate_row"])
    assert by_line[("orders/date=2026-03-03/b.csv", 4)] == ("B1", ["duplicate_row"])
    assert by_line[("orders/date=2026-03-03/b.csv", 5)] == (None, ["wrong_column_count"])
    assert small.execute(
        "select _source_file from raw.orders where order_id = 'A21'"
    ).fetchall() == [("orders/date=2026-03-03/a.csv",)]
    # The repeat on the 4th is alone in its partition: loaded.
    assert small.execute("select count(*) from raw.orders where order_id = 'B1'").fetchall() == [
        (2,)
    ]


def _whole_file_lines(data: bytes, header: bool) -> tuple[int, int]:
    """The line count on the whole file at once (the definition the blocks must agree with)."""
    if not data:
        return 0, 0
    ends = data.count(b"\n") + data.count(b"\r") - data.count(b"\r\n")
    lines = ends + (0 if data.endswith((b"\n", b"\r")) else 1)
    empty = len(load._EMPTY_LINE.findall(data)) + (1 if data[:1] in (b"\n", b"\r") else 0)
    return max(lines - (1 if header else 0), 0), empty


@pytest.mark.parametrize("block", [1, 2, 3, 5, 64])
def test_lines_counted_in_blocks_equal_the_whole_file_count(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, block: int
) -> None:
    import gzip
    import random

    monkeypatch.setattr(load, "_LINE_BLOCK", block)
    pieces = [b"a", b"bc", b",", b'"', b"\n", b"\r", b"\r\n", b"\n\n", b"\r\r", b"\r\n\r\n"]
    generator = random.Random(block)
    samples = [b"", b"\n", b"\r", b"\r\n", b"h\n\nx", b"h\r\rx\r", b"\r\nh\r\n\r\n"]
    samples += [
        b"".join(generator.choice(pieces) for _ in range(generator.randint(1, 40)))
        for _ in range(300)
    ]
    for number, data in enumerate(samples):
        plain = tmp_path / f"{number}.csv"
        plain.write_bytes(data)
        packed = tmp_path / f"{number}.csv.gz"
        packed.write_bytes(gzip.compress(data))
        for header in (True, False):
            # and whether the file has a quote character (only then can a value hold a line break)
            expected = (*_whole_file_lines(data, header), b'"' in data)
            assert load._physical_lines(plain, header) == expected, data
            assert load._physical_lines(packed, header) == expected, data
            # the lines alone (what the loader counts first): the same lines, no empty ones
            lines_only = (expected[0], 0, expected[2])
            assert load._physical_lines(plain, header, count_empty=False) == lines_only, data
            assert load._physical_lines(packed, header, count_empty=False) == lines_only, data


@pytest.mark.parametrize("block", [1, 2, 3, 64])
def test_line_ends_counted_in_blocks_keep_a_cut_crlf_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, block: int
) -> None:
    monkeypatch.setattr(load, "_LINE_BLOCK", block)
    path = tmp_path / "ends.csv"
    path.write_bytes(b"h\r\na\nb\r\n\r\nc\rd\r")
    assert load._line_ends(path) == {"\\r\\n": 3, "\\n": 1, "\\r": 2}
