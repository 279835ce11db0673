"""Benchmark: one ``dbt build`` task against one task per dbt node (how astronomer-cosmos runs dbt).

``python -m tools.bench_dbt_tasks`` (``make bench-dbt-tasks``) generates the demo
(``--customers``, default 5,000, as ``make run``), loads the raw data for the demo as-of date,
then times, each as fresh processes the way Airflow runs each task in its own process:

* **single**: one ``dbt build`` of the whole project (what the ``dbt_build`` task runs);
* **per node**: one ``dbt build --select <node>`` per seed and model in dbt's execution order,
  each node with its own tests: cosmos's local execution mode with ``TestBehavior.BUILD``, its
  cheapest way to give every model a task. DuckDB takes one writer, so these run one at a time.

Both use the dbt CLI with partial parsing, as warm as dbt gets. Airflow's own cost per task (a few
seconds to start a task process and report its state) and cosmos's parse-time ``dbt ls`` come on
top of the per-node figure and are not included, so the ratio is a lower bound for cosmos.
Prints a JSON report (also written to ``$SEGMENTS_REPORTS_DIR/bench-dbt-tasks.json``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from core.settings import get_settings
from tools.demo_calendar import DEMO_AS_OF
from tools.process import run_process


def _dbt(args: list[str], env: dict[str, str]) -> float:
    """Run the dbt CLI in a new process; its wall-clock seconds."""
    started = time.perf_counter()
    dbt = str(Path(sys.executable).parent / "dbt")
    run_process([dbt, *args], what=f"dbt {' '.join(args[:3])}", env=env)
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=5000)
    parser.add_argument("--data-dir", type=Path, default=None)
    args = parser.parse_args(argv)

    data_dir = args.data_dir or Path(tempfile.mkdtemp(prefix="bench-dbt-"))
    os.environ["SEGMENTS_DATA_DIR"] = str(data_dir)
    for name in ("SEGMENTS_WAREHOUSE", "SEGMENTS_LANDING_DIR", "SEGMENTS_REPORTS_DIR"):
        os.environ.pop(name, None)
    settings = get_settings()

    from pipeline import steps
    from tools.demo_data import generate_demo_data

    if not (settings.landing_dir / "orders").exists():
        generate_demo_data(settings.landing_dir, settings.truth_dir, n_customers=args.customers)
    steps.ingest(DEMO_AS_OF, run_id="bench-dbt")

    project = settings.dbt_project_dir
    target = data_dir / "dbt" / "target"
    common = [
        "--project-dir", str(project), "--profiles-dir", str(project),
        "--target-path", str(target), "--log-path", str(data_dir / "dbt" / "logs"),
        "--vars", json.dumps({"as_of_date": DEMO_AS_OF.isoformat()}), "--quiet",
    ]  # fmt: skip
    env = {
        **os.environ,
        "SEGMENTS_WAREHOUSE": str(settings.warehouse_path),
        "DO_NOT_TRACK": "1",
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    }
    # A warm-up build: creates the relations and dbt's partial-parse cache for both variants.
    _dbt(["build", *common], env)

    single = _dbt(["build", *common], env)
    results = json.loads((target / "run_results.json").read_text())["results"]
    nodes = [
        r["unique_id"].split(".")[-1]
        for r in results
        if r["unique_id"].split(".")[0] in {"model", "seed"}
    ]
    per_node = {node: round(_dbt(["build", "--select", node, *common], env), 2) for node in nodes}
    total = sum(per_node.values())
    report = {
        "customers": args.customers,
        "as_of_date": DEMO_AS_OF.isoformat(),
        "single_dbt_build_s": round(single, 2),
        "per_node_tasks": len(per_node),
        "per_node_total_s": round(total, 2),
        "per_node_s": per_node,
        "ratio": round(total / single, 2),
        "limit_ratio": 1.5,
    }
    out = settings.reports_dir / "bench-dbt-tasks.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
