"""The business guards alone: cut-offs, purity, splits only where clusters mix, and replay."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ml_tasks.config import GuardConfig, SegmentationConfig
from ml_tasks.guards import apply_guards, purity, replay, top_spend_threshold


def test_the_top_value_cut_off_is_where_the_top_customers_reach_the_revenue_share():
    spend = pd.Series([500.0, 300.0, 100.0, 50.0, 50.0])  # 1000 in all
    assert top_spend_threshold(spend, 0.4) == 500.0  # 500 alone is 50%: enough
    assert top_spend_threshold(spend, 0.6) == 300.0  # 500 + 300 = 80% >= 60%
    assert top_spend_threshold(spend, 0.85) == 100.0
    assert top_spend_threshold(pd.Series([0.0, 0.0]), 0.4) == float("inf")


def test_purity_counts_the_members_sitting_where_their_side_is_the_majority():
    side = np.array([True, True, True, False, True, False, False, False])
    labels = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    assert purity(side, labels) == 0.75  # 3 of 4 in segment 0 (75% True), 1 in segment 1
    assert purity(~side, labels) == 0.75
    assert purity(np.zeros(8, dtype=bool), labels) == 1.0


def _buyers(spend, recency, orders) -> pd.DataFrame:
    return pd.DataFrame(
        {"total_spend": spend, "recency_days": recency, "order_count": orders},
        index=[f"C{i}" for i in range(len(spend))],
    )


def test_a_cluster_mixing_lapsed_and_recent_buyers_is_split_and_a_clean_one_is_not():
    rng = np.random.default_rng(0)
    n = 400
    # Cluster 0: all recent repeat buyers. Cluster 1: half lapsed, half recent (mixed).
    labels = np.repeat([0, 1], n // 2)
    recency = np.where(labels == 0, 10, np.where(np.arange(n) % 2 == 0, 300, 20))
    buyers = _buyers(rng.uniform(10, 20, n), recency, np.full(n, 3))
    config = GuardConfig(keep_apart=("lapsed",))

    outcome = apply_guards(labels, buyers, config, min_size=10)

    assert [(s.segment, s.guard) for s in outcome.splits] == [(1, "lapsed")]
    lapsed = recency > 180
    assert set(outcome.labels[lapsed]) == {outcome.splits[0].new_label}
    assert set(outcome.labels[labels == 0]) == {0}  # the clean cluster is left alone
    assert outcome.purity["lapsed"] == {"yes": 1.0, "no": 1.0}
    # A later night replays the same split on the clusters a model assigns.
    assert (
        replay(labels, buyers, config, outcome.thresholds, outcome.splits) == outcome.labels
    ).all()


def test_no_split_below_the_smallest_segment_nor_when_the_guards_are_off():
    labels = np.zeros(100, dtype=np.int64)
    recency = np.where(np.arange(100) < 5, 300, 10)  # 5 lapsed buyers among 100
    buyers = _buyers(np.full(100, 10.0), recency, np.full(100, 2))
    small = apply_guards(labels, buyers, GuardConfig(keep_apart=("lapsed",)), min_size=10)
    assert small.splits == [] and small.purity["lapsed"]["yes"] == 0.0  # reported, not hidden
    assert apply_guards(labels, buyers, GuardConfig(keep_apart=()), min_size=1).splits == []


def test_an_unknown_guard_is_a_config_error():
    with pytest.raises(ValueError, match=r"guards\.keep_apart: unknown"):
        SegmentationConfig().with_overrides(guards={"keep_apart": ["vip"]})
