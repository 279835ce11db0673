"""Great Expectations Data Docs (the static HTML site) for the quality gates' validation results.

The gates validate pandas frames in an *ephemeral* GX context, so nothing they produce outlives
the task. ``build_data_docs`` keeps those results on disk and renders them into one site that
grows run after run, so that the run summary can point at a page instead of a JSON file:

``<docs_root>/``
    ``validations/<suite parts>/<run id>/<run time>/<batch label>.json``: the stored results (a GX
    ``ValidationResultsStore`` on a ``TupleFilesystemStoreBackend``); the source of the site.
    ``data_docs/index.html``: the site (plus ``data_docs/validations/...html`` and ``static/``).
    ``.data_docs.lock``: serialises builds of separate processes (Airflow tasks, manual runs).

Why it is built this way:

* A throw-away ephemeral context per call, configured with a filesystem results store and a
  filesystem site, instead of a file-mode context: nothing else GX would scaffold (YAML config,
  expectation store, checkpoints, plugins) is needed, and no GX state survives between calls
  except the stored results, so repeated calls in one process and calls from separate processes
  behave the same.
* Only the results of this call are rendered (``resource_identifiers``); the index is rebuilt
  from every stored result. GX's index reads and parses *every* stored result to show its status
  and asset, so a call costs O(stored results); ``keep_runs`` bounds that. Measured on a 2-core
  container (GX 1.24.1, the project's 7 suites, ~10 expectations each, 20 new results a call):
  0.45 s on an empty store, 1.6 s with 1,050 results already stored (about half of it the
  index, a fifth rendering the 20 pages, the rest listing the store), 2.7 s at the steady state
  of the default ``keep_runs=90`` (~1,850 stored, ~30 MB of results and ~100 MB of pages).
  Re-rendering all 1,070 results instead took 9.5 s. The GX import (~5 s) comes on top in a
  fresh process.
* A run is one ``run_id`` (an Airflow run id, or ``"manual"``). Every call stores its results
  under that name with the call's time, so the raw and the marts gates of one DAG run (two
  calls, same run id) form one run, and a retried task adds its results next to the first
  attempt's instead of overwriting them. Two results of the same suite and batch label in one
  call are kept apart by a ``#2``, ``#3`` suffix on the label.
* Pruning (``keep_runs``): after storing, the newest ``keep_runs`` run ids (by their newest
  result; the current run always counts as newest) are kept, and every stored result and
  rendered page of older run ids is deleted, with the folders that leaves empty. ``None`` keeps
  everything. Reusing one run id (e.g. ``"manual"``) keeps all its results as one run.
* The example values GX keeps in a result (first failing values, distinct values, value counts,
  unexpected rows) are masked like the gates' JSON reports (``core.masking``) before they
  are stored, because the site is read more widely than the warehouse.
* GX's site builder catches exceptions while rendering a page or the index and only logs them;
  ``DataDocsError`` is raised for those too (and when a new result's page or the index is
  missing afterwards), so a broken page never goes unnoticed. What to do with the error (fail
  the task or just warn) is the caller's decision. A smaller failure inside one page (GX renders
  the rest of the page without, e.g., one rule's "N unexpected values" line) stays what GX makes
  it: an ERROR in GX's log. Results stored before a failure stay stored and are listed by the
  next build's index, but their pages are not rendered again.

GX choices that matter here: the ``profiling`` section is turned off and the ``validations``
section is given a filter that accepts every run name, because GX's default filter hides every
run whose name contains "profiling"; the ``expectations`` section is off, because the suites are
declared in code and never stored in a GX expectation store (the suite names in the pages still
link to ``expectations/<suite>.html``, which does not exist). GX's pages load their CSS and
JavaScript (jQuery, Bootstrap, bootstrap-table, Font Awesome, Vega) from public CDNs; after each
build the pages it wrote are pointed at local copies under ``data_docs/static/vendor``
(``expectations.offline_assets``; ``make install`` fetches them once from the npm registry), so
the site renders and navigates with no network.

Importing this module is cheap; GX is imported inside ``build_data_docs``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from filelock import FileLock, Timeout

from core.masking import is_personal_table, mask_example, mask_value
from core.private_files import private_dir
from expectations.gx_logging import quiet_gx_logging
from expectations.offline_assets import OfflineAssetsMissing, localize_pages

if TYPE_CHECKING:
    from great_expectations.core.expectation_validation_result import (
        ExpectationSuiteValidationResult,
    )
    from great_expectations.core.run_identifier import RunIdentifier
    from great_expectations.data_context import AbstractDataContext

log = logging.getLogger(__name__)

SITE_DIR = "data_docs"
RESULTS_DIR = "validations"
LOCK_FILE = ".data_docs.lock"
# Another process building the same site waits this long; a build takes seconds.
LOCK_TIMEOUT_SECONDS = 600.0
DEFAULT_KEEP_RUNS = 90
SITE_NAME = "quality gates"

# Store keys become file names: no separators, at most this many UTF-8 bytes (255 is the usual
# limit and GX appends ".json"/".html" and our "#n"), and never "." or "..".
_MAX_KEY_PART_BYTES = 200
# GX logs (and swallows) a failed page or index render on this logger.
_SITE_BUILDER_LOGGER = "great_expectations.render.renderer.site_builder"
# Result keys holding values of the data (masked) rather than statistics (kept).
_VALUE_LIST_KEYS = ("partial_unexpected_list", "unexpected_list", "partial_missing_list")
_VALUE_COUNT_KEYS = ("partial_unexpected_counts", "unexpected_value_counts", "value_counts")
_ROW_LIST_KEYS = (
    "partial_unexpected_index_list",
    "unexpected_index_list",
    "unexpected_rows",
    "missing_rows",
)


class DataDocsError(Exception):
    """Building the Data Docs site under ``docs_root`` failed (GX raised or logged an error)."""

    def __init__(self, docs_root: Path, reason: str) -> None:
        super().__init__(f"Could not build the Data Docs under {docs_root}: {reason}")
        self.docs_root = docs_root


def build_data_docs(
    validations: Sequence[tuple[str, str, ExpectationSuiteValidationResult]],
    *,
    run_id: str,
    docs_root: Path,
    keep_runs: int | None = DEFAULT_KEEP_RUNS,
) -> Path:
    """Store ``validations`` (suite name, batch label, GX result) and update the site; returns
    the path of ``<docs_root>/data_docs/index.html``.

    Only this call's results are rendered; the index lists every stored result, newest run
    first. Results of run ids older than the newest ``keep_runs`` are deleted with their pages
    (``None``: keep all). The caller's result objects are not modified.

    Raises ``DataDocsError`` (naming ``docs_root``) when GX fails to store or render anything.
    """
    if keep_runs is not None and keep_runs < 1:
        raise ValueError(f"keep_runs must be at least 1 or None, not {keep_runs}")
    unstorable = [name for name, _, _ in validations if not _is_storable_suite_name(name)]
    if unstorable:
        raise ValueError(f"Suite names {unstorable} cannot be stored as Data Docs folders")
    docs_root = Path(docs_root).resolve()  # GX's filesystem stores want absolute paths
    quiet_gx_logging()
    try:
        # Owner-only, like the JSON reports: the pages show (masked) examples of the data.
        private_dir(docs_root)
        with FileLock(docs_root / LOCK_FILE, timeout=LOCK_TIMEOUT_SECONDS):
            return _build(validations, run_id, docs_root, keep_runs)
    except DataDocsError:
        raise
    except Timeout as error:
        reason = f"another build held {error.lock_file} for {LOCK_TIMEOUT_SECONDS:.0f} s"
        raise DataDocsError(docs_root, reason) from error
    except Exception as error:
        raise DataDocsError(docs_root, f"{type(error).__name__}: {error}") from error


def _build(
    validations: Sequence[tuple[str, str, ExpectationSuiteValidationResult]],
    run_id: str,
    docs_root: Path,
    keep_runs: int | None,
) -> Path:
    from great_expectations.core.run_identifier import RunIdentifier
    from great_expectations.data_context.types.resource_identifiers import (
        ExpectationSuiteIdentifier,
        ValidationResultIdentifier,
    )

    context = _docs_context(docs_root)
    store = context.validation_results_store
    # run_time is given explicitly: GX would otherwise try to parse the run name as a date.
    run = RunIdentifier(run_name=_key_part(run_id), run_time=datetime.now(UTC))
    new_keys = []
    taken: set[tuple[str, str]] = set()
    for suite_name, batch_label, result in validations:
        batch_id = _unique_batch_id(suite_name, batch_label, taken)
        key = ValidationResultIdentifier(
            expectation_suite_identifier=ExpectationSuiteIdentifier(name=suite_name),
            run_id=run,
            batch_identifier=batch_id,
        )
        store.set(key, _prepared(result, suite_name, batch_label, run))
        new_keys.append(key)

    pruned = _prune(store, docs_root, keep_runs, run.run_name) if keep_runs else []

    # An empty list would make GX re-render every stored result; a key of another type matches
    # none, so only the index is rebuilt.
    targets: list[Any] = new_keys or [ExpectationSuiteIdentifier(name="__no_new_results__")]
    started = time.time()
    with _gx_render_errors() as errors:
        context.build_data_docs(resource_identifiers=targets)
    if errors:
        raise DataDocsError(docs_root, "GX failed to render: " + "; ".join(errors))
    pages = _validation_pages(docs_root)
    missing = [key for key in new_keys if not pages.has_key(key.to_tuple())]
    if missing:
        names = ", ".join(
            f"{key.expectation_suite_identifier.name}/{key.batch_identifier}" for key in missing[:3]
        )
        raise DataDocsError(docs_root, f"GX wrote no page for {len(missing)} results ({names})")

    index = docs_root / SITE_DIR / "index.html"
    if not index.is_file():
        raise DataDocsError(docs_root, f"GX reported success but wrote no {index}")
    _serve_assets_locally(docs_root / SITE_DIR, since=started)
    log.info(
        "Data Docs: %d new validation results of run %s rendered, %d of older runs pruned; %s",
        len(new_keys),
        run_id,
        len(pruned),
        index,
    )
    return index


def _serve_assets_locally(site_dir: Path, since: float) -> None:
    """Point the pages GX just wrote at local copies of their CDN assets (offline_assets).

    Without the installed assets the site keeps its CDN addresses (it still works online), and a
    warning says how to fix it: a missing asset must not fail a quality gate.
    """
    # GX wrote the index and this call's pages; older pages were localized when they were new,
    # except in a site built before this existed (no marker yet): then every page, once.
    marker = site_dir / "static" / "vendor" / ".all-pages-localized"
    pages = [
        page
        for page in site_dir.rglob("*.html")
        if not marker.exists() or page.stat().st_mtime >= since - 1
    ]
    try:
        localize_pages(site_dir, pages)
    except OfflineAssetsMissing as missing:
        log.warning("Data Docs keep their CDN links (they need a network): %s", missing)
        return
    marker.touch()


def _docs_context(docs_root: Path) -> AbstractDataContext:
    """An ephemeral context whose validation results and docs site live under ``docs_root``."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    defaults = InMemoryStoreBackendDefaults(init_temp_docs_sites=False)
    defaults.stores[defaults.validation_results_store_name] = {
        "class_name": "ValidationResultsStore",
        "store_backend": {
            "class_name": "TupleFilesystemStoreBackend",
            "base_directory": str(docs_root / RESULTS_DIR),
            # Otherwise GX writes a .ge_store_backend_id file among the results.
            "suppress_store_backend_id": True,
        },
    }
    defaults.data_docs_sites = {
        SITE_NAME: {
            "class_name": "SiteBuilder",
            "show_how_to_buttons": False,  # a footer of links to GX tutorials on every page
            "store_backend": {
                "class_name": "TupleFilesystemStoreBackend",
                "base_directory": str(docs_root / SITE_DIR),
            },
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
            "site_section_builders": {
                "expectations": "None",
                "profiling": "None",
                # Any run name: GX's default hides runs whose name contains "profiling".
                "validations": {"run_name_filter": {"matches_regex": "^"}},
            },
        }
    }
    config = DataContextConfig(
        store_backend_defaults=defaults,
        progress_bars=ProgressBarsConfig(globally=False, metric_calculations=False),
        analytics_enabled=False,
    )
    return gx.get_context(mode="ephemeral", project_config=config)


def _prepared(
    result: ExpectationSuiteValidationResult,
    suite_name: str,
    batch_label: str,
    run: RunIdentifier,
) -> ExpectationSuiteValidationResult:
    """A masked copy of ``result`` that the pages label with the suite, batch label and run.

    GX's validation page names the batch by ``meta.batch_spec.data_asset_name`` and shows the
    run from ``meta.run_id``; ``batch.validate()`` (unlike a checkpoint) sets neither.
    """
    from great_expectations.core.expectation_validation_result import (
        ExpectationSuiteValidationResultSchema,
    )

    data = result.to_json_dict()  # a deep, JSON-safe copy: the caller's object stays as it was
    meta = dict(data.get("meta") or {})
    meta["run_id"] = run.to_json_dict()
    meta["batch_spec"] = {**(meta.get("batch_spec") or {}), "data_asset_name": batch_label}
    data["meta"] = meta
    data["suite_name"] = suite_name
    personal = is_personal_table(suite_name)
    for item in data.get("results") or []:
        config = item.get("expectation_config") or {}
        details = item.get("result")
        if isinstance(details, dict):
            columns = _columns_of(config.get("kwargs") or {})
            item["result"] = _masked_details(columns, details, personal)
    return ExpectationSuiteValidationResultSchema().load(data)


def _masked_details(
    columns: list[str], details: dict[str, Any], personal: bool = False
) -> dict[str, Any]:
    """Mask the data values in one expectation's ``result``; counts and percentages stay.
    ``personal``: the batch is a table of CRM records, masked whole (``is_personal_table``)."""
    masked = dict(details)
    for key in _VALUE_LIST_KEYS:
        if isinstance(masked.get(key), list):
            masked[key] = [
                mask_example(columns, value, personal_row=personal) for value in masked[key]
            ]
    for key in _VALUE_COUNT_KEYS:
        if isinstance(masked.get(key), list):
            masked[key] = [_mask_counted(columns, entry, personal) for entry in masked[key]]
    for key in _ROW_LIST_KEYS:
        if isinstance(masked.get(key), list):
            masked[key] = [mask_example([], row, personal_row=personal) for row in masked[key]]
    if "observed_value" in masked:
        # Usually a statistic (a count, a mean): only text, e.g. a list of distinct values, is
        # data; column names (a schema rule's observed columns) are not, so they stay readable.
        masked["observed_value"] = _mask_text(columns, masked["observed_value"])
    if isinstance(masked.get("details"), dict):
        masked["details"] = _masked_details(columns, masked["details"], personal)
    return masked


def _mask_counted(columns: list[str], entry: Any, personal: bool = False) -> Any:
    if isinstance(entry, dict) and "value" in entry:
        return {**entry, "value": mask_example(columns, entry["value"], personal_row=personal)}
    return mask_example(columns, entry, personal_row=personal)


def _mask_text(columns: list[str], value: Any) -> Any:
    if isinstance(value, str):
        return mask_value(columns[0] if len(columns) == 1 else None, value)
    if isinstance(value, list | tuple):
        return [_mask_text(columns, item) for item in value]
    if isinstance(value, dict):
        return {key: _mask_text(columns, item) for key, item in value.items()}
    return value


def _columns_of(kwargs: dict[str, Any]) -> list[str]:
    columns = [kwargs.get("column"), kwargs.get("column_A"), kwargs.get("column_B")]
    columns += list(kwargs.get("column_list") or [])
    return [column for column in columns if isinstance(column, str)]


def _prune(store: Any, docs_root: Path, keep_runs: int, current_run: str) -> list[Any]:
    """Delete the stored results and pages of every run id but the newest ``keep_runs``."""
    keys = store.list_keys()
    newest: dict[str, datetime] = {}
    for key in keys:
        name, time = key.run_id.run_name, key.run_id.run_time
        newest[name] = max(newest.get(name, time), time)
    # The current run first whatever the clocks say: its results were just stored.
    ordered = sorted(newest, key=lambda name: (name == current_run, newest[name]), reverse=True)
    kept = set(ordered[:keep_runs])
    stale = [key for key in keys if key.run_id.run_name not in kept]
    if not stale:
        return []
    pages = _validation_pages(docs_root)
    for key in stale:
        store.remove_key(key)
        pages.remove_key(key.to_tuple())
    # GX leaves the emptied run folders behind (its clean-up never removes a folder).
    for base in (docs_root / RESULTS_DIR, docs_root / SITE_DIR / "validations"):
        _remove_empty_folders(base)
    log.info(
        "Data Docs: pruned %d results of %d runs older than the newest %d",
        len(stale),
        len(newest) - len(kept),
        keep_runs,
    )
    return stale


def _validation_pages(docs_root: Path) -> Any:
    """The store backend of the site's validation pages, keyed like the results: the same
    layout GX writes pages with, so a result's page is found, not guessed."""
    from great_expectations.data_context.store.html_site_store import HtmlSiteStore
    from great_expectations.data_context.types.resource_identifiers import (
        ValidationResultIdentifier,
    )

    site = {
        "class_name": "TupleFilesystemStoreBackend",
        "base_directory": str(docs_root / SITE_DIR),
    }
    return HtmlSiteStore(store_backend=site).store_backends[ValidationResultIdentifier]


def _remove_empty_folders(base: Path) -> None:
    """Remove the empty folders below ``base`` (deepest first), keeping ``base`` itself."""
    if not base.is_dir():
        return
    for folder in sorted((p for p in base.rglob("*") if p.is_dir()), key=_depth, reverse=True):
        try:
            folder.rmdir()
        except OSError:  # not empty
            continue


def _depth(path: Path) -> int:
    return len(path.parts)


@contextmanager
def _gx_render_errors() -> Iterator[list[str]]:
    """Collect the errors GX's site builder logs instead of raising (first line of each)."""
    errors: list[str] = []

    class _Collector(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            message = record.getMessage().strip()
            # GX's message starts with a generic paragraph; the exception follows it.
            tail = message.rsplit("Detailed information follows:", 1)[-1].strip()
            errors.append(tail.split("Traceback:", 1)[0].strip() or message[:300])

    handler = _Collector(level=logging.ERROR)
    logger = logging.getLogger(_SITE_BUILDER_LOGGER)
    logger.addHandler(handler)
    try:
        yield errors
    finally:
        logger.removeHandler(handler)


def _is_storable_suite_name(name: str) -> bool:
    """GX files a suite under one folder per dot-separated part, so each part must be a name."""
    parts = name.split(".")
    return bool(name) and not any(
        part in {"", ".."} or "/" in part or "\\" in part for part in parts
    )


def _key_part(text: str) -> str:
    """``text`` usable as one file name: readable (``:`` and ``+`` of run ids stay), bounded."""
    cleaned = text.replace("/", "_").replace("\\", "_").replace("\0", "")
    cleaned = cleaned.encode()[:_MAX_KEY_PART_BYTES].decode(errors="ignore")
    return cleaned if cleaned.strip(".") else f"_{cleaned}"


def _unique_batch_id(suite_name: str, batch_label: str, taken: set[tuple[str, str]]) -> str:
    base = _key_part(batch_label)
    batch_id, number = base, 1
    while (suite_name, batch_id) in taken:
        number += 1
        batch_id = f"{base} #{number}"
    taken.add((suite_name, batch_id))
    return batch_id
