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

from pipeline.contract import SOURCE_COLUMNS, SOURCES
from pipeline.settings import Settings, get_settings

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
    missing_as_of_partition: bool = False


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
            continue
        partition_date = date.fromisoformat(match.group(1))
        if partition_date > up_to:
            continue
        files = tuple(sorted(p for p in child.iterdir() if p.is_file() and p.suffix == ".csv"))
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


def _read_header(path: Path, source: str) -> tuple[str, ...]:
    """The file's column names; fails early, naming the file, when a required one is missing."""
    with path.open(newline="", encoding="utf-8", errors="replace") as handle:
        header = next(csv.reader(handle), None)
    if not header:
        raise IngestionError(
            f"{path}: the file is empty (no header row); expected columns "
            f"{', '.join(SOURCE_COLUMNS[source])}."
        )
    names = tuple(name.strip().lower() for name in header)
    missing = [name for name in SOURCE_COLUMNS[source] if name not in names]
    if missing:
        raise IngestionError(
            f"{path}: missing column(s) {', '.join(missing)} for source '{source}' "
            f"(found: {', '.join(header)})."
        )
    return names


def _load_batch(
    con: duckdb.DuckDBPyConnection,
    source: str,
    batch: list[tuple[Partition, str]],
    landing_dir: Path,
    run_id: str,
) -> dict[date, int]:
    """Replace a batch of partitions of one source in one transaction; rows per partition."""
    # Files that share a header are read together with the columns given, so DuckDB does not
    # sniff each of them (sniffing dominates the cost of many small daily files).
    files_by_header: dict[tuple[str, ...], list[str]] = {}
    for partition, _ in batch:
        for path in partition.files:
            files_by_header.setdefault(_read_header(path, source), []).append(str(path))
    select_list = ", ".join(f'"{name}"' for name in SOURCE_COLUMNS[source])
    files = [path for group in files_by_header.values() for path in group]
    dates = [partition.partition_date for partition, _ in batch]
    con.execute("begin transaction")
    try:
        con.execute(f"delete from raw.{source} where list_contains(?, _partition_date)", [dates])
        for header, group in files_by_header.items():
            columns = "{" + ", ".join(f"'{name}': 'VARCHAR'" for name in header) + "}"
            con.execute(
                f"""
                insert into raw.{source}
                select
                    {select_list},
                    regexp_extract(filename, '/date=(\\d{{4}}-\\d{{2}}-\\d{{2}})/', 1)::date,
                    replace(filename, ?, '')
                from read_csv(?, header = true, auto_detect = false, columns = {columns},
                              delim = ',', quote = '"', escape = '"', filename = true)
                """,
                [f"{landing_dir}/", group],
            )
        counts = dict(
            con.execute(
                f"""
                select _partition_date, count(*) from raw.{source}
                where list_contains(?, _partition_date) group by all
                """,
                [dates],
            ).fetchall()
        )
        con.executemany(
            """
            insert or replace into raw._load_log
                (source, partition_date, fingerprint, file_count, row_count, run_id, loaded_at,
                 validated_at)
            values (?, ?, ?, ?, ?, ?, now()::timestamp, null)
            """,
            [
                [
                    source,
                    partition.partition_date,
                    fingerprint,
                    len(partition.files),
                    counts.get(partition.partition_date, 0),
                    run_id,
                ]
                for partition, fingerprint in batch
            ],
        )
        con.execute("commit")
    except duckdb.Error as exc:
        con.execute("rollback")
        raise IngestionError(
            f"Could not load {source} partitions {dates[0]}..{dates[-1]} "
            f"({len(files)} files under {landing_dir / source}): {exc}"
        ) from exc
    except BaseException:
        con.execute("rollback")
        raise
    return {d: counts.get(d, 0) for d in dates}


def load_partitions(
    con: duckdb.DuckDBPyConnection,
    as_of_date: date,
    *,
    settings: Settings | None = None,
    sources: tuple[str, ...] = SOURCES,
    run_id: str = "manual",
) -> LoadReport:
    """Bring ``raw`` up to date with the landing partitions dated on or before ``as_of_date``."""
    settings = settings or get_settings()
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
            counts = _load_batch(con, source, batch, landing_dir, run_id)
            load.rows_loaded += sum(counts.values())
            load.partitions_loaded.extend(d.isoformat() for d in counts)
            log.info(
                "%s: loaded %d/%d partitions, %d rows so far (%.1f s)",
                source,
                len(load.partitions_loaded),
                len(to_load),
                load.rows_loaded,
                time.perf_counter() - source_started,
            )
        log.info(
            "%s: %d partitions loaded (%d rows), %d unchanged",
            source,
            len(load.partitions_loaded),
            load.rows_loaded,
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
