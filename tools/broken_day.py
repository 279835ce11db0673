"""The blocked-night demo: add a broken delivery to one day of the landing data.

``make run-blocked`` (README "Operations") runs the demo night, then the night after it with this
broken delivery added, to show what a blocked night looks like: the gate names the rule and the
count, the run stops before publishing, and the previous segments stay current.

The broken delivery is a second orders file for the day, ``zz-broken-delivery.csv``: the day's
orders sent again by a faulty export, with order ids suffixed ``-R`` and every amount ``N/A``.
Each of its rows is quarantined (``unparseable_amount``), which puts half of the day's orders in
quarantine, far beyond the 5% the gate allows. Existing landing files are only read; ``--remove``
deletes just the file this module wrote.
"""

from __future__ import annotations

import argparse
import csv
import logging
import sys
from collections.abc import Sequence
from datetime import date
from pathlib import Path

from core.settings import get_settings

log = logging.getLogger(__name__)

BROKEN_FILE_NAME = "zz-broken-delivery.csv"


def broken_delivery_path(landing_dir: Path, day: date) -> Path:
    return landing_dir / "orders" / f"date={day.isoformat()}" / BROKEN_FILE_NAME


def write_broken_delivery(landing_dir: Path, day: date) -> Path:
    """Write the broken orders file for ``day`` next to the day's own files; returns its path."""
    target = broken_delivery_path(landing_dir, day)
    sources = sorted(p for p in target.parent.glob("*.csv") if p.name != BROKEN_FILE_NAME)
    if not sources:
        raise FileNotFoundError(
            f"No orders landed for {day} under {target.parent}: nothing to resend broken."
        )
    rows = []
    for path in sources:
        with path.open(newline="", encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                rows.append({**row, "order_id": f"{row['order_id']}-R", "amount": "N/A"})
    with target.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]) if rows else ["order_id"])
        writer.writeheader()
        writer.writerows(rows)
    log.info("Wrote a broken delivery of %d orders to %s", len(rows), target)
    return target


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--date", required=True, type=date.fromisoformat, help="YYYY-MM-DD")
    parser.add_argument("--landing-dir", type=Path, default=get_settings().landing_dir)
    parser.add_argument(
        "--remove", action="store_true", help="delete the broken file again (the day is fixed)"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.remove:
        path = broken_delivery_path(args.landing_dir, args.date)
        path.unlink(missing_ok=True)
        print(f"Removed {path}")
        return 0
    try:
        print(f"Broken delivery written: {write_broken_delivery(args.landing_dir, args.date)}")
    except FileNotFoundError as exc:
        print(exc, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
