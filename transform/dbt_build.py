"""Run the dbt project (seeds, models, tests) for one as-of date, inside this Python process.

``run_dbt_build`` calls dbt's programmatic entry point (``dbtRunner``) with the as-of date in the
environment variable ``SEGMENTS_AS_OF_DATE`` (so dbt reuses its parse from the night before), while
holding the warehouse's single-writer lock (dbt opens the DuckDB file itself). dbt's target and
log directories live under the data directory, so the source tree stays clean. Each node's
outcome is logged as one line as it finishes, which is what the Airflow task log shows; a failing
node raises ``DbtBuildError`` naming every failing node.

Another process holding the warehouse open (an analyst's DuckDB session) is not a dbt failure:
the build waits for it before starting (``core.warehouse.wait_until_writable``), and a build that
still meets it raises ``WarehouseBusyError``, which the task retries, never ``DbtBuildError``
("fix the dbt model or test").
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from core.settings import Settings, get_settings
from core.warehouse import WarehouseBusyError, is_lock_conflict, wait_until_writable, writer_lock

log = logging.getLogger(__name__)

# How often a long dbt invocation logs that it is still going (and how far).
PROGRESS_EVERY_S = 10.0

# The materializations that leave a table; the marts' (as_of_slice, a project macro) holds one
# slice per as-of date; state_in_parts (a project macro) is a state table built in parts of the
# customers.
TABLE_MATERIALIZATIONS = frozenset({"table", "incremental", "as_of_slice", "state_in_parts"})

# dbt's node statuses, grouped into what a run summary needs.
_STATUS_GROUPS = {
    "success": "pass",
    "pass": "pass",
    "no-op": "pass",
    "warn": "warn",
    "error": "fail",
    "fail": "fail",
    "runtime error": "fail",
    "partial success": "fail",
    "skipped": "skip",
}


# The first line dbt puts in a node's error message, e.g. "Runtime Error in model x (models/x.sql)".
_ERROR_HEADER = re.compile(r"^[A-Za-z ]*Error in [a-z_ ]+ \S+ \(.*\)$")


class DbtBuildError(RuntimeError):
    """dbt build did not succeed; the message lists the failing nodes and their messages."""

    def __init__(self, message: str, result: DbtBuildResult | None = None) -> None:
        super().__init__(message)
        self.result = result


@dataclass
class NodeResult:
    """The outcome of one dbt node (seed, model, test, unit test or hook)."""

    unique_id: str
    name: str
    resource_type: str
    status: str
    seconds: float
    message: str | None = None
    failures: int | None = None
    rows: int | None = None

    @property
    def outcome(self) -> str:
        return _STATUS_GROUPS.get(self.status, self.status)


@dataclass
class DbtBuildResult:
    """What a build did: per-node results and pass/warn/fail/skip counts per resource type."""

    as_of_date: str
    success: bool
    seconds: float
    nodes: list[NodeResult] = field(default_factory=list)
    log_path: str = ""

    @property
    def counts(self) -> dict[str, dict[str, int]]:
        counts: dict[str, Counter[str]] = {}
        for node in self.nodes:
            counts.setdefault(node.resource_type, Counter())[node.outcome] += 1
        return {kind: dict(sorted(c.items())) for kind, c in sorted(counts.items())}

    @property
    def failed_nodes(self) -> list[NodeResult]:
        return [node for node in self.nodes if node.outcome == "fail"]

    def to_dict(self) -> dict[str, Any]:
        return {
            "as_of_date": self.as_of_date,
            "success": self.success,
            "seconds": round(self.seconds, 2),
            "counts": self.counts,
            "nodes": [asdict(node) for node in self.nodes],
            "log_path": self.log_path,
        }


def run_dbt_build(
    as_of_date: date,
    *,
    settings: Settings | None = None,
    full_refresh: bool = False,
    select: str | None = None,
    dbt_vars: dict[str, Any] | None = None,
    unit_tests: bool = False,
) -> DbtBuildResult:
    """``dbt build`` (seeds, models, tests) of the project for ``as_of_date``.

    The marts are incremental by as-of date: a run replaces only its own slice. The intermediate
    state tables (deduplicated orders and events, their per-session and per-customer aggregates)
    are updated only for what the night changed, and rebuilt from history when their ledger says
    they cannot be (a backfill of an earlier date, an interrupted run, changed code): see
    docs/architecture.md, "Incremental nights". ``full_refresh`` recreates the seeds (needed when
    a seed's columns change), views, tables and the state from raw, but not the marts: their
    materialization (as_of_slice) replaces only the run's slice, so their history survives.
    ``select`` is a dbt node selection (``--select``); the staging views hold every landed row and
    no date, the intermediate tables (``int_*``) the last date built, so a selection for a
    different date should include the upstream models (``+customer_features``).
    ``dbt_vars`` adds dbt vars (e.g. ``available_sources`` for bring-your-own-data).
    ``unit_tests`` runs the project's unit tests too. A night leaves them out, as dbt Labs
    recommends for production builds: their inputs are fixed rows in the project, so they say
    nothing about tonight's data and only cost time; they run where the code changes (``make
    test``, a dbt build by hand).
    Raises ``DbtBuildError`` when any node fails (warnings do not fail the build).
    """
    settings = settings or get_settings()
    args = dbt_build_args(
        settings,
        full_refresh=full_refresh,
        select=select,
        dbt_vars=dbt_vars,
        unit_tests=unit_tests,
    )
    log.info(
        "dbt build for as-of %s (project %s, warehouse %s%s%s)",
        as_of_date,
        settings.dbt_project_dir,
        settings.warehouse_path,
        ", full refresh" if full_refresh else "",
        f", select {select}" if select else "",
    )
    started = time.perf_counter()
    with writer_lock(settings):
        wait_until_writable(settings)
        outcome = _invoke_dbt(args, settings, as_of_date)
        result = DbtBuildResult(
            as_of_date=as_of_date.isoformat(),
            success=bool(outcome.success),
            seconds=0.0,
            nodes=_node_results(outcome.result),
            log_path=str(dbt_paths(settings)[1] / "dbt.log"),
        )
        if result.success:
            try:
                _count_rows(result, settings, as_of_date)
            except Exception as exc:  # the counts only inform the log; the build stands
                log.warning("Could not count the rows dbt built: %s", exc)
    result.seconds = time.perf_counter() - started

    log.info(
        "dbt build for as-of %s %s in %.1f s: %s",
        as_of_date,
        "succeeded" if result.success else "FAILED",
        result.seconds,
        json.dumps(result.counts),
    )
    if not result.success:
        message = _failure_message(as_of_date, result, outcome.exception)
        if _met_a_lock(result, outcome.exception):
            raise WarehouseBusyError(
                f"dbt build for as-of {as_of_date} could not open the warehouse "
                f"{settings.warehouse_path}: another process held it open. This is retried, "
                f"not a dbt error ({message})"
            )
        raise DbtBuildError(message, result)
    return result


def _met_a_lock(result: DbtBuildResult, exception: BaseException | None) -> bool:
    """Whether the build failed because another process held the warehouse file."""
    messages = [node.message or "" for node in result.failed_nodes]
    return any(is_lock_conflict(text) for text in [*messages, str(exception or "")])


def generate_dbt_docs(as_of_date: date, *, settings: Settings | None = None) -> Path:
    """dbt's documentation site as one self-contained page (``dbt docs generate --static``):
    ``<data dir>/dbt/docs/static_index.html`` (models, columns, tests, lineage, and the catalog
    read from the warehouse). Absolute paths throughout, so any working directory works."""
    settings = settings or get_settings()
    docs_dir = dbt_docs_dir(settings)
    _, log_path = dbt_paths(settings)
    args = [
        "docs",
        "generate",
        "--static",
        "--project-dir",
        str(settings.dbt_project_dir),
        "--profiles-dir",
        str(settings.dbt_project_dir),
        "--target-path",
        str(docs_dir),
        "--log-path",
        str(log_path),
        "--quiet",
        "--no-use-colors",
    ]
    with writer_lock(settings):  # the catalog query opens the warehouse
        wait_until_writable(settings)
        outcome = _invoke_dbt(args, settings, as_of_date)
    page = docs_dir / "static_index.html"
    if not outcome.success or not page.is_file():
        raise DbtBuildError(
            f"dbt docs generate failed: {outcome.exception or 'no static_index.html'} "
            f"(log: {log_path / 'dbt.log'})"
        )
    return page


def dbt_docs_dir(settings: Settings) -> Path:
    return settings.data_dir / "dbt" / "docs"


def dbt_paths(settings: Settings) -> tuple[Path, Path]:
    """dbt's target and log folders: under the data directory, never inside the dbt project."""
    dbt_dir = settings.data_dir / "dbt"
    return dbt_dir / "target", dbt_dir / "logs"


def dbt_build_args(
    settings: Settings,
    *,
    full_refresh: bool = False,
    select: str | None = None,
    dbt_vars: dict[str, Any] | None = None,
    unit_tests: bool = False,
) -> list[str]:
    """The ``dbt build`` command line (the as-of date itself goes in the environment, see
    ``_invoke_dbt``); without ``unit_tests``, the unit tests are left out."""
    target_path, log_path = dbt_paths(settings)
    args = [
        "build",
        "--project-dir",
        str(settings.dbt_project_dir),
        "--profiles-dir",
        str(settings.dbt_project_dir),
        "--target-path",
        str(target_path),
        "--log-path",
        str(log_path),
        "--vars",
        json.dumps(dbt_vars or {}),
        # Each node gets its own log line from _log_finished_node; dbt's console copy would
        # only repeat them. Its full debug log is in log_path/dbt.log.
        "--quiet",
        "--no-use-colors",
    ]
    if not unit_tests:
        args += ["--exclude-resource-type", "unit_test"]
    if full_refresh:
        args.append("--full-refresh")
    if select:
        args += ["--select", select]
    return args


def _invoke_dbt(args: list[str], settings: Settings, as_of_date: date) -> Any:
    """Run dbt in this process (the caller holds the writer lock); dbt's ``dbtRunnerResult``.

    The as-of date is the environment variable ``SEGMENTS_AS_OF_DATE`` (macro ``as_of_date``), not
    a dbt var: dbt parses the whole project again whenever its ``--vars`` change, and keeps its
    previous parse (``partial_parse.msgpack`` in the target folder) when only this changes.
    """
    from dbt.cli.main import dbtRunner

    progress = _Progress(f"dbt {' '.join(args[:2]) if args[0] == 'docs' else args[0]}")
    with _environ(
        SEGMENTS_AS_OF_DATE=as_of_date.isoformat(),
        SEGMENTS_WAREHOUSE=str(settings.warehouse_path),
        SEGMENTS_DUCKDB_MEMORY_LIMIT=settings.duckdb_memory_limit,
        SEGMENTS_DUCKDB_TEMP_DIR=str(settings.spill_dir),
        DO_NOT_TRACK="1",
    ):
        try:
            with progress.heartbeat():
                return dbtRunner(callbacks=[_log_finished_node, progress.on_event]).invoke(args)
        finally:
            _close_dbt_duckdb()
            _release_dbt_adapters()


class _Progress:
    """A log line every ``PROGRESS_EVERY_S`` seconds while dbt runs: parsing gives no sign of
    life for a while (tens of seconds on a large project), and then the nodes done out of all."""

    def __init__(self, what: str) -> None:
        self.what = what
        self.total: int | None = None
        self.done = 0
        self.started = time.monotonic()

    def on_event(self, event: Any) -> None:
        try:
            name = event.info.name
            if name == "ConcurrencyLine":
                self.total = int(event.data.node_count)
            elif name == "NodeFinished":
                self.done += 1
        except Exception:  # progress is informative only
            log.debug("Could not read a dbt event", exc_info=True)

    def line(self) -> str:
        elapsed = time.monotonic() - self.started
        if self.total is None:
            return f"{self.what}: parsing and compiling the project ({elapsed:.0f} s)"
        return f"{self.what}: {self.done}/{self.total} nodes done ({elapsed:.0f} s)"

    @contextmanager
    def heartbeat(self) -> Iterator[None]:
        stop = threading.Event()

        def beat() -> None:
            while not stop.wait(PROGRESS_EVERY_S):
                log.info(self.line())

        thread = threading.Thread(target=beat, name="dbt-progress", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()


def _release_dbt_adapters() -> None:
    """Drop dbt's adapters and collect them, so their locks' semaphores are released now.

    Each dbt adapter's connection manager holds a ``multiprocessing`` RLock of dbt's *spawn*
    context: a named POSIX semaphore, registered with Python's resource tracker and unlinked only
    when the lock is garbage collected or at a normal interpreter exit. An Airflow task process
    ends with ``os._exit`` (no exit handlers), so the semaphores outlived it and the tracker
    logged "There appear to be N leaked semaphore objects" on stderr, which Airflow shows as an
    ERROR line in every dbt_build log. Collecting the adapters here unlinks them properly.
    """
    import gc

    try:
        from dbt.adapters.factory import reset_adapters
    except ImportError:  # pragma: no cover - dbt-core is a dependency
        return
    reset_adapters()
    gc.collect()


def _close_dbt_duckdb() -> None:
    """Close the DuckDB file dbt-duckdb keeps open (profile ``keep_open: true``).

    Kept open for the whole run, each node reads what the previous ones wrote from DuckDB's
    buffer pool instead of reopening the file (about a fifth of the dbt stage at 300k customers);
    dbt runs inside this process, so the file must be closed when dbt is done for the next writer
    (this process's own connections included) to open it. dbt-duckdb has no public call for it:
    this uses its connection manager's environment.
    """
    try:
        from dbt.adapters.duckdb.connections import DuckDBConnectionManager
    except ImportError:  # pragma: no cover - dbt-duckdb is a dependency
        return
    with DuckDBConnectionManager._LOCK:
        environment = DuckDBConnectionManager._ENV
        DuckDBConnectionManager._ENV = None
    if environment is not None:
        environment.close()


@contextmanager
def _environ(**values: str) -> Iterator[None]:
    """Set environment variables for the duration (dbt reads them), then restore them."""
    previous = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _log_finished_node(event: Any) -> None:
    """dbt event callback: one log line per finished node, as it finishes."""
    try:
        if event.info.name != "NodeFinished":
            return
        node_info = event.data.node_info
        run_result = event.data.run_result
        status = run_result.status or node_info.node_status
        kind = node_info.resource_type
        failures = run_result.num_failures
        detail = ""
        if kind == "test" and failures:
            detail = f" ({failures} failing rows)"
        elif _STATUS_GROUPS.get(status) == "fail" and run_result.message:
            detail = f": {_one_line(run_result.message)}"
        relation = node_info.node_relation
        name = (
            f"{relation.schema}.{relation.alias}"
            if kind in {"model", "seed"} and relation.alias
            else node_info.node_name
        )
        log.log(
            logging.WARNING if _STATUS_GROUPS.get(status) in {"fail", "warn"} else logging.INFO,
            "dbt %s %s: %s in %.2f s%s",
            kind,
            name,
            status,
            run_result.execution_time,
            detail,
        )
    except Exception:  # a logging problem must never break the build
        log.debug("Could not log a dbt event", exc_info=True)


def _node_results(execution_result: Any) -> list[NodeResult]:
    """Per-node results from dbt's RunExecutionResult (None when dbt stopped before running)."""
    nodes = []
    for run_result in getattr(execution_result, "results", None) or []:
        node = run_result.node
        failures = run_result.failures if node.resource_type == "test" else None
        nodes.append(
            NodeResult(
                unique_id=node.unique_id,
                name=node.name,
                resource_type=str(node.resource_type),
                status=str(run_result.status),
                seconds=round(float(run_result.execution_time or 0.0), 3),
                message=run_result.message,
                failures=failures,
            )
        )
    return nodes


def _count_rows(result: DbtBuildResult, settings: Settings, as_of_date: date) -> None:
    """Rows of each table model (the as-of slice for the marts), for the log.

    dbt-duckdb does not report rows affected, so the tables are counted after the build.
    """
    from core.warehouse import connect

    tables = _table_models(settings)
    counted = [node for node in result.nodes if node.unique_id in tables and node.outcome == "pass"]
    if not counted:
        return
    with connect(settings, read_only=True) as con:
        for node in counted:
            relation, is_sliced = tables[node.unique_id]
            where = " where as_of_date = ?" if is_sliced else ""
            params = [as_of_date] if is_sliced else []
            node.rows = con.execute(f"select count(*) from {relation}{where}", params).fetchone()[0]
    log.info(
        "dbt rows for as-of %s: %s",
        as_of_date,
        ", ".join(f"{node.name}={node.rows}" for node in counted),
    )


def _table_models(settings: Settings) -> dict[str, tuple[str, bool]]:
    """unique_id -> (schema.name, is sliced by as_of_date) of the models that are tables: the
    marts (materialization as_of_slice) are sliced; the tables and incremental models (the base
    models keep every landing partition, the state tables every key) are not."""
    manifest_path = dbt_paths(settings)[0] / "manifest.json"
    try:
        manifest = json.loads(manifest_path.read_text())
    except (OSError, ValueError):
        return {}
    tables = {}
    for unique_id, node in manifest.get("nodes", {}).items():
        materialized = node.get("config", {}).get("materialized")
        if node.get("resource_type") == "model" and materialized in TABLE_MATERIALIZATIONS:
            relation = f'"{node["schema"]}"."{node.get("alias") or node["name"]}"'
            tables[unique_id] = (relation, materialized == "as_of_slice")
    return tables


def _failure_message(
    as_of_date: date, result: DbtBuildResult, exception: BaseException | None
) -> str:
    problems = []
    for node in result.failed_nodes:
        if node.resource_type == "test" and node.status == "fail":
            problems.append(f"{node.resource_type} {node.name} failed ({node.failures} rows)")
        else:
            message = _one_line(node.message or node.status)
            problems.append(f"{node.resource_type} {node.name} {node.status}: {message}")
    skipped = sum(1 for node in result.nodes if node.outcome == "skip")
    if skipped:
        problems.append(f"{skipped} nodes skipped")
    if exception is not None:
        problems.append(f"{type(exception).__name__}: {_one_line(str(exception), 500)}")
    if not problems:
        problems.append("dbt reported failure without a failing node")
    return (
        f"dbt build failed for as-of {as_of_date}: "
        + "; ".join(problems)
        + f" (dbt log: {Path(result.log_path)})"
    )


def _one_line(text: str, limit: int = 300) -> str:
    """The informative line of a dbt message, without its "<Kind> Error in model x (path)" header
    and the SQL excerpt dbt adds after it."""
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    informative = [line for line in lines if not _ERROR_HEADER.match(line)]
    line = (informative or lines or [""])[0]
    return line if len(line) <= limit else line[: limit - 3] + "..."
