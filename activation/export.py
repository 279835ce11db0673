"""Export the current segments as a file for the tools outside the warehouse (CRM, ads, email).

Run by the ``segment_export`` DAG whenever the nightly DAG publishes a version (an Airflow Asset
event), or by hand: ``python -m activation.export``. It writes
``$SEGMENTS_REPORTS_DIR/exports/segments-v<version>-<as-of>.csv`` (customer_id, segment_id,
segment_name) and points ``segments-current.csv`` at it (a copy, replaced atomically), so a
consumer that polls one path always reads a complete file.

Text that a spreadsheet would run as a formula (a cell starting with ``=``, ``+``, ``-``, ``@``, a
tab or a carriage return, e.g. ``=cmd|' /C calc'!A0`` typed into a CRM field) is written with a
leading apostrophe, so opening the export in Excel or LibreOffice shows it instead of running it
(OWASP's advice on CSV injection).
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from core.settings import Settings, get_settings
from core.warehouse import connect

log = logging.getLogger(__name__)


def export_current_segments(settings: Settings | None = None) -> dict:
    """Write the current version's members to CSV; returns the file, version and row count."""
    settings = settings or get_settings()
    out_dir = settings.reports_dir / "exports"
    out_dir.mkdir(parents=True, exist_ok=True)
    with connect(settings, read_only=True) as con:
        current = con.execute(
            "select version_id, as_of_date from segments.current_version"
        ).fetchone()
        if current is None:
            raise LookupError("No segment version is current yet: nothing to export.")
        version_id, as_of_date = current
        path = out_dir / f"segments-v{version_id}-{as_of_date.isoformat()}.csv"
        tmp = path.with_suffix(".csv.tmp")
        con.execute(
            f"copy (select {_as_text_cell('customer_id')} as customer_id, segment_id, "
            f"{_as_text_cell('segment_name')} as segment_name from segments.current_segments "
            f"order by customer_id) to '{_sql_path(tmp)}' (header, delimiter ',')"
        )
        rows = con.execute("select count(*) from segments.current_segments").fetchone()[0]
    tmp.replace(path)
    latest = out_dir / "segments-current.csv"
    shutil.copyfile(path, latest.with_suffix(".csv.tmp"))
    latest.with_suffix(".csv.tmp").replace(latest)
    log.info(
        "Exported segment version %d (as-of %s): %d customers to %s",
        version_id,
        as_of_date,
        rows,
        path,
    )
    return {
        "version_id": int(version_id),
        "as_of_date": as_of_date.isoformat(),
        "rows": int(rows),
        "path": str(path),
    }


def _as_text_cell(column: str) -> str:
    """The column, with a leading apostrophe when a spreadsheet would read it as a formula."""
    return (
        f"case when regexp_matches({column}, '^[-=+@\\t\\r]') "
        f"then chr(39) || {column} else {column} end"
    )


def _sql_path(path: Path) -> str:
    return str(path).replace("'", "''")


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    print(export_current_segments()["path"])
