"""The CLV models: the published CDNOW parameters, and recovery of the demo's planted future."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ml_tasks.clv import (
    bgnbd_log_likelihood,
    fit_clv,
    gamma_gamma_log_likelihood,
    holdout_check,
    predict_clv,
    rfm_summary,
)
from tests.ml_tasks.demo_orders import AS_OF, FUTURE_DAYS, demo_orders

CDNOW = Path(__file__).parent / "data" / "cdnow_sample.txt.gz"
# Fader, Hardie and Lee (2005a) "Counting your customers the easy way", and (2005b) the
# Gamma-Gamma spend model, on the CDNOW calibration period (weeks).
BGNBD_PUBLISHED = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
GAMMA_GAMMA_PUBLISHED = {"p": 6.25, "q": 3.74, "v": 15.44}


@pytest.fixture(scope="module")
def cdnow() -> pd.DataFrame:
    frame = pd.read_csv(
        CDNOW, sep=r"\s+", header=None, names=["customer_id", "master_id", "day", "cds", "amount"],
        dtype={"day": str},
    )  # fmt: skip
    frame["ordered_date"] = pd.to_datetime(frame["day"], format="%Y%m%d").dt.date
    return frame


@pytest.mark.slow
def test_cdnow_reproduces_the_published_parameters(cdnow):
    summary = rfm_summary(cdnow, date(1997, 9, 30), time_unit_days=7)
    assert len(summary) == 2357
    assert (summary["frequency"] > 0).sum() == 946
    fit = fit_clv(summary, time_unit_days=7)
    for name, value in {**BGNBD_PUBLISHED, **GAMMA_GAMMA_PUBLISHED}.items():
        fitted = {**fit.bgnbd, **fit.gamma_gamma}[name]
        assert fitted == pytest.approx(value, rel=0.01), name
    assert fit.diagnostics["repeat_buyers"] == 946
    assert fit.diagnostics["bgnbd_log_likelihood"] == pytest.approx(-9582.4, abs=0.5)


def test_rfm_summary_merges_a_day_and_ignores_later_orders():
    orders = pd.DataFrame(
        {
            "customer_id": ["a", "a", "a", "a", "b"],
            "ordered_date": pd.to_datetime(
                ["2026-01-01", "2026-01-01", "2026-01-11", "2026-02-01", "2026-01-21"]
            ).date,
            "amount": [10.0, 5.0, 30.0, 99.0, 7.0],
        }
    )
    summary = rfm_summary(orders, date(2026, 1, 31)).set_index("customer_id")
    assert summary.loc["a"].to_dict() == {
        "frequency": 1, "recency": 10.0, "T": 30.0, "monetary_value": 30.0,
    }  # fmt: skip
    assert summary.loc["b"].to_dict() == {
        "frequency": 0, "recency": 0.0, "T": 10.0, "monetary_value": 0.0,
    }  # fmt: skip


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    return demo_orders(tmp_path_factory.mktemp("demo"))


@pytest.mark.slow
def test_demo_purchases_in_the_holdout_within_ten_percent(demo):
    orders, _ = demo
    check = holdout_check(
        orders, AS_OF + pd.Timedelta(days=FUTURE_DAYS).to_pytimedelta(), FUTURE_DAYS
    )
    assert abs(check["relative_error"]) <= 0.10, check


@pytest.mark.slow
def test_demo_recovers_the_planted_rates_and_dropouts(demo):
    orders, truth = demo
    summary = rfm_summary(orders, AS_OF)
    predictions = predict_clv(fit_clv(summary), summary, annual_discount_rate=0.1)
    joined = predictions.merge(truth, left_on="customer_id", right_on="person_id")
    assert len(joined) == len(predictions)
    planted = joined["orders_per_day"] * 90
    assert np.corrcoef(planted, joined["expected_purchases_90d"])[0, 1] > 0.9
    alive = joined.groupby("is_dropped_out")["p_alive"].mean()
    assert alive[False] > alive[True] + 0.2
    assert (joined["clv_12m"] >= 0).all()
    assert joined[["p_alive", "expected_spend", "clv_12m"]].notna().all().all()


def _library_predictions(fit, summary: pd.DataFrame, *, months: int, monthly_rate: float):
    """The same predictions through pymc-marketing's own predictive methods, on models carrying
    the fitted values as a one-draw posterior."""
    import warnings

    import arviz as az
    from pymc_marketing.clv import BetaGeoModel, GammaGammaModel
    from pymc_marketing.clv.utils import customer_lifetime_value

    from ml_tasks.clv import _flat_bgnbd_config, _flat_gamma_gamma_config

    def one_draw(params):
        return az.from_dict(posterior={k: np.array([[v]]) for k, v in params.items()})

    def values(array):
        return np.asarray(array.squeeze(("chain", "draw"), drop=True).values, dtype="float64")

    data = summary[["customer_id", "frequency", "recency", "T", "monetary_value"]].copy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        bgnbd = BetaGeoModel(model_config=_flat_bgnbd_config())
        bgnbd.build_model(data[["customer_id", "frequency", "recency", "T"]])
        bgnbd.idata = one_draw(fit.bgnbd)
        gamma_gamma = GammaGammaModel(model_config=_flat_gamma_gamma_config())
        gamma_gamma.build_model(data[["customer_id", "frequency", "monetary_value"]])
        gamma_gamma.idata = one_draw(fit.gamma_gamma)
        unit = fit.time_unit_days
        result = {"p_alive": values(bgnbd.expected_probability_alive(data=data))}
        for days in (30, 90, 365):
            result[f"expected_purchases_{days}d"] = values(
                bgnbd.expected_purchases(data=data, future_t=days / unit)
            )
        result["expected_spend"] = values(gamma_gamma.expected_customer_spend(data=data))
        data["future_spend"] = result["expected_spend"]
        result["clv_12m"] = values(
            customer_lifetime_value(
                bgnbd,
                data,
                future_t=months,
                discount_rate=monthly_rate,
                time_unit={1.0: "D", 7.0: "W"}[unit],
            )
        )
    return result


@pytest.mark.slow
@pytest.mark.parametrize("annual_discount_rate", [0.0, 0.1])
def test_closed_forms_equal_the_library_predictions(cdnow, annual_discount_rate):
    """predict_clv's numpy closed forms and pymc-marketing's predictive methods cannot drift."""
    summary = rfm_summary(cdnow, date(1997, 9, 30), time_unit_days=7)
    fit = fit_clv(summary, time_unit_days=7)
    ours = predict_clv(fit, summary, months=12, annual_discount_rate=annual_discount_rate)
    monthly_rate = (1.0 + annual_discount_rate) ** (1.0 / 12.0) - 1.0
    library = _library_predictions(fit, summary, months=12, monthly_rate=monthly_rate)
    for column, expected in library.items():
        np.testing.assert_allclose(ours[column].to_numpy(), expected, rtol=1e-6, err_msg=column)


def _library_log_likelihood(model, params: dict[str, float]) -> float:
    """The model's compiled log-density at ``params`` (flat priors add nothing; no Jacobian of
    the log transforms)."""
    point = {}
    for rv in model.free_RVs:
        transform = model.rvs_to_transforms.get(rv)
        raw = np.asarray(params[rv.name])
        value = transform.forward(raw).eval() if transform is not None else raw
        point[model.rvs_to_values[rv].name] = value
    return float(model.compile_logp(jacobian=False)(point))


@pytest.mark.slow
def test_log_likelihoods_equal_the_library_models(cdnow):
    """The numpy log-likelihoods of the diagnostics are the densities pymc-marketing fits, at the
    published parameters and away from them."""
    import warnings

    from pymc_marketing.clv import BetaGeoModel, GammaGammaModel

    from ml_tasks.clv import _flat_bgnbd_config, _flat_gamma_gamma_config

    summary = rfm_summary(cdnow, date(1997, 9, 30), time_unit_days=7)
    repeat = summary[summary["frequency"] > 0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        bgnbd = BetaGeoModel(model_config=_flat_bgnbd_config())
        bgnbd.build_model(summary[["customer_id", "frequency", "recency", "T"]])
        gamma_gamma = GammaGammaModel(model_config=_flat_gamma_gamma_config())
        gamma_gamma.build_model(repeat[["customer_id", "frequency", "monetary_value"]])
    for scale in (1.0, 1.5):
        bgnbd_params = {k: v * scale for k, v in BGNBD_PUBLISHED.items()}
        ours = bgnbd_log_likelihood(
            bgnbd_params, summary["frequency"], summary["recency"], summary["T"]
        )
        library = _library_log_likelihood(bgnbd.model, bgnbd_params)
        assert ours == pytest.approx(library, rel=1e-9)
        gg_params = {k: v * scale for k, v in GAMMA_GAMMA_PUBLISHED.items()}
        ours = gamma_gamma_log_likelihood(gg_params, repeat["frequency"], repeat["monetary_value"])
        library = _library_log_likelihood(gamma_gamma.model, gg_params)
        assert ours == pytest.approx(library, rel=1e-9)
