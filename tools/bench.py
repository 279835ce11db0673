"""Benchmark: seconds and peak memory of each stage for N demo customers.

``python -m tools.bench --customers 1000000`` (or ``make bench N=1000000``) generates demo data
into a scratch data dir (``--data-dir``, default ``$SEGMENTS_DATA_DIR/bench-<N>``), then runs each
pipeline step in its own process, so the peak resident memory reported per stage is that stage's
own. Each step's process is forked from one that imported the tasks' libraries once
(``pipeline.preload``), as the deployment's LocalExecutor forks each task from a worker started
that way, so no step pays Great Expectations', dbt's or scikit-learn's import. Two nights are
measured: the *first run* for the demo as-of date, which catches up on a year of landed history,
and the *next night*, which loads and checks one new day, as every later night does. The steps
are the functions the Airflow tasks call; Airflow's own overhead (a few seconds per task) is not
included.

Then, in the same run, the baseline the recluster's model selection is measured against: a plain
``KMeans`` k-sweep scored by the silhouette on the full sample, on ``--baseline-customers``
(100,000) of the first night's customers (``--no-baseline`` skips it: it takes minutes).

And the comparison a user makes: the plain pandas + scikit-learn script the usual guides teach
(``tools.notebook_baseline``), run in its own process on the same landing data, against the
pipeline's first run (ingest to publish): wall time, peak memory and the adjusted Rand index of
each one's segments against the planted truth (``tools.planted_truth``), side by side
(``--no-notebook`` skips it; above ``--notebook-max-customers``, 300,000, it is skipped with the
reason printed: the script holds every landing row in pandas, which does not fit in memory).

And the floor the first run is measured against (``floor``): the same transformations as one
plain DuckDB script plus the same model selection in plain scikit-learn and the same prediction
models fitted and scored, with no orchestration and no gates, run after the first run on the same
data. It prints "first run / floor" (and, without predict, against the floor without its
predictions part) and "next night / first run". ``--later-nights N`` then runs N more nights,
one after another, and prints after each the rows retention deleted and the warehouse file's size:
the disk a deployment settles at (``SEGMENTS_ML_CONFIG`` sets the retention window,
docs/scaling.md).
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
from datetime import date, timedelta
from pathlib import Path

from core.settings import get_settings
from pipeline.preload import TASK_LIBRARIES
from tools.demo_calendar import DEMO_AS_OF, DEMO_END
from tools.process import last_line, run_forked, run_process

# Above this many customers the notebook script is skipped: it holds every landing row in pandas,
# about 50 MB per 1,000 customers (1.1 GB peak at 20,000, docs/benchmarks.md), so some 15 GB
# here and more than the 24 GB machine the bench targets at 1M (``--notebook-max-customers``).
NOTEBOOK_MAX_CUSTOMERS = 300_000
STAGES = (
    "ingest",
    "validate_raw",
    "dbt_build",
    "validate_marts",
    "recluster",
    "publish",
    "predict",
)


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# The figure a stage leaves in the bench state for its result: the row rules' seconds of the
# load (gate work inside ingest), and the rows retention deleted at publish (--later-nights).
_STAGE_FIGURES = {"ingest": "row_rule_seconds", "publish": "rows_deleted"}


def run_stage(stage: str, as_of_date: date, customers: int) -> dict:
    """Run one stage in this process; the state between stages lives in the warehouse files."""
    from pipeline import steps

    started = time.perf_counter()
    state_path = get_settings().reports_dir / "bench-state.json"
    state = json.loads(state_path.read_text()) if state_path.exists() else {}
    if stage == "generate":
        from tools.demo_data import generate_demo_data

        settings = get_settings()
        generate_demo_data(
            settings.landing_dir, settings.truth_dir, n_customers=customers, overwrite=True
        )
    elif stage == "ingest":
        loaded = steps.ingest(as_of_date, run_id="bench")
        state["validation_scope"] = loaded["validation_scope"]
        # The row rules (quarantine) are gate work done inside the load.
        state["row_rule_seconds"] = sum(
            source["row_rule_seconds"] for source in loaded["sources"].values()
        )
    elif stage == "validate_raw":
        steps.validate_raw(as_of_date, state["validation_scope"], run_id="bench")
    elif stage == "dbt_build":
        steps.build_marts(as_of_date)
    elif stage == "validate_marts":
        steps.validate_marts(as_of_date, run_id="bench")
    elif stage == "recluster":
        result = steps.recluster(as_of_date, run_id="bench")
        state["version_id"], state["status"] = result["version_id"], result["status"]
        state.setdefault("modes", {})[as_of_date.isoformat()] = result["mode_reason"]
    elif stage == "publish" and state["status"] != "rejected":
        published = steps.publish(as_of_date, state["version_id"])
        state["rows_deleted"] = sum((published["slices_deleted"] or {}).values())
    elif stage == "predict":
        steps.predict(as_of_date, run_id="bench")
    elif stage in _MEASUREMENTS:  # the comparisons, each in a process of its own
        state[stage] = _MEASUREMENTS[stage](as_of_date, customers)
    result = {"stage": stage, "seconds": time.perf_counter() - started, "peak_mb": _peak_rss_mb()}
    if stage in _STAGE_FIGURES:  # taken out of the state: a later night sets its own
        result[_STAGE_FIGURES[stage]] = state.pop(_STAGE_FIGURES[stage], 0)
    if stage == "floor":
        result["parts"] = state[stage]
    if stage in ("predict_alone", "notebook"):  # notebook: the script's own time and memory
        result.update(state[stage])
    state_path.parent.mkdir(parents=True, exist_ok=True)
    state_path.write_text(json.dumps(state))
    return result


def synthetic_orders(as_of_date: date, customers: int):
    """(orders, customer ids): order histories of ``customers`` buyers over the year up to
    ``as_of_date`` (a first purchase day, then Poisson purchase days at a gamma-distributed rate,
    a fifth dropping out on a random day), as an Arrow table (customer_id, ordered_date, amount)."""
    import numpy as np
    import pandas as pd
    import pyarrow as pa

    rng = np.random.default_rng(7)
    first = rng.integers(0, 365, customers)
    rate = rng.gamma(0.8, 1 / 40, customers)
    dropout = np.where(rng.random(customers) < 0.2, rng.integers(0, 365, customers), 365)
    life = np.maximum(np.minimum(dropout, 365) - first, 0)
    extra = rng.poisson(rate * life)
    owner = np.concatenate([np.arange(customers), np.repeat(np.arange(customers), extra)])
    offset = np.concatenate([np.zeros(customers), rng.random(extra.sum()) * np.repeat(life, extra)])
    day = pd.Timestamp(as_of_date) - pd.to_timedelta(364 - first[owner] - offset.astype(int), "D")
    names = np.array([f"C{i:08d}" for i in range(customers)])
    orders = pa.table(
        {
            "customer_id": pa.array(names[owner]),
            "ordered_date": pa.array(day.to_numpy().astype("datetime64[D]")),
            "amount": rng.lognormal(3.5, 0.5, len(owner)).round(2),
        }
    )
    return orders, pd.Series(names)


def bench_predict_alone(as_of_date: date, customers: int) -> dict:
    """The prediction models alone on ``synthetic_orders``, without the warehouse around them.
    Returns the seconds of the models (``compute_predictions``, from the orders to every
    customer's predictions) and of making up the orders."""
    from ml_tasks.config import load_config
    from ml_tasks.predict import compute_predictions

    started = time.perf_counter()
    orders, ids = synthetic_orders(as_of_date, customers)
    generated = time.perf_counter()
    compute_predictions(ids, orders, as_of_date, load_config().predictions)
    return {
        "orders": orders.num_rows,
        "generate_seconds": round(generated - started, 1),
        "models_seconds": round(time.perf_counter() - generated, 1),
    }


def clv_sampling(as_of_date: date, customers: int) -> list[dict]:
    """The evidence for ``clv_fit_customers``: the CLV models fitted on all buyers of
    ``synthetic_orders`` and on random samples (three seeds each), each fit's parameters
    predicting for every buyer; per sample, the relative difference of each parameter and of the
    totals from the fit on all buyers (printed as JSON lines)."""
    from ml_tasks import clv
    from ml_tasks.order_history import OrderHistory

    orders, _ = synthetic_orders(as_of_date, customers)
    summary = clv.rfm_summary(OrderHistory.from_orders(orders), as_of_date)
    del orders

    def totals(fit: clv.ClvFit) -> dict[str, float]:
        values = clv.predict_clv(fit, summary, annual_discount_rate=0.10)
        return {
            "mean_p_alive": float(values["p_alive"].mean()),
            "expected_purchases_365d": float(values["expected_purchases_365d"].sum()),
            "clv_12m": float(values["clv_12m"].sum()),
        }

    def parameters(fit: clv.ClvFit) -> dict[str, float]:
        return {**fit.bgnbd, **fit.gamma_gamma}

    full = clv.fit_clv(summary)
    reference = {**parameters(full), **totals(full)}
    rows = [{"fitted_buyers": len(summary), "seconds": full.diagnostics["seconds"], **reference}]
    print(json.dumps(rows[-1]), flush=True)
    for size in (25_000, 50_000, 100_000, 200_000):
        for seed in (1, 2, 3):
            fit = clv.fit_clv(summary, max_customers=size, random_state=seed)
            values = {**parameters(fit), **totals(fit)}
            difference = {k: round(values[k] / reference[k] - 1, 4) for k in reference}
            rows.append(
                {"fitted_buyers": size, "seed": seed, "seconds": fit.diagnostics["seconds"]}
                | difference
            )
            print(json.dumps(rows[-1]), flush=True)
    return rows


def plain_kmeans_sweep(as_of_date: date, customers: int) -> dict:
    """KMeans for every k of the config's range on ``customers`` buyers, each scored by the
    silhouette of the whole sample: the textbook selection the recluster's sampling replaces."""
    import numpy as np
    from sklearn.cluster import KMeans
    from sklearn.metrics import silhouette_score

    from core.warehouse import connect
    from ml_tasks.config import load_config
    from ml_tasks.features import load_customer_features
    from ml_tasks.preprocess import make_preprocessor

    config = load_config()
    with connect(get_settings(), read_only=True) as con:
        frame = load_customer_features(con, as_of_date, config.features)
    buyers = frame[frame["has_orders"]].sample(
        n=min(customers, int(frame["has_orders"].sum())), random_state=0
    )
    X = make_preprocessor(config.features, config.preprocessing).fit_transform(
        buyers[list(config.features.all_columns)]
    )
    silhouettes = {}
    for k in range(config.selection.k_min, config.selection.k_max + 1):
        labels = KMeans(k, n_init=1, random_state=0).fit_predict(X)
        silhouettes[k] = round(float(silhouette_score(X, labels)), 4)
        print(f"  baseline k={k}: silhouette {silhouettes[k]}", file=sys.stderr, flush=True)
    best = max(silhouettes, key=silhouettes.get)
    return {"customers": len(X), "silhouette_by_k": silhouettes, "k": int(np.int64(best))}


def floor(as_of_date: date) -> dict:
    """The floor: what the first run's work costs as plain scripts, no orchestration, no gates.

    Four parts, each timed (seconds returned per part), in this one process:

    * **load**: every landing file up to the as-of date read into one DuckDB table per source
      (``read_csv``), as a script starts; no row rules, no quarantine, no load log;
    * **sql**: the SQL dbt compiled for the first run's seeds and models (its manifest), run in
      dependency order as one plain DuckDB script (``tools.bench_dbt.plain_duckdb_script``), on
      the rows the pipeline loaded (its ``raw`` tables, attached read-only): no dbt, no tests;
    * **selection**: the recluster's model selection and fit in plain scikit-learn
      (``ml_tasks.recluster.fit_full``: preprocessing, the k sweep on the sample with its
      criteria and the bootstrap stability that decides k, the final fit on every buyer); not
      counted: guards, segment ids and names, acceptance, versions, publishing;
    * **predictions**: the predict step's models fitted and every customer scored, plainly: the
      floor's customers and valid orders (``ml_tasks.predict.read_inputs``) into the same pure
      ``compute_predictions`` (the CLV fit on its sample, the churn and purchase propensity
      models trained and judged on their windows, every customer scored); not counted: the
      model store, the current models' fallback, writing the slice, the published copy.

    The scripts run under the same DuckDB memory limit and spill directory as the pipeline, so
    the ratio measures orchestration and checks, not a memory setting.
    """
    import duckdb

    from core.contract import SOURCES
    from core.warehouse import apply_resource_limits
    from ml_tasks.config import load_config
    from ml_tasks.features import load_customer_features
    from ml_tasks.predict import compute_predictions, read_inputs
    from ml_tasks.recluster import fit_full
    from tools.bench_dbt import plain_duckdb_script
    from transform.dbt_build import dbt_paths

    settings = get_settings()
    manifest = json.loads((dbt_paths(settings)[0] / "manifest.json").read_text())
    statements = plain_duckdb_script(manifest, settings.dbt_project_dir)
    folder = settings.data_dir / "floor"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    seconds = {}

    started = time.perf_counter()
    with duckdb.connect(str(folder / "landing.duckdb")) as con:
        apply_resource_limits(con, settings)
        for source in SOURCES:
            con.execute(
                f"create table {source} as select * from read_csv("
                f"'{settings.landing_dir}/{source}/*/*.csv', hive_partitioning = true) "
                f"where date <= '{as_of_date}'"
            )
    seconds["load"] = time.perf_counter() - started
    (folder / "landing.duckdb").unlink()

    # dbt's compiled SQL names the warehouse's catalog ("warehouse"): the script's database
    # has the same file name, its raw schema views over the pipeline's raw tables.
    with duckdb.connect(str(folder / settings.warehouse_path.name)) as con:
        apply_resource_limits(con, settings)
        con.execute(f"attach '{settings.warehouse_path}' as pipeline (read_only)")
        con.execute("create schema raw")
        raw_tables = con.execute(
            "select table_name from duckdb_tables() "
            "where database_name = 'pipeline' and schema_name = 'raw'"
        ).fetchall()
        for (table,) in raw_tables:
            con.execute(f'create view raw."{table}" as select * from pipeline.raw."{table}"')
        started = time.perf_counter()
        for statement in statements:
            con.execute(statement)
        seconds["sql"] = time.perf_counter() - started

        started = time.perf_counter()
        config = load_config()
        frame = load_customer_features(con, as_of_date, config.features)
        selection_read = time.perf_counter() - started

        started = time.perf_counter()
        customers, history = read_inputs(con, as_of_date)
        predictions_read = time.perf_counter() - started
    started = time.perf_counter()
    buyers = frame[frame["has_orders"]]
    _, clusterer, _, selection = fit_full(buyers, config, config.features)
    seconds["selection"] = selection_read + time.perf_counter() - started

    started = time.perf_counter()
    predicted = compute_predictions(
        customers, history, as_of_date, config.predictions, random_state=config.random_state
    )
    seconds["predictions"] = predictions_read + time.perf_counter() - started
    shutil.rmtree(folder)
    return {
        "seconds": {part: round(value, 1) for part, value in seconds.items()},
        "statements": len(statements),
        "buyers": len(buyers),
        "k": int(clusterer.n_clusters_),
        "selection_k": int(selection.k),
        "predicted_customers": len(predicted.predictions),
    }


def pipeline_ari() -> dict:
    """The published segments (``segments.current_segments``) against the planted truth."""
    from core.warehouse import connect
    from tools.planted_truth import ari_against_truth, read_truth

    settings = get_settings()
    with connect(settings, read_only=True) as con:
        labels = con.execute("select customer_id, segment_id from segments.current_segments").df()
    ari, compared = ari_against_truth(labels, read_truth(settings.truth_dir))
    k = int(labels.loc[labels["segment_id"] > 0, "segment_id"].nunique())
    return {"ari": round(ari, 3), "compared": compared, "k": k}


def notebook() -> dict:
    """``tools.notebook_baseline`` in a child process on the landing data: its wall time, its
    peak resident memory (the only child this process waits for), and its labels' ARI; with
    the pipeline's (``pipeline_ari``)."""
    import pandas as pd

    from tools.planted_truth import ari_against_truth, read_truth

    settings = get_settings()
    out_csv = settings.reports_dir / "notebook-labels.csv"
    out_csv.parent.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "tools.notebook_baseline", str(settings.landing_dir)]
    started = time.perf_counter()
    subprocess.run([*command, str(out_csv)], check=True)
    seconds = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    labels = pd.read_csv(out_csv, dtype={"customer_id": str})
    ari, compared = ari_against_truth(labels, read_truth(settings.truth_dir))
    return {
        "seconds": seconds,
        "peak_mb": peak_mb,
        "ari": round(ari, 3),
        "compared": compared,
        "k": int(labels["segment_id"].nunique()),
        "pipeline": pipeline_ari(),
    }


# The comparisons ``run_stage`` runs, each in a process of its own: the prediction models on
# their own, the k-sweep baseline, the plain notebook script, the plain-scripts floor.
_MEASUREMENTS = {
    "predict_alone": bench_predict_alone,
    "clv_sampling": clv_sampling,
    "baseline": plain_kmeans_sweep,
    "notebook": lambda _as_of_date, _customers: notebook(),
    "floor": lambda as_of_date, _customers: floor(as_of_date),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--as-of", type=date.fromisoformat, default=DEMO_AS_OF)
    parser.add_argument("--data-dir", type=Path)
    parser.add_argument("--stage", help=argparse.SUPPRESS)  # internal: run one stage and exit
    parser.add_argument("--keep", action="store_true", help="keep the scratch data dir")
    parser.add_argument("--baseline-customers", type=int, default=100_000)
    parser.add_argument("--no-baseline", action="store_true", help="skip the k-sweep baseline")
    parser.add_argument(
        "--no-notebook", action="store_true", help="skip the plain-script comparison"
    )
    parser.add_argument(
        "--notebook-max-customers",
        type=int,
        default=NOTEBOOK_MAX_CUSTOMERS,
        help="skip the plain-script comparison above this many customers (memory)",
    )
    parser.add_argument(
        "--no-floor", action="store_true", help="skip the plain DuckDB + scikit-learn floor"
    )
    parser.add_argument(
        "--later-nights",
        type=int,
        default=0,
        help="after the next night, run this many more nights and print the warehouse file's "
        "size after each (what retention keeps the disk at; SEGMENTS_ML_CONFIG sets its window)",
    )
    args = parser.parse_args(argv)
    last_night = args.as_of + timedelta(days=1 + args.later_nights)
    if not args.stage and (args.later_nights < 0 or last_night > DEMO_END):
        parser.error(
            f"--later-nights {args.later_nights}: the demo data lands days up to {DEMO_END}, "
            f"so at most {(DEMO_END - args.as_of).days - 1} nights after the next night"
        )

    if args.stage in STAGES:  # a pipeline step, in a process forked as the nightly one is
        stage_env = dict(os.environ)
        print(json.dumps(_run_forked_stage(args.stage, args.as_of, args.customers, stage_env)))
        return 0
    if args.stage:
        customers = args.baseline_customers if args.stage == "baseline" else args.customers
        print(json.dumps(run_stage(args.stage, args.as_of, customers)))
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
    generate = _run_in_subprocess("generate", args.as_of, args.customers, env)
    measured = generate and _run_nights(args, env)
    if not measured:
        return 1
    first, second, floor_result, notebook = measured
    _print_nights(generate, first, second)
    if not args.no_baseline:
        baseline = _run_in_subprocess(
            "baseline",
            args.as_of,
            args.customers,
            env,
            ["--baseline-customers", str(args.baseline_customers)],
        )
        if baseline is None:
            return 1
        recluster_first = next(r for r in first if r["stage"] == "recluster")
        print(
            f"recluster with model selection on {args.customers:,} customers: "
            f"{recluster_first['seconds']:.1f} s, peak {recluster_first['peak_mb']:.0f} MB; "
            f"plain KMeans k-sweep with full silhouette on {args.baseline_customers:,}: "
            f"{baseline['seconds']:.1f} s, peak {baseline['peak_mb']:.0f} MB"
        )
    if floor_result:
        _print_floor(first, second, floor_result)
    if notebook:
        _print_comparison(first, notebook)
    _print_recluster_modes(data_dir)
    if args.later_nights and not _run_later_nights(args, env, data_dir / "warehouse.duckdb"):
        return 1
    if not args.keep:
        shutil.rmtree(data_dir)
    return 0


def _print_nights(generate: dict, first: list[dict], second: list[dict]) -> None:
    """Seconds and peak memory per stage of both nights, the totals and the gates' share."""
    print(f"{'stage':<16}{'first run':>20}{'next night':>20}")
    print(f"{'':<16}{'seconds':>10}{'peak MB':>10}{'seconds':>10}{'peak MB':>10}")
    print(f"{'generate':<16}{generate['seconds']:>10.1f}{generate['peak_mb']:>10.0f}")
    for one, two in zip(first, second, strict=True):
        print(
            f"{one['stage']:<16}{one['seconds']:>10.1f}{one['peak_mb']:>10.0f}"
            f"{two['seconds']:>10.1f}{two['peak_mb']:>10.0f}"
        )
    totals = [sum(r["seconds"] for r in night) for night in (first, second)]
    peaks = [max(r["peak_mb"] for r in night) for night in (first, second)]
    # The gates: both validate steps, and the row rules the load runs (quarantine).
    gate_seconds = [
        sum(r["seconds"] for r in night if r["stage"].startswith("validate"))
        + sum(r.get("row_rule_seconds", 0) for r in night)
        for night in (first, second)
    ]
    gate_share = [seconds / total for seconds, total in zip(gate_seconds, totals, strict=True)]
    rules = [sum(r.get("row_rule_seconds", 0) for r in night) for night in (first, second)]
    print(f"{'  row rules':<16}{rules[0]:>10.1f}{'':>10}{rules[1]:>10.1f}  (part of ingest)")
    print(
        f"{'pipeline total':<16}{totals[0]:>10.1f}{peaks[0]:>10.0f}"
        f"{totals[1]:>10.1f}{peaks[1]:>10.0f}"
    )
    print(f"{'gates':<16}{gate_seconds[0]:>10.1f}{'':>10}{gate_seconds[1]:>10.1f}")
    print(f"{'gates share':<16}{gate_share[0]:>10.0%}{'':>10}{gate_share[1]:>10.0%}")
    print(
        "gates overhead  "
        f"{gate_seconds[0] / (totals[0] - gate_seconds[0]):>10.0%}{'':>10}"
        f"{gate_seconds[1] / (totals[1] - gate_seconds[1]):>10.0%}"
        "  (added to the run without them)"
    )


def _run_nights(
    args: argparse.Namespace, env: dict
) -> tuple[list[dict], list[dict], dict | None, dict | None] | None:
    """Every stage of the first run and the next night, and after the first run the floor
    (unless ``--no-floor``) and (when asked) the notebook script on the same landing data;
    ``None`` if a stage failed."""
    nights: dict[date, list[dict]] = {args.as_of: [], args.as_of + timedelta(days=1): []}
    notebook = floor_result = None
    for as_of_date, results in nights.items():
        for stage in STAGES:
            try:
                result = _run_forked_stage(stage, as_of_date, args.customers, env)
            except RuntimeError as exc:
                print(exc, file=sys.stderr)
                return None
            results.append(result)
        if as_of_date != args.as_of:
            continue
        if not args.no_floor:  # the first run's dbt manifest and raw rows are in place
            floor_result = _run_in_subprocess("floor", as_of_date, args.customers, env)
            if floor_result is None:
                return None
        if _notebook_wanted(args):  # the segments the first run made, on the same landing
            notebook = _run_in_subprocess("notebook", as_of_date, args.customers, env)
            if notebook is None:
                return None
    first, second = nights.values()
    return first, second, floor_result, notebook


def _run_later_nights(args: argparse.Namespace, env: dict, warehouse: Path) -> bool:
    """The nights after the next night, one after another (``--later-nights``): each night's
    seconds and peak, the rows retention deleted at its publish, and the warehouse file's size
    after it, with the part of it in use (DuckDB reuses freed blocks, it does not shrink the
    file). ``False`` if a stage failed."""
    import duckdb

    print(
        f"{'later night':<16}{'seconds':>10}{'peak MB':>10}{'deleted rows':>14}"
        f"{'file MB':>10}{'in use MB':>11}"
    )
    for offset in range(2, 2 + args.later_nights):
        as_of_date = args.as_of + timedelta(days=offset)
        try:
            results = [
                _run_forked_stage(stage, as_of_date, args.customers, env) for stage in STAGES
            ]
        except RuntimeError as exc:
            print(exc, file=sys.stderr)
            return False
        with duckdb.connect(str(warehouse), read_only=True) as con:
            block_size, used_blocks = con.execute(
                "select block_size, used_blocks from pragma_database_size()"
            ).fetchone()
        deleted = sum(r.get("rows_deleted", 0) for r in results)
        print(
            f"{as_of_date.isoformat():<16}{sum(r['seconds'] for r in results):>10.1f}"
            f"{max(r['peak_mb'] for r in results):>10.0f}{deleted:>14,}"
            f"{warehouse.stat().st_size / 2**20:>10.0f}{block_size * used_blocks / 2**20:>11.0f}",
            flush=True,
        )
    return True


def _notebook_wanted(args: argparse.Namespace) -> bool:
    if args.no_notebook:
        return False
    if args.customers > args.notebook_max_customers:
        print(
            f"notebook script skipped: {args.customers:,} customers is above "
            f"--notebook-max-customers {args.notebook_max_customers:,}: it holds every landing "
            "row in pandas, about 50 MB per 1,000 customers, more than the machine's memory",
            file=sys.stderr,
            flush=True,
        )
        return False
    return True


def _print_floor(first: list[dict], second: list[dict], floor_result: dict) -> None:
    """The floor's parts, and the ratios the first run and the next night are judged by."""
    parts = floor_result["parts"]
    print(
        "Floor (plain DuckDB script + plain scikit-learn, no orchestration, no gates; "
        f"{parts['statements']} SQL statements, {parts['buyers']:,} buyers, k={parts['k']}):"
    )
    labels = {
        "load": "load landing CSVs",
        "sql": "dbt's SQL, plain",
        "selection": "model selection",
        "predictions": "predictions",
    }
    for part, seconds in parts["seconds"].items():
        print(f"{'  ' + labels.get(part, part):<22}{seconds:>10.1f}")
    peak = floor_result["peak_mb"]
    print(f"{'floor total':<22}{floor_result['seconds']:>10.1f}  peak {peak:.0f} MB")
    totals = [sum(r["seconds"] for r in night) for night in (first, second)]
    segmenting = sum(r["seconds"] for r in first if r["stage"] != "predict")
    # Like with like: the run without predict against the floor without its predictions part.
    floor_segmenting = floor_result["seconds"] - parts["seconds"].get("predictions", 0.0)
    print(
        f"first run / floor        {totals[0] / floor_result['seconds']:>6.2f}"
        f"  (ingest to publish, without predict: {segmenting / floor_segmenting:.2f})"
    )
    print(f"next night / first run   {totals[1] / totals[0]:>6.2f}")


def _print_comparison(first: list[dict], notebook: dict) -> None:
    """The pipeline's first run (ingest to publish) beside the plain notebook script."""
    segmenting = [r for r in first if r["stage"] != "predict"]
    pipeline = {
        "seconds": sum(r["seconds"] for r in segmenting),
        "peak_mb": max(r["peak_mb"] for r in segmenting),
        **notebook["pipeline"],
    }
    print("Against the planted segments (first run; pipeline = ingest to publish):")
    print(f"{'':<18}{'seconds':>10}{'peak MB':>10}{'ARI':>8}{'k':>4}{'compared':>10}")
    for name, row in (("pipeline", pipeline), ("notebook script", notebook)):
        print(
            f"{name:<18}{row['seconds']:>10.1f}{row['peak_mb']:>10.0f}{row['ari']:>8.3f}"
            f"{row['k']:>4}{row['compared']:>10,}"
        )


def _print_recluster_modes(data_dir: Path) -> None:
    """Which recluster mode each night ran (full with model selection, or assign) and why."""
    state_path = data_dir / "reports" / "bench-state.json"
    if state_path.exists():
        for night, reason in json.loads(state_path.read_text()).get("modes", {}).items():
            print(f"recluster {night}: {reason}")


def _run_forked_stage(stage: str, as_of_date: date, customers: int, env: dict) -> dict:
    """One pipeline step in a process forked from the one that preloaded the task libraries."""
    result = run_forked(
        run_stage,
        (stage, as_of_date, customers),
        what=f"Stage {stage} for {as_of_date}",
        env=env,
        preload=TASK_LIBRARIES,
    )
    _print_stage(stage, as_of_date, result)
    return result


def _run_in_subprocess(
    stage: str, as_of_date: date, customers: int, env: dict, extra: list[str] | None = None
) -> dict | None:
    command = [sys.executable, "-m", "tools.bench", "--stage", stage]
    command += ["--customers", str(customers), "--as-of", as_of_date.isoformat(), *(extra or [])]
    try:
        output = run_process(command, what=f"Stage {stage} for {as_of_date}", env=env)
    except RuntimeError as exc:
        print(exc, file=sys.stderr)
        return None
    result = json.loads(last_line(output))
    _print_stage(stage, as_of_date, result)
    return result


def _print_stage(stage: str, as_of_date: date, result: dict) -> None:
    print(
        f"  {stage} ({as_of_date}): {result['seconds']:.1f} s, peak {result['peak_mb']:.0f} MB",
        file=sys.stderr,
        flush=True,
    )


if __name__ == "__main__":
    sys.exit(main())
