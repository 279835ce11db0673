"""Drift between the customers a model was fitted on and tonight's: the population stability
index (PSI) per feature, and the change of each segment's share.

PSI = sum over bins of (actual - expected) * ln(actual / expected), with bins at the deciles of
the reference. Common reading: below 0.1 stable, 0.1-0.25 moderate shift, above 0.25 large.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

_EPSILON = 1e-4  # floor for empty bins, so that ln() stays finite


def reference_bins(values: pd.Series, bins: int = 10) -> list[float]:
    """Inner bin edges at the reference's quantiles (ties merged), missing values binned apart."""
    present = values.dropna().to_numpy(dtype=float)
    if present.size == 0:
        return []
    edges = np.unique(np.quantile(present, np.linspace(0, 1, bins + 1)[1:-1]))
    return [float(edge) for edge in edges]


def bin_shares(values: pd.Series, edges: list[float]) -> np.ndarray:
    """Share of values per bin: one bin for missing values, then ``len(edges) + 1`` bins."""
    array = values.to_numpy(dtype=float)
    missing = np.isnan(array)
    counts = np.bincount(
        np.searchsorted(np.asarray(edges), array[~missing], side="right"),
        minlength=len(edges) + 1,
    )
    return np.concatenate([[missing.sum()], counts]) / max(len(array), 1)


def population_stability_index(expected: np.ndarray, actual: np.ndarray) -> float:
    expected = np.clip(np.asarray(expected, dtype=float), _EPSILON, None)
    actual = np.clip(np.asarray(actual, dtype=float), _EPSILON, None)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def feature_reference(features: pd.DataFrame) -> dict[str, dict]:
    """What to keep of the fitted population to measure drift later: edges and shares."""
    reference = {}
    for column in features.columns:
        edges = reference_bins(features[column])
        reference[column] = {
            "edges": edges,
            "shares": bin_shares(features[column], edges).tolist(),
        }
    return reference


def feature_psi(reference: dict[str, dict], features: pd.DataFrame) -> dict[str, float]:
    """PSI of every referenced feature present tonight (absent features score infinity)."""
    return {
        column: (
            population_stability_index(
                np.asarray(spec["shares"]), bin_shares(features[column], spec["edges"])
            )
            if column in features
            else float("inf")
        )
        for column, spec in reference.items()
    }


def segment_share_change(previous: pd.Series, current: pd.Series) -> dict[int, float]:
    """Absolute change of each segment's share of customers (ids from either side)."""
    before = previous.value_counts(normalize=True)
    after = current.value_counts(normalize=True)
    ids = sorted(set(before.index) | set(after.index))
    return {
        int(i): round(abs(float(after.get(i, 0.0)) - float(before.get(i, 0.0))), 6) for i in ids
    }
