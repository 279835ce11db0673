"""Benchmark: seconds and peak memory of each stage for N demo customers.

``python -m pipeline.bench --customers 1000000`` (or ``make bench N=1000000``) generates demo data
into a scratch data dir (``--data-dir``, default ``$SEGMENTS_DATA_DIR/bench-<N>``), then runs each
pipeline step for the demo as-of date in its own process, so the peak resident memory reported
per stage is that stage's own. The steps are the functions the Airflow tasks call; Airflow's own
overhead (a few seconds per task) is not included.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

from pipeline.settings import get_settings

DEMO_AS_OF = date(2026, 6, 30)
STAGES = ("ingest", "validate_raw", "dbt_build", "validate_marts", "recluster", "publish")


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_stage(stage: str, as_of_date: date, customers: int) -> dict:
    """Run one stage in this process; the state between stages lives in the warehouse files."""
    from pipeline import steps

    started = time.perf_counter()
    state_path = get_settings().reports_dir / "bench-state.json"
    state = json.loads(state_path.read_text()) if state_path.exists() else {}
    if stage == "generate":
        from ingestion.demo_data import generate_demo_data

        settings = get_settings()
        generate_demo_data(
            settings.landing_dir, settings.truth_dir, n_customers=customers, overwrite=True
        )
    elif stage == "ingest":
        state["validation_scope"] = steps.ingest(as_of_date, run_id="bench")["validation_scope"]
    elif stage == "validate_raw":
        steps.validate_raw(as_of_date, state["validation_scope"], run_id="bench")
    elif stage == "dbt_build":
        steps.build_marts(as_of_date)
    elif stage == "validate_marts":
        steps.validate_marts(as_of_date, run_id="bench")
    elif stage == "recluster":
        state["version_id"] = steps.recluster(as_of_date, run_id="bench")["version_id"]
    elif stage == "publish":
        steps.publish(as_of_date, state["version_id"])
    state_path.parent.mkdir(parents=True, exist_ok=True)
    state_path.write_text(json.dumps(state))
    return {"stage": stage, "seconds": time.perf_counter() - started, "peak_mb": _peak_rss_mb()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--as-of", type=date.fromisoformat, default=DEMO_AS_OF)
    parser.add_argument("--data-dir", type=Path)
    parser.add_argument("--stage", help=argparse.SUPPRESS)  # internal: run one stage and exit
    parser.add_argument("--keep", action="store_true", help="keep the scratch data dir")
    args = parser.parse_args(argv)

    if args.stage:
        print(json.dumps(run_stage(args.stage, args.as_of, args.customers)))
        return 0

    data_dir = (args.data_dir or get_settings().data_dir / f"bench-{args.customers}").resolve()
    if data_dir.exists():
        shutil.rmtree(data_dir)
    data_dir.mkdir(parents=True)
    env = {**os.environ, "SEGMENTS_DATA_DIR": str(data_dir)}
    for name in (
        "SEGMENTS_WAREHOUSE",
        "SEGMENTS_LANDING_DIR",
        "SEGMENTS_TRUTH_DIR",
        "SEGMENTS_REPORTS_DIR",
    ):
        env.pop(name, None)
    print(f"Benchmark: {args.customers:,} customers, as-of {args.as_of}, data in {data_dir}")
    print(f"{'stage':<16}{'seconds':>10}{'peak MB':>10}")
    results = []
    for stage in ("generate", *STAGES):
        completed = subprocess.run(
            [
                sys.executable,
                "-m",
                "pipeline.bench",
                "--stage",
                stage,
                "--customers",
                str(args.customers),
                "--as-of",
                args.as_of.isoformat(),
            ],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        if completed.returncode != 0:
            print(completed.stderr[-4000:], file=sys.stderr)
            print(f"Stage {stage} failed (exit {completed.returncode}).", file=sys.stderr)
            return 1
        result = json.loads(completed.stdout.strip().splitlines()[-1])
        results.append(result)
        print(f"{stage:<16}{result['seconds']:>10.1f}{result['peak_mb']:>10.0f}", flush=True)
    pipeline_seconds = sum(r["seconds"] for r in results if r["stage"] != "generate")
    gates = sum(r["seconds"] for r in results if r["stage"].startswith("validate"))
    print(
        f"{'pipeline total':<16}{pipeline_seconds:>10.1f}"
        f"{max(r['peak_mb'] for r in results[1:]):>10.0f}"
    )
    print(f"quality gates: {gates:.1f} s = {gates / pipeline_seconds:.0%} of the pipeline")
    if not args.keep:
        shutil.rmtree(data_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
