"""Model selection: the five criteria, their vote, and bootstrap stability."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ml_tasks.config import AlgorithmConfig, SelectionConfig
from ml_tasks.model import SegmentClusterer
from ml_tasks.selection import (
    bootstrap_stability,
    elbow_k,
    gap_k,
    select_model,
    vote,
)


def _blobs(n: int, k: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.uniform(-6, 6, size=(k, 5))
    return centres[rng.integers(0, k, n)] + rng.normal(0, 0.4, (n, 5))


@pytest.mark.parametrize("k", [3, 5])
def test_the_vote_chooses_the_planted_k(k):
    selection = select_model(
        _blobs(2500, k, seed=k),
        SelectionConfig(k_min=2, k_max=8, random_states=2, bootstrap_resamples=3),
        AlgorithmConfig(),
        min_stability_ari=0.8,
        random_state=0,
    )
    assert selection.k == k
    assert sum(v == k for v in selection.votes.values()) >= 3
    assert set(selection.by_k.index) == set(range(2, 9))
    assert selection.stability_ari > 0.95
    assert selection.init_centers.shape == (k, 5)
    stored = selection.to_dict()
    assert stored["k"] == k and len(stored["by_k"]) == 7


def test_a_k_override_skips_the_comparison():
    selection = select_model(
        _blobs(800, 3, seed=1),
        SelectionConfig(random_states=1, bootstrap_resamples=2),
        AlgorithmConfig(),
        min_stability_ari=0.8,
        random_state=0,
        k_override=6,
    )
    assert selection.k == 6 and list(selection.by_k.index) == [6]


def test_elbow_is_the_point_farthest_below_the_chord():
    inertia = pd.Series([100.0, 60.0, 20.0, 17.0, 15.0, 14.0], index=range(2, 8))
    assert elbow_k(inertia) == 4


def test_gap_rule_takes_the_smallest_k_within_one_standard_error_of_the_next():
    gaps = pd.DataFrame(
        {"gap": [0.5, 0.9, 1.2, 1.22, 1.3], "gap_sd": [0.05] * 5}, index=range(2, 7)
    )
    assert gap_k(gaps) == 4  # 1.2 >= 1.22 - 0.05
    rising = pd.DataFrame({"gap": [0.1, 0.5, 0.9], "gap_sd": [0.01] * 3}, index=[2, 3, 4])
    assert gap_k(rising) == 4


def test_unstable_k_takes_no_part_and_the_lowest_rank_sum_wins():
    by_k = pd.DataFrame(
        {
            "silhouette": [0.40, 0.60, 0.55],
            "davies_bouldin": [0.9, 0.7, 0.5],
            "calinski_harabasz": [100.0, 90.0, 300.0],
            "inertia": [100.0, 40.0, 35.0],
            "gap": [0.5, 1.0, 1.1],
            "gap_sd": [0.05, 0.05, 0.05],
            "stability_ari": [0.95, 0.5, 0.9],
        },
        index=pd.Index([2, 3, 4], name="k"),
    )
    k, votes, _ = vote(by_k, min_stability_ari=0.8)
    # k=3 is unstable, so out; of 2 and 4, k=4 ranks first on DB, CH, elbow and gap.
    assert 3 not in votes.values()
    assert k == 4
    # A k that one criterion loves loses to one that all find good.
    rows = pd.DataFrame(
        {
            "silhouette": [0.70, 0.50, 0.52],
            "davies_bouldin": [1.5, 0.80, 0.70],
            "calinski_harabasz": [80.0, 200.0, 210.0],
            "inertia": [100.0, 30.0, 28.0],
            "gap": [0.3, 1.0, 1.02],
            "gap_sd": [0.05] * 3,
            "stability_ari": [0.9, 0.95, 0.96],
        },
        index=pd.Index([2, 3, 4], name="k"),
    )
    k, votes, _ = vote(rows, min_stability_ari=0.8)
    assert votes["silhouette"] == 2 and k != 2
    _, _, notes = vote(by_k.assign(stability_ari=0.1), min_stability_ari=0.8)
    assert "no k reached stability" in notes[0]


def test_stability_separates_real_groups_from_noise():
    def make(seed):
        return SegmentClusterer("kmeans", n_clusters=4, random_state=seed)

    structured = bootstrap_stability(_blobs(1500, 4, seed=2), make, 4, random_state=0)
    noise = np.random.default_rng(3).uniform(-1, 1, size=(1500, 5))
    unstructured = bootstrap_stability(noise, make, 4, random_state=0)
    assert structured > 0.95
    assert unstructured < structured - 0.1
