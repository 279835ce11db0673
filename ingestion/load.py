"""Load daily landing partitions into the warehouse's ``raw`` schema.

A landing partition is ``<landing>/<source>/date=YYYY-MM-DD/*.csv``; its date is the day the rows
arrived. For an as-of date ``D`` the loader makes ``raw`` hold exactly the landed partitions dated
``<= D``:

* the partition of ``D`` itself is always (re)loaded, so a re-run picks up a corrected file;
* an earlier partition is loaded when it is new, its files changed (name, size, modification
  time) or it has not passed the quality gate yet: that is how the first run catches up on
  history, how a late fix to an old file lands, and why a partition that failed the gate is
  checked again by every run until it passes (``mark_validated`` records a pass);
* loading a partition replaces that partition's rows in one transaction (delete, then insert), so
  loading the same day twice leaves exactly the same raw rows.

Quarantine: a row that breaks a row rule (``ingestion.row_rules``: an empty key, an amount or a
birth date that cannot be true, a malformed e-mail, a customer nobody knows, a line the CSV reader
cannot split...) is not loaded into ``raw``; it goes, unchanged, to ``quarantine.<source>`` with
the run id, the as-of date and one reason code per broken rule, in the same transaction. Rows in =
rows loaded + rows quarantined is checked for every load; the quality gate decides whether the
share quarantined is small enough for the run to go on.

Landing files are only read, never moved, modified or deleted. Every column is loaded as text:
typing and cleaning are dbt's job, and a malformed value must not stop the load of the good rows.
"""

from __future__ import annotations

import csv
import hashlib
import logging
import re
import time
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path

import duckdb

from core.contract import SOURCE_COLUMNS, SOURCES
from core.erasure import ERASURE_TABLE, ensure_erasure_table, erased_ids_sql
from core.quality_config import QualityConfig, load_quality_config
from core.settings import Settings, get_settings
from core.warehouse import quote_ident, transaction
from ingestion.row_rules import (
    MALFORMED_LINE_DEFAULT,
    MALFORMED_LINE_REASONS,
    clean,
    row_rules,
)

log = logging.getLogger(__name__)


# Partitions replaced per transaction when catching up on history.
BATCH_PARTITIONS = 64

PARTITION_DIR = re.compile(r"^date=(\d{4}-\d{2}-\d{2})$")


class IngestionError(RuntimeError):
    """A landing file cannot be loaded as it is; the message names the file and the problem."""


@dataclass(frozen=True)
class Partition:
    source: str
    partition_date: date
    files: tuple[Path, ...]

    def fingerprint(self, landing_dir: Path) -> str:
        digest = hashlib.sha256()
        for path in self.files:
            stat = path.stat()
            digest.update(
                f"{path.relative_to(landing_dir)}|{stat.st_size}|{stat.st_mtime_ns}\n".encode()
            )
        return digest.hexdigest()[:16]


@dataclass
class SourceLoad:
    partitions_loaded: list[str] = field(default_factory=list)
    partitions_unchanged: int = 0
    rows_loaded: int = 0
    rows_in: int = 0
    rows_quarantined: int = 0
    # Rows of people erased on request (pipeline.erasure): dropped, counted, never stored.
    rows_erased: int = 0
    # Time spent deciding and writing quarantine (the row rules), part of the load's time.
    row_rule_seconds: float = 0.0
    missing_as_of_partition: bool = False
    # Columns of a landing file the contract does not know: loaded nowhere, reported.
    extra_columns: dict[str, list[str]] = field(default_factory=dict)


@dataclass
class LoadReport:
    as_of_date: str
    run_id: str
    seconds: float
    sources: dict[str, SourceLoad]

    def validation_scope(self) -> dict[str, list[date]]:
        """The partitions the quality gate must check: every partition loaded by this run, and the
        as-of day itself even when nothing arrived (an empty day is for the gate to judge)."""
        scope: dict[str, list[date]] = {}
        for source, load in self.sources.items():
            dates = {date.fromisoformat(d) for d in load.partitions_loaded}
            dates.add(date.fromisoformat(self.as_of_date))
            scope[source] = sorted(dates)
        return scope

    def to_dict(self) -> dict:
        return asdict(self)


def discover_partitions(landing_dir: Path, source: str, up_to: date) -> list[Partition]:
    """The landing partitions of a source dated on or before ``up_to``, oldest first."""
    source_dir = landing_dir / source
    if not source_dir.is_dir():
        return []
    partitions = []
    for child in sorted(source_dir.iterdir()):
        match = PARTITION_DIR.match(child.name)
        if not child.is_dir() or not match:
            # Nothing is skipped silently: a misnamed folder is most likely a delivery.
            log.warning("%s: ignored %s (not a date=YYYY-MM-DD partition folder)", source, child)
            continue
        partition_date = date.fromisoformat(match.group(1))
        if partition_date > up_to:
            continue
        files = tuple(sorted(p for p in child.iterdir() if p.is_file() and p.suffix == ".csv"))
        for other in sorted(p for p in child.iterdir() if p not in files):
            log.warning("%s: ignored %s (landing files are *.csv)", source, other)
        if files:
            partitions.append(Partition(source, partition_date, files))
    return partitions


def ensure_raw_schema(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("create schema if not exists raw")
    for source, columns in SOURCE_COLUMNS.items():
        column_sql = ", ".join(f'"{name}" varchar' for name in columns)
        con.execute(
            f"create table if not exists raw.{source} "
            f"({column_sql}, _partition_date date not null, _source_file varchar not null)"
        )
    con.execute(
        """
        create table if not exists raw._load_log (
            source varchar not null,
            partition_date date not null,
            fingerprint varchar not null,
            file_count integer not null,
            row_count bigint not null,
            run_id varchar,
            loaded_at timestamp not null,
            primary key (source, partition_date)
        )
        """
    )
    # Set when the quality gate passed the partition; until then every run reloads and re-checks
    # it, so a partition that failed the gate cannot slip through on a later night.
    con.execute("alter table raw._load_log add column if not exists validated_at timestamp")
    # Rows read from the partition's files and rows of them quarantined (row_count = loaded).
    con.execute("alter table raw._load_log add column if not exists rows_in bigint")
    con.execute("alter table raw._load_log add column if not exists rows_quarantined bigint")
    con.execute("alter table raw._load_log add column if not exists rows_erased bigint")
    ensure_erasure_table(con)
    ensure_quarantine_schema(con)


def _read_header(path: Path, source: str) -> tuple[str, ...]:
    """The file's column names; fails early, naming the file, when a required one is missing."""
    with path.open(newline="", encoding="utf-8", errors="replace") as handle:
        first_line = handle.readline()
    header = next(csv.reader([first_line]), None) if first_line.strip() else None
    if not header:
        raise IngestionError(
            f"{path}: the file is empty (no header row); expected a comma-separated header with "
            f"{', '.join(SOURCE_COLUMNS[source])}."
        )
    names = tuple(name.strip().lstrip("\ufeff").lower() for name in header)
    missing = [name for name in SOURCE_COLUMNS[source] if name not in names]
    if missing:
        raise IngestionError(
            f"{path}: missing column(s) {', '.join(missing)} for source '{source}' "
            f"(found: {', '.join(header)}).{_delimiter_hint(first_line, source)}"
        )
    return names


def _delimiter_hint(first_line: str, source: str) -> str:
    """Say so when the header reads fine with another delimiter: the commonest broken delivery."""
    for delimiter, name in ((";", "semicolon"), ("\t", "tab"), ("|", "pipe")):
        names = {name.strip().lower() for name in first_line.strip().split(delimiter)}
        if set(SOURCE_COLUMNS[source]) <= names:
            return (
                f" The file looks {name}-separated; landing files must be comma-separated "
                "(RFC 4180 CSV, UTF-8)."
            )
    return ""


def ensure_quarantine_schema(con: duckdb.DuckDBPyConnection) -> None:
    """``quarantine.<source>``: the rows a row rule refused, unchanged, and why."""
    con.execute("create schema if not exists quarantine")
    for source, columns in SOURCE_COLUMNS.items():
        column_sql = ", ".join(f'"{name}" varchar' for name in columns)
        con.execute(
            f"""
            create table if not exists quarantine.{source} (
                {column_sql},
                _partition_date date not null,
                _source_file varchar not null,
                -- set for a line the CSV reader could not split (then the columns are null)
                _line_number bigint,
                _raw_line varchar,
                _reasons varchar[] not null,
                _run_id varchar not null,
                _as_of_date date not null,
                _quarantined_at timestamp not null
            )
            """
        )


def _load_batch(
    con: duckdb.DuckDBPyConnection,
    source: str,
    batch: list[tuple[Partition, str]],
    landing_dir: Path,
    run_id: str,
    as_of_date: date,
    config: QualityConfig,
) -> BatchLoad:
    """Replace a batch of partitions of one source in one transaction: the rows that pass the row
    rules go to ``raw.<source>``, the others to ``quarantine.<source>``.

    Read (the files into a staging table), decide (each row's reason codes, in SQL), write (raw,
    quarantine and the load log, all or nothing)."""
    files_by_header, extra_columns = _headers(source, batch, landing_dir)
    files = [path for group in files_by_header.values() for path in group]
    dates = [partition.partition_date for partition, _ in batch]
    try:
        # Staged *before* the transaction: DuckDB 2.0 loses the rows of a temp table filled with
        # more than one row group (122,880 rows) inside an explicit transaction (count(*) still
        # says they are there, scans return nothing), which silently emptied large batches.
        _stage_incoming(con, source, files_by_header, landing_dir)
        erased = _drop_erased(con, source)
        started = time.perf_counter()
        _check_rows(con, source, config, as_of_date)
        rule_seconds = time.perf_counter() - started
        with transaction(con):
            counts, quarantine_seconds = _replace_partitions(
                con, source, batch, run_id, as_of_date, landing_dir, erased
            )
    except duckdb.Error as exc:
        raise IngestionError(
            f"Could not load {source} partitions {dates[0]}..{dates[-1]} "
            f"({len(files)} files under {landing_dir / source}): {exc}"
        ) from exc
    return BatchLoad(counts, rule_seconds + quarantine_seconds, extra_columns)


def _headers(
    source: str, batch: list[tuple[Partition, str]], landing_dir: Path
) -> tuple[dict[tuple[str, ...], list[str]], dict[str, list[str]]]:
    """The batch's files grouped by header, and the columns of each file the contract does not
    know. Files that share a header are read together with the columns given, so DuckDB does not
    sniff each of them (sniffing dominates the cost of many small daily files)."""
    files_by_header: dict[tuple[str, ...], list[str]] = {}
    extra_columns: dict[str, list[str]] = {}
    for partition, _ in batch:
        for path in partition.files:
            header = _read_header(path, source)
            files_by_header.setdefault(header, []).append(str(path))
            unknown = [name for name in header if name not in SOURCE_COLUMNS[source]]
            if unknown:
                extra_columns[str(path.relative_to(landing_dir))] = unknown
    return files_by_header, extra_columns


def _select_list(source: str) -> str:
    return ", ".join(quote_ident(name) for name in SOURCE_COLUMNS[source])


def _stage_incoming(
    con: duckdb.DuckDBPyConnection,
    source: str,
    files_by_header: dict[tuple[str, ...], list[str]],
    landing_dir: Path,
) -> None:
    """Every row of the files into the temp table ``_incoming`` (the contract's columns, all
    text, with partition date and file); lines the reader cannot split go to
    ``_rejected_lines``."""
    con.execute(f"create or replace temp table _incoming as select * from raw.{source} limit 0")
    con.execute("drop table if exists _rejected_lines")
    con.execute("drop table if exists _rejected_scans")
    for header, group in files_by_header.items():
        columns = "{" + ", ".join(f"'{name}': 'VARCHAR'" for name in header) + "}"
        con.execute(
            f"""
            insert into _incoming
            select
                {_select_list(source)},
                regexp_extract(filename, '/date=(\\d{{4}}-\\d{{2}}-\\d{{2}})/', 1)::date,
                replace(filename, ?, '')
            from read_csv(?, header = true, auto_detect = false, columns = {columns},
                          delim = ',', quote = '"', escape = '"', filename = true,
                          store_rejects = true, rejects_scan = '_rejected_scans',
                          rejects_table = '_rejected_lines')
            """,
            [f"{landing_dir}/", group],
        )


def _drop_erased(con: duckdb.DuckDBPyConnection, source: str) -> dict[date, int]:
    """Delete the staged rows of people erased on request; their count per partition."""
    if not con.execute(f"select count(*) from {ERASURE_TABLE}").fetchone()[0]:
        return {}
    columns = [c for c in ("customer_id", "anonymous_id") if c in SOURCE_COLUMNS[source]]
    erased = " or ".join(f"sha256(trim({quote_ident(c)})) in ({erased_ids_sql()})" for c in columns)
    counts = dict(
        con.execute(
            f"select _partition_date, count(*) from _incoming where {erased} group by all"
        ).fetchall()
    )
    if counts:
        con.execute(f"delete from _incoming where {erased}")
        log.info("%s: %d rows of erased people dropped", source, sum(counts.values()))
    return counts


def _check_rows(
    con: duckdb.DuckDBPyConnection, source: str, config: QualityConfig, as_of_date: date
) -> None:
    """Each staged row with the reason codes of the row rules it breaks (``_checked``)."""
    _create_customer_lookups(con, source, as_of_date)
    rules = row_rules(source, config, as_of_date)
    con.execute(
        f"create or replace temp table _checked as "
        f"select *, {rules.reasons_sql} as _reasons from _incoming"
    )


def _replace_partitions(
    con: duckdb.DuckDBPyConnection,
    source: str,
    batch: list[tuple[Partition, str]],
    run_id: str,
    as_of_date: date,
    landing_dir: Path,
    erased: dict[date, int],
) -> tuple[dict[date, PartitionCounts], float]:
    """Inside the caller's transaction: the batch's partitions of raw and quarantine replaced by
    the checked rows, the counts reconciled, the load log written. Returns the counts and the
    time spent quarantining."""
    dates = [partition.partition_date for partition, _ in batch]
    select_list = _select_list(source)
    con.execute(f"delete from raw.{source} where list_contains(?, _partition_date)", [dates])
    con.execute(f"delete from quarantine.{source} where list_contains(?, _partition_date)", [dates])
    con.execute(
        f"insert into raw.{source} select {select_list}, _partition_date, _source_file "
        "from _checked where len(_reasons) = 0"
    )
    started = time.perf_counter()
    quarantine_columns = (
        f"{select_list}, _partition_date, _source_file, _line_number, _raw_line, _reasons, "
        "_run_id, _as_of_date, _quarantined_at"
    )
    con.execute(
        f"""
        insert into quarantine.{source} ({quarantine_columns})
        select {select_list}, _partition_date, _source_file, null, null, _reasons,
               ?, ?, now()::timestamp
        from _checked where len(_reasons) > 0
        """,
        [run_id, as_of_date],
    )
    rejected = _quarantine_rejected_lines(con, source, f"{landing_dir}/", run_id, as_of_date)
    quarantine_seconds = time.perf_counter() - started
    counts = _partition_counts(con, source, dates, rejected, erased)
    _check_counts(source, counts, landing_dir)
    con.executemany(
        """
        insert or replace into raw._load_log
            (source, partition_date, fingerprint, file_count, row_count, run_id, loaded_at,
             validated_at, rows_in, rows_quarantined, rows_erased)
        values (?, ?, ?, ?, ?, ?, now()::timestamp, null, ?, ?, ?)
        """,
        [
            [
                source,
                partition.partition_date,
                fingerprint,
                len(partition.files),
                counts[partition.partition_date].loaded,
                run_id,
                counts[partition.partition_date].rows_in,
                counts[partition.partition_date].quarantined,
                counts[partition.partition_date].erased,
            ]
            for partition, fingerprint in batch
        ],
    )
    return counts, quarantine_seconds


def _create_customer_lookups(con: duckdb.DuckDBPyConnection, source: str, as_of_date: date) -> None:
    """The customer ids an event may reference: those with a CRM record landed by the as-of date
    (raw), and those whose CRM record is in quarantine (so the reason says so).

    Without any CRM data at all (a warehouse fed orders only) there is nothing to check against:
    every id counts as known, rather than every row being quarantined."""
    has_crm = (
        source != "customers"
        and con.execute(
            "select exists (select 1 from raw.customers) "
            "or exists (select 1 from quarantine.customers)"
        ).fetchone()[0]
    )
    if not has_crm:
        if source != "customers":
            log.warning("%s: no CRM data loaded, so customer ids are not checked", source)
        con.execute(
            "create or replace temp table _known_customers as "
            f"select distinct {clean('customer_id')} as customer_id from _incoming"
        )
        con.execute(
            "create or replace temp table _quarantined_customers as "
            "select null::varchar as customer_id limit 0"
        )
        return
    for name, schema in (("_known_customers", "raw"), ("_quarantined_customers", "quarantine")):
        con.execute(
            f"create or replace temp table {name} as "
            f"select distinct {clean('customer_id')} as customer_id from {schema}.customers "
            "where _partition_date <= ? and customer_id is not null",
            [as_of_date],
        )


def _quarantine_rejected_lines(
    con: duckdb.DuckDBPyConnection, source: str, prefix: str, run_id: str, as_of_date: date
) -> dict[date, int]:
    """Lines DuckDB could not split into the header's fields (wrong field count, not UTF-8, cut
    off) go to quarantine as their raw text; returns how many per partition."""
    exists = con.execute(
        "select count(*) from duckdb_tables() where table_name = '_rejected_lines'"
    ).fetchone()[0]
    if not exists:
        return {}
    reason_case = " ".join(
        f"when '{error}' then '{code}'" for error, code in MALFORMED_LINE_REASONS.items()
    )
    con.execute(
        f"""
        insert into quarantine.{source}
            (_partition_date, _source_file, _line_number, _raw_line, _reasons, _run_id,
             _as_of_date, _quarantined_at)
        select
            regexp_extract(scans.file_path, '/date=(\\d{{4}}-\\d{{2}}-\\d{{2}})/', 1)::date,
            replace(scans.file_path, ?, ''),
            lines.line,
            first(lines.csv_line order by lines.column_idx),
            list_distinct(list(
                case upper(lines.error_type::varchar) {reason_case}
                else '{MALFORMED_LINE_DEFAULT}' end
            )),
            ?, ?, now()::timestamp
        from _rejected_lines as lines
        join _rejected_scans as scans using (scan_id, file_id)
        group by all
        """,
        [prefix, run_id, as_of_date],
    )
    return dict(
        con.execute(
            """
            select
                regexp_extract(file_path, '/date=(\\d{4}-\\d{2}-\\d{2})/', 1)::date,
                count(distinct (scan_id, file_id, line))
            from _rejected_lines join _rejected_scans using (scan_id, file_id)
            group by all
            """
        ).fetchall()
    )


@dataclass
class PartitionCounts:
    rows_in: int = 0
    loaded: int = 0
    quarantined: int = 0
    erased: int = 0


@dataclass
class BatchLoad:
    counts: dict[date, PartitionCounts]
    row_rule_seconds: float
    # Landing file -> its columns the contract does not know (not loaded, reported).
    extra_columns: dict[str, list[str]]


def _partition_counts(
    con: duckdb.DuckDBPyConnection,
    source: str,
    dates: list[date],
    rejected: dict[date, int],
    erased: dict[date, int],
) -> dict[date, PartitionCounts]:
    """Rows in (read, plus lines refused by the reader, plus rows of erased people), loaded,
    quarantined and erased per partition."""
    counts = {
        day: PartitionCounts(
            rows_in=rejected.get(day, 0) + erased.get(day, 0), erased=erased.get(day, 0)
        )
        for day in dates
    }
    for day, rows in con.execute(
        "select _partition_date, count(*) from _incoming group by all"
    ).fetchall():
        counts[day].rows_in += rows
    for table, attribute in ((f"raw.{source}", "loaded"), (f"quarantine.{source}", "quarantined")):
        for day, rows in con.execute(
            f"select _partition_date, count(*) from {table} "
            "where list_contains(?, _partition_date) group by all",
            [dates],
        ).fetchall():
            setattr(counts[day], attribute, rows)
    return counts


def _check_counts(
    source: str,
    counts: dict[date, PartitionCounts],
    landing_dir: Path,
) -> None:
    """Count in = loaded + quarantined + erased, for every load: nothing is dropped silently.

    Rows in are the rows the CSV reader produced plus the lines it refused (those are
    quarantined as raw text), counted before the split; a row the split lost, or counted twice,
    stops the load (the transaction is rolled back) instead of going unnoticed."""
    rows_in = sum(count.rows_in for count in counts.values())
    loaded = sum(count.loaded for count in counts.values())
    quarantined = sum(count.quarantined for count in counts.values())
    erased = sum(count.erased for count in counts.values())
    if rows_in != loaded + quarantined + erased:
        raise IngestionError(
            f"{source}: {rows_in} rows read from {landing_dir / source} but {loaded} loaded, "
            f"{quarantined} quarantined and {erased} erased "
            f"({rows_in - loaded - quarantined - erased} unaccounted for); nothing was loaded."
        )


def load_partitions(
    con: duckdb.DuckDBPyConnection,
    as_of_date: date,
    *,
    settings: Settings | None = None,
    sources: tuple[str, ...] = SOURCES,
    run_id: str = "manual",
    config: QualityConfig | None = None,
) -> LoadReport:
    """Bring ``raw`` up to date with the landing partitions dated on or before ``as_of_date``."""
    settings = settings or get_settings()
    config = config or load_quality_config()
    landing_dir = settings.landing_dir
    started = time.perf_counter()
    ensure_raw_schema(con)
    # Partitions loaded before and passed by the gate, with the fingerprint they were loaded with.
    validated = {
        (source, partition_date): fingerprint
        for source, partition_date, fingerprint in con.execute(
            "select source, partition_date, fingerprint from raw._load_log "
            "where validated_at is not null"
        ).fetchall()
    }
    report = LoadReport(as_of_date.isoformat(), run_id, 0.0, {})
    for source in sources:
        load = SourceLoad()
        report.sources[source] = load
        partitions = discover_partitions(landing_dir, source, as_of_date)
        if not any(p.partition_date == as_of_date for p in partitions):
            load.missing_as_of_partition = True
            log.warning(
                "%s: no landing partition for %s under %s", source, as_of_date, landing_dir / source
            )
        to_load = []
        for partition in partitions:
            fingerprint = partition.fingerprint(landing_dir)
            current = validated.get((source, partition.partition_date)) == fingerprint
            if not current or partition.partition_date == as_of_date:
                to_load.append((partition, fingerprint))
            else:
                load.partitions_unchanged += 1
        source_started = time.perf_counter()
        for first in range(0, len(to_load), BATCH_PARTITIONS):
            batch = to_load[first : first + BATCH_PARTITIONS]
            loaded = _load_batch(con, source, batch, landing_dir, run_id, as_of_date, config)
            counts = loaded.counts.values()
            load.rows_in += sum(count.rows_in for count in counts)
            load.rows_loaded += sum(count.loaded for count in counts)
            load.rows_quarantined += sum(count.quarantined for count in counts)
            load.rows_erased += sum(count.erased for count in counts)
            load.row_rule_seconds += loaded.row_rule_seconds
            load.extra_columns.update(loaded.extra_columns)
            load.partitions_loaded.extend(d.isoformat() for d in loaded.counts)
            log.info(
                "%s: loaded %d/%d partitions, %d rows so far, %d quarantined (%.1f s)",
                source,
                len(load.partitions_loaded),
                len(to_load),
                load.rows_loaded,
                load.rows_quarantined,
                time.perf_counter() - source_started,
            )
        for path, extra in load.extra_columns.items():
            log.warning(
                "%s: %s has column(s) %s the contract does not know; they are not loaded",
                source,
                path,
                ", ".join(extra),
            )
        log.info(
            "%s: %d partitions loaded (%d rows in: %d loaded, %d quarantined), %d unchanged",
            source,
            len(load.partitions_loaded),
            load.rows_in,
            load.rows_loaded,
            load.rows_quarantined,
            load.partitions_unchanged,
        )
    report.seconds = round(time.perf_counter() - started, 3)
    return report


def mark_validated(con: duckdb.DuckDBPyConnection, scope: dict[str, list[date]]) -> None:
    """Record that the quality gate passed these partitions (source -> partition dates)."""
    for source, dates in scope.items():
        con.execute(
            "update raw._load_log set validated_at = now()::timestamp "
            "where source = ? and list_contains(?::date[], partition_date)",
            [source, list(dates)],
        )
