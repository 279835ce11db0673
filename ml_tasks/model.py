"""The clustering model: preprocessing plus k-means whose k is chosen by silhouette.

Follows scikit-learn's estimator conventions so it composes in a ``Pipeline``: ``__init__`` only
stores parameters, ``fit`` returns ``self``, learned attributes end in ``_``, and randomness comes
from ``random_state``.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, ClusterMixin
from sklearn.cluster import KMeans, MiniBatchKMeans
from sklearn.impute import SimpleImputer
from sklearn.metrics import (
    calinski_harabasz_score,
    davies_bouldin_score,
    pairwise_distances_argmin,
    silhouette_score,
)
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted, validate_data


def log1p_nonnegative(values: np.ndarray) -> np.ndarray:
    """log1p after clipping at 0: spend and counts are right-skewed and never negative."""
    return np.log1p(np.clip(values, 0, None))


class SilhouetteKMeans(ClusterMixin, BaseEstimator):
    """K-means whose number of clusters is chosen by the silhouette score on a sample.

    Each k in ``[k_min, k_max]`` is fitted on a random sample of ``sample_size`` rows and scored by
    silhouette on that sample; the best k is then refitted on all rows (mini-batch k-means above
    ``minibatch_threshold`` rows, seeded with the sample's centroids).
    """

    def __init__(
        self,
        k_min: int = 2,
        k_max: int = 8,
        sample_size: int = 10_000,
        n_init: int = 4,
        minibatch_threshold: int = 200_000,
        random_state: int | None = None,
    ):
        self.k_min = k_min
        self.k_max = k_max
        self.sample_size = sample_size
        self.n_init = n_init
        self.minibatch_threshold = minibatch_threshold
        self.random_state = random_state

    def fit(self, X, y=None):
        X = validate_data(self, X, dtype=np.float64)
        rng = check_random_state(self.random_state)
        n_rows = X.shape[0]
        k_max = min(self.k_max, n_rows - 1)
        if k_max < self.k_min:
            raise ValueError(f"Need more than {self.k_min} customers to cluster, got {n_rows}.")
        sample_index = (
            rng.choice(n_rows, size=self.sample_size, replace=False)
            if n_rows > self.sample_size
            else np.arange(n_rows)
        )
        sample = X[sample_index]
        scores = {}
        fitted = {}
        for k in range(self.k_min, k_max + 1):
            model = KMeans(n_clusters=k, n_init=self.n_init, random_state=rng.randint(2**31 - 1))
            labels = model.fit_predict(sample)
            scores[k] = float(silhouette_score(sample, labels))
            fitted[k] = model
        self.silhouette_by_k_ = scores
        self.n_clusters_ = max(scores, key=lambda k: (round(scores[k], 6), -k))
        seed_centers = fitted[self.n_clusters_].cluster_centers_
        if n_rows > self.minibatch_threshold:
            final = MiniBatchKMeans(
                n_clusters=self.n_clusters_,
                init=seed_centers,
                n_init=1,
                batch_size=4096,
                random_state=rng.randint(2**31 - 1),
            )
        else:
            final = KMeans(
                n_clusters=self.n_clusters_,
                init=seed_centers,
                n_init=1,
                random_state=rng.randint(2**31 - 1),
            )
        self.labels_ = final.fit_predict(X)
        self.cluster_centers_ = final.cluster_centers_
        self.inertia_ = float(final.inertia_)
        self.sample_index_ = sample_index
        return self

    def predict(self, X):
        check_is_fitted(self, "cluster_centers_")
        X = validate_data(self, X, dtype=np.float64, reset=False)
        return pairwise_distances_argmin(X, self.cluster_centers_)


def make_segmentation_pipeline(random_state: int | None = 42, **kmeans_params) -> Pipeline:
    """Median imputation, log1p, standard scaling, then k-means with k chosen by silhouette."""
    return Pipeline(
        [
            ("impute", SimpleImputer(strategy="median")),
            ("log1p", FunctionTransformer(log1p_nonnegative, feature_names_out="one-to-one")),
            ("scale", StandardScaler()),
            ("cluster", SilhouetteKMeans(random_state=random_state, **kmeans_params)),
        ]
    )


def quality_scores(X_scaled: np.ndarray, labels: np.ndarray, sample_index: np.ndarray) -> dict:
    """Silhouette, Davies-Bouldin and Calinski-Harabasz of a labelling, on the selection sample."""
    sample, sample_labels = X_scaled[sample_index], labels[sample_index]
    if len(np.unique(sample_labels)) < 2:
        return {"silhouette": None, "davies_bouldin": None, "calinski_harabasz": None}
    return {
        "silhouette": float(silhouette_score(sample, sample_labels)),
        "davies_bouldin": float(davies_bouldin_score(sample, sample_labels)),
        "calinski_harabasz": float(calinski_harabasz_score(sample, sample_labels)),
    }
