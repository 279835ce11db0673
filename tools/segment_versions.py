"""List segment versions and roll back, from the command line.

``python -m tools.segment_versions list`` (``make versions``) and
``python -m tools.segment_versions rollback --version-id N --reason "..."``
(``make rollback VERSION=N REASON="..."``). The rollback is the same step the ``segment_rollback``
DAG runs.
"""

from __future__ import annotations

import argparse
import getpass
import sys

import pandas as pd

from core.settings import get_settings
from core.warehouse import connect


def format_versions(frame: pd.DataFrame) -> str:
    """The versions as a table for people: blanks instead of ``None``/``NaN``, ``*`` marks the
    current version, numbers rounded."""
    columns = {
        "version": ("version_id", "{:.0f}"),
        "current": ("is_current", None),
        "as-of": ("as_of_date", "{:%Y-%m-%d}"),
        "status": ("status", "{}"),
        "mode": ("mode", "{}"),
        "k": ("k", "{:.0f}"),
        "silhouette": ("silhouette", "{:.3f}"),
        "stability": ("stability_ari", "{:.3f}"),
        "customers": ("customer_count", "{:,.0f}"),
        "why (status)": ("status_reason", "{}"),
    }
    shown = pd.DataFrame(
        {
            header: [
                ("*" if value is True else "") if pattern is None else _cell(value, pattern)
                for value in frame[column].tolist()
            ]
            for header, (column, pattern) in columns.items()
        }
    )
    with pd.option_context("display.width", 200, "display.max_colwidth", 70):
        return shown.to_string(index=False)


def _cell(value: object, pattern: str) -> str:
    try:
        missing = bool(pd.isna(value))
    except (TypeError, ValueError):
        missing = False
    return "" if missing else pattern.format(value)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    listing = commands.add_parser("list", help="the newest segment versions")
    listing.add_argument("--limit", type=int, default=20)
    back = commands.add_parser("rollback", help="make an earlier version current again")
    back.add_argument("--version-id", type=int, required=True)
    back.add_argument("--reason", required=True)
    back.add_argument("--by", default=getpass.getuser())
    args = parser.parse_args(argv)

    settings = get_settings()
    if not settings.warehouse_path.exists():
        print(
            f"No warehouse at {settings.warehouse_path}: run the pipeline first.", file=sys.stderr
        )
        return 1
    if args.command == "list":
        from ml_tasks.versions import list_versions

        with connect(settings) as con:
            frame = list_versions(con, args.limit)
        print(format_versions(frame) if not frame.empty else "No segment versions yet.")
        if not frame.empty:
            print(f"Reports: {settings.reports_dir / 'segments'}/version-<id>.html")
        return 0

    from ml_tasks.versions import RollbackError
    from pipeline.steps import rollback

    try:
        result = rollback(args.version_id, by=args.by, reason=args.reason, settings=settings)
    except RollbackError as exc:
        print(f"Rollback refused: {exc}", file=sys.stderr)
        return 1
    print(
        f"Version {result['version_id']} (as-of {result['as_of_date']}) is current again; "
        f"version {result['rolled_back_version_id']} is rolled_back. Recorded in "
        "segments.current_changes."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
