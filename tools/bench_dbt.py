"""Benchmark of the dbt stage against the same SQL run once as a plain DuckDB script.

``python -m tools.bench_dbt --customers 1000000`` (or ``make bench-dbt N=1000000``) generates
the demo data into a scratch data dir, loads it into ``raw`` (the pipeline's ingest step), then,
each on its own copy of that warehouse:

* **dbt**: ``dbt seed`` + ``dbt run`` (every seed and model, no tests) for the demo as-of date,
  in a fresh process, so dbt's import, parse and per-node overhead are all counted; and the
  pipeline's ``dbt build`` (the same plus every data test; a night leaves the unit tests out)
  for reference;
* **plain DuckDB**: the SQL dbt compiled for the same nodes (from its manifest), executed in
  dependency order on one connection by a fresh Python process with the duckdb module: seeds
  read with ``read_csv``, views and tables created with ``create or replace ... as <select>``.

The ratio dbt / plain is the cost of dbt itself (target: at most 2). Both sides build the same
relations from the same raw rows; the script checks that the marts hold the same row counts.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import duckdb

from core.settings import get_settings
from tools.demo_calendar import DEMO_AS_OF
from tools.process import last_line, run_process


def _dbt_seed_and_run(as_of_date: date, data_dir: Path) -> float:
    """Seconds of ``dbt seed`` + ``dbt run`` in a fresh Python process (imports included)."""
    code = (
        "import json, os, sys, time\n"
        "started = time.perf_counter()\n"
        "from dbt.cli.main import dbtRunner\n"
        "runner = dbtRunner()\n"
        "common = ['--project-dir', sys.argv[1], '--profiles-dir', sys.argv[1],\n"
        "          '--target-path', sys.argv[2] + '/target', '--log-path', sys.argv[2] + '/logs',\n"
        "          '--vars', json.dumps({'as_of_date': sys.argv[3]}), '--quiet']\n"
        "for command in ('seed', 'run'):\n"
        "    if not runner.invoke([command, *common]).success:\n"
        "        sys.exit(f'dbt {command} failed')\n"
        "print(time.perf_counter() - started)\n"
    )
    settings = get_settings()
    env = {
        **os.environ,
        "SEGMENTS_WAREHOUSE": str(data_dir / "warehouse.duckdb"),
        "DO_NOT_TRACK": "1",
    }
    command = [sys.executable, "-c", code, str(settings.dbt_project_dir), str(data_dir / "dbt")]
    output = run_process([*command, as_of_date.isoformat()], what="dbt seed/run", env=env)
    return float(last_line(output))


def _nodes_in_order(manifest: dict) -> Iterator[dict]:
    """The manifest's seeds and models, each after the nodes it depends on."""
    nodes = {
        unique_id: node
        for unique_id, node in manifest["nodes"].items()
        if node["resource_type"] in {"seed", "model"}
    }
    done: set[str] = set()

    def visit(unique_id: str) -> Iterator[dict]:
        if unique_id in done or unique_id not in nodes:
            return
        done.add(unique_id)
        for parent in nodes[unique_id]["depends_on"].get("nodes", []):
            yield from visit(parent)
        yield nodes[unique_id]

    for unique_id in sorted(nodes):
        yield from visit(unique_id)


def plain_duckdb_script(manifest: dict, project_dir: Path) -> list[str]:
    """The statements that build every seed and model from dbt's compiled SQL, in order."""
    statements = []
    for node in _nodes_in_order(manifest):
        relation = f'"{node["schema"]}"."{node.get("alias") or node["name"]}"'
        statements.append(f'create schema if not exists "{node["schema"]}"')
        if node["resource_type"] == "seed":
            path = project_dir / node["original_file_path"]
            types = node["config"].get("column_types") or {}
            column_types = ", ".join(f"'{k}': '{v}'" for k, v in types.items())
            options = f", types = {{{column_types}}}" if types else ""
            statements.append(
                f"create or replace table {relation} as "
                f"select * from read_csv('{path}', header = true{options})"
            )
            continue
        kind = "view" if node["config"]["materialized"] == "view" else "table"
        statements.append(f"create or replace {kind} {relation} as {node['compiled_code']}")
    return statements


def _run_script(warehouse: Path, statements: list[str]) -> float:
    """Seconds of the statements in a fresh Python process (duckdb's import included), one
    connection, as dbt gets its fresh process."""
    script = warehouse.parent / "plain_duckdb_script.json"
    script.write_text(json.dumps(statements))
    code = (
        "import json, sys, time\n"
        "started = time.perf_counter()\n"
        "import duckdb\n"
        "statements = json.loads(open(sys.argv[2]).read())\n"
        "with duckdb.connect(sys.argv[1]) as con:\n"
        "    for statement in statements:\n"
        "        con.execute(statement)\n"
        "print(time.perf_counter() - started)\n"
    )
    command = [sys.executable, "-c", code, str(warehouse), str(script)]
    return float(last_line(run_process(command, what="plain DuckDB script")))


def _mart_counts(warehouse: Path, as_of_date: date) -> dict[str, int]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        marts = [
            row[0]
            for row in con.execute(
                "select table_name from information_schema.tables "
                "where table_schema = 'marts' order by 1"
            ).fetchall()
        ]
        return {
            mart: con.execute(
                f"select count(*) from marts.{mart} where as_of_date = ?", [as_of_date]
            ).fetchone()[0]
            for mart in marts
        }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--as-of", type=date.fromisoformat, default=DEMO_AS_OF)
    parser.add_argument("--data-dir", type=Path)
    parser.add_argument("--keep", action="store_true", help="keep the scratch data dir")
    args = parser.parse_args(argv)

    root = (args.data_dir or get_settings().data_dir / f"bench-dbt-{args.customers}").resolve()
    if root.exists():
        shutil.rmtree(root)
    source = root / "source"
    source.mkdir(parents=True)
    os.environ["SEGMENTS_DATA_DIR"] = str(source)
    for name in ("SEGMENTS_WAREHOUSE", "SEGMENTS_LANDING_DIR", "SEGMENTS_TRUTH_DIR"):
        os.environ.pop(name, None)
    settings = get_settings()

    from pipeline import steps
    from tools.demo_data import generate_demo_data

    print(f"dbt vs plain DuckDB: {args.customers:,} customers, as-of {args.as_of}, in {root}")
    generate_demo_data(settings.landing_dir, settings.truth_dir, n_customers=args.customers)
    steps.ingest(args.as_of, run_id="bench")
    copies = {name: root / name for name in ("dbt_run", "dbt_build", "plain")}
    for copy in copies.values():
        copy.mkdir()
        shutil.copy2(settings.warehouse_path, copy / "warehouse.duckdb")

    dbt_seconds = _dbt_seed_and_run(args.as_of, copies["dbt_run"])
    started = time.perf_counter()
    os.environ["SEGMENTS_DATA_DIR"] = str(copies["dbt_build"])
    build = steps.build_marts(args.as_of)
    build_seconds = time.perf_counter() - started
    manifest = json.loads((copies["dbt_build"] / "dbt" / "target" / "manifest.json").read_text())
    statements = plain_duckdb_script(manifest, settings.dbt_project_dir)
    plain_seconds = _run_script(copies["plain"] / "warehouse.duckdb", statements)

    dbt_counts = _mart_counts(copies["dbt_run"] / "warehouse.duckdb", args.as_of)
    plain_counts = _mart_counts(copies["plain"] / "warehouse.duckdb", args.as_of)
    tests = sum(build["counts"].get(kind, {}).get("pass", 0) for kind in ("test", "unit_test"))
    print(f"{'dbt seed + run (fresh process)':<36}{dbt_seconds:>8.1f} s")
    print(f"{'plain DuckDB script, same SQL':<36}{plain_seconds:>8.1f} s")
    print(f"{'ratio dbt / plain':<36}{dbt_seconds / plain_seconds:>8.2f}")
    print(f"{'dbt build (pipeline, + tests)':<36}{build_seconds:>8.1f} s  ({tests} tests)")
    print(f"{'mart rows (dbt = plain)':<36}{json.dumps(dbt_counts)}")
    if dbt_counts != plain_counts:
        print(f"MISMATCH: plain script built {json.dumps(plain_counts)}", file=sys.stderr)
        return 1
    if not args.keep:
        shutil.rmtree(root)
    return 0


if __name__ == "__main__":
    sys.exit(main())
