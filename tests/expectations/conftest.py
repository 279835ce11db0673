"""A warehouse file with the raw and marts schemas, and a way to put rows in it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest

from core.warehouse import quote_ident


@pytest.fixture
def con(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[duckdb.DuckDBPyConnection]:
    # The gates write their reports and Data Docs under the data dir: this test's folder.
    monkeypatch.setenv("SEGMENTS_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("SEGMENTS_REPORTS_DIR", raising=False)
    connection = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    connection.execute("create schema raw")
    connection.execute("create schema marts")
    yield connection
    connection.close()


def insert_rows(con: duckdb.DuckDBPyConnection, table: str, rows: list[dict[str, Any]]) -> None:
    """Insert dict rows (all with the first row's keys) into ``table``."""
    if not rows:
        return
    columns = list(rows[0])
    names = ", ".join(quote_ident(column) for column in columns)
    marks = ", ".join("?" for _ in columns)
    con.executemany(
        f"insert into {table} ({names}) values ({marks})",
        [[row[column] for column in columns] for row in rows],
    )
