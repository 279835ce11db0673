"""The default segmentation on the demo's two profiles, at the recluster's deciding step
(``compute_candidate``, no warehouse), with features computed from the landing files the way the
marts compute them.

* realistic (no planted clusters, a real shop's shape): the published segments keep apart the
  top customers holding 40% of revenue, the buyers lapsed for 180+ days and the one-time buyers,
  each side with a purity of at least 0.8, in at least 4 segments;
* planted (five clean segments): the segments still recover them (adjusted Rand index >= 0.9).
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import adjusted_rand_score

from ml_tasks.config import SegmentationConfig
from ml_tasks.profiles import FIXED_SEGMENTS, VOIDED_SEGMENT_ID
from ml_tasks.recluster import compute_candidate
from tools.demo_data import generate_demo_data
from tools.demo_features import customer_features

MIN_PURITY = 0.8


def _features(root: Path, n: int, profile: str) -> tuple[pd.DataFrame, date]:
    summary = generate_demo_data(
        root / "landing", root / "truth", n_customers=n, seed=42, profile=profile
    )
    frame = customer_features(root, summary.as_of_date)
    frame["has_orders"] = frame["order_count"] > 0
    frame["has_only_voided_orders"] = ~frame["has_orders"] & (frame["voided_order_count"] > 0)
    return frame, summary.as_of_date


@pytest.fixture(scope="module")
def realistic(tmp_path_factory) -> tuple[pd.DataFrame, date, pd.DataFrame]:
    root = tmp_path_factory.mktemp("realistic")
    frame, as_of = _features(root, 20_000, "realistic")
    return frame, as_of, pd.read_csv(root / "truth" / "customers.csv", dtype=str)


def separations(buyers: pd.DataFrame) -> dict[str, pd.Series]:
    """The three groups a campaign must be able to target, computed here independently: the
    fewest top spenders who together hold 40% of revenue, no order in the last 180 days, and a
    single order."""
    spend = buyers["total_spend"].sort_values(ascending=False, kind="mergesort")
    reached = int(np.searchsorted((spend.cumsum() / spend.sum()).to_numpy(), 0.4)) + 1
    return {
        "top customers (40% of revenue)": buyers.index.to_series().isin(spend.index[:reached]),
        "lapsed 180+ days": buyers["recency_days"] > 180,
        "one-time buyers": buyers["order_count"] == 1,
    }


def side_purity(members: pd.Series, segment: pd.Series) -> float:
    """Share of the group's members who sit in segments where the group is the majority."""
    majority = members.groupby(segment).mean()
    return float(segment[members].isin(majority.index[majority > 0.5]).mean())


def purities(frame: pd.DataFrame, computed) -> dict[str, float]:
    buyers = frame[frame["has_orders"]]
    segment = computed.candidate.assignments.set_index("customer_id")["segment_id"][buyers.index]
    result = {}
    for name, group in separations(buyers).items():
        result[name] = side_purity(group, segment)
        result[f"not {name}"] = side_purity(~group, segment)
    return result


def test_realistic_data_gets_actionable_segments_by_default(realistic):
    frame, as_of, truth = realistic
    assert frame["has_orders"].sum() >= 1000
    computed = compute_candidate(frame, as_of, None, SegmentationConfig())

    candidate = computed.candidate
    assert candidate.status == "candidate", computed.rejected_reasons
    found = purities(frame, computed)
    assert min(found.values()) >= MIN_PURITY, found
    segments = candidate.profiles[~candidate.profiles["segment_id"].isin(list(FIXED_SEGMENTS))]
    assert len(segments) >= 4 and candidate.k >= 4
    # Names follow the guards: a top-value segment, a lapsed one and a one-time one.
    names = " | ".join(segments["segment_name"])
    assert "Top-value" in names and "lapsed" in names and "one-time" in names, names
    # Persons whose every order was cancelled, returned or zero are labelled so, not prospects.
    voided = truth.customer_id[(truth.segment == "voided") & (truth.is_duplicate == "false")]
    segment_of = candidate.assignments.set_index("customer_id")["segment_id"]
    assert len(voided) > 100 and (segment_of[voided] == VOIDED_SEGMENT_ID).all()


def test_without_the_guards_and_the_k_floor_the_top_customers_are_not_apart(realistic):
    """The selection before issue 12 (k from 2, no guards): what the test above would catch."""
    frame, as_of, _ = realistic
    old = SegmentationConfig().with_overrides(
        selection={"k_min": 2}, guards={"keep_apart": []}, acceptance={"min_silhouette": 0.25}
    )
    computed = compute_candidate(frame, as_of, None, old)
    found = purities(frame, computed)
    assert found["top customers (40% of revenue)"] < MIN_PURITY, found


def test_the_planted_segments_are_still_recovered(tmp_path):
    frame, as_of = _features(tmp_path, 4000, "planted")
    computed = compute_candidate(frame, as_of, None, SegmentationConfig())

    assert computed.candidate.status == "candidate", computed.rejected_reasons
    truth = pd.read_csv(tmp_path / "truth" / "customers.csv", dtype=str)
    planted = truth.set_index("customer_id")["segment"]
    buyers = frame.index[frame["has_orders"]]
    segment = computed.candidate.assignments.set_index("customer_id")["segment_id"]
    assert adjusted_rand_score(planted[buyers], segment[buyers]) >= 0.9
