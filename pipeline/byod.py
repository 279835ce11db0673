"""Bring your own data, end to end: ``python -m pipeline.byod --config my_data.yml --as-of DATE``.

Loads the config's files into ``raw`` (``ingestion.byod``, which documents the config), builds the
marts for the as-of date with the sources that are there (dbt var ``available_sources``), checks
them with the marts' quality gate, reclusters and publishes.
"""

from __future__ import annotations

import argparse
import logging
import sys
from datetime import date
from pathlib import Path
from typing import Any

from core.settings import Settings, get_settings
from core.warehouse import connect
from ingestion.byod import ByodConfigError, load_byod, load_config
from pipeline import steps
from transform.dbt_build import run_dbt_build


def run_byod(
    config_path: Path,
    as_of_date: date,
    *,
    settings: Settings | None = None,
    recluster: bool = True,
) -> dict[str, Any]:
    """Load the config's files into raw, build the marts for the as-of date, check them with the
    marts' quality gate, recluster and publish."""
    settings = settings or get_settings()
    config = load_config(config_path)
    with connect(settings) as con:
        loaded = load_byod(con, config)
    build = run_dbt_build(
        as_of_date,
        settings=settings,
        dbt_vars={"available_sources": config.available_sources},
    )
    result: dict[str, Any] = {"loaded": loaded, "dbt": build.counts}
    if recluster:
        # the marts' quality gate guards the clustering as in the nightly run
        steps.validate_marts(as_of_date, run_id="byod", settings=settings)
        version = steps.recluster(as_of_date, run_id="byod", settings=settings)
        steps.publish(as_of_date, version["version_id"], settings=settings)
        result["version_id"] = version["version_id"]
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipeline.byod", description=__doc__)
    parser.add_argument("--config", type=Path, required=True, help="the YAML config")
    parser.add_argument("--as-of", type=date.fromisoformat, required=True, help="YYYY-MM-DD")
    parser.add_argument("--no-recluster", action="store_true", help="stop after the dbt build")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    try:
        result = run_byod(args.config, args.as_of, recluster=not args.no_recluster)
    except ByodConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
