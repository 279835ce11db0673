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
        with pd.option_context("display.width", 200, "display.max_colwidth", 70):
            print(frame.to_string(index=False) if not frame.empty else "No segment versions yet.")
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
