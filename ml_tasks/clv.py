"""Probabilistic customer lifetime value: BG/NBD for purchases, Gamma-Gamma for spend.

Pure functions on DataFrames (the step reads the orders and writes the predictions):

* ``rfm_summary``: per customer, from the order history up to the as-of date, purchases merged
  per day as in Fader, Hardie and Lee (2005): ``frequency`` (repeat purchase days), ``recency``
  (first to last purchase day), ``T`` (first purchase day to the end of the as-of date) and
  ``monetary_value`` (mean spend of the repeat purchase days; 0 without repeats).
* ``fit_clv``: BG/NBD on every buyer and Gamma-Gamma on the repeat buyers with a positive mean,
  both through pymc-marketing's CLV models, fitted by MAP with flat priors (so MAP is the maximum
  likelihood estimate of the papers) instead of full MCMC: seconds at a million customers.
* ``predict_clv``: probability alive, expected purchases in the next 30/90/365 days, expected
  spend per purchase and the discounted 12-month value: the library's formulas as vectorised
  numpy closed forms with the fitted parameters (``tests/ml_tasks/test_clv.py`` holds them equal
  to the library's predictive methods).

Heavy imports (pymc, pytensor) happen inside the functions, never when a DAG file is parsed.
"""

from __future__ import annotations

import math
import os
import time
import warnings
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.special import expit, gammaln, hyp2f1

from ml_tasks.order_history import OrderHistory

HORIZONS_DAYS = (30, 90, 365)
BGNBD_PARAMS = ("r", "alpha", "a", "b")
GAMMA_GAMMA_PARAMS = ("p", "q", "v")


class ClvFitError(RuntimeError):
    """The CLV models could not be fitted (too few buyers, or the optimiser found no optimum)."""


@dataclass(frozen=True)
class ClvFit:
    """The fitted parameters and how the fit went; the models themselves are rebuilt from the
    parameters when predicting, so a night needs nothing but this."""

    bgnbd: dict[str, float]
    gamma_gamma: dict[str, float]
    diagnostics: dict = field(default_factory=dict)
    time_unit_days: float = 1.0


def _use_compile_dir(compile_dir: Path | None) -> None:
    """pytensor compiles C on its first fit; keep its cache beside the data unless told."""
    if compile_dir is not None and "PYTENSOR_FLAGS" not in os.environ:
        compile_dir.mkdir(parents=True, exist_ok=True)
        os.environ["PYTENSOR_FLAGS"] = f"compiledir={compile_dir}"


def rfm_summary(
    orders: pd.DataFrame | OrderHistory, as_of_date: date, time_unit_days: float = 1.0
) -> pd.DataFrame:
    """Frequency, recency, T and mean repeat spend per customer from ``orders`` (customer_id,
    ordered_date, amount) or its ``OrderHistory``: only orders dated up to ``as_of_date`` count,
    merged per day (one DuckDB query).

    Time is counted in whole days from the first purchase day to the as-of date (a customer who
    first bought on ``as_of_date`` has T = 0), divided by ``time_unit_days``: the CDNOW papers
    count in weeks, ``time_unit_days=7``.
    """
    history = OrderHistory.of(orders)
    summary = history.rfm(as_of_date, time_unit_days)
    summary.insert(0, "customer_id", history.ids(summary.pop("cid")))
    summary["frequency"] = summary["frequency"].astype("int64")
    return summary[["customer_id", "frequency", "recency", "T", "monetary_value"]]


def _flat_bgnbd_config():
    from pymc_extras.prior import Prior

    return {name: Prior("HalfFlat") for name in BGNBD_PARAMS}


def _flat_gamma_gamma_config():
    from pymc_extras.prior import Prior

    return {name: Prior("HalfFlat") for name in GAMMA_GAMMA_PARAMS}


def _map_values(model, names: tuple[str, ...]) -> dict[str, float]:
    posterior = model.idata.posterior
    return {name: float(posterior[name].values.ravel()[0]) for name in names}


def fit_clv(
    summary: pd.DataFrame,
    *,
    time_unit_days: float = 1.0,
    compile_dir: Path | None = None,
    min_buyers: int = 50,
    min_repeat_buyers: int = 20,
    max_customers: int | None = None,
    random_state: int = 42,
) -> ClvFit:
    """Fit BG/NBD on every buyer of ``summary`` and Gamma-Gamma on the repeat buyers (MAP with
    flat priors = maximum likelihood). With ``max_customers``, on a random sample of that many
    buyers (``random_state``): the estimates of four and three population parameters hardly
    move beyond a few hundred thousand customers, while the fit's time and memory grow with
    every one (the library takes no weights for a compressed table)."""
    _use_compile_dir(compile_dir)
    from pymc_marketing.clv import BetaGeoModel, GammaGammaModel

    buyers = len(summary)
    if max_customers is not None and buyers > max_customers:
        summary = summary.sample(n=max_customers, random_state=random_state)
    repeat = summary[(summary["frequency"] > 0) & (summary["monetary_value"] > 0)]
    if len(summary) < min_buyers or len(repeat) < min_repeat_buyers:
        raise ClvFitError(
            f"{len(summary)} buyers and {len(repeat)} repeat buyers: the CLV models need at least "
            f"{min_buyers} and {min_repeat_buyers}."
        )
    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        bgnbd = BetaGeoModel(model_config=_flat_bgnbd_config())
        bgnbd.fit(
            summary[["customer_id", "frequency", "recency", "T"]], method="map", progressbar=False
        )
        bgnbd_seconds = time.perf_counter() - started
        gamma_gamma = GammaGammaModel(model_config=_flat_gamma_gamma_config())
        gamma_gamma.fit(
            repeat[["customer_id", "frequency", "monetary_value"]], method="map", progressbar=False
        )
        bgnbd_params = _map_values(bgnbd, BGNBD_PARAMS)
        gg_params = _map_values(gamma_gamma, GAMMA_GAMMA_PARAMS)
    bgnbd_logp = bgnbd_log_likelihood(
        bgnbd_params, summary["frequency"], summary["recency"], summary["T"]
    )
    gg_logp = gamma_gamma_log_likelihood(gg_params, repeat["frequency"], repeat["monetary_value"])
    values = list(bgnbd_params.values()) + list(gg_params.values())
    if not all(math.isfinite(v) and v > 0 for v in values):
        raise ClvFitError(f"The CLV fit found no optimum: {bgnbd_params} {gg_params}")
    diagnostics = {
        "method": "MAP, flat priors (maximum likelihood)",
        "buyers": buyers,
        "fitted_buyers": len(summary),
        "repeat_buyers": len(repeat),
        "mean_frequency": float(summary["frequency"].mean()),
        "bgnbd_log_likelihood": bgnbd_logp,
        "gamma_gamma_log_likelihood": gg_logp,
        # Gamma-Gamma assumes spend per purchase does not depend on how often one buys.
        "frequency_spend_correlation": float(
            np.corrcoef(repeat["frequency"], repeat["monetary_value"])[0, 1]
        )
        if len(repeat) > 2
        else None,
        "bgnbd_seconds": round(bgnbd_seconds, 2),
        "seconds": round(time.perf_counter() - started, 2),
        "time_unit_days": time_unit_days,
    }
    return ClvFit(bgnbd_params, gg_params, diagnostics, time_unit_days)


def bgnbd_log_likelihood(params: dict[str, float], frequency, recency, T) -> float:
    """The BG/NBD log-likelihood (Fader, Hardie and Lee 2005, eq. 6), the papers' LL; the
    density pymc-marketing's ``BetaGeoModel`` fits (``test_clv.py`` holds them equal). In numpy:
    evaluating the library's compiled graph would compile it again, a second or so a night."""
    r, alpha, a, b = (params[k] for k in BGNBD_PARAMS)
    x = np.asarray(frequency, dtype="float64")
    t_x = np.asarray(recency, dtype="float64")
    big_t = np.asarray(T, dtype="float64")
    common = (
        gammaln(r + x) - gammaln(r) + r * np.log(alpha)
        + gammaln(a + b) + gammaln(b + x) - gammaln(b) - gammaln(a + b + x)
    )  # fmt: skip
    alive = -(r + x) * np.log(alpha + big_t)
    with np.errstate(divide="ignore", invalid="ignore"):
        dropped = np.log(a) - np.log(b + x - 1) - (r + x) * np.log(alpha + t_x)
    dropped = np.where(x > 0, dropped, -np.inf)
    return float(np.sum(common + np.logaddexp(alive, dropped)))


def gamma_gamma_log_likelihood(params: dict[str, float], frequency, monetary_value) -> float:
    """The Gamma-Gamma log-likelihood of the repeat buyers' mean spend (Fader and Hardie 2013,
    eq. 1a): the potential of pymc-marketing's ``GammaGammaModel``, in numpy."""
    p, q, v = (params[k] for k in GAMMA_GAMMA_PARAMS)
    x = np.asarray(frequency, dtype="float64")
    z = np.asarray(monetary_value, dtype="float64")
    return float(
        np.sum(
            gammaln(p * x + q) - gammaln(p * x) - gammaln(q) + q * np.log(v)
            + (p * x - 1) * np.log(z) + p * x * np.log(x) - (p * x + q) * np.log(x * z + v)
        )
    )  # fmt: skip


# Months of ``customer_lifetime_value`` in the model's time unit (pymc-marketing's factors).
_MONTH_IN_UNITS = {1.0: 30.0, 7.0: 4.345}


class BgnbdForecast:
    """BG/NBD conditional expected purchases in (T, T + t] (Fader, Hardie and Lee 2005, eq. 10)
    for given customers: the formula of ``BetaGeoModel.expected_purchases``, in numpy. The
    Gauss hypergeometric term depends on (frequency, T) only, so it is evaluated once per
    distinct pair; the rest is computed once for every horizon ``t``."""

    def __init__(self, params: dict[str, float], frequency, recency, T):
        a, b = params["a"], params["b"]
        self.params = params
        x = np.asarray(frequency, dtype="float64")
        big_t = np.asarray(T, dtype="float64")
        pairs, self.inverse = np.unique(x + 1j * big_t, return_inverse=True)
        self.x, self.big_t = pairs.real, pairs.imag
        odds = _dropout_odds(params, x, np.asarray(recency, dtype="float64"), big_t)
        self.scale = (a + b + x - 1) / (a - 1) / (1 + odds)

    def __call__(self, t: float) -> np.ndarray:
        r, alpha, a, b = (self.params[k] for k in BGNBD_PARAMS)
        x, big_t, t = self.x, self.big_t, float(t)
        numerator = 1 - ((alpha + big_t) / (alpha + big_t + t)) ** (r + x) * hyp2f1(
            r + x, b + x, a + b + x - 1, t / (alpha + big_t + t)
        )
        return numerator[self.inverse.ravel()] * self.scale


def bgnbd_expected_purchases(
    params: dict[str, float], frequency, recency, T, future_t: float
) -> np.ndarray:
    """BG/NBD conditional expected purchases in (T, T + future_t]; see ``BgnbdForecast``."""
    return BgnbdForecast(params, frequency, recency, T)(future_t)


def _dropout_odds(params: dict[str, float], x, t_x, big_t) -> np.ndarray:
    """a / (b + x - 1) * ((alpha + T) / (alpha + t_x)) ** (r + x) for repeat buyers, else 0."""
    r, alpha, a, b = (params[k] for k in BGNBD_PARAMS)
    with np.errstate(divide="ignore", invalid="ignore"):
        odds = (a / (b + x - 1)) * ((alpha + big_t) / (alpha + t_x)) ** (r + x)
    return np.where(x > 0, odds, 0.0)


def bgnbd_probability_alive(params: dict[str, float], frequency, recency, T) -> np.ndarray:
    """P(alive) of BG/NBD (Fader, Hardie and Lee 2008): ``expected_probability_alive``'s
    formula, in numpy; 1 without repeat purchases."""
    r, alpha, a, b = (params[k] for k in BGNBD_PARAMS)
    x = np.asarray(frequency, dtype="float64")
    t_x = np.asarray(recency, dtype="float64")
    big_t = np.asarray(T, dtype="float64")
    log_div = (r + x) * np.log((alpha + big_t) / (alpha + t_x)) + np.log(
        a / (b + np.maximum(x, 1) - 1)
    )
    return np.where(x == 0, 1.0, expit(-log_div))


def gamma_gamma_expected_spend(params: dict[str, float], frequency, monetary_value) -> np.ndarray:
    """Gamma-Gamma's expected spend per purchase (Fader and Hardie 2013, eq. 5): a weighted mean
    of the population mean and the customer's; the population mean without repeat purchases."""
    p, q, v = (params[k] for k in GAMMA_GAMMA_PARAMS)
    x = np.asarray(frequency, dtype="float64")
    weight = p * x / (p * x + q - 1)
    return (1 - weight) * (v * p / (q - 1)) + weight * np.asarray(monetary_value, dtype="float64")


def predict_clv(
    fit: ClvFit,
    summary: pd.DataFrame,
    *,
    months: int = 12,
    annual_discount_rate: float = 0.0,
    compile_dir: Path | None = None,  # unused: kept for callers; nothing compiles here
) -> pd.DataFrame:
    """Per customer of ``summary``: ``p_alive``, ``expected_purchases_{30,90,365}d``,
    ``expected_spend`` (per purchase) and ``clv_12m`` (discounted monthly, months of 30 days).

    Vectorised closed forms with the fitted parameters, the same formulas as pymc-marketing's
    ``expected_probability_alive``, ``expected_purchases``, ``expected_customer_spend`` and
    ``customer_lifetime_value`` (a test holds them equal), without building the models and
    their xarray data over every customer."""
    x = summary["frequency"].to_numpy(dtype="float64")
    t_x = summary["recency"].to_numpy(dtype="float64")
    big_t = summary["T"].to_numpy(dtype="float64")
    unit = float(fit.time_unit_days)
    result = pd.DataFrame({"customer_id": summary["customer_id"].to_numpy()})
    result["p_alive"] = bgnbd_probability_alive(fit.bgnbd, x, t_x, big_t)
    forecast = BgnbdForecast(fit.bgnbd, x, t_x, big_t)
    for days in HORIZONS_DAYS:
        result[f"expected_purchases_{days}d"] = forecast(days / unit)
    # Without repeat purchases Gamma-Gamma's expectation is the population mean spend.
    spend = gamma_gamma_expected_spend(fit.gamma_gamma, x, summary["monetary_value"])
    result["expected_spend"] = spend
    # customer_lifetime_value: the purchases of each month (cumulative expectation differences)
    # times the spend, discounted per month; a single step without discounting.
    monthly_rate = (1.0 + annual_discount_rate) ** (1.0 / 12.0) - 1.0
    factor = _MONTH_IN_UNITS[unit]
    steps = [months] if monthly_rate == 0.0 else range(1, months + 1)
    value = np.zeros(len(summary))
    previous = 0.0
    for step in steps:
        expected = forecast(step * factor)
        value += spend * (expected - previous) / (1 + monthly_rate) ** step
        previous = expected
    result["clv_12m"] = value
    return result


def holdout_check(
    orders: pd.DataFrame, as_of_date: date, holdout_days: int, fit_kwargs: dict | None = None
) -> dict:
    """Fit on the history up to ``as_of_date - holdout_days`` and compare the purchases it
    expects in the holdout with the repeat purchase days that happened there (customers of the
    calibration period only), in total."""
    calibration_end = as_of_date - timedelta(days=holdout_days)
    history = OrderHistory.of(orders)
    calibration = history.rfm(calibration_end)
    fit = fit_clv(calibration.assign(customer_id=calibration["cid"]), **(fit_kwargs or {}))
    expected = bgnbd_expected_purchases(
        fit.bgnbd,
        calibration["frequency"],
        calibration["recency"],
        calibration["T"],
        holdout_days / fit.time_unit_days,
    )
    actual = int(history.purchase_days_between(calibration_end, as_of_date, calibration["cid"]))
    total = float(expected.sum())
    return {
        "calibration_end": calibration_end.isoformat(),
        "holdout_days": holdout_days,
        "expected_purchases": total,
        "actual_purchases": actual,
        "relative_error": (total - actual) / actual if actual else None,
    }
