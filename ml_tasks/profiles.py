"""Personas: each segment described in numbers and in words a marketer can use.

Per segment: size and share, the mean and median of every feature with its z-score against the
population of customers with orders (the ones clustered), the three most distinguishing traits
(largest absolute z-score; money and counts are compared on the log1p scale the clusters see, so
one big spender does not dominate), a generated name and a one-sentence description built from
those traits, e.g. "High-value loyal: orders 3.1x as often as average, last order 9 days ago,
spends 4.2x the average". The name is the value tier and behaviour; when two segments would share
it, the second is told apart by its most distinguishing trait ("High-value loyal, email
clickers").

Names are generated once, when a segment first appears; a segment matched to its previous self
keeps its name (ids and names are what campaigns are built on), while its description and
numbers are renewed every version.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

PROSPECT_SEGMENT_ID = 0
PROSPECT_SEGMENT_NAME = "Prospects (no order yet)"
UNASSIGNED_SEGMENT_ID = -1
UNASSIGNED_SEGMENT_NAME = "Unassigned (no clear segment)"
# Ordered, but nothing counted: every order cancelled, returned or worth nothing (lifecycle stage
# "voided" in marts.customer_lifecycle). Not prospects: they did try to buy.
VOIDED_SEGMENT_ID = -2
VOIDED_SEGMENT_NAME = "Voided orders only (cancelled, returned or zero)"
FIXED_SEGMENTS = {
    PROSPECT_SEGMENT_ID: PROSPECT_SEGMENT_NAME,
    UNASSIGNED_SEGMENT_ID: UNASSIGNED_SEGMENT_NAME,
    VOIDED_SEGMENT_ID: VOIDED_SEGMENT_NAME,
}
# The fixed segments of customers who are never clustered (no counted order).
NOT_CLUSTERED_SEGMENTS = (PROSPECT_SEGMENT_ID, VOIDED_SEGMENT_ID)
_FIXED_DESCRIPTIONS = {
    PROSPECT_SEGMENT_ID: "customers with no order up to the as-of date",
    UNASSIGNED_SEGMENT_ID: "customers with orders that no segment describes well (noise)",
    VOIDED_SEGMENT_ID: (
        "customers who ordered, but every order up to the as-of date was cancelled, returned "
        "or worth nothing"
    ),
}
# The mart columns the generated names are built from (always loaded, whatever is clustered on).
NAMING_COLUMNS = ("total_spend", "recency_days", "tenure_days", "order_count")

# How a trait reads: ratio phrases take the segment mean over the population mean, level
# phrases the segment median.
_RATIO_PHRASES = {
    "order_count": "orders {ratio} as often as average",
    "order_days": "buys on {ratio} as many days as average",
    "total_spend": "spends {ratio} the average",
    "avg_order_value": "average order worth {ratio} the average",
    "web_session_count": "visits the site {ratio} as often as average",
    "web_event_count": "{ratio} the average site activity",
    "cart_add_count": "adds to cart {ratio} as often as average",
    "email_sent_count": "receives {ratio} the average email volume",
    "email_open_count": "opens {ratio} as many emails as average",
    "email_click_count": "clicks {ratio} as many emails as average",
}
# Short labels for a trait well above (first) or below (second) the average, to tell apart
# segments whose tier and behaviour coincide.
_TRAIT_LABELS = {
    "order_count": ("frequent buyers", "rare buyers"),
    "order_days": ("frequent buyers", "rare buyers"),
    "total_spend": ("big spenders", "small spenders"),
    "avg_order_value": ("big baskets", "small baskets"),
    "web_session_count": ("frequent visitors", "rare visitors"),
    "web_event_count": ("active browsers", "light browsers"),
    "cart_add_count": ("cart adders", "few cart adds"),
    "email_sent_count": ("heavily emailed", "lightly emailed"),
    "email_open_count": ("email readers", "email ignorers"),
    "email_click_count": ("email clickers", "non-clickers"),
    "recency_days": ("long since last order", "ordered recently"),
    "tenure_days": ("long-standing", "recent sign-ups"),
}
_LEVEL_PHRASES = {
    "recency_days": "last order {median:.0f} days ago",
    "tenure_days": "customer for {median:.0f} days",
}


@dataclass(frozen=True)
class NamingRules:
    high_value_ratio: float = 1.5  # median spend at least this many times the population's
    low_value_ratio: float = 0.6
    lapsed_recency_days: int = 180  # median recency above this (the lapsed guard's cut-off)
    new_tenure_days: int = 90
    loyal_frequency_ratio: float = 1.5
    # Median spend from which a segment is "Top-value" (the top_value guard's cut-off); None:
    # no such tier.
    top_value_spend: float | None = None


def rank_by_value(features: pd.DataFrame, labels: np.ndarray) -> dict[int, int]:
    """Cluster label -> id 1..k, highest median total spend first (the first version's ids)."""
    spend = features["total_spend"].groupby(labels).median()
    ranked = spend.sort_values(ascending=False, kind="mergesort").index
    return {int(label): rank for rank, label in enumerate(ranked, start=1)}


def generate_name(segment: pd.DataFrame, population: pd.DataFrame, rules: NamingRules) -> str:
    """Value tier (median spend against the population, or the top customers' cut-off) plus
    behaviour: lapsed (median recency past the lapsed cut-off), new (recent sign-ups), one-time
    (a single order), loyal (frequent) or occasional; e.g. "Top-value loyal",
    "Low-value lapsed one-time"."""
    spend = segment["total_spend"].median()
    spend_ratio = spend / max(population["total_spend"].median(), 1e-9)
    if rules.top_value_spend is not None and spend >= rules.top_value_spend:
        tier = "Top-value"
    elif spend_ratio >= rules.high_value_ratio:
        tier = "High-value"
    elif spend_ratio <= rules.low_value_ratio:
        tier = "Low-value"
    else:
        tier = "Mid-value"
    one_time = segment["order_count"].median() <= 1
    if segment["recency_days"].median() > rules.lapsed_recency_days:
        behaviour = "lapsed one-time" if one_time else "lapsed"
    elif segment["tenure_days"].median() <= rules.new_tenure_days:
        behaviour = "new"
    elif one_time:
        behaviour = "one-time"
    elif (
        segment["order_count"].median()
        >= rules.loyal_frequency_ratio * population["order_count"].median()
    ):
        behaviour = "loyal"
    else:
        behaviour = "occasional"
    return f"{tier} {behaviour}"


def _trait_phrase(feature: str, segment: pd.Series, population: pd.Series) -> str:
    """How one trait reads, e.g. "orders 3.1x as often as average", "last order 9 days ago"."""
    if feature in _LEVEL_PHRASES:
        return _LEVEL_PHRASES[feature].format(median=segment.median())
    base = population.mean()
    ratio = segment.mean() / base if base else float("nan")
    text = "n/a" if not np.isfinite(ratio) else f"{ratio:.2g}x"
    template = _RATIO_PHRASES.get(feature, feature.replace("_", " ") + " {ratio} the average")
    return template.format(ratio=text)


def _trait_label(feature: str, z_score: float) -> str:
    high, low = _TRAIT_LABELS.get(feature, (f"high {feature}", f"low {feature}"))
    return high if z_score >= 0 else low


def feature_statistics(
    features: pd.DataFrame,
    segment_ids: pd.Series,
    columns: tuple[str, ...],
    log_columns: tuple[str, ...],
    population: pd.Series,
) -> pd.DataFrame:
    """One row per (segment, feature): mean, median, the population's mean and the z-score of
    the segment mean against the population (rows where ``population`` is true; on the log1p
    scale for ``log_columns``)."""
    rows = []
    # One grouping of all the columns at once; the segments' codes are computed once.
    values = features[list(columns)].astype(float)
    scaled = values.copy()
    for column in columns:
        if column in log_columns:
            scaled[column] = np.log1p(values[column].clip(lower=0))
    aligned = segment_ids.index.equals(features.index)
    by_segment = (segment_ids if aligned else segment_ids.reindex(features.index)).to_numpy()
    if not aligned:
        population = population.reindex(features.index, fill_value=False)
    means = values.groupby(by_segment).mean()
    medians = values.groupby(by_segment).median()
    scaled_means = scaled.groupby(by_segment).mean()
    in_population = population.to_numpy(dtype=bool)
    for column in columns:
        population_raw = values[column][in_population]
        population_scaled = scaled[column][in_population]
        population_mean = population_scaled.mean()
        population_std = population_scaled.std(ddof=0)
        raw_mean = _finite(population_raw.mean())
        for segment_id in means.index:
            z = (scaled_means.at[segment_id, column] - population_mean) / population_std
            rows.append(
                {
                    "segment_id": int(segment_id),
                    "feature": column,
                    "mean": _finite(means.at[segment_id, column]),
                    "median": _finite(medians.at[segment_id, column]),
                    "population_mean": raw_mean,
                    "z_score": _finite(z) if population_std > 0 else 0.0,
                }
            )
    return pd.DataFrame(rows)


def _finite(value: float) -> float | None:
    return float(value) if value is not None and np.isfinite(value) else None


def describe_segments(
    features: pd.DataFrame,
    segment_ids: pd.Series,
    columns: tuple[str, ...],
    log_columns: tuple[str, ...],
    *,
    kept_names: dict[int, str] | None = None,
    rules: NamingRules | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The persona of every segment, and the per-feature statistics behind it.

    ``kept_names`` holds the names of segments matched to the previous version; every other
    segment gets a generated name, made unique among the version's names.
    """
    rules = rules or NamingRules()
    kept_names = dict(kept_names or {})
    clustered = ~segment_ids.isin(NOT_CLUSTERED_SEGMENTS)
    if not clustered.any():
        clustered = pd.Series(True, index=segment_ids.index)
    statistics = feature_statistics(features, segment_ids, columns, log_columns, clustered)
    population = features[clustered]
    present = set(segment_ids.unique())
    used = {name for sid, name in kept_names.items() if sid in present}
    rows = []
    for label, members in features.groupby(segment_ids, sort=True):
        segment_id = int(label)
        stats = statistics[statistics["segment_id"] == segment_id]
        top = stats.reindex(stats["z_score"].abs().sort_values(ascending=False).index).head(3)
        if segment_id in FIXED_SEGMENTS:
            name = FIXED_SEGMENTS[segment_id]
        elif segment_id in kept_names:
            name = kept_names[segment_id]
        else:
            name = _unique_name(generate_name(members, population, rules), top, used)
            used.add(name)
        traits = [
            {
                "feature": row.feature,
                "z_score": round(row.z_score, 3),
                "phrase": _trait_phrase(row.feature, members[row.feature], population[row.feature]),
            }
            for row in top.itertuples()
        ]
        rows.append(
            {
                "segment_id": segment_id,
                "segment_name": name,
                "description": f"{name}: "
                + _FIXED_DESCRIPTIONS.get(segment_id, ", ".join(t["phrase"] for t in traits)),
                "customer_count": len(members),
                "share": len(members) / len(features),
                "top_traits": traits,
            }
        )
    return pd.DataFrame(rows), statistics


def _unique_name(base: str, top_traits: pd.DataFrame, used: set[str]) -> str:
    """``base``, or told apart by the segment's most distinguishing traits, or numbered."""
    if base not in used:
        return base
    for row in top_traits.itertuples():
        name = f"{base}, {_trait_label(row.feature, row.z_score)}"
        if name not in used:
            return name
    suffix = 2
    while f"{base} {suffix}" in used:
        suffix += 1
    return f"{base} {suffix}"


def value_and_risk(members: pd.DataFrame, predictions: pd.DataFrame) -> pd.DataFrame:
    """Per segment of ``members`` (customer_id, segment_id, segment_name): its customers, their
    mean and total expected 12-month value (``clv_12m``) and mean churn probability, and the
    share of them more likely than not to churn, from ``predictions`` (customer_id, clv_12m,
    churn_probability). Customers without a prediction count in no mean."""
    joined = members.merge(
        predictions[["customer_id", "clv_12m", "churn_probability"]], on="customer_id", how="left"
    )
    joined["is_high_churn_risk"] = (joined["churn_probability"] >= 0.5).where(
        joined["churn_probability"].notna()
    )
    grouped = joined.groupby(["segment_id", "segment_name"], sort=True)
    return grouped.agg(
        customers=("customer_id", "size"),
        mean_clv_12m=("clv_12m", "mean"),
        total_clv_12m=("clv_12m", "sum"),
        mean_churn_probability=("churn_probability", "mean"),
        high_churn_risk_share=("is_high_churn_risk", "mean"),
    ).reset_index()
