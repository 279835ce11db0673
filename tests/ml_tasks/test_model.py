"""The clustering model chooses the planted number of groups and recovers them."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import adjusted_rand_score

from ml_tasks.features import FEATURE_COLUMNS
from ml_tasks.model import SilhouetteKMeans, make_segmentation_pipeline
from ml_tasks.profiles import PROSPECT_SEGMENT_ID
from ml_tasks.recluster import ReclusterConfig, fit_segments


def _planted(n: int, k: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centers = rng.uniform(0, 6, size=(k, len(FEATURE_COLUMNS)))
    labels = rng.integers(0, k, n)
    # Counts and amounts are log-normal around each group's centre, like real spend.
    values = np.expm1(centers[labels] + rng.normal(0, 0.25, (n, len(FEATURE_COLUMNS))))
    return values, labels


@pytest.mark.parametrize("k", [3, 5])
def test_chooses_the_planted_k_and_recovers_the_groups(k):
    X, truth = _planted(3000, k, seed=k)
    pipeline = make_segmentation_pipeline(random_state=0, sample_size=2000).fit(X)
    model = pipeline.named_steps["cluster"]
    assert model.n_clusters_ == k
    assert adjusted_rand_score(truth, model.labels_) > 0.95
    assert set(model.silhouette_by_k_) == set(range(2, 9))


def test_same_random_state_gives_the_same_segments():
    X, _ = _planted(2000, 4, seed=1)
    first = make_segmentation_pipeline(random_state=7).fit(X).named_steps["cluster"].labels_
    second = make_segmentation_pipeline(random_state=7).fit(X).named_steps["cluster"].labels_
    assert np.array_equal(first, second)


def test_predict_assigns_training_rows_to_their_own_cluster():
    X, _ = _planted(1500, 4, seed=2)
    pipeline = make_segmentation_pipeline(random_state=0).fit(X)
    assert np.array_equal(pipeline.predict(X), pipeline.named_steps["cluster"].labels_)


def test_too_few_customers_is_a_clear_error():
    with pytest.raises(ValueError, match="Need more than"):
        SilhouetteKMeans(k_min=2).fit(np.ones((2, 3)))


def test_customers_without_orders_are_prospects_and_ids_rank_by_value():
    X, _ = _planted(2000, 4, seed=3)
    features = pd.DataFrame(X, columns=FEATURE_COLUMNS, index=[f"C{i:05d}" for i in range(2000)])
    features["has_orders"] = True
    features.iloc[:25, features.columns.get_loc("has_orders")] = False
    segment_ids, k, scores, profiles = fit_segments(features, ReclusterConfig(random_state=0))

    assert (segment_ids.iloc[:25] == PROSPECT_SEGMENT_ID).all()
    assert (segment_ids.iloc[25:] != PROSPECT_SEGMENT_ID).all()
    assert sorted(profiles["segment_id"]) == list(range(k + 1))
    buyers = profiles[profiles["segment_id"] != PROSPECT_SEGMENT_ID]
    median_spend = (
        features.loc[segment_ids.index[25:], "total_spend"].groupby(segment_ids.iloc[25:]).median()
    )
    assert list(median_spend.sort_values(ascending=False).index) == list(buyers["segment_id"])
    assert profiles["segment_name"].is_unique
    assert profiles["customer_count"].sum() == 2000
    assert 0 < scores["silhouette"] <= 1
