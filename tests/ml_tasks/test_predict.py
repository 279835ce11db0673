"""The predict stage against a warehouse: every customer, reruns, rejected models, churn AUC."""

from __future__ import annotations

from datetime import timedelta

import duckdb
import pandas as pd
import pytest

from ml_tasks import clv
from ml_tasks.config import SegmentationConfig
from ml_tasks.order_history import OrderHistory
from ml_tasks.predict import (
    _TABLES,
    PredictionInputError,
    ensure_prediction_tables,
    model_recipe,
    predict,
    read_inputs,
    rejected_recently,
    reusable_models,
)
from ml_tasks.propensity import train_propensity
from tests.ml_tasks.demo_orders import AS_OF, demo_orders

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    return demo_orders(tmp_path_factory.mktemp("demo"), n_customers=1500)


def _warehouse(orders: pd.DataFrame, as_of) -> duckdb.DuckDBPyConnection:
    """The two relations predict reads, as dbt would leave them for ``as_of``: prospects too."""
    con = duckdb.connect()
    known = orders[pd.to_datetime(orders["ordered_date"]) <= pd.Timestamp(as_of)]
    known = known.assign(order_id=[f"O{i}" for i in range(len(known))], is_valid_for_spend=True)
    days = known.drop_duplicates(["customer_id", "ordered_date"]).groupby("customer_id").size()
    customers = pd.DataFrame({"customer_id": sorted(orders["customer_id"].unique())})
    customers = pd.concat([customers, pd.DataFrame({"customer_id": ["P-prospect"]})])
    customers["order_days"] = customers["customer_id"].map(days).fillna(0).astype(int)
    customers["as_of_date"] = as_of
    con.execute("create schema marts; create schema intermediate")
    con.register("c", customers)
    con.register("o", known)
    con.execute("create table marts.customer_features as select * from c")
    con.execute("create table intermediate.int_orders_attributed as select * from o")
    return con


def test_the_warehouse_keys_the_purchase_days_as_the_orders_would(demo):
    """``read_inputs`` keys and merges the purchase days in the warehouse, by each customer's
    row among the mart's customers (prospects included): the same RFM summary, the same
    features and the same rows of the mart's customers as the history built from the orders."""
    orders, _ = demo
    con = _warehouse(orders, AS_OF)
    customers, history = read_inputs(con, AS_OF)
    assert len(history.customer_ids) == len(customers) and "P-prospect" in set(customers)
    known = orders[pd.to_datetime(orders["ordered_date"]) <= pd.Timestamp(AS_OF)]
    expected = OrderHistory.from_orders(known)
    summary = clv.rfm_summary(history, AS_OF)
    pd.testing.assert_frame_equal(summary, clv.rfm_summary(expected, AS_OF))
    cutoff = AS_OF - timedelta(days=60)
    pd.testing.assert_frame_equal(
        history.features(cutoff, 30).drop(columns="cid"),
        expected.features(cutoff, 30).drop(columns="cid"),
    )
    rows = history.positions(AS_OF, customers.to_numpy())
    reference = pd.Index(summary["customer_id"]).get_indexer(customers)
    assert (rows == reference).all() and (rows == -1).sum() == 1  # the prospect
    # Other ids than the history's own (a subset, in another order) find their rows too.
    some = customers.to_numpy()[::-7]
    assert (
        history.positions(AS_OF, some) == pd.Index(summary["customer_id"]).get_indexer(some)
    ).all()


@pytest.mark.parametrize(
    "change, problem",
    [
        ("update marts.customer_features set order_days = order_days + 1 "
         "where customer_id = (select min(customer_id) from marts.customer_features)",
         "1 of them disagree"),
        ("delete from marts.customer_features "
         "where customer_id = (select min(customer_id) from marts.customer_features)",
         "purchase days there are of customers not in the mart"),
    ],
)  # fmt: skip
def test_orders_of_another_as_of_date_are_refused(demo, change, problem):
    """The order history must be the marts' own: a customer whose order days differ, or the
    orders of a customer the mart does not have, stop the step before anything is fitted."""
    orders, _ = demo
    con = _warehouse(orders, AS_OF)
    con.execute(change)
    with pytest.raises(PredictionInputError, match=problem):
        read_inputs(con, AS_OF)


def test_every_customer_rerun_and_rejected_model(demo):
    orders, _ = demo
    con = _warehouse(orders, AS_OF)
    config = SegmentationConfig()
    first = predict(con, AS_OF, run_id="first", config=config)
    rows = con.execute(
        "select * from segments.customer_predictions where as_of_date = ? order by customer_id",
        [AS_OF],
    ).df()
    customers = con.execute("select count(*) from marts.customer_features").fetchone()[0]
    assert len(rows) == customers == first["customers"]
    buyers = rows[rows["has_orders"]]
    assert (
        buyers[["p_alive", "clv_12m", "churn_probability", "purchase_30d_probability"]]
        .notna()
        .all()
        .all()
    )
    assert rows.loc[~rows["has_orders"], "clv_12m"].isna().all()
    assert {m["status"] for m in first["models"].values()} == {"accepted"}

    # A rerun of the date reproduces its predictions and replaces the slice.
    predict(con, AS_OF, run_id="rerun", config=config)
    again = con.execute(
        "select * from segments.customer_predictions where as_of_date = ? order by customer_id",
        [AS_OF],
    ).df()
    values = ["p_alive", "clv_12m", "churn_probability", "purchase_30d_probability"]
    pd.testing.assert_frame_equal(rows[values], again[values])
    assert again["customer_id"].is_unique and len(again) == customers
    statuses = con.execute(
        "select status, count(*) from segments.prediction_models group by 1 order by 1"
    ).fetchall()
    assert statuses == [("accepted", 3), ("superseded", 3)]

    # The next night's churn model misses an impossible threshold: stored, not used.
    later = AS_OF + timedelta(days=1)
    con.execute("update marts.customer_features set as_of_date = ?", [later])
    strict = config.with_overrides(predictions={"min_roc_auc": 0.999})
    result = predict(con, later, run_id="strict", config=strict)
    churn = result["models"]["churn"]
    assert churn["status"] == "rejected" and "ROC-AUC" in churn["status_reason"]
    current_churn = con.execute(
        "select model_id, as_of_date from segments.prediction_models "
        "where kind = 'churn' and is_current"
    ).fetchone()
    assert current_churn[1] == AS_OF
    assert churn["used_model_id"] == current_churn[0]
    used = con.execute(
        "select distinct churn_model_id from segments.customer_predictions "
        "where as_of_date = ? and churn_model_id is not null",
        [later],
    ).fetchall()
    assert used == [(current_churn[0],)]
    export = con.execute(
        "select count(*), count(*) filter (where is_high_value and is_high_churn_risk) "
        "from segments.current_customer_predictions"
    ).fetchone()
    assert export[0] == customers and export[1] >= 0


def test_young_models_score_later_nights_without_a_fit(demo):
    """Reused under refit_every_days: no new model rows, tonight's history scored (not last
    night's values copied), a rerun identical; at the age limit, or asked to, a fit."""
    orders, _ = demo
    con = _warehouse(orders, AS_OF)
    config = SegmentationConfig()

    def night(day, **kwargs) -> tuple[dict, pd.DataFrame]:
        con.execute("update marts.customer_features set as_of_date = ?", [day])
        result = predict(con, day, run_id=str(day), config=config, **kwargs)
        rows = con.execute(
            "select * from segments.customer_predictions where as_of_date = ? order by customer_id",
            [day],
        ).df()
        return result, rows

    def model_rows() -> int:
        return con.execute("select count(*) from segments.prediction_models").fetchone()[0]

    first, first_rows = night(AS_OF)
    fitted = {kind: model["model_id"] for kind, model in first["models"].items()}
    assert {model["status"] for model in first["models"].values()} == {"accepted"}
    assert model_rows() == 3

    day6 = AS_OF + timedelta(days=config.predictions.refit_every_days - 1)
    reused, rows = night(day6)
    assert {kind: (m["status"], m["used_model_id"]) for kind, m in reused["models"].items()} == {
        kind: ("reused", model_id) for kind, model_id in fitted.items()
    }
    assert reused["models"]["churn"]["roc_auc"] == first["models"]["churn"]["roc_auc"]
    assert model_rows() == 3
    buyers, first_buyers = rows[rows["has_orders"]], first_rows[first_rows["has_orders"]]
    for kind, model_id in fitted.items():
        assert set(buyers[f"{kind}_model_id"]) == {model_id}
    # Six more days without an order: P(alive) falls for repeat buyers, the churn features move.
    assert (buyers["p_alive"].to_numpy() <= first_buyers["p_alive"].to_numpy() + 1e-12).all()
    assert (buyers["p_alive"].to_numpy() < first_buyers["p_alive"].to_numpy()).any()
    changed = buyers["churn_probability"].to_numpy() != first_buyers["churn_probability"].to_numpy()
    assert changed.any()
    _, again = night(day6)
    pd.testing.assert_frame_equal(rows, again)

    day7 = day6 + timedelta(days=1)  # the first night's models are refit_every_days old
    aged, _ = night(day7)
    assert {model["status"] for model in aged["models"].values()} == {"accepted"}
    assert not set(fitted.values()) & {m["model_id"] for m in aged["models"].values()}
    assert model_rows() == 6

    asked, _ = night(day7 + timedelta(days=1), refit=True)  # day7's are a day old
    assert {model["status"] for model in asked["models"].values()} == {"accepted"}
    assert model_rows() == 9


def test_a_rejected_fit_is_not_tried_again_while_young(demo):
    """A kind whose fit was rejected is scored as on the night that rejected it (the current
    accepted model, here none) and fitted again only at refit_every_days, when asked, or with
    other settings."""
    orders, _ = demo
    con = _warehouse(orders, AS_OF)
    strict = SegmentationConfig().with_overrides(predictions={"min_roc_auc": 0.999})

    def night(day, config=strict, **kwargs) -> tuple[dict, int]:
        con.execute("update marts.customer_features set as_of_date = ?", [day])
        result = predict(con, day, run_id=str(day), config=config, **kwargs)
        rows = con.execute("select count(*) from segments.prediction_models").fetchone()[0]
        return result, rows

    def statuses(result: dict) -> dict:
        return {kind: model["status"] for kind, model in result["models"].items()}

    first, rows = night(AS_OF)
    assert statuses(first) == {"clv": "accepted", "churn": "rejected", "purchase": "rejected"}
    assert rows == 3

    later, rows = night(AS_OF + timedelta(days=1))
    assert statuses(later) == {
        "clv": "reused",
        "churn": "rejected earlier",
        "purchase": "rejected earlier",
    }
    assert rows == 3  # nothing fitted, nothing stored
    churn = later["models"]["churn"]
    assert churn["model_id"] == first["models"]["churn"]["model_id"]
    retry_on = AS_OF + timedelta(days=strict.predictions.refit_every_days)
    assert churn["used_model_id"] is None
    assert churn["status_reason"].startswith(f"fitted for {AS_OF}, 1 day before, and rejected: ")
    assert churn["status_reason"].endswith(f"; fitted again from {retry_on}")
    scored = con.execute(
        "select count(churn_probability), count(purchase_30d_probability), count(clv_12m) "
        "from segments.customer_predictions where as_of_date = ?",
        [AS_OF + timedelta(days=1)],
    ).fetchone()
    assert scored[:2] == (0, 0) and scored[2] > 0

    asked, rows = night(AS_OF + timedelta(days=2), refit=True)
    assert statuses(asked) == {"clv": "accepted", "churn": "rejected", "purchase": "rejected"}
    assert rows == 6
    aged, rows = night(AS_OF + timedelta(days=2 + strict.predictions.refit_every_days))
    assert statuses(aged) == {"clv": "accepted", "churn": "rejected", "purchase": "rejected"}
    assert rows == 9
    relaxed, rows = night(
        AS_OF + timedelta(days=3 + strict.predictions.refit_every_days), SegmentationConfig()
    )
    assert statuses(relaxed) == {"clv": "accepted", "churn": "accepted", "purchase": "accepted"}
    assert rows == 12


def test_rejected_recently_needs_a_young_rejected_fit_with_tonights_settings():
    config = SegmentationConfig().predictions
    recipe = model_recipe(config, 42)

    def fit(status, days_before, params):
        return {
            "status": status,
            "as_of_date": AS_OF - timedelta(days=days_before),
            "params": params,
        }

    fits = {
        "clv": fit("accepted", 1, {"recipe": recipe}),
        "churn": fit("rejected", config.refit_every_days - 1, {"recipe": recipe}),
        "purchase": fit("rejected", 1, {"recipe": {**recipe, "min_roc_auc": 0.9}}),
    }
    held_back = rejected_recently(fits, AS_OF, config, random_state=42)
    assert set(held_back) == {"churn"}
    assert held_back["churn"]["retry_on"] == AS_OF + timedelta(days=1)
    assert not rejected_recently(fits, AS_OF + timedelta(days=1), config, random_state=42)
    assert not rejected_recently(fits, AS_OF, config, random_state=7)
    assert not rejected_recently(fits, AS_OF, config, random_state=42, refit=True)


def test_reuse_needs_a_young_model_fitted_with_tonights_settings():
    config = SegmentationConfig().predictions
    recipe = model_recipe(config, 42)
    previous = {
        "clv": {"model_id": 1, "as_of_date": AS_OF, "params": {"recipe": recipe}},
        "churn": {"model_id": 2, "as_of_date": AS_OF, "params": {"recipe": recipe}},
        "purchase": {"model_id": 3, "as_of_date": AS_OF - timedelta(days=1), "params": {}},
    }
    last_young_day = AS_OF + timedelta(days=config.refit_every_days - 1)
    assert set(reusable_models(previous, last_young_day, config, random_state=42)) == {
        "clv",
        "churn",
    }  # purchase: fitted before the recipe was stored
    assert not reusable_models(
        previous, last_young_day + timedelta(days=1), config, random_state=42
    )
    assert not reusable_models(previous, last_young_day, config, random_state=7)
    assert not reusable_models(previous, last_young_day, config, random_state=42, refit=True)
    changed = SegmentationConfig().with_overrides(predictions={"churn_days": 60}).predictions
    assert not reusable_models(previous, AS_OF + timedelta(days=1), changed, random_state=42)
    # The age limit itself is not part of the recipe: raising it keeps the models.
    longer = SegmentationConfig().with_overrides(predictions={"refit_every_days": 30}).predictions
    assert set(reusable_models(previous, AS_OF + timedelta(days=20), longer, random_state=42)) == {
        "clv",
        "churn",
    }


def test_churn_model_ranks_a_later_window(demo):
    orders, _ = demo
    outcome = train_propensity("churn", orders, AS_OF, horizon_days=90)
    assert outcome.status == "accepted"
    assert outcome.metrics["roc_auc"] >= 0.75
    assert len(outcome.metrics["calibration"]) == 10
    assert set(outcome.metrics["permutation_importance"]) >= {"recency_days", "order_days"}


def test_a_keyed_predictions_table_loses_its_key_and_keeps_its_rows():
    """Warehouses made before the key was dropped: their rows move to the table without it."""
    con = duckdb.connect()
    con.execute("create schema segments")
    models, predictions, _ = _TABLES
    keyed = predictions.replace(
        "purchase_model_id integer\n",
        "purchase_model_id integer, primary key (as_of_date, customer_id)\n",
    )
    assert keyed != predictions
    con.execute(models)
    con.execute(keyed)
    con.execute(
        "insert into segments.customer_predictions (as_of_date, customer_id, has_orders, clv_12m) "
        "values ('2026-06-30', 'a', true, 1.5), ('2026-06-30', 'b', false, null)"
    )
    for _ in range(2):  # the second time there is nothing left to do
        ensure_prediction_tables(con)
        kinds = con.execute(
            "select constraint_type from duckdb_constraints() "
            "where table_name = 'customer_predictions'"
        ).fetchall()
        assert ("PRIMARY KEY",) not in kinds and ("NOT NULL",) in kinds
        assert con.execute(
            "select customer_id, clv_12m from segments.current_customer_predictions order by 1"
        ).fetchall() == [("a", 1.5), ("b", None)]
