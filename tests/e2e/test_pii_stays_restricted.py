"""Direct identifiers stay in the restricted layers through a whole night.

Canary customers with distinctive names, e-mail addresses and phone numbers are planted in the
demo's landing data (one of them with an impossible birth date, so it is quarantined and shows up
as a masked example in the quality reports). After a night (ingest, both gates, dbt, recluster,
publish, the segment export and the run summary), none of the planted values may appear in any
table of the intermediate, marts, segments and quality schemas, in any file under the reports
folder, the Data Docs or dbt's logs, or in the run's log; all of them must be in
``pii.customer_identifiers`` (or, for the quarantined one, in ``quarantine.customers``), so the
scan is known to look for values that exist.
"""

from __future__ import annotations

import csv
import logging
import re
from datetime import date
from pathlib import Path

import duckdb
import pytest

from core.contract import SOURCE_COLUMNS
from core.settings import Settings, get_settings
from core.warehouse import quote_ident
from pipeline import steps
from tools.demo_data import generate_demo_data
from tools.summary import summarize

pytestmark = pytest.mark.slow

DEMO_DATE = date(2026, 6, 30)
N_CUSTOMERS = 1000
SCANNED_SCHEMAS = ("intermediate", "marts", "segments", "quality")
N_CANARIES = 8


def _canary(i: int) -> dict[str, str]:
    return {
        "customer_id": f"C9{i:06d}",
        "first_name": f"Quorra{i}",
        "last_name": f"Zwyndell{i}",
        # Mixed case: the scan and the normal form are lower case. Each on its own domain and
        # birth date, or identity resolution would rightly take them for one person.
        "email": f"Quorra.Zwyndell{i}@Canary{i}-Mail.example",
        "phone": f"+1 (212) 555-73{i:02d}",
        "birth_date": f"1984-03-{i + 1:02d}",
        "gender": "f",
        "city": "Springfield",
        "state": "IL",
        "country": "US",
        "income_band": "50-75k",
        "signup_at": "2026-06-30 09:00:00",
        "marketing_consent": "true",
        "updated_at": "2026-06-30 09:00:00",
    }


CANARIES = [_canary(i) for i in range(N_CANARIES)]
# Quarantined (an impossible age): its identifiers only reach quarantine and masked examples.
QUARANTINED = {**_canary(N_CANARIES), "birth_date": "1066-10-14"}


def _needles(person: dict[str, str]) -> set[str]:
    """The forms a planted value could be copied in: as typed, normalised, digits only."""
    digits = re.sub(r"\D", "", person["phone"])
    return {
        person["email"].lower(),
        person["phone"].lower(),
        f"+{digits}",
        digits[-10:],
        person["first_name"].lower(),
        person["last_name"].lower(),
    }


def _plant(landing: Path) -> None:
    partition = landing / "customers" / f"date={DEMO_DATE.isoformat()}"
    partition.mkdir(parents=True, exist_ok=True)
    with (partition / "canaries.csv").open("w", newline="", encoding="utf-8") as out:
        writer = csv.DictWriter(out, fieldnames=SOURCE_COLUMNS["customers"])
        writer.writeheader()
        writer.writerows([*CANARIES, QUARANTINED])


@pytest.fixture(scope="module")
def night(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, Path]:
    data_dir: Path = tmp_path_factory.mktemp("pii")
    run_log = data_dir / "run.log"
    handler = logging.FileHandler(run_log, encoding="utf-8")
    handler.setLevel(logging.DEBUG)
    root = logging.getLogger()
    previous_level = root.level
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setenv("SEGMENTS_DATA_DIR", str(data_dir))
        for name in (
            "SEGMENTS_WAREHOUSE",
            "SEGMENTS_LANDING_DIR",
            "SEGMENTS_TRUTH_DIR",
            "SEGMENTS_REPORTS_DIR",
        ):
            monkeypatch.delenv(name, raising=False)
        settings = get_settings()
        generate_demo_data(settings.landing_dir, settings.truth_dir, n_customers=N_CUSTOMERS)
        _plant(settings.landing_dir)
        root.addHandler(handler)
        root.setLevel(logging.DEBUG)
        try:
            ingested = steps.ingest(DEMO_DATE, settings=settings)
            steps.validate_raw(DEMO_DATE, ingested["validation_scope"], settings=settings)
            steps.build_marts(DEMO_DATE, settings=settings)
            steps.validate_marts(DEMO_DATE, settings=settings)
            version = steps.recluster(DEMO_DATE, settings=settings)
            steps.publish(DEMO_DATE, version["version_id"], settings=settings)
            steps.export_audiences(DEMO_DATE, version["version_id"], settings=settings)
            text, _ = summarize(DEMO_DATE, settings)
            logging.getLogger(__name__).info("%s", text)
        finally:
            root.removeHandler(handler)
            root.setLevel(previous_level)
            handler.close()
    return settings, run_log


def _found_in_tables(con: duckdb.DuckDBPyConnection, schemas: tuple[str, ...]) -> dict:
    """{table: planted values found in it}, every column read as lower-case text."""
    con.execute("create or replace temp table needles (needle varchar)")
    needles = set().union(*(_needles(person) for person in [*CANARIES, QUARANTINED]))
    con.executemany("insert into needles values (?)", [[needle] for needle in sorted(needles)])
    tables = con.execute(
        "select table_schema, table_name from information_schema.tables "
        "where table_schema in (select unnest(?))",
        [list(schemas)],
    ).fetchall()
    assert {schema for schema, _ in tables} == set(schemas)  # the scan reads every schema
    found = {}
    for schema, table in tables:
        columns = [
            quote_ident(column)
            for (column,) in con.execute(
                "select column_name from information_schema.columns "
                "where table_schema = ? and table_name = ?",
                [schema, table],
            ).fetchall()
        ]
        row_text = " || '|' || ".join(f"coalesce(cast({c} as varchar), '')" for c in columns)
        relation = f"{quote_ident(schema)}.{quote_ident(table)}"
        hits = con.execute(
            f"select distinct needle from needles, "
            f"(select lower({row_text}) as row_text from {relation}) "
            "where contains(row_text, needle)"
        ).fetchall()
        if hits:
            found[f"{schema}.{table}"] = sorted(hit for (hit,) in hits)
    return found


def _scanned_files(settings: Settings, run_log: Path) -> list[Path]:
    folders = [settings.reports_dir, settings.data_dir / "gx", settings.data_dir / "dbt" / "logs"]
    files = [path for folder in folders for path in folder.rglob("*") if path.is_file()]
    return [*files, run_log]


def test_planted_identifiers_reach_the_restricted_layers(night) -> None:
    settings, _ = night
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        identifiers = con.execute(
            "select customer_id, email_normalized, phone_e164, first_name "
            "from pii.customer_identifiers where customer_id like 'C9%'"
        ).fetchall()
        quarantined = con.execute(
            "select email, phone from quarantine.customers where customer_id = ?",
            [QUARANTINED["customer_id"]],
        ).fetchall()
    assert sorted(identifiers) == [
        (
            person["customer_id"],
            person["email"].lower(),
            "+" + re.sub(r"\D", "", person["phone"]),
            person["first_name"],
        )
        for person in CANARIES
    ]
    assert quarantined == [(QUARANTINED["email"], QUARANTINED["phone"])]


def test_no_planted_identifier_outside_the_restricted_layers(night) -> None:
    settings, run_log = night
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        assert _found_in_tables(con, SCANNED_SCHEMAS) == {}
        # the scan finds them where they are allowed (so it can fail)
        assert "pii.customer_identifiers" in _found_in_tables(con, ("pii",))
    needles = set().union(*(_needles(person) for person in [*CANARIES, QUARANTINED]))
    files = _scanned_files(settings, run_log)
    assert any(path.suffix == ".json" and "runs" in path.parts for path in files)
    assert any(path.suffix == ".html" for path in files)  # Data Docs
    assert any(path.suffix == ".csv" for path in files)  # the segment export
    assert run_log.stat().st_size > 0
    leaks = {}
    for path in files:
        text = path.read_bytes().decode("utf-8", errors="ignore").lower()
        found = sorted(needle for needle in needles if needle in text)
        if found:
            leaks[str(path.relative_to(settings.data_dir))] = found
    assert leaks == {}
