"""Describe segments in words a marketer can use, from the features of their members.

Ids are ordered by value (segment 1 spends most), and each segment is named by two traits:
its value tier (median total spend against the population) and its behaviour (new, lapsed,
loyal or occasional). The thresholds live in ``NamingRules`` so they can be tuned in one place.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

PROSPECT_SEGMENT_ID = 0
PROSPECT_SEGMENT_NAME = "Prospects (no order yet)"


@dataclass(frozen=True)
class NamingRules:
    high_value_ratio: float = 1.5  # median spend at least this many times the population's
    low_value_ratio: float = 0.6
    lapsed_recency_days: int = 120  # and at least twice the population's median recency
    new_tenure_days: int = 90
    loyal_frequency_ratio: float = 1.5


def order_segments_by_value(features: pd.DataFrame, labels: np.ndarray) -> dict[int, int]:
    """Map cluster labels to segment ids 1..k, highest median total spend first."""
    spend = features["total_spend"].groupby(labels).median()
    ranked = spend.sort_values(ascending=False, kind="mergesort").index
    return {int(label): rank for rank, label in enumerate(ranked, start=1)}


def _segment_name(segment: pd.DataFrame, population: pd.DataFrame, rules: NamingRules) -> str:
    spend_ratio = segment["total_spend"].median() / max(population["total_spend"].median(), 1e-9)
    if spend_ratio >= rules.high_value_ratio:
        tier = "High-value"
    elif spend_ratio <= rules.low_value_ratio:
        tier = "Low-value"
    else:
        tier = "Mid-value"
    recency = segment["recency_days"].median()
    if recency >= max(rules.lapsed_recency_days, 2 * population["recency_days"].median()):
        behaviour = "lapsed"
    elif segment["tenure_days"].median() <= rules.new_tenure_days:
        behaviour = "new"
    elif (
        segment["order_count"].median()
        >= rules.loyal_frequency_ratio * population["order_count"].median()
    ):
        behaviour = "loyal"
    else:
        behaviour = "occasional"
    return f"{tier} {behaviour}"


def describe_segments(
    features: pd.DataFrame,
    segment_ids: pd.Series,
    feature_columns: tuple[str, ...],
    rules: NamingRules | None = None,
) -> pd.DataFrame:
    """One row per segment: id, unique name, size, share and the mean of every feature."""
    rules = rules or NamingRules()
    buyers = features[segment_ids != PROSPECT_SEGMENT_ID]
    rows = []
    used_names: dict[str, int] = {}
    for segment_id, members in features.groupby(segment_ids, sort=True):
        if segment_id == PROSPECT_SEGMENT_ID:
            name = PROSPECT_SEGMENT_NAME
        else:
            name = _segment_name(members, buyers, rules)
            used_names[name] = used_names.get(name, 0) + 1
            if used_names[name] > 1:
                name = f"{name} {used_names[name]}"
        row = {
            "segment_id": int(segment_id),
            "segment_name": name,
            "customer_count": len(members),
            "share": len(members) / len(features),
        }
        means = members[list(feature_columns)].mean()
        # A mean over no values (e.g. recency of prospects) is stored as NULL, not NaN.
        row.update({f"mean_{c}": None if pd.isna(v) else float(v) for c, v in means.items()})
        rows.append(row)
    return pd.DataFrame(rows)
