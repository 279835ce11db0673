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
  spend per purchase and the discounted 12-month value, with the library's own formulas.

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
    orders: pd.DataFrame, as_of_date: date, time_unit_days: float = 1.0
) -> pd.DataFrame:
    """Frequency, recency, T and mean repeat spend per customer from ``orders`` (customer_id,
    ordered_date, amount): only orders dated up to ``as_of_date`` count, merged per day.

    Time is counted in whole days from the first purchase day to the as-of date (a customer who
    first bought on ``as_of_date`` has T = 0), divided by ``time_unit_days``: the CDNOW papers
    count in weeks, ``time_unit_days=7``.
    """
    end = pd.Timestamp(as_of_date)
    frame = orders.loc[pd.to_datetime(orders["ordered_date"]) <= end, ["customer_id"]].copy()
    frame["day"] = pd.to_datetime(orders.loc[frame.index, "ordered_date"]).to_numpy()
    frame["amount"] = orders.loc[frame.index, "amount"].astype("float64")
    daily = frame.groupby(["customer_id", "day"], as_index=False, sort=True)["amount"].sum()
    grouped = daily.groupby("customer_id", sort=True)
    first = grouped["day"].transform("min")
    summary = pd.DataFrame(
        {
            "first_day": grouped["day"].min(),
            "last_day": grouped["day"].max(),
            "purchase_days": grouped.size(),
            "repeat_spend": daily.loc[daily["day"] > first].groupby("customer_id")["amount"].sum(),
        }
    )
    summary["repeat_spend"] = summary["repeat_spend"].fillna(0.0)
    summary["frequency"] = (summary["purchase_days"] - 1).astype("int64")
    unit = float(time_unit_days)
    summary["recency"] = (summary["last_day"] - summary["first_day"]).dt.days / unit
    summary["T"] = (end - summary["first_day"]).dt.days / unit
    summary["monetary_value"] = np.where(
        summary["frequency"] > 0,
        summary["repeat_spend"] / summary["frequency"].clip(lower=1),
        0.0,
    )
    summary = summary.reset_index()
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
) -> ClvFit:
    """Fit BG/NBD on every buyer of ``summary`` and Gamma-Gamma on the repeat buyers (MAP with
    flat priors = maximum likelihood)."""
    _use_compile_dir(compile_dir)
    from pymc_marketing.clv import BetaGeoModel, GammaGammaModel

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
        bgnbd_logp = _log_likelihood(bgnbd)
        gg_logp = _log_likelihood(gamma_gamma)
    values = list(bgnbd_params.values()) + list(gg_params.values())
    if not all(math.isfinite(v) and v > 0 for v in values):
        raise ClvFitError(f"The CLV fit found no optimum: {bgnbd_params} {gg_params}")
    diagnostics = {
        "method": "MAP, flat priors (maximum likelihood)",
        "buyers": len(summary),
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


def _log_likelihood(fitted) -> float:
    """The log-likelihood at the optimum (flat priors add nothing; no Jacobian of the log
    transforms), comparable with the papers' LL."""
    model = fitted.model
    point = {}
    for rv in model.free_RVs:
        value_var = model.rvs_to_values[rv]
        transform = model.rvs_to_transforms.get(rv)
        raw = np.asarray(fitted.idata.posterior[rv.name].values.ravel()[0])
        point[value_var.name] = transform.forward(raw).eval() if transform is not None else raw
    return float(model.compile_logp(jacobian=False)(point))


def _fitted_models(fit: ClvFit, data: pd.DataFrame):
    """pymc-marketing models built on ``data`` carrying the fitted values as a one-draw
    posterior, so the library's predictive methods compute with exactly these parameters."""
    import arviz as az
    from pymc_marketing.clv import BetaGeoModel, GammaGammaModel

    def one_draw(params: dict[str, float]):
        return az.from_dict(posterior={k: np.array([[v]]) for k, v in params.items()})

    bgnbd = BetaGeoModel(model_config=_flat_bgnbd_config())
    bgnbd.build_model(data[["customer_id", "frequency", "recency", "T"]])
    bgnbd.idata = one_draw(fit.bgnbd)
    gamma_gamma = GammaGammaModel(model_config=_flat_gamma_gamma_config())
    gamma_gamma.build_model(data[["customer_id", "frequency", "monetary_value"]])
    gamma_gamma.idata = one_draw(fit.gamma_gamma)
    return bgnbd, gamma_gamma


def _values(array) -> np.ndarray:
    return np.asarray(array.squeeze(("chain", "draw"), drop=True).values, dtype="float64")


def predict_clv(
    fit: ClvFit,
    summary: pd.DataFrame,
    *,
    months: int = 12,
    annual_discount_rate: float = 0.0,
    compile_dir: Path | None = None,
) -> pd.DataFrame:
    """Per customer of ``summary``: ``p_alive``, ``expected_purchases_{30,90,365}d``,
    ``expected_spend`` (per purchase) and ``clv_12m`` (discounted monthly, months of 30 days)."""
    _use_compile_dir(compile_dir)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from pymc_marketing.clv.utils import customer_lifetime_value

        data = summary[["customer_id", "frequency", "recency", "T", "monetary_value"]].copy()
        data = data.reset_index(drop=True)
        bgnbd, gamma_gamma = _fitted_models(fit, data)
        unit = fit.time_unit_days
        result = pd.DataFrame({"customer_id": data["customer_id"]})
        result["p_alive"] = _values(bgnbd.expected_probability_alive(data=data))
        for days in HORIZONS_DAYS:
            result[f"expected_purchases_{days}d"] = _values(
                bgnbd.expected_purchases(data=data, future_t=days / unit)
            )
        # Without repeat purchases Gamma-Gamma's expectation is the population mean spend.
        result["expected_spend"] = _values(gamma_gamma.expected_customer_spend(data=data))
        data["future_spend"] = result["expected_spend"]
        monthly_rate = (1.0 + annual_discount_rate) ** (1.0 / 12.0) - 1.0
        time_unit = {1.0: "D", 7.0: "W"}[float(unit)]
        result["clv_12m"] = _values(
            customer_lifetime_value(
                bgnbd, data, future_t=months, discount_rate=monthly_rate, time_unit=time_unit
            )
        )
    return result


def holdout_check(
    orders: pd.DataFrame, as_of_date: date, holdout_days: int, fit_kwargs: dict | None = None
) -> dict:
    """Fit on the history up to ``as_of_date - holdout_days`` and compare the purchases it
    expects in the holdout with the repeat purchase days that happened there (customers of the
    calibration period only), in total."""
    calibration_end = as_of_date - timedelta(days=holdout_days)
    calibration = rfm_summary(orders, calibration_end)
    fit = fit_clv(calibration, **(fit_kwargs or {}))
    bgnbd = _fitted_models(fit, calibration)[0]
    expected = _values(bgnbd.expected_purchases(data=calibration, future_t=holdout_days))
    days = pd.to_datetime(orders["ordered_date"])
    later = orders[(days > pd.Timestamp(calibration_end)) & (days <= pd.Timestamp(as_of_date))]
    later = later[later["customer_id"].isin(calibration["customer_id"])]
    actual = int(later.drop_duplicates(["customer_id", "ordered_date"]).shape[0])
    total = float(expected.sum())
    return {
        "calibration_end": calibration_end.isoformat(),
        "holdout_days": holdout_days,
        "expected_purchases": total,
        "actual_purchases": actual,
        "relative_error": (total - actual) / actual if actual else None,
    }
