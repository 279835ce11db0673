"""Incremental nights equal full rebuilds, row for row.

One warehouse is built night after night the way the pipeline runs (``run_dbt_build`` for each
as-of date, the intermediate state models updating only what the night changed); after each
night a copy of it is rebuilt with ``full_refresh=True`` for the same date (every base, state and
working table recomputed from raw), and every mart's slice of the night, every intermediate
table and identity resolution's pairs and mapping must come out the same, every column of every
row.

The raw data is generated (seeded) and landed partition by partition with the loader's log, and
the nights bring what real nights bring: events and orders landing days after they happened, rows
whose time is after their landing day (known only once the as-of date reaches it), a partition
re-delivered with changed rows, a re-sent order with a new status, retracted (emptied)
partitions, a CRM record arriving late that merges two people and makes a buyer's web and email
events attributable, a CRM record with a typo in another's address (one person by the fuzzy rule)
that is later updated (two people again), a retracted CRM partition, a stale copy of a CRM
record landed late, a rerun of a date with changed data, backfills of earlier dates after later
ones, and the nights after them.
"""

from __future__ import annotations

import json
import random
import shutil
from collections.abc import Iterator
from dataclasses import replace
from datetime import date, datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from core.contract import MART_COLUMNS, SOURCE_COLUMNS
from core.settings import Settings, get_settings
from ingestion.load import ensure_raw_schema
from transform.dbt_build import DbtBuildError, dbt_paths, run_dbt_build

pytestmark = pytest.mark.slow

STATE_MODELS = (
    "int_orders_deduplicated",
    "int_web_events_deduplicated",
    "int_email_events_deduplicated",
)
INTERMEDIATE_TABLES = (
    *STATE_MODELS,
    "int_orders_attributed",
    "int_web_sessions_aggregated",
    "int_customer_months_aggregated",
    "int_customers_cohorted",
    "int_customers_resolved",
    "int_customer_metrics_joined",
    "int_customers_deduplicated",
    # the identity maps the states keep, brought up to date by each night's differences
    "int_orders_attributed__identity",
    "int_web_sessions_aggregated__identity",
    "int_customers_cohorted__identity",
    "int_customer_metrics_joined__identity",
)
# Identity resolution: the match keys and the fuzzy rule's pairs (incremental states) and the id
# mapping.
IDENTITY_STATE = "pii_similar_email_matches"
IDENTITY_STATES = ("pii_customer_match_keys", IDENTITY_STATE)
# The newest CRM record per id (an incremental state) and what is computed from it every night.
RECORD_TABLES = ("pii_customer_latest_records", "pii_customers_deduplicated")
# Each person's identifiers, merged over their records (an incremental state per customer).
PII_TABLES = (*IDENTITY_STATES, "pii_customers_resolved", *RECORD_TABLES, "customer_identifiers")
# The incremental nights build int_customers_cohorted and int_customer_metrics_joined in parts of
# at most 7 of the demo's customers (materialization state_in_parts); the full
# rebuilds in one.
IN_PARTS = {"customers_per_build_part": 7}
FIRST_DAY = date(2026, 5, 20)
LAST_DAY = date(2026, 6, 30)
Partitions = dict[str, dict[date, list[tuple]]]


def _ts(day: date, hour: int, minute: int = 0) -> str:
    return datetime(day.year, day.month, day.day, hour, minute).strftime("%Y-%m-%d %H:%M:%S")


def _customer(number: int, signup: date, email: str | None = None) -> tuple:
    customer_id = f"C{number:03d}"
    return (
        customer_id, f"Name{number}", f"Family{number}", email or f"person{number}@example.com",
        f"555-{number:04d}", f"19{50 + number % 40}-0{1 + number % 9}-1{number % 9}",
        "fm"[number % 2], "Springfield", "NY", "US", "50-75k", _ts(signup, 9),
        "true", _ts(signup, 9),
    )  # fmt: skip


def _lookalike(number: int, *, of: int, day: date, email: str | None = None) -> tuple:
    """A CRM record ``C<number>`` with the name and birth date of ``C<of>``, a phone of its own
    and (by default) ``C<of>``'s address with a typo."""
    row = list(_customer(of, day, email=email or f"persom{of}@example.com"))
    row[0], row[4] = f"C{number:03d}", f"555-9{number:03d}"
    return tuple(row)


def _with_signup(row: tuple, signup: date, updated: date) -> tuple:
    """A CRM record ``row`` with another signup day, as updated on ``updated``."""
    fields = list(row)
    fields[11], fields[13] = _ts(signup, 9), _ts(updated, 8)
    return tuple(fields)


def _without_consent(number: int, updated: date) -> tuple:
    """``C<number>``'s record with the marketing consent withdrawn on ``updated``, nothing
    else changed."""
    fields = list(_customer(number, date(2026, 1, number)))
    fields[12], fields[13] = "false", _ts(updated, 8)
    return tuple(fields)


def _born(number: int, birth: date, signup: date, landed: date) -> tuple:
    """``C<number>``'s record with the birth date ``birth`` and the signup day ``signup``,
    updated on ``landed``."""
    fields = list(_customer(number, signup))
    fields[5], fields[13] = birth.isoformat(), _ts(landed, 8)
    return tuple(fields)


def _stale_copy(number: int, city: str) -> tuple:
    """A copy of ``C<number>``'s first record in another city, updated the day before it."""
    fields = list(_customer(number, date(2026, 1, number)))
    fields[7], fields[13] = city, _ts(date(2026, 1, number - 1), 9)
    return tuple(fields)


def generated_partitions() -> Partitions:
    """Raw rows per table and landing partition, FIRST_DAY to LAST_DAY (seeded)."""
    rng = random.Random(16)
    partitions: Partitions = {table: {} for table in SOURCE_COLUMNS}

    def land(table: str, day: date, row: tuple) -> None:
        partitions[table].setdefault(day, []).append(row)

    buyers = [f"C{n:03d}" for n in range(1, 25)]
    for number in range(1, 25):
        land("customers", date(2026, 1, number), _customer(number, date(2026, 1, number)))
    # C030 never buys, browses or opens an e-mail (a prospect)
    land("customers", date(2026, 1, 30), _customer(30, date(2026, 1, 30)))
    # prospects whose rows move with the as-of date alone: C050 turns 121 on the last day (an
    # implausible age from then on: its birth date is nulled, an identifier changed); C051 turns
    # 36 on 2026-06-27, and its record, landed on 2026-06-20, gives a signup on 2026-06-28
    # (in the future until that night)
    for row, landed in (
        (_born(50, date(1905, 6, 30), date(2026, 1, 20), date(2026, 1, 20)), date(2026, 1, 20)),
        (_born(51, date(1990, 6, 27), date(2026, 6, 28), date(2026, 6, 20)), date(2026, 6, 20)),
    ):
        land("customers", landed, row)
    # C040 buys and browses without a CRM record (its record lands on a later night)
    buyers.append("C040")
    order, session, web, email = 0, 0, 0, 0
    day = FIRST_DAY
    while day <= LAST_DAY:
        for _ in range(rng.randint(2, 4)):
            order += 1
            lag = rng.choice([0, 0, 0, 1, 3])  # landed days after it was placed
            status = rng.choice(["completed"] * 6 + ["cancelled", "returned"])
            amount = f"{rng.randint(5, 300)}.{rng.randint(0, 99):02d}"
            row = (f"O{order}", rng.choice(buyers), _ts(day - timedelta(lag), rng.randint(0, 23)),
                   amount, status)  # fmt: skip
            land("orders", day, row)
            if rng.random() < 0.2:  # landed again the next day (same row)
                land("orders", day + timedelta(1), row)
        for _ in range(rng.randint(2, 3)):
            session += 1
            customer = rng.choice([*buyers, ""])
            occurred = day - timedelta(rng.choice([0, 0, 1, 4]))
            for step in range(rng.randint(1, 4)):
                web += 1
                event_type = rng.choice(["page_view", "page_view", "add_to_cart", "checkout"])
                row = (f"W{web}", f"S{session}", customer, f"a{session}", event_type,
                       _ts(occurred, 20, step))  # fmt: skip
                land("web_events", day, row)
                if rng.random() < 0.15:
                    land("web_events", day + timedelta(1), row)
        for _ in range(rng.randint(2, 4)):
            email += 1
            event_type = rng.choice(["sent", "sent", "open", "click"])
            occurred = day - timedelta(rng.choice([0, 0, 2]))
            row = (f"E{email}", rng.choice(buyers), f"K{day.day}", event_type,
                   _ts(occurred, 7, email % 60))  # fmt: skip
            land("email_events", day, row)
        # a clock ahead of the landing: known only once the as-of date reaches the next day
        web += 1
        land("web_events", day, (f"W{web}", f"S{session}", rng.choice(buyers), "a0",
                                 "page_view", _ts(day + timedelta(1), 0, 30)))  # fmt: skip
        email += 1
        land("email_events", day, (f"E{email}", rng.choice(buyers), "K0", "open",
                                   _ts(day + timedelta(1), 1)))  # fmt: skip
        day += timedelta(1)
    # sessions of about 90 days before the nights, landed late: they leave the last 90 days
    # (customer_features.sessions_last_90_days) one night after another
    for number, occurred in enumerate(date(2026, 3, 27) + timedelta(n) for n in range(9)):
        web += 1
        row = (f"W{web}", f"S-OLD{number}", buyers[number * 5 % 24], f"a-old{number}",
               "page_view", _ts(occurred, 12))  # fmt: skip
        land("web_events", FIRST_DAY, row)
    return partitions


class Warehouse:
    """Raw tables written as the loader leaves them (rows + load log), and the builds."""

    def __init__(self, settings: Settings, partitions: Partitions) -> None:
        self.settings = settings
        self.partitions = partitions
        self.clock = datetime(2026, 6, 1)
        with self.connect() as con:
            ensure_raw_schema(con)
            for table, columns in SOURCE_COLUMNS.items():
                column_sql = ", ".join(f"{column} varchar" for column in columns)
                con.execute(
                    f"create or replace table raw.{table} "
                    f"({column_sql}, _partition_date date, _source_file varchar, "
                    "_line_number bigint)"
                )

    def connect(self) -> duckdb.DuckDBPyConnection:
        return duckdb.connect(str(self.settings.warehouse_path))

    def land(self, table: str, day: date, rows: list[tuple] | None = None) -> None:
        """(Re)load one partition: its rows (the generated ones by default; [] retracts it)."""
        rows = self.partitions[table].get(day, []) if rows is None else rows
        self.clock += timedelta(minutes=1)
        with self.connect() as con:
            con.execute(f"delete from raw.{table} where _partition_date = ?", [day])
            placeholders = ", ".join("?" for _ in range(len(SOURCE_COLUMNS[table]) + 3))
            if rows:
                con.executemany(
                    f"insert into raw.{table} values ({placeholders})",
                    [
                        [*row, day, f"{table}/date={day}/{table}.csv", line]
                        for line, row in enumerate(rows, start=2)
                    ],
                )
            con.execute(
                "insert or replace into raw._load_log (source, partition_date, fingerprint, "
                "file_count, row_count, run_id, loaded_at) values (?, ?, ?, 1, ?, 'test', ?)",
                [table, day, f"{table}-{day}-{self.clock}", len(rows), self.clock],
            )

    def land_through(self, night: date) -> None:
        """Every generated partition landed by the night that is not in raw yet."""
        with self.connect() as con:
            landed = {
                (table, day)
                for table, day in con.execute(
                    "select source, partition_date from raw._load_log"
                ).fetchall()
            }
        for table, days in self.partitions.items():
            for day in sorted(days):
                if day <= night and (table, day) not in landed:
                    self.land(table, day)

    def query(self, sql: str, params: list | None = None) -> list[tuple]:
        with duckdb.connect(str(self.settings.warehouse_path), read_only=True) as con:
            return con.execute(sql, params or []).fetchall()

    def night_rows(self, night: date) -> dict[str, list[tuple]]:
        """The night's slice of every mart and every intermediate table, ordered."""
        rows = {
            f"marts.{mart}": self.query(
                f"select * from marts.{mart} where as_of_date = ? order by all", [night]
            )
            for mart in MART_COLUMNS
        }
        for table in INTERMEDIATE_TABLES:
            rows[f"intermediate.{table}"] = self.query(
                f"select * from intermediate.{table} order by all"
            )
        for table in PII_TABLES:
            rows[f"pii.{table}"] = self.query(f"select * from pii.{table} order by all")
        return rows

    def tested_states(self) -> dict[str, bool]:
        """Per state model: its last build passed its uniqueness tests (macro
        record_tested_states)."""
        return dict(
            self.query(
                "select model_name, tested_invocation_id is not distinct from invocation_id "
                "from intermediate.incremental_state_ledger where landed_date is null "
                "and model_name not in (select unnest(?))",
                [list(IDENTITY_STATES)],
            )
        )

    def state_runs(self) -> dict[str, int | None]:
        """Keys each state model of the events recomputed in its last run (None: rebuilt from
        history)."""
        return {
            model: keys
            for model, keys in self.all_state_runs().items()
            if model not in IDENTITY_STATES
        }

    def identity_run(self) -> int | None:
        """CRM records whose keys and similar_email pairs the last run computed again (None:
        all); the same for both states."""
        runs = self.all_state_runs()
        assert runs[IDENTITY_STATES[0]] == runs[IDENTITY_STATE], runs
        return runs[IDENTITY_STATE]

    def all_state_runs(self) -> dict[str, int | None]:
        return dict(
            self.query(
                "select model_name, changed_keys from intermediate.incremental_state_ledger "
                "where landed_date is null"
            )
        )


@pytest.fixture
def warehouse(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Warehouse]:
    data_dir = tmp_path / "incremental"
    data_dir.mkdir()
    monkeypatch.setenv("SEGMENTS_DATA_DIR", str(data_dir))
    monkeypatch.setenv("SEGMENTS_WAREHOUSE", str(data_dir / "warehouse.duckdb"))
    yield Warehouse(get_settings(), generated_partitions())


def assert_equals_full_rebuild(warehouse: Warehouse, night: date, tmp_path: Path) -> None:
    """A copy of the warehouse rebuilt from raw for the night has the same slice and state."""
    full_dir = tmp_path / f"full-{night}"
    full_dir.mkdir()
    settings = replace(
        warehouse.settings, data_dir=full_dir, warehouse_path=full_dir / "warehouse.duckdb"
    )
    shutil.copy(warehouse.settings.warehouse_path, settings.warehouse_path)
    run_dbt_build(night, settings=settings, full_refresh=True)
    full = Warehouse.__new__(Warehouse)
    full.settings = settings
    expected = full.night_rows(night)
    actual = warehouse.night_rows(night)
    assert expected["marts.customer_features"], "the night has customers"
    for table, rows in expected.items():
        assert actual[table] == rows, f"{table} on {night}: incremental differs from full rebuild"
    shutil.rmtree(full_dir)


def redeliver_changed(warehouse: Warehouse, old: date) -> None:
    """The orders and web partitions of ``old`` landed again with changed rows: an amount, a
    status, a dropped order, a moved event, a new one."""
    orders = [list(row) for row in warehouse.partitions["orders"][old]]
    orders[0][3] = "999.00"
    orders[1][4] = "cancelled" if orders[1][4] == "completed" else "completed"
    warehouse.land("orders", old, [tuple(row) for row in orders[:-1]])
    web = [list(row) for row in warehouse.partitions["web_events"][old]]
    web[0][1] = "S-MOVED"
    web[0][4] = "checkout"
    web.append(["W-NEW", "S-MOVED", "C003", "a-new", "add_to_cart", _ts(old, 21)])
    warehouse.land("web_events", old, [tuple(row) for row in web])


def land_with_crm_records(warehouse: Warehouse, night: date, records: list[tuple]) -> None:
    """The night's partitions landed, its CRM partition with ``records``."""
    warehouse.land_through(night)
    warehouse.land("customers", night, records)


def land_early_engagement(warehouse: Warehouse, night: date) -> None:
    """The night's e-mail partition landed again with an open from early May, before the first
    order of a buyer not engaged by e-mail before it so far (their cohort changes)."""
    ((buyer,),) = warehouse.query(
        "select min(customer_id) from intermediate.int_customers_cohorted "
        "where first_order_at is not null and not is_email_engaged_before_first_order"
    )
    early = ("E-EARLY", buyer, "K-EARLY", "open", _ts(date(2026, 5, 2), 7))
    warehouse.land("email_events", night, [*warehouse.partitions["email_events"][night], early])


def assert_identity(
    warehouse: Warehouse, *, compared: int, pairs: list[tuple[str, str]], c041_is: str | None
) -> None:
    """The last run compared ``compared`` CRM records again (the others kept their pairs), the
    fuzzy rule's pairs are ``pairs`` and C041 is the person ``c041_is`` (None: not known)."""
    assert warehouse.identity_run() == compared
    assert warehouse.query(f"select * from pii.{IDENTITY_STATE} order by all") == pairs
    person = warehouse.query(
        "select customer_id from intermediate.int_customers_resolved "
        "where source_customer_id = 'C041'"
    )
    assert person == ([(c041_is,)] if c041_is else [])


def assert_latest_record(
    warehouse: Warehouse, *, recomputed: int, customer: str, city: str
) -> None:
    """The last run recomputed the newest record of ``recomputed`` CRM ids, and ``customer``'s
    is the one in ``city``."""
    assert warehouse.state_runs()["pii_customer_latest_records"] == recomputed
    assert warehouse.query(
        "select city from pii.pii_customers_deduplicated where customer_id = ?", [customer]
    ) == [(city,)]


def build_without_kept_map(warehouse: Warehouse, night: date, state: str) -> None:
    """The night built again after ``state`` lost the identity map it kept: it rebuilds, the
    orders' state (another that keeps one) does not."""
    with duckdb.connect(str(warehouse.settings.warehouse_path)) as con:
        con.execute(f'drop table intermediate."{state}__identity"')
    run_dbt_build(night, settings=warehouse.settings, dbt_vars=IN_PARTS)
    runs = warehouse.state_runs()
    assert runs[state] is None
    assert runs["int_orders_attributed"] is not None


def assert_identifiers_recomputed(
    warehouse: Warehouse, customers: list[str], consent_of: str
) -> None:
    """Every state was updated incrementally, the identifiers of exactly ``customers``
    recomputed, and ``consent_of`` has withdrawn their consent."""
    assert all(keys is not None for keys in warehouse.state_runs().values())
    assert warehouse.query(
        'select customer_id from pii."customer_identifiers__touched" order by all'
    ) == [(customer,) for customer in customers]
    assert warehouse.query(
        "select has_marketing_consent from pii.customer_identifiers where customer_id = ?",
        [consent_of],
    ) == [(False,)]


def test_incremental_nights_equal_full_rebuilds(warehouse: Warehouse, tmp_path: Path) -> None:
    nights = [date(2026, 6, 26) + timedelta(n) for n in range(4)]

    # night 1: a year of history caught up; the state is built from it
    warehouse.land_through(nights[0])
    run_dbt_build(nights[0], settings=warehouse.settings, dbt_vars=IN_PARTS)
    assert set(warehouse.state_runs().values()) == {None}
    assert warehouse.identity_run() is None
    assert_equals_full_rebuild(warehouse, nights[0], tmp_path)

    # night 2: the new day, plus an old orders partition and an old web partition re-delivered
    # with changed rows (an amount, a status, a dropped order, a moved event, a new one)
    warehouse.land_through(nights[1])
    redeliver_changed(warehouse, date(2026, 6, 20))
    # and a CRM record C041 with C007's name and birth date, another phone and a typo in C007's
    # address: one person by the fuzzy rule alone (similar_email)
    warehouse.land("customers", nights[1], [_lookalike(41, of=7, day=nights[1])])
    land_early_engagement(warehouse, nights[1])
    run_dbt_build(nights[1], settings=warehouse.settings, dbt_vars=IN_PARTS)
    runs = warehouse.state_runs()
    assert all(keys is not None and keys > 0 for keys in runs.values()), runs
    # C041 compared with the records of its blocks, the others' pairs kept
    assert_identity(warehouse, compared=1, pairs=[("C007", "C041")], c041_is="C007")
    assert_equals_full_rebuild(warehouse, nights[1], tmp_path)

    # night 3: the new day with an order re-sent with a new status; retracted (emptied)
    # partitions: the latest copy of duplicated rows falls back to the earlier one
    warehouse.land_through(nights[2])
    resent = next(row for row in warehouse.partitions["orders"][date(2026, 6, 21)])
    warehouse.land(
        "orders",
        nights[2],
        [*warehouse.partitions["orders"][nights[2]], (*resent[:4], "returned")],
    )
    # (and C005's only CRM partition: a buyer known from orders only from now on)
    for table, day in [
        *((table, date(2026, 6, 23)) for table in ("web_events", "email_events", "orders")),
        ("customers", date(2026, 1, 5)),
    ]:
        warehouse.land(table, day, [])
    # C041's record updated with an address of its own: two people again; C030's with an
    # earlier signup (the same person, another tenure; nothing else of theirs changes); C003's
    # with the consent withdrawn (no identifier of theirs changes)
    warehouse.land(
        "customers",
        nights[2],
        [
            _lookalike(41, of=7, day=nights[2], email="c41@example.org"),
            _with_signup(_customer(30, date(2026, 1, 30)), date(2025, 12, 20), nights[2]),
            _without_consent(3, nights[2]),
        ],
    )
    run_dbt_build(nights[2], settings=warehouse.settings, dbt_vars=IN_PARTS)
    # every state incremental; the identifiers of C003 (consent), C005 (its record gone), C007
    # and C041 (split) recomputed, the others kept
    assert_identifiers_recomputed(warehouse, ["C003", "C005", "C007", "C041"], consent_of="C003")
    assert_identity(warehouse, compared=2, pairs=[], c041_is="C041")  # C041 and C005
    assert_equals_full_rebuild(warehouse, nights[2], tmp_path)

    # night 4: a CRM record for C040 (a buyer without one so far) with the e-mail of C007: one
    # person now, whose web and email events become attributable; and a stale copy of C012's
    # record (updated before the one it has, in another city) landed late: it does not win
    land_with_crm_records(
        warehouse,
        nights[3],
        [_customer(40, nights[3], email="person7@example.com"), _stale_copy(12, "Shelbyville")],
    )
    run_dbt_build(nights[3], settings=warehouse.settings, dbt_vars=IN_PARTS)
    assert all(keys is not None for keys in warehouse.state_runs().values())
    assert warehouse.query(
        "select customer_id from intermediate.int_customers_resolved "
        "where source_customer_id = 'C040'"
    ) == [("C007",)]
    assert_latest_record(warehouse, recomputed=2, customer="C012", city="Springfield")
    assert_equals_full_rebuild(warehouse, nights[3], tmp_path)

    # the same night again, with that day's web partition re-delivered with one more event
    warehouse.land(
        "web_events",
        nights[3],
        [
            *warehouse.partitions["web_events"][nights[3]],
            ("W-RERUN", "S-RERUN", "C040", "a-rerun", "page_view", _ts(nights[3], 22)),
        ],
    )
    run_dbt_build(nights[3], settings=warehouse.settings, dbt_vars=IN_PARTS)
    assert warehouse.state_runs()["int_web_events_deduplicated"] is not None
    assert warehouse.identity_run() == 0  # no CRM record changed
    assert_equals_full_rebuild(warehouse, nights[3], tmp_path)

    # the identity map the sessions' state kept is gone (an erasure drops it): that state
    # rebuilds, the others stay incremental
    build_without_kept_map(warehouse, nights[3], "int_web_sessions_aggregated")
    assert_equals_full_rebuild(warehouse, nights[3], tmp_path)

    # a backfill of an earlier date after later ones rebuilds the events' state for it; identity
    # resolution's compares the records that date knows otherwise: C041's address before its
    # update, and no C040
    run_dbt_build(nights[1], settings=warehouse.settings, dbt_vars=IN_PARTS)
    assert set(warehouse.state_runs().values()) == {None}
    assert_identity(warehouse, compared=2, pairs=[("C007", "C041")], c041_is="C007")
    assert_equals_full_rebuild(warehouse, nights[1], tmp_path)

    # and one further back, before C041 landed: its pair goes with it
    run_dbt_build(nights[0], settings=warehouse.settings, dbt_vars=IN_PARTS)
    assert_identity(warehouse, compared=1, pairs=[], c041_is=None)
    assert_equals_full_rebuild(warehouse, nights[0], tmp_path)

    # and the next night after the backfill moves the as-of date by several days at once: C041
    # and C050 (its birth date nulled) compared again
    last = LAST_DAY
    warehouse.land_through(last)
    run_dbt_build(last, settings=warehouse.settings, dbt_vars=IN_PARTS)
    assert all(keys is not None for keys in warehouse.state_runs().values())
    assert_identity(warehouse, compared=3, pairs=[], c041_is="C041")
    assert_equals_full_rebuild(warehouse, last, tmp_path)


# The uniqueness tests of the state models that read only a night's recomputed rows, and the
# side table of the model that names those rows.
SCOPED_TESTS = {
    "unique_int_orders_deduplicated_order_id": "int_orders_deduplicated__changes",
    "unique_int_web_events_deduplicated_event_id": "int_web_events_deduplicated__changes",
    "unique_int_email_events_deduplicated_event_id": "int_email_events_deduplicated__changes",
    "unique_int_email_customers_aggregated_customer_id": "int_email_customers_aggregated__touched",
    "unique_combination_of_columns_int_web_session_customers_aggregated_session_id__customer_id": (
        "int_web_session_customers_aggregated__touched"
    ),
    "unique_int_orders_attributed_order_id": "int_orders_attributed__changes",
    "unique_int_web_sessions_aggregated_session_id": "int_web_sessions_aggregated__touched",
    "unique_combination_of_columns_int_customer_months_aggregated_customer_id__activity_month": (
        "int_customer_months_aggregated__touched"
    ),
    "unique_int_customer_metrics_joined_customer_id": "int_customer_metrics_joined__touched",
    "unique_int_customers_cohorted_customer_id": "int_customers_cohorted__touched",
    "unique_pii_customer_latest_records_customer_id": "pii_customer_latest_records__changes",
    "unique_customer_identifiers_customer_id": "customer_identifiers__touched",
    "unique_pii_customers_deduplicated_customer_id": "pii_customers_deduplicated__changes",
    "unique_int_customers_deduplicated_customer_id": "int_customers_deduplicated__changes",
}
STATE_MODEL_NAMES = {
    *STATE_MODELS,
    "int_email_customers_aggregated",
    "int_web_session_customers_aggregated",
    "int_orders_attributed",
    "int_customer_months_aggregated",
    "int_web_sessions_aggregated",
    "int_customer_metrics_joined",
    "int_customers_cohorted",
    "pii_customer_latest_records",
    "customer_identifiers",
    "pii_customers_deduplicated",
    "int_customers_deduplicated",
}
WEB_TEST = "unique_int_web_events_deduplicated_event_id"


def compiled_tests(settings: Settings) -> dict[str, str]:
    """The SQL each data test of the last build ran, by test name."""
    target, _ = dbt_paths(settings)
    results = json.loads((target / "run_results.json").read_text())["results"]
    return {
        result["unique_id"].split(".")[2]: result.get("compiled_code") or ""
        for result in results
        if result["unique_id"].startswith("test.")
    }


def assert_scoped(settings: Settings, scoped: bool) -> None:
    compiled = compiled_tests(settings)
    for test, side_table in SCOPED_TESTS.items():
        assert (side_table in compiled[test]) == scoped, (test, compiled[test])


def failed_tests(build: pytest.ExceptionInfo[DbtBuildError]) -> set[str]:
    return {node.name for node in build.value.result.failed_nodes}


def broken_project(
    settings: Settings,
    path: Path,
    rule: str,
    broken_rule: str,
    file: str = "macros/latest_known_copies.sql",
) -> Settings:
    """Settings with a copy of the dbt project whose ``file`` (by default the macro
    latest_known_copies: the state models' own code unchanged, so no rebuild) has ``rule``
    replaced by ``broken_rule``."""
    shutil.copytree(settings.dbt_project_dir, path, ignore=shutil.ignore_patterns("target"))
    changed = path / file
    assert changed.read_text().count(rule) == 1
    changed.write_text(changed.read_text().replace(rule, broken_rule))
    return replace(settings, dbt_project_dir=path)


def test_state_uniqueness_tests_read_what_the_night_recomputed(
    warehouse: Warehouse, tmp_path: Path
) -> None:
    """On an incremental night the state models' uniqueness tests read only the rows the night
    recomputed, and still fail when those hold a duplicate; after a rebuild, when the run before
    did not pass them, or when a run inserted a row outside its keys, they read the whole
    table."""
    nights = [date(2026, 6, 26) + timedelta(n) for n in range(3)]
    settings = warehouse.settings

    # the first night rebuilds the state: every row is tested, and the state is marked tested
    warehouse.land_through(nights[0])
    run_dbt_build(nights[0], settings=settings)
    assert_scoped(settings, False)
    assert warehouse.tested_states() == dict.fromkeys(STATE_MODEL_NAMES, True)

    # an incremental night after a tested one: only the recomputed keys and groups
    warehouse.land_through(nights[1])
    run_dbt_build(nights[1], settings=settings)
    assert all(keys is not None for keys in warehouse.state_runs().values())
    assert_scoped(settings, True)
    assert warehouse.tested_states() == dict.fromkeys(STATE_MODEL_NAMES, True)

    # a state that keeps two copies of a key (the deduplication broken in a copy of the
    # project): the scoped test fails on an event re-sent in the night's partition
    two_copies = broken_project(
        settings,
        tmp_path / "two_copies",
        "order by {{ copy_order }}) = 1",
        "order by {{ copy_order }}) <= 2",
    )
    warehouse.land_through(nights[2])
    resent = warehouse.partitions["web_events"][nights[1]][0]
    warehouse.land(
        "web_events", nights[2], [*warehouse.partitions["web_events"][nights[2]], resent]
    )
    with pytest.raises(DbtBuildError) as failed:
        run_dbt_build(nights[2], settings=two_copies)
    assert WEB_TEST in failed_tests(failed)
    assert failed_tests(failed) <= set(SCOPED_TESTS), failed_tests(failed)
    assert "int_web_events_deduplicated__changes" in compiled_tests(settings)[WEB_TEST]
    assert not warehouse.tested_states()["int_web_events_deduplicated"]

    # the fixed project on the same night: nothing to recompute, but the run before did not pass
    # its tests, so the whole table is read and the duplicates still fail the build
    with pytest.raises(DbtBuildError) as failed:
        run_dbt_build(nights[2], settings=settings)
    assert WEB_TEST in failed_tests(failed)
    assert "__changes" not in compiled_tests(settings)[WEB_TEST]
    assert not warehouse.tested_states()["int_web_events_deduplicated"]

    # a full refresh rebuilds the state from raw: clean, tested, and the next run scoped again
    run_dbt_build(nights[2], settings=settings, full_refresh=True)
    assert_scoped(settings, False)
    assert warehouse.tested_states() == dict.fromkeys(STATE_MODEL_NAMES, True)
    run_dbt_build(nights[2], settings=settings)
    assert_scoped(settings, True)

    # a run that inserts a row outside the keys it recomputed (the filter broken so that it also
    # takes W1 again, which it did not delete): the rows outside its keys are no longer the ones
    # it kept, so the test reads the whole table and finds W1 twice
    extra_key = broken_project(
        settings,
        tmp_path / "extra_key",
        "and {{ key }} in (select {{ key }} from {{ state_side_table('changes') }})",
        "and ({{ key }} in (select {{ key }} from {{ state_side_table('changes') }})"
        " or {{ key }} = 'W1')",
    )
    with pytest.raises(DbtBuildError) as failed:
        run_dbt_build(nights[2], settings=extra_key)
    assert WEB_TEST in failed_tests(failed)
    assert warehouse.query(
        "select count(*) from intermediate.int_web_events_deduplicated where event_id = 'W1'"
    ) == [(2,)]


def test_the_records_state_rebuilds_when_a_lookup_seed_changes(
    warehouse: Warehouse, tmp_path: Path
) -> None:
    """The CRM records' state keeps each record's seed lookups between nights; a changed seed
    (its checksum is in the state's fingerprint) rebuilds it, so no record keeps the old name."""
    nights = [date(2026, 6, 26), date(2026, 6, 27)]
    warehouse.land_through(nights[0])
    run_dbt_build(nights[0], settings=warehouse.settings)
    states = "select distinct state from intermediate.int_customers_deduplicated order by all"
    assert warehouse.query(states) == [("New York",)]

    renamed = replace(warehouse.settings, dbt_project_dir=tmp_path / "renamed")
    shutil.copytree(
        warehouse.settings.dbt_project_dir,
        renamed.dbt_project_dir,
        ignore=shutil.ignore_patterns("target"),
    )
    # every alias of New York (its last column: the name) renamed
    seed = renamed.dbt_project_dir / "seeds" / "state_names.csv"
    assert "United States,NY,New York\n" in seed.read_text()
    seed.write_text(seed.read_text().replace(",New York\n", ",State of New York\n"))
    warehouse.land_through(nights[1])
    run_dbt_build(nights[1], settings=renamed)

    runs = warehouse.all_state_runs()
    assert runs["pii_customers_deduplicated"] is None, runs  # rebuilt
    assert runs["int_customers_deduplicated"] is None, runs
    assert runs["pii_customer_latest_records"] is not None, runs  # reads no seed: kept
    assert warehouse.query(states) == [("State of New York",)]


def test_a_column_added_to_the_records_reaches_their_kept_state(
    warehouse: Warehouse, tmp_path: Path
) -> None:
    """The records' state is kept between nights, yet a column added to the model is added to
    its table and filled for every record (the changed code rebuilds the state)."""
    nights = [date(2026, 6, 26), date(2026, 6, 27)]
    warehouse.land_through(nights[0])
    run_dbt_build(nights[0], settings=warehouse.settings)
    added = broken_project(
        warehouse.settings,
        tmp_path / "added",
        "        updated_at\n\n    from normalized",
        "        updated_at,\n        length(city) as city_length\n\n    from normalized",
        file="models/pii/pii_customers_deduplicated.sql",
    )
    warehouse.land_through(nights[1])
    run_dbt_build(nights[1], settings=added)
    assert warehouse.all_state_runs()["pii_customers_deduplicated"] is None  # rebuilt
    assert warehouse.query(
        "select count(*), count(city_length) from pii.pii_customers_deduplicated"
    ) == warehouse.query("select count(*), count(city) from pii.pii_customer_latest_records")
