"""The clustering estimator and the preprocessing, on planted groups."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.metrics import adjusted_rand_score
from sklearn.utils.estimator_checks import parametrize_with_checks

from ml_tasks.config import FeatureConfig, PreprocessingConfig
from ml_tasks.model import NOISE_LABEL, SegmentClusterer
from ml_tasks.preprocess import make_preprocessor


def _blobs(n: int, k: int, seed: int, spread: float = 0.3) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.uniform(-5, 5, size=(k, 6))
    labels = rng.integers(0, k, n)
    return centres[labels] + rng.normal(0, spread, (n, 6)), labels


@pytest.mark.parametrize("algorithm", ["kmeans", "gmm", "ward"])
def test_each_algorithm_recovers_planted_groups_and_predicts_its_own_labels(algorithm):
    X, truth = _blobs(3000, 4, seed=1)
    model = SegmentClusterer(algorithm, n_clusters=4, fit_sample_size=1500, random_state=0)
    model.fit(X)
    assert adjusted_rand_score(truth, model.labels_) > 0.95
    assert model.cluster_centers_.shape == (4, 6)
    assert np.array_equal(model.predict(X), model.labels_)
    assert model.inertia_ > 0


def test_minibatch_kmeans_above_the_threshold_gives_the_same_groups():
    X, truth = _blobs(3000, 3, seed=2)
    model = SegmentClusterer("kmeans", n_clusters=3, minibatch_threshold=1000, random_state=0)
    assert adjusted_rand_score(truth, model.fit(X).labels_) > 0.95


def test_hdbscan_finds_its_own_k_and_marks_noise_as_unassigned():
    X, truth = _blobs(2000, 3, seed=3, spread=0.2)
    rng = np.random.default_rng(4)
    noise = rng.uniform(-30, 30, size=(40, 6))
    model = SegmentClusterer("hdbscan", fit_sample_size=1000, random_state=0).fit(
        np.vstack([X, noise])
    )
    assert model.n_clusters_ == 3
    assert adjusted_rand_score(truth, model.labels_[:2000]) > 0.95
    assert (model.labels_[2000:] == NOISE_LABEL).mean() > 0.9
    assert np.array_equal(model.predict(X), model.labels_[:2000])


def test_same_random_state_same_segments():
    X, _ = _blobs(1500, 4, seed=5)
    model = SegmentClusterer("kmeans", n_clusters=4, random_state=7)
    first = clone(model).fit(X).labels_
    assert np.array_equal(first, clone(model).fit(X).labels_)


@parametrize_with_checks([SegmentClusterer("kmeans", n_clusters=3, random_state=0)])
def test_follows_scikit_learn_estimator_conventions(estimator, check):
    check(estimator)


def test_too_few_customers_is_a_clear_error():
    with pytest.raises(ValueError, match="Need more than 5 customers for 5 segments, got n_sa"):
        SegmentClusterer(n_clusters=5).fit(np.ones((3, 2)))


def test_preprocessing_logs_scales_one_hot_encodes_and_keeps_pca_variance():
    frame = pd.DataFrame(
        {
            "total_spend": [0.0, 10.0, 100.0, 1000.0, np.nan, 50.0],
            "recency_days": [1.0, 5.0, 9.0, 3.0, 7.0, np.nan],
            "income_band": ["low", "high", "high", None, "mid", "low"],
        }
    )
    features = FeatureConfig(
        log1p=("total_spend",), numeric=("recency_days",), categorical=("income_band",)
    )
    preprocessor = make_preprocessor(features, PreprocessingConfig())
    X = preprocessor.fit_transform(frame)
    # 2 scaled numbers + 3 categories, no missing values left.
    assert X.shape == (6, 5) and not np.isnan(X).any()
    assert X[:, :2].mean(axis=0) == pytest.approx([0, 0], abs=1e-9)
    # log1p: the ordering survives, the scale is compressed (1000 is not 100x of 10).
    spend = X[:4, 0]
    assert list(np.argsort(spend)) == [0, 1, 2, 3]
    assert (spend[3] - spend[2]) < (spend[2] - spend[1]) * 1.5
    assert set(np.unique(X[:, 2:])) == {0.0, 1.0}
    assert (X[:, 2:].sum(axis=1) == 1).all()
    # An unseen category encodes as all zeros rather than failing the night.
    unseen = frame.assign(income_band="platinum")
    assert (preprocessor.transform(unseen)[:, 2:] == 0).all()

    reduced = make_preprocessor(features, PreprocessingConfig(pca_variance=0.8), 0).fit(frame)
    pca = reduced.named_steps["pca"]
    assert pca.explained_variance_ratio_.sum() >= 0.8
    assert reduced.transform(frame).shape[1] == pca.n_components_ < 5

    minmax = make_preprocessor(features, PreprocessingConfig(scaler="minmax")).fit_transform(frame)
    assert minmax[:, :2].min() == 0 and minmax[:, :2].max() == 1
