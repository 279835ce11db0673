"""The Data Docs site of the quality gates: what a person opening ``index.html`` finds.

Real GX results of small pandas frames (validated once per module, as the gates do in an
ephemeral context) are written with ``build_data_docs`` into ``tmp_path``; the assertions read
the HTML GX rendered. The index lists its rows as JSON inside a script, so names appear there
verbatim; a validation page marks each expectation with a Font Awesome icon, a red cross
(``fa-times text-danger``) when it failed and a green check (``fa-check-circle text-success``)
when it passed.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
import pytest
from filelock import FileLock

from expectations import data_docs
from expectations.data_docs import DataDocsError, build_data_docs

if TYPE_CHECKING:
    from great_expectations.core.expectation_validation_result import (
        ExpectationSuiteValidationResult,
    )

SUITE = "raw.orders"
LABEL = "raw.orders partition 2026-03-05"
OTHER_LABEL = "raw.orders partitions 2026-03-01..2026-03-04 (4 days)"
# Airflow run ids carry ':' and '+'.
RUN = "scheduled__2026-03-05T00:00:00+00:00"
EARLIER_RUN = "scheduled__2026-03-04T00:00:00+00:00"
FAILED_ICON = "fa-times text-danger"
PASSED_ICON = "fa-check-circle text-success"


@pytest.fixture(scope="module")
def results() -> dict[str, ExpectationSuiteValidationResult]:
    """``passing``: every rule met; ``failing``: an amount of 500 breaks the 0..100 range and an
    e-mail address breaks the pattern, while order_id is never null."""
    import great_expectations as gx
    import great_expectations.expectations as gxe

    from expectations.gate import _new_context

    datasource = _new_context().data_sources.add_pandas(name="frames")
    asset = datasource.add_dataframe_asset(name="orders")
    batch_definition = asset.add_batch_definition_whole_dataframe(name="batch")
    suite = gx.ExpectationSuite(
        name=SUITE,
        expectations=[
            gxe.ExpectColumnValuesToNotBeNull(column="order_id"),
            gxe.ExpectColumnValuesToBeBetween(column="amount", min_value=0, max_value=100),
            gxe.ExpectColumnValuesToMatchRegex(column="email", regex=r"^[a-z]+@example\.com$"),
        ],
    )
    good = pd.DataFrame(
        {"order_id": ["O1", "O2"], "amount": [10.5, 99.0], "email": ["ann@example.com"] * 2}
    )
    bad = good.assign(amount=[10.5, 500.0], email=["ann@example.com", "john.doe@mail.org"])
    validated = {
        name: batch_definition.get_batch(batch_parameters={"dataframe": frame}).validate(
            suite, result_format="BASIC"
        )
        for name, frame in (("passing", good), ("failing", bad))
    }
    assert validated["passing"].success and not validated["failing"].success
    return validated


def pages(docs_root: Path, run_id: str) -> dict[str, Path]:
    """The validation pages of one run of ``raw.orders``, by file name (the batch label)."""
    run_folder = docs_root / "data_docs" / "validations" / "raw" / "orders" / run_id
    return {page.stem: page for page in run_folder.glob("*/*.html")}


def index_rows(index: Path) -> str:
    """The index's table rows: the JSON-ish ``data: [...]`` GX puts in a script."""
    match = re.search(r"data: (\[.*?\]),\s*toolbar:", index.read_text(encoding="utf-8"), re.S)
    assert match, "no validation table in the index"
    return match.group(1)


def column_sections(page: Path) -> dict[str, str]:
    """A validation page's HTML per column section (its ``<h5>`` title)."""
    html = page.read_text(encoding="utf-8")
    sections = re.split(r'<div id="section-\d+" class="ge-section', html)[1:]
    named = {}
    for section in sections:
        title = re.search(r"<h5[^>]*>\s*(.*?)\s*</h5>", section, re.S)
        if title:
            named[title.group(1)] = section
    return named


def test_index_names_the_suite_and_the_batch(
    tmp_path: Path, results: dict[str, ExpectationSuiteValidationResult]
):
    index = build_data_docs([(SUITE, LABEL, results["passing"])], run_id=RUN, docs_root=tmp_path)

    assert index == tmp_path.resolve() / "data_docs" / "index.html"
    rows = index_rows(index)
    assert SUITE in rows
    assert LABEL in rows
    assert RUN in rows
    assert "Failed" not in rows
    page = pages(tmp_path, RUN)[LABEL].read_text(encoding="utf-8")
    assert f"Data asset: {LABEL}" in re.sub(r"<[^>]+>", "", page)
    assert f">{SUITE}</a>" in page


def test_a_failing_expectation_is_shown_as_failed(
    tmp_path: Path, results: dict[str, ExpectationSuiteValidationResult]
):
    index = build_data_docs([(SUITE, LABEL, results["failing"])], run_id=RUN, docs_root=tmp_path)

    assert "'_validation_success_text': 'Failed'" in index_rows(index)
    page = pages(tmp_path, RUN)[LABEL]
    sections = column_sections(page)
    assert FAILED_ICON in sections["amount"]
    assert PASSED_ICON not in sections["amount"]
    assert "500" in sections["amount"]  # the failing value, sampled
    assert PASSED_ICON in sections["order_id"]
    assert FAILED_ICON not in sections["order_id"]
    assert "Status:" in sections["Overview"] and "Failed" in sections["Overview"]


def test_personal_values_are_masked_in_the_pages(
    tmp_path: Path, results: dict[str, ExpectationSuiteValidationResult]
):
    build_data_docs([(SUITE, LABEL, results["failing"])], run_id=RUN, docs_root=tmp_path)

    email_section = column_sections(pages(tmp_path, RUN)[LABEL])["email"]
    assert FAILED_ICON in email_section
    assert "j***@m***.org" in email_section
    for path in [*tmp_path.rglob("*.html"), *tmp_path.rglob("*.json")]:
        assert "john.doe@mail.org" not in path.read_text(encoding="utf-8"), path
    # The caller's result is not changed.
    assert "john.doe@mail.org" in json.dumps(results["failing"].to_json_dict())


def test_a_later_run_keeps_the_earlier_one_in_the_index_newest_first(
    tmp_path: Path, results: dict[str, ExpectationSuiteValidationResult]
):
    build_data_docs([(SUITE, LABEL, results["failing"])], run_id=EARLIER_RUN, docs_root=tmp_path)
    index = build_data_docs([(SUITE, LABEL, results["passing"])], run_id=RUN, docs_root=tmp_path)

    rows = index_rows(index)
    assert RUN in rows and EARLIER_RUN in rows
    assert rows.index(RUN) < rows.index(EARLIER_RUN)
    assert LABEL in pages(tmp_path, EARLIER_RUN)
    assert LABEL in pages(tmp_path, RUN)


def test_a_run_whose_name_contains_profiling_is_listed(
    tmp_path: Path, results: dict[str, ExpectationSuiteValidationResult]
):
    """GX's default site files such runs under a hidden profiling section."""
    run_id = "manual__profiling_fix"

    index = build_data_docs([(SUITE, LABEL, results["passing"])], run_id=run_id, docs_root=tmp_path)

    assert run_id in index_rows(index)
    assert LABEL in pages(tmp_path, run_id)


def test_keep_runs_deletes_the_older_runs_results_and_pages(
    tmp_path: Path, results: dict[str, ExpectationSuiteValidationResult]
):
    build_data_docs([(SUITE, LABEL, results["failing"])], run_id=EARLIER_RUN, docs_root=tmp_path)
    assert pages(tmp_path, EARLIER_RUN)

    index = build_data_docs(
        [(SUITE, LABEL, results["passing"])], run_id=RUN, docs_root=tmp_path, keep_runs=1
    )

    assert EARLIER_RUN not in index_rows(index)
    assert RUN in index_rows(index)
    assert not (tmp_path / "data_docs" / "validations" / "raw" / "orders" / EARLIER_RUN).exists()
    assert not (tmp_path / "validations" / "raw" / "orders" / EARLIER_RUN).exists()
    assert LABEL in pages(tmp_path, RUN)


def test_batches_of_one_suite_in_one_run_are_all_kept(
    tmp_path: Path, results: dict[str, ExpectationSuiteValidationResult]
):
    index = build_data_docs(
        [
            (SUITE, OTHER_LABEL, results["passing"]),
            (SUITE, LABEL, results["passing"]),
            (SUITE, LABEL, results["failing"]),  # same label again: kept as "#2"
        ],
        run_id=RUN,
        docs_root=tmp_path,
    )

    assert set(pages(tmp_path, RUN)) == {OTHER_LABEL, LABEL, f"{LABEL} #2"}
    rows = index_rows(index)
    assert OTHER_LABEL in rows and f"{LABEL} #2" in rows
    assert rows.count("'_validation_success_text': 'Failed'") == 1


def test_a_render_error_gx_only_logs_raises_data_docs_error(
    tmp_path: Path,
    results: dict[str, ExpectationSuiteValidationResult],
    monkeypatch: pytest.MonkeyPatch,
):
    from great_expectations.render.renderer import ValidationResultsPageRenderer

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("renderer exploded")

    monkeypatch.setattr(ValidationResultsPageRenderer, "render", broken)

    with pytest.raises(DataDocsError, match="renderer exploded") as caught:
        build_data_docs([(SUITE, LABEL, results["passing"])], run_id=RUN, docs_root=tmp_path)
    assert str(tmp_path.resolve()) in str(caught.value)


_BUILD_IN_ANOTHER_PROCESS = """
import json, sys
from pathlib import Path
from great_expectations.core.expectation_validation_result import (
    ExpectationSuiteValidationResultSchema,
)
from expectations.data_docs import build_data_docs

result_file, suite, label, run_id, docs_root = sys.argv[1:]
result = ExpectationSuiteValidationResultSchema().load(json.loads(Path(result_file).read_text()))
build_data_docs([(suite, label, result)], run_id=run_id, docs_root=Path(docs_root))
"""


def test_another_process_adds_its_run_to_the_same_site(
    tmp_path: Path, results: dict[str, ExpectationSuiteValidationResult]
):
    """Each Airflow task is its own process: what one stored, the next one's index still lists."""
    docs_root = tmp_path / "gx"
    build_data_docs([(SUITE, LABEL, results["passing"])], run_id=EARLIER_RUN, docs_root=docs_root)
    result_file = tmp_path / "result.json"
    result_file.write_text(json.dumps(results["failing"].to_json_dict()))

    arguments = [str(result_file), SUITE, LABEL, RUN, str(docs_root)]
    completed = subprocess.run(
        [sys.executable, "-c", _BUILD_IN_ANOTHER_PROCESS, *arguments],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )

    assert completed.returncode == 0, completed.stderr
    rows = index_rows(docs_root / "data_docs" / "index.html")
    assert rows.index(RUN) < rows.index(EARLIER_RUN)
    assert LABEL in pages(docs_root, RUN)
    assert LABEL in pages(docs_root, EARLIER_RUN)


def test_a_build_waits_for_another_processs_build(
    tmp_path: Path,
    results: dict[str, ExpectationSuiteValidationResult],
    monkeypatch: pytest.MonkeyPatch,
):
    """Two gates may finish at once; the second must not write the site while the first does."""
    monkeypatch.setattr(data_docs, "LOCK_TIMEOUT_SECONDS", 0.2)

    with FileLock(tmp_path / data_docs.LOCK_FILE), pytest.raises(DataDocsError, match="held"):
        build_data_docs([(SUITE, LABEL, results["passing"])], run_id=RUN, docs_root=tmp_path)

    assert not (tmp_path / "data_docs").exists()
    build_data_docs([(SUITE, LABEL, results["passing"])], run_id=RUN, docs_root=tmp_path)
    assert LABEL in pages(tmp_path, RUN)


def test_the_gates_batches_are_not_fingerprinted(
    tmp_path: Path, results: dict[str, ExpectationSuiteValidationResult]
):
    """GX would hash every value of each batch frame twice per validation, only to show an md5
    under "Batch Markers"; the gate's context turns that off (``gate._skip_batch_fingerprints``).
    A GX release that drops the setting fails here, not silently slower."""
    import great_expectations as gx

    for result in results.values():
        assert "pandas_data_fingerprint" not in result.meta["batch_markers"]
        assert "ge_load_time" in result.meta["batch_markers"]
    build_data_docs([(SUITE, LABEL, results["passing"])], run_id=RUN, docs_root=tmp_path)
    page = re.sub(r"<[^>]+>", " ", pages(tmp_path, RUN)[LABEL].read_text(encoding="utf-8"))
    assert "ge_load_time" in page
    assert "pandas_data_fingerprint" not in page
    # A context made without the gate's settings fingerprints (the setting is what changed).
    from great_expectations.execution_engine import pandas_execution_engine

    threshold = pandas_execution_engine.HASH_THRESHOLD
    pandas_execution_engine.HASH_THRESHOLD = 1e9
    try:
        datasource = gx.get_context(mode="ephemeral").data_sources.add_pandas(name="plain")
        batch = (
            datasource.add_dataframe_asset(name="orders")
            .add_batch_definition_whole_dataframe(name="batch")
            .get_batch(batch_parameters={"dataframe": pd.DataFrame({"order_id": ["O1"]})})
        )
        assert "pandas_data_fingerprint" in batch.batch_markers
    finally:
        pandas_execution_engine.HASH_THRESHOLD = threshold


def test_importing_the_module_does_not_import_gx():
    """The DAG file imports it; parsing must not pay the ~5 s GX import."""
    code = (
        "import sys, expectations.data_docs; "
        "assert 'great_expectations' not in sys.modules, 'GX imported at import time'"
    )
    completed = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False
    )
    assert completed.returncode == 0, completed.stderr


_LOADED_ADDRESS = re.compile(r"""<(?:script|link|img)\b[^>]*?(?:src|href)=["']([^"']+)["']""", re.I)


def test_the_pages_load_every_asset_from_the_site_folder(
    tmp_path: Path, results: dict[str, ExpectationSuiteValidationResult]
):
    """No CDN: the index and the pages work without a network (``make install`` fetched the
    assets once from the npm registry)."""
    from expectations.offline_assets import missing_packages

    assert not missing_packages(), "Data Docs assets not installed: run make install"
    index = build_data_docs([(SUITE, LABEL, results["failing"])], run_id=RUN, docs_root=tmp_path)

    for page in (index, pages(tmp_path, RUN)[LABEL]):
        loaded = _LOADED_ADDRESS.findall(page.read_text(encoding="utf-8"))
        assert any("jquery.min.js" in address for address in loaded)
        for address in loaded:
            assert not re.match(r"^(https?:)?//", address), f"{page.name} loads {address}"
            if "static/vendor/" in address:
                assert (page.parent / address).resolve().is_file(), address
