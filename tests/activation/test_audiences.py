"""Audience files on a real DuckDB warehouse with two published versions."""

from __future__ import annotations

import csv
import hashlib
import json
import threading
from datetime import date
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from activation.audiences import export_audiences
from core.settings import get_settings
from ml_tasks import versions
from ml_tasks.matching import membership_changes

FIRST, SECOND = date(2026, 6, 29), date(2026, 6, 30)
# customer: (segment on the first night, segment on the second, consent)
CUSTOMERS = {
    "c1": (1, 1, True),  # stayed
    "c2": (1, 2, True),  # moved 1 -> 2
    "c3": (2, None, True),  # exited (gone on the second night)
    "c4": (None, 2, True),  # entered
    "c5": (2, 2, False),  # said no
    "c6": (1, 1, None),  # consent unknown
    "=SUM(A1:A9)": (2, 2, True),  # a formula in an id field
}


def _hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _publish(con: duckdb.DuckDBPyConnection, as_of: date, night: int, previous) -> int:
    members = pd.Series(
        {c: seg[night] for c, seg in CUSTOMERS.items() if seg[night] is not None}, dtype="int64"
    )
    names = {1: "High-value loyal", 2: "Low-value new"}
    profiles = pd.DataFrame(
        {
            "segment_id": [1, 2],
            "segment_name": [names[1], names[2]],
            "description": ["", ""],
            "customer_count": [int((members == 1).sum()), int((members == 2).sum())],
            "share": [0.5, 0.5],
            "top_traits": [[], []],
        }
    )
    candidate = versions.Candidate(
        as_of_date=as_of,
        run_id="test",
        algorithm="kmeans",
        k=2,
        assignments=pd.DataFrame(
            {
                "customer_id": members.index,
                "segment_id": members.to_numpy(),
                "segment_name": [names[s] for s in members],
            }
        ),
        profiles=profiles,
        previous_version_id=None if previous is None else previous[0],
        membership_changes=membership_changes(None if previous is None else previous[1], members),
    )
    version_id = versions.write_version(con, candidate)
    versions.publish_version(con, version_id)
    con.execute("delete from marts.customers where as_of_date = ?", [as_of])
    for customer, (_, _, consent) in CUSTOMERS.items():
        email, phone = f" {customer.upper()}@Example.com ", f"+44 20 7946 {len(customer):04d}"
        con.execute("insert into marts.customers values (?, ?, ?)", [as_of, customer, consent])
        con.execute(
            "insert or replace into pii.customer_identifiers values (?, ?, ?, ?, ?)",
            [customer, email, phone, _hash(email.strip().lower()), _hash("+4420794600")],
        )
    return version_id, members


@pytest.fixture
def warehouse(tmp_path, monkeypatch) -> duckdb.DuckDBPyConnection:
    monkeypatch.setenv("SEGMENTS_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("SEGMENTS_REPORTS_DIR", raising=False)
    monkeypatch.delenv("SEGMENTS_EXPORT_PROFILE", raising=False)
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    con.execute("create schema marts")
    con.execute("create schema pii")
    con.execute(
        "create table marts.customers "
        "(as_of_date date, customer_id varchar, has_marketing_consent boolean)"
    )
    con.execute(
        "create table pii.customer_identifiers (customer_id varchar primary key, email varchar, "
        "phone varchar, email_sha256 varchar, phone_sha256 varchar)"
    )
    yield con
    con.close()


def _read(folder: Path, name: str) -> list[str]:
    return sorted(pd.read_parquet(folder / name)["customer_id"])


def test_lists_hold_only_consenting_customers_with_changes_since_the_previous_version(warehouse):
    first = _publish(warehouse, FIRST, 0, None)
    _publish(warehouse, SECOND, 1, first)

    result = export_audiences(warehouse)

    current = get_settings().reports_dir / "exports" / "audiences" / "current"
    assert current.resolve() == result.path and result.path.name.startswith(f"v2-{SECOND}-")
    assert _read(current, "segment-1-members.parquet") == ["c1"]  # c6: consent unknown
    assert _read(current, "segment-2-members.parquet") == ["=SUM(A1:A9)", "c2", "c4"]  # c5: no
    assert _read(current, "segment-2-entered.parquet") == ["c2", "c4"]
    assert _read(current, "segment-1-exited.parquet") == ["c2"]
    assert _read(current, "segment-2-exited.parquet") == ["c3"]
    assert _read(current, "segment-1-entered.parquet") == []
    manifest = json.loads((current / "manifest.json").read_text())
    assert manifest["version_id"] == 2 and manifest["as_of_date"] == SECOND.isoformat()
    assert manifest["customers"] == {
        "exported": 4,
        "left_out": {"no_consent": 1, "consent_unknown": 1},
    }
    for entry in manifest["files"]:
        path = current / entry["file"]
        assert hashlib.sha256(path.read_bytes()).hexdigest() == entry["sha256"]
        frame = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
        assert len(frame) == entry["rows"], entry
    assert len(manifest["files"]) == 2 * 3 * 2  # segments x lists x formats
    members = pd.read_parquet(current / "segment-2-members.parquet")
    assert list(members.columns) == [
        "customer_id", "segment_id", "segment_name", "email_sha256", "phone_sha256"
    ]  # fmt: skip
    assert members.set_index("customer_id").loc["c4", "email_sha256"] == _hash("c4@example.com")


def test_csv_cells_a_spreadsheet_would_run_are_neutralised(warehouse):
    _publish(warehouse, FIRST, 0, None)
    folder = export_audiences(warehouse).path
    with (folder / "segment-2-members.csv").open() as handle:
        ids = [row["customer_id"] for row in csv.DictReader(handle)]
    assert "'=SUM(A1:A9)" in ids and "=SUM(A1:A9)" not in ids


def test_plain_identifiers_only_in_the_crm_profile(warehouse, monkeypatch):
    _publish(warehouse, FIRST, 0, None)
    ad = export_audiences(warehouse).path
    assert "email" not in pd.read_parquet(ad / "segment-1-members.parquet").columns
    assert not any("@" in p.read_text() for p in ad.glob("*.csv"))

    monkeypatch.setenv("SEGMENTS_EXPORT_PROFILE", "crm")
    crm = export_audiences(warehouse, version_id=1).path  # already exported: not rewritten
    assert crm == ad
    con_crm = get_settings().data_dir / "crm-reports"
    monkeypatch.setenv("SEGMENTS_REPORTS_DIR", str(con_crm))
    crm_export = export_audiences(warehouse).path
    frame = pd.read_parquet(crm_export / "segment-1-members.parquet")
    assert frame.loc[0, "email"].strip() == "C1@Example.com"


def test_a_reader_of_current_never_sees_a_half_written_export(warehouse):
    first = _publish(warehouse, FIRST, 0, None)
    root = get_settings().reports_dir / "exports" / "audiences"
    export_audiences(warehouse)
    problems: list[str] = []
    reads = 0
    stop = threading.Event()

    def read_current() -> None:
        # The documented way to read: resolve current/ once, then read that folder.
        nonlocal reads
        while not stop.is_set():
            folder = (root / "current").resolve()
            try:
                manifest = json.loads((folder / "manifest.json").read_text())
                for entry in manifest["files"]:
                    data = (folder / entry["file"]).read_bytes()
                    if hashlib.sha256(data).hexdigest() != entry["sha256"]:
                        problems.append(f"{entry['file']} does not match its manifest")
                reads += 1
            except (OSError, ValueError) as exc:
                problems.append(f"{folder.name}: {exc!r}")

    reader = threading.Thread(target=read_current)
    reader.start()
    try:
        previous = first
        for night in range(12):
            # Each night a new version is published and exported; current/ swaps to it.
            previous = _publish(warehouse, date(2026, 7, 1 + night), 1, previous)
            export_audiences(warehouse)
    finally:
        stop.set()
        reader.join(timeout=30)
    assert reads > 0
    assert problems == []
