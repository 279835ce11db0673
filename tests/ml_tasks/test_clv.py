"""The CLV models: the published CDNOW parameters, and recovery of the demo's planted future."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ml_tasks.clv import fit_clv, holdout_check, predict_clv, rfm_summary
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
