"""The dbt profile's DuckDB settings survive a spill: at 10M customers a model spilled to the temp
directory, and the next node's connection then failed setting that directory again ("Cannot
switch temporary directory after the current one has been used")."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.slow

# The first model sorts more than the memory limit holds, so DuckDB spills; the second is any
# later node (a new cursor on the same open database).
MODELS = {
    "spilled": "select i, md5(i::varchar) as h from range(3000000) t(i) order by h",
    "after_the_spill": "select count(*) as n from {{ ref('spilled') }}",
}


def test_nodes_after_a_spill_still_connect(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from dbt.cli.main import dbtRunner

    project = tmp_path / "project"
    (project / "models").mkdir(parents=True)
    (project / "dbt_project.yml").write_text(
        "name: spill_check\nversion: '1.0'\nprofile: customer_segmentation\n"
        "models:\n  spill_check:\n    +materialized: table\n"
    )
    for name, sql in MODELS.items():
        (project / "models" / f"{name}.sql").write_text(sql)
    spill = tmp_path / "spill"
    monkeypatch.setenv("SEGMENTS_WAREHOUSE", str(tmp_path / "warehouse.duckdb"))
    monkeypatch.setenv("SEGMENTS_DUCKDB_MEMORY_LIMIT", "100MB")
    monkeypatch.setenv("SEGMENTS_DUCKDB_TEMP_DIR", str(spill))
    monkeypatch.setenv("DO_NOT_TRACK", "1")
    result = dbtRunner().invoke(
        [
            "run",
            "--project-dir", str(project),
            "--profiles-dir", str(ROOT / "dbt_project"),
            "--target-path", str(tmp_path / "target"),
            "--log-path", str(tmp_path / "logs"),
        ]
    )  # fmt: skip
    assert result.success, result.exception or [str(r.message) for r in result.result]
    assert [r.status for r in result.result] == ["success", "success"]
    assert spill.is_dir()  # DuckDB created it when it spilled
