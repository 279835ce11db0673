"""Where the pipeline reads and writes, from environment variables with sensible defaults.

One variable moves everything: ``SEGMENTS_DATA_DIR`` (default ``<repo>/data``). The others
override single locations inside it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    warehouse_path: Path
    landing_dir: Path
    truth_dir: Path
    dbt_project_dir: Path
    reports_dir: Path
    # The YAML file that says where each source's files are and how they map to the landing
    # contract (ingestion/sources.py); the shipped one describes the demo's landing layout.
    sources_config: Path = PROJECT_ROOT / "ingestion" / "sources.yml"
    # How long a writer waits for another process holding the warehouse before failing.
    lock_timeout_s: float = 3600.0
    # DuckDB's memory limit for every warehouse connection (Python stages and dbt): past it,
    # sorts, joins and aggregations spill to ``duckdb_temp_dir`` instead of growing. DuckDB's
    # own default is 80% of the machine's RAM, which a shared machine does not have to spare.
    duckdb_memory_limit: str = "2GB"
    # Where DuckDB spills (default ``<data dir>/duckdb_tmp``); owner-only, it may hold personal
    # data while a query runs.
    duckdb_temp_dir: Path | None = None

    @property
    def spill_dir(self) -> Path:
        return self.duckdb_temp_dir or self.data_dir / "duckdb_tmp"

    @property
    def lock_path(self) -> Path:
        return self.warehouse_path.with_name(self.warehouse_path.name + ".lock")


def _path(name: str, default: Path) -> Path:
    value = os.environ.get(name)
    return Path(value).expanduser().resolve() if value else default


def get_settings() -> Settings:
    """Read the settings now (not at import time), so tests and tasks can point elsewhere."""
    data_dir = _path("SEGMENTS_DATA_DIR", PROJECT_ROOT / "data")
    return Settings(
        data_dir=data_dir,
        warehouse_path=_path("SEGMENTS_WAREHOUSE", data_dir / "warehouse.duckdb"),
        landing_dir=_path("SEGMENTS_LANDING_DIR", data_dir / "landing"),
        truth_dir=_path("SEGMENTS_TRUTH_DIR", data_dir / "truth"),
        dbt_project_dir=_path("SEGMENTS_DBT_PROJECT_DIR", PROJECT_ROOT / "dbt_project"),
        reports_dir=_path("SEGMENTS_REPORTS_DIR", data_dir / "reports"),
        sources_config=_path("SEGMENTS_SOURCES_CONFIG", PROJECT_ROOT / "ingestion" / "sources.yml"),
        lock_timeout_s=float(os.environ.get("SEGMENTS_LOCK_TIMEOUT_S", "3600")),
        duckdb_memory_limit=(
            os.environ.get("SEGMENTS_DUCKDB_MEMORY_LIMIT") or Settings.duckdb_memory_limit
        ),
        duckdb_temp_dir=_path("SEGMENTS_DUCKDB_TEMP_DIR", data_dir / "duckdb_tmp"),
    )
