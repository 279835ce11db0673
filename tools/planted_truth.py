"""How well a segmentation recovers the demo's planted segments (``truth_dir/customers.csv``).

One home for the comparison, used by the benchmark for the pipeline's published segments and
for the plain notebook script alike: labels are joined to the truth on ``customer_id`` (the CRM
record id; the pipeline publishes the surviving record id of each resolved person), prospects
(planted to never order) and unclustered labels (``segment_id`` <= 0, the pipeline's
no-orders group) are left out, and the adjusted Rand index of the rest is returned.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from sklearn.metrics import adjusted_rand_score


def read_truth(truth_dir: Path) -> pd.DataFrame:
    return pd.read_csv(Path(truth_dir) / "customers.csv", dtype=str)


def ari_against_truth(labels: pd.DataFrame, truth: pd.DataFrame) -> tuple[float, int]:
    """(adjusted Rand index, customers compared) of ``labels`` (``customer_id``,
    ``segment_id``) against the planted ``segment`` of ``truth``."""
    joined = labels[["customer_id", "segment_id"]].merge(truth, on="customer_id", how="inner")
    clustered = joined[(joined["segment_id"] > 0) & (joined["segment"] != "prospect")]
    return float(adjusted_rand_score(clustered["segment"], clustered["segment_id"])), len(clustered)
