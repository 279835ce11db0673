"""The nightly predictions: read the order history, fit and decide, write one as-of slice.

* read: every customer of ``marts.customer_features`` for the as-of date and their valid orders
  (``intermediate.int_orders_attributed``, the date the last dbt build was for, which the step
  checks against the mart);
* decide (``reusable_models``, ``rejected_recently``, ``compute_predictions``, pure): a model of
  an earlier night that is younger than ``refit_every_days`` and was fitted with tonight's settings
  is reused as it is; otherwise the CLV fit and the two propensity models, each accepted or
  rejected; a rejected (or failed) model is replaced by the current accepted one of its kind, so a
  bad night leaves yesterday's models in use, and is not fitted again before it would have been
  refitted had it been accepted;
* write (``store_predictions``, one transaction): the models of the run in
  ``segments.prediction_models`` and the customers' predictions in
  ``segments.customer_predictions`` (the as-of slice replaced).
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from core.warehouse import drop_primary_key, transaction
from ml_tasks import clv, propensity
from ml_tasks.config import PredictionsConfig, SegmentationConfig
from ml_tasks.order_history import OrderHistory

log = logging.getLogger(__name__)

# One slice per as-of date; retention (pipeline.steps.publish) deletes the slices no version needs.
PREDICTIONS_TABLE = "segments.customer_predictions"
PREDICTION_COLUMNS = (
    "as_of_date", "customer_id", "has_orders", "p_alive", "expected_purchases_30d",
    "expected_purchases_90d", "expected_purchases_365d", "expected_spend", "clv_12m",
    "churn_probability", "purchase_30d_probability", "clv_model_id", "churn_model_id",
    "purchase_model_id",
)  # fmt: skip
# Audience flags of the current view: the top fifth by value, and churn more likely than not.
HIGH_VALUE_QUANTILE = 0.8
HIGH_CHURN_RISK = 0.5

_TABLES = (
    """
    create table if not exists segments.prediction_models (
        model_id integer primary key,
        as_of_date date not null,
        run_id varchar,
        kind varchar not null,
        created_at timestamp not null,
        status varchar not null,
        status_reason varchar,
        is_current boolean not null,
        params json,
        diagnostics json,
        metrics json,
        model blob
    )
    """,
    """
    create table if not exists segments.customer_predictions (
        as_of_date date not null,
        customer_id varchar not null,
        has_orders boolean not null,
        p_alive double,
        expected_purchases_30d double,
        expected_purchases_90d double,
        expected_purchases_365d double,
        expected_spend double,
        clv_12m double,
        churn_probability double,
        purchase_30d_probability double,
        clv_model_id integer,
        churn_model_id integer,
        purchase_model_id integer
    )
    """,
    # The newest as-of slice, with the current segment and the two audience flags, for exports
    # ("high value, high churn risk") joined on customer_id.
    f"""
    create or replace view segments.current_customer_predictions as
    with latest as (
        select * from segments.customer_predictions
        where as_of_date = (select max(as_of_date) from segments.customer_predictions)
    ),
    value_cut as (
        select quantile_cont(clv_12m, {HIGH_VALUE_QUANTILE}) as clv_12m_cut from latest
    )
    select
        latest.*,
        current_segments.segment_id,
        current_segments.segment_name,
        coalesce(latest.clv_12m >= value_cut.clv_12m_cut, false) as is_high_value,
        coalesce(latest.churn_probability >= {HIGH_CHURN_RISK}, false) as is_high_churn_risk
    from latest
    cross join value_cut
    left join segments.current_segments using (customer_id)
    """,
)


# No primary key on customer_predictions: a night replaces its as-of slice in one transaction
# (delete, insert) and its customers are the mart's, one row each (the tests check both). With
# the key (as_of_date, customer_id), DuckDB's commit of a slice replaced in place (any rerun of a
# night) took 24 s at 1M customers against 0.1 s without, and the key's index grows by a million
# entries a night.


def ensure_prediction_tables(con: duckdb.DuckDBPyConnection) -> None:
    from ml_tasks.versions import ensure_segments_schema

    ensure_segments_schema(con)  # the current_segments view the export view joins
    models, predictions, view = _TABLES
    con.execute(models)
    # Warehouses made before 2026-12-02 have the key.
    drop_primary_key(con, "segments", "customer_predictions", predictions)
    con.execute(predictions)
    con.execute(view)


class PredictionInputError(RuntimeError):
    """The order history does not belong to the as-of date's marts (rebuild with dbt first)."""


def read_inputs(con: duckdb.DuckDBPyConnection, as_of_date: date) -> tuple[pd.Series, OrderHistory]:
    """The customers of the as-of date (``marts.customer_features``, in customer_id order) and
    their valid orders up to it as purchase days (``OrderHistory``), keyed and merged per day in
    the warehouse: the key of a customer is their row among the customers, so no order's
    customer id is copied out of DuckDB, and checking the orders against the mart's order days
    is a count per key."""
    customers = con.execute(
        "select customer_id, order_days from marts.customer_features where as_of_date = ? "
        "order by customer_id",
        [as_of_date],
    ).df()
    purchase_days = con.sql(
        """
        with keys as (
            select
                customer_id,
                cast(row_number() over (order by customer_id) - 1 as integer) as cid
            from marts.customer_features
            where as_of_date = $as_of_date
        )
        select
            keys.cid,
            cast(cast(orders.ordered_date as date) - date '1970-01-01' as integer) as day,
            sum(cast(orders.amount as double)) as amount
        from intermediate.int_orders_attributed as orders
        left join keys using (customer_id)
        where orders.is_valid_for_spend and orders.ordered_date <= $as_of_date
        group by all
        """,
        params={"as_of_date": as_of_date},
    ).to_arrow_table()
    keys = purchase_days.column("cid")
    unknown = keys.null_count
    days = np.bincount(keys.drop_null().to_numpy(), minlength=len(customers))
    disagree = int((days != customers["order_days"].fillna(0).to_numpy()).sum())
    if customers.empty or unknown or disagree:
        raise PredictionInputError(
            f"marts.customer_features for {as_of_date} has {len(customers)} customers, "
            f"{disagree} of them disagree with intermediate.int_orders_attributed on their "
            f"order days, and {unknown} purchase days there are of customers not in the mart: "
            f"the intermediate tables are of another as-of date. Run dbt_build for {as_of_date} "
            "first."
        )
    customer_ids = customers["customer_id"]
    return customer_ids, OrderHistory(purchase_days, customer_ids.to_numpy())


@dataclass
class ModelRow:
    kind: str
    status: str
    status_reason: str | None = None
    params: dict = field(default_factory=dict)
    diagnostics: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)
    model: bytes | None = None
    model_id: int | None = None  # assigned when stored


@dataclass
class ComputedPredictions:
    as_of_date: date
    models: list[ModelRow]  # the models fitted tonight (none for a kind that was reused)
    predictions: pd.DataFrame  # PREDICTION_COLUMNS but the model ids
    used: dict[str, int | None]  # kind: model_id of an earlier model used instead, or None
    reused: dict[str, dict] = field(default_factory=dict)  # kind: the earlier model, not refitted
    # kind: the rejected fit of an earlier night that tonight did not try again
    rejected_earlier: dict[str, dict] = field(default_factory=dict)


KINDS = ("clv", "churn", "purchase")


def model_recipe(config: PredictionsConfig, random_state: int) -> dict:
    """The settings a night's models are fitted with, stored with each model: a model is reused
    only by a night with the same recipe (a changed setting refits every kind)."""
    recipe = asdict(config)
    del recipe["refit_every_days"]
    return {**recipe, "random_state": random_state}


def reusable_models(
    previous: dict[str, dict],
    as_of_date: date,
    config: PredictionsConfig,
    *,
    random_state: int,
    refit: bool = False,
) -> dict[str, dict]:
    """The kinds whose newest accepted model (``read_previous``: of an earlier as-of date) is
    younger than ``refit_every_days`` days and was fitted with tonight's recipe: tonight scores
    with it instead of fitting. ``refit`` (the run's choice) fits every kind."""
    return _young_fits(previous, as_of_date, config, random_state=random_state, refit=refit)


def _young_fits(
    fits: dict[str, dict], as_of_date: date, config: PredictionsConfig, *, random_state, refit
) -> dict[str, dict]:
    """Of ``fits`` (kind: a fit of an earlier as-of date), those younger than
    ``refit_every_days`` days and fitted with tonight's recipe; none when ``refit``."""
    if refit:
        return {}
    recipe = model_recipe(config, random_state)
    return {
        kind: fit
        for kind, fit in fits.items()
        if (as_of_date - fit["as_of_date"]).days < config.refit_every_days
        and fit["params"].get("recipe") == recipe
    }


def rejected_recently(
    attempts: dict[str, dict],
    as_of_date: date,
    config: PredictionsConfig,
    *,
    random_state: int,
    refit: bool = False,
) -> dict[str, dict]:
    """The kinds whose newest fit (``read_last_fits``: of an earlier as-of date) was rejected
    less than ``refit_every_days`` days ago with tonight's recipe: tonight does not fit them again
    and scores with the newest accepted model, as the night that rejected the fit did. A fit on
    one more day of the same history is rejected again for the same reason (on the bench's
    purchase model, every night), at the cost of a fit and its evaluation; a kind is fitted at most
    once every ``refit_every_days``, whatever the verdict (``retry_on``: the first night that
    fits it again). ``refit`` fits every kind."""
    young = _young_fits(attempts, as_of_date, config, random_state=random_state, refit=refit)
    return {
        kind: {**fit, "retry_on": fit["as_of_date"] + timedelta(days=config.refit_every_days)}
        for kind, fit in young.items()
        if fit["status"] == "rejected"
    }


def _clv_row(fit: clv.ClvFit, recipe: dict) -> ModelRow:
    params = {"bgnbd": fit.bgnbd, "gamma_gamma": fit.gamma_gamma, "recipe": recipe}
    return ModelRow("clv", "accepted", params=params, diagnostics=fit.diagnostics)


def compute_predictions(
    customers: pd.Series,
    orders: pd.DataFrame | pa.Table | OrderHistory,
    as_of_date: date,
    config: PredictionsConfig,
    *,
    random_state: int = 42,
    previous: dict[str, dict] | None = None,
    reuse: dict[str, dict] | None = None,
    rejected_earlier: dict[str, dict] | None = None,
    compile_dir: Path | None = None,
) -> ComputedPredictions:
    """Tonight's models and every customer's predictions. ``previous`` holds the current accepted
    model of each kind (``model_id`` with ``params`` or ``model``), used when tonight's is
    rejected or fails; ``reuse`` (``reusable_models``) the kinds scored with such a model
    without fitting tonight; ``rejected_earlier`` (``rejected_recently``) the kinds not fitted
    tonight because a recent fit was rejected, scored with ``previous`` as if rejected tonight."""
    previous, reuse = previous or {}, reuse or {}
    rejected_earlier = {k: v for k, v in (rejected_earlier or {}).items() if k not in reuse}
    recipe = model_recipe(config, random_state)
    frame = pd.DataFrame({"customer_id": customers.astype(str).to_numpy()})
    models: list[ModelRow] = []
    used: dict[str, int | None] = {kind: reuse[kind]["model_id"] for kind in reuse}

    history = OrderHistory.of(orders)
    summary = clv.rfm_summary(history, as_of_date)
    # The row of each customer of the frame among the buyers up to the date (the summary and
    # the features list them alike, by key); -1 for customers without orders.
    position = history.positions(as_of_date, frame["customer_id"])
    if "clv" in reuse:
        fit = _previous_clv(reuse)
    elif "clv" in rejected_earlier:
        fit, used["clv"] = _previous_clv(previous), previous.get("clv", {}).get("model_id")
    else:
        try:
            fit = clv.fit_clv(
                summary,
                compile_dir=compile_dir,
                max_customers=config.clv_fit_customers,
                random_state=random_state,
            )
            models.append(_clv_row(fit, recipe))
            used["clv"] = None
        except clv.ClvFitError as exc:
            models.append(ModelRow("clv", "rejected", str(exc), params={"recipe": recipe}))
            fit, used["clv"] = _previous_clv(previous), previous.get("clv", {}).get("model_id")
    if fit is not None:
        values = clv.predict_clv(
            fit,
            summary,
            months=config.clv_months,
            annual_discount_rate=config.annual_discount_rate,
            compile_dir=compile_dir,
        )
        for column in values.columns.drop("customer_id"):
            frame[column] = _at(values[column].to_numpy(), position)
    frame["has_orders"] = position >= 0

    features = history.features(as_of_date)
    assert len(features) == len(summary)  # the same buyers, in the same order
    for kind, horizon, column in (
        ("churn", config.churn_days, "churn_probability"),
        ("purchase", config.purchase_days, "purchase_30d_probability"),
    ):
        if kind in reuse:
            scores = propensity.score(reuse[kind]["model"], features)
            frame[column] = _at(scores, position)
            continue
        if kind in rejected_earlier:
            model, used[kind] = _fallback(previous, kind)
            scores = propensity.score(model, features) if model else np.full(len(features), np.nan)
            frame[column] = _at(scores, position)
            continue
        outcome = propensity.train_propensity(
            kind,
            history,
            as_of_date,
            horizon_days=horizon,
            max_training_rows=config.max_training_rows,
            evaluation_rows=config.evaluation_rows,
            importance_rows=config.importance_rows,
            min_class_rows=config.min_class_rows,
            min_roc_auc=config.min_roc_auc,
            max_brier=config.max_brier,
            random_state=random_state,
        )
        models.append(
            ModelRow(
                kind,
                outcome.status,
                outcome.status_reason,
                params={**outcome.params, "recipe": recipe},
                metrics=outcome.metrics,
                model=outcome.model,
            )
        )
        model = outcome.model if outcome.status == "accepted" else None
        used[kind] = None
        if model is None:
            model, used[kind] = _fallback(previous, kind)
            log.warning(
                "The %s model of %s was rejected (%s); %s",
                kind,
                as_of_date,
                outcome.status_reason,
                f"model {used[kind]} stays in use" if model else "no earlier model to use",
            )
        scores = propensity.score(model, features) if model else np.full(len(features), np.nan)
        frame[column] = _at(scores, position)
    frame.insert(0, "as_of_date", as_of_date)
    for column in PREDICTION_COLUMNS:
        if column not in frame and not column.endswith("_model_id"):
            frame[column] = np.nan
    reused = {kind: reuse[kind] for kind in KINDS if kind in reuse}
    return ComputedPredictions(as_of_date, models, frame, used, reused, rejected_earlier)


def _fallback(previous: dict[str, dict], kind: str) -> tuple[bytes | None, int | None]:
    """The pickled model and id of the current accepted model of ``kind``, or (None, None)."""
    model = previous.get(kind, {})
    return model.get("model"), model.get("model_id")


def _at(values: np.ndarray, position: np.ndarray) -> np.ndarray:
    """``values[position]`` as floats, NaN where the position is -1."""
    return np.append(np.asarray(values, dtype="float64"), np.nan)[position]


def _previous_clv(previous: dict[str, dict]) -> clv.ClvFit | None:
    params = previous.get("clv", {}).get("params")
    if not params:
        return None
    return clv.ClvFit(params["bgnbd"], params["gamma_gamma"])


def read_previous(con: duckdb.DuckDBPyConnection, as_of_date: date) -> dict[str, dict]:
    """The newest accepted model of each kind from an earlier as-of date (never a later one:
    a backfill must not use what was learnt from its future)."""
    rows = con.execute(
        """
        select kind, model_id, as_of_date, params, metrics, model
        from segments.prediction_models
        where status = 'accepted' and as_of_date < ?
        qualify row_number() over (partition by kind order by as_of_date desc, model_id desc) = 1
        """,
        [as_of_date],
    ).fetchall()
    return {
        kind: {
            "model_id": model_id,
            "as_of_date": fitted_for,
            "params": json.loads(params or "{}"),
            "metrics": json.loads(metrics or "{}"),
            "model": model,
        }
        for kind, model_id, fitted_for, params, metrics, model in rows
    }


def read_last_fits(con: duckdb.DuckDBPyConnection, as_of_date: date) -> dict[str, dict]:
    """The newest fit of each kind from an earlier as-of date, accepted or rejected (a rerun's
    superseded rows left out): its ``model_id``, ``as_of_date``, ``status``, ``status_reason``,
    ``params`` and ``metrics``."""
    rows = con.execute(
        """
        select kind, model_id, as_of_date, status, status_reason, params, metrics
        from segments.prediction_models
        where status <> 'superseded' and as_of_date < ?
        qualify row_number() over (partition by kind order by as_of_date desc, model_id desc) = 1
        """,
        [as_of_date],
    ).fetchall()
    return {
        kind: {
            "model_id": model_id,
            "as_of_date": fitted_for,
            "status": status,
            "status_reason": reason,
            "params": json.loads(params or "{}"),
            "metrics": json.loads(metrics or "{}"),
        }
        for kind, model_id, fitted_for, status, reason, params, metrics in rows
    }


def _json(value) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def store_predictions(
    con: duckdb.DuckDBPyConnection, computed: ComputedPredictions, *, run_id: str
) -> dict[str, int]:
    """Write the run's models and the as-of slice in one transaction (a rerun of the date
    supersedes its earlier models and replaces its slice); returns the model id per kind."""
    ensure_prediction_tables(con)
    as_of_date = computed.as_of_date
    with transaction(con):
        con.execute(
            "update segments.prediction_models set status = 'superseded', is_current = false "
            "where as_of_date = ? and status <> 'superseded'",
            [as_of_date],
        )
        next_id = con.execute(
            "select coalesce(max(model_id), 0) + 1 from segments.prediction_models"
        ).fetchone()[0]
        ids = {}
        for offset, row in enumerate(computed.models):
            row.model_id = next_id + offset
            ids[row.kind] = row.model_id
            con.execute(
                "insert into segments.prediction_models values "
                "(?, ?, ?, ?, ?, ?, ?, false, ?, ?, ?, ?)",
                [
                    row.model_id, as_of_date, run_id, row.kind, datetime.now(), row.status,
                    row.status_reason, _json(row.params), _json(row.diagnostics),
                    _json(row.metrics), row.model,
                ],
            )  # fmt: skip
        # Current: per kind, the accepted model of the newest as-of date.
        con.execute(
            """
            update segments.prediction_models set is_current = model_id in (
                select model_id from segments.prediction_models
                where status = 'accepted'
                qualify row_number() over (
                    partition by kind order by as_of_date desc, model_id desc) = 1
            )
            """
        )
        frame = computed.predictions.copy()
        for kind in KINDS:
            used = computed.used.get(kind)
            # None: a kind not fitted tonight with no model to use (it scored no one).
            model_id = used if used is not None else ids.get(kind)
            has_value = frame["p_alive" if kind == "clv" else _COLUMN[kind]].notna()
            frame[f"{kind}_model_id"] = np.where(has_value, model_id, None)
        frame = frame[list(PREDICTION_COLUMNS)]
        con.execute("delete from segments.customer_predictions where as_of_date = ?", [as_of_date])
        con.register("predictions_frame", frame)
        try:
            con.execute("insert into segments.customer_predictions select * from predictions_frame")
        finally:
            con.unregister("predictions_frame")
    return ids


_COLUMN = {"churn": "churn_probability", "purchase": "purchase_30d_probability"}


def predict(
    con: duckdb.DuckDBPyConnection,
    as_of_date: date,
    *,
    run_id: str = "manual",
    config: SegmentationConfig | None = None,
    refit: bool = False,
    compile_dir: Path | None = None,
) -> dict:
    """Read, decide, write: the as-of date's predictions; returns the run summary's numbers.
    ``refit``: fit every model tonight, even one young enough to be reused."""
    from ml_tasks.config import load_config

    config = config or load_config()
    customers, history = read_inputs(con, as_of_date)
    ensure_prediction_tables(con)
    previous = read_previous(con, as_of_date)
    decided = {"random_state": config.random_state, "refit": refit}
    computed = compute_predictions(
        customers,
        history,
        as_of_date,
        config.predictions,
        random_state=config.random_state,
        previous=previous,
        reuse=reusable_models(previous, as_of_date, config.predictions, **decided),
        rejected_earlier=rejected_recently(
            read_last_fits(con, as_of_date), as_of_date, config.predictions, **decided
        ),
        compile_dir=compile_dir,
    )
    ids = store_predictions(con, computed, run_id=run_id)
    return summarise(computed, ids)


def summarise(computed: ComputedPredictions, ids: dict[str, int]) -> dict:
    frame = computed.predictions
    models = {}
    for row in computed.models:
        models[row.kind] = _model_summary(
            row.kind,
            ids[row.kind],
            row.status,
            row.status_reason,
            computed.used.get(row.kind) or (ids[row.kind] if row.status == "accepted" else None),
            row.metrics,
            row.params,
        )
    for kind, model in computed.reused.items():
        age = (computed.as_of_date - model["as_of_date"]).days
        reason = f"fitted for {model['as_of_date']}, {age} day{'s' * (age != 1)} before"
        model_id = model["model_id"]
        models[kind] = _model_summary(
            kind, model_id, "reused", reason, model_id, model["metrics"], model["params"]
        )
    for kind, fit in computed.rejected_earlier.items():
        age = (computed.as_of_date - fit["as_of_date"]).days
        reason = (
            f"fitted for {fit['as_of_date']}, {age} day{'s' * (age != 1)} before, and rejected: "
            f"{fit['status_reason']}; fitted again from {fit['retry_on']}"
        )
        used = computed.used.get(kind)
        models[kind] = _model_summary(
            kind, fit["model_id"], "rejected earlier", reason, used, fit["metrics"], fit["params"]
        )
    return {
        "as_of_date": computed.as_of_date.isoformat(),
        "customers": len(frame),
        "customers_with_orders": int(frame["has_orders"].sum()),
        "total_clv_12m": float(frame["clv_12m"].sum()),
        "mean_churn_probability": _mean(frame["churn_probability"]),
        "models": {kind: models[kind] for kind in KINDS if kind in models},
    }


def _model_summary(kind, model_id, status, reason, used_model_id, metrics, params) -> dict:
    return {
        "model_id": model_id,
        "status": status,
        "status_reason": reason,
        "used_model_id": used_model_id,
        **{k: metrics[k] for k in ("roc_auc", "pr_auc", "brier") if k in metrics},
        **({"params": params} if kind == "clv" else {}),
    }


def _mean(values: pd.Series) -> float | None:
    return None if values.isna().all() else float(values.mean())


def segment_value_and_risk(
    con: duckdb.DuckDBPyConnection, as_of_date: date, version_id: int
) -> pd.DataFrame:
    """The personas' expected 12-month value and churn risk: segment version ``version_id``'s
    members with the as-of date's predictions (empty before the first predictions)."""
    from ml_tasks.profiles import value_and_risk

    exists = con.execute(
        "select count(*) from information_schema.tables "
        "where table_schema = 'segments' and table_name = 'customer_predictions'"
    ).fetchone()[0]
    if not exists:
        return pd.DataFrame()
    members = con.execute(
        "select customer_id, segment_id, segment_name from segments.customer_segments "
        "where version_id = ?",
        [version_id],
    ).df()
    predictions = con.execute(
        "select customer_id, clv_12m, churn_probability from segments.customer_predictions "
        "where as_of_date = ?",
        [as_of_date],
    ).df()
    if predictions.empty:
        return pd.DataFrame()
    return value_and_risk(members, predictions)
