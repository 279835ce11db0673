"""The clustering estimator: one scikit-learn estimator over the four configured algorithms.

``SegmentClusterer`` follows scikit-learn's conventions so it composes in a ``Pipeline``:
``__init__`` only stores parameters, ``fit`` returns ``self``, learned attributes end in ``_``,
randomness comes from ``random_state``. Every algorithm ends with the same learned attributes
(``labels_``, ``cluster_centers_``, ``n_clusters_``, ``inertia_``) and a ``predict`` that assigns
new customers without refitting, which is what the nightly *assign* mode uses.

- ``kmeans``: k-means on all rows; MiniBatchKMeans above ``minibatch_threshold`` rows.
- ``gmm``: a Gaussian mixture fitted on a sample of ``fit_sample_size`` rows; ``predict`` is the
  most likely component.
- ``ward``: Ward hierarchical clustering of a sample (its cost is quadratic in the sample), then
  every row joins the nearest cluster centroid.
- ``hdbscan``: scikit-learn's HDBSCAN on a sample, which finds its own number of clusters; the
  sample's noise becomes the explicit label ``NOISE_LABEL`` (the *unassigned* segment) and every
  other row takes the label of its nearest sample point, or noise when it lies farther from the
  sample than any clustered sample point lies from its nearest neighbour.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, ClusterMixin
from sklearn.cluster import HDBSCAN, AgglomerativeClustering, KMeans, MiniBatchKMeans
from sklearn.metrics import pairwise_distances_argmin
from sklearn.mixture import GaussianMixture
from sklearn.neighbors import NearestNeighbors
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted, validate_data

NOISE_LABEL = -1


class SegmentClusterer(ClusterMixin, BaseEstimator):
    """Cluster customers with one of ``kmeans``, ``gmm``, ``ward`` or ``hdbscan``.

    ``init`` (k-means only) seeds the centroids, e.g. with those of the model selection's best
    fit on a sample, so the full fit starts where the sample ended. ``min_cluster_size`` is the
    HDBSCAN minimum cluster size as a share of the fitted sample. ``memory`` (Ward only) caches
    the merge tree, so fitting several k on the same sample builds it once.
    """

    def __init__(
        self,
        algorithm: str = "kmeans",
        n_clusters: int = 5,
        *,
        init: np.ndarray | None = None,
        n_init: int = 1,
        minibatch_threshold: int = 200_000,
        fit_sample_size: int = 20_000,
        min_cluster_size: float = 0.02,
        memory=None,
        random_state: int | None = None,
    ):
        self.algorithm = algorithm
        self.n_clusters = n_clusters
        self.init = init
        self.n_init = n_init
        self.minibatch_threshold = minibatch_threshold
        self.fit_sample_size = fit_sample_size
        self.min_cluster_size = min_cluster_size
        self.memory = memory
        self.random_state = random_state

    def fit(self, X, y=None):
        X = validate_data(self, X, dtype=np.float64)
        rng = check_random_state(self.random_state)
        if self.algorithm != "hdbscan" and X.shape[0] <= self.n_clusters:
            raise ValueError(
                f"Need more than {self.n_clusters} customers for {self.n_clusters} segments, "
                f"got n_samples={X.shape[0]}."
            )
        fit = {
            "kmeans": self._fit_kmeans,
            "gmm": self._fit_gmm,
            "ward": self._fit_ward,
            "hdbscan": self._fit_hdbscan,
        }.get(self.algorithm)
        if fit is None:
            raise ValueError(f"Unknown algorithm {self.algorithm!r}")
        fit(X, rng)
        assigned = self.labels_ != NOISE_LABEL
        self.n_clusters_ = len(self.cluster_centers_)
        self.inertia_ = (
            float(((X[assigned] - self.cluster_centers_[self.labels_[assigned]]) ** 2).sum())
            if assigned.any()
            else 0.0
        )
        return self

    def predict(self, X):
        check_is_fitted(self, "cluster_centers_")
        X = validate_data(self, X, dtype=np.float64, reset=False)
        if self.algorithm == "gmm":
            return self.mixture_.predict(X)
        if self.algorithm == "hdbscan":
            return self._nearest_exemplar_labels(X)
        return pairwise_distances_argmin(X, self.cluster_centers_)

    def _sample(self, X: np.ndarray, rng: np.random.RandomState) -> np.ndarray:
        if X.shape[0] <= self.fit_sample_size:
            return X
        return X[rng.choice(X.shape[0], size=self.fit_sample_size, replace=False)]

    def _fit_kmeans(self, X: np.ndarray, rng: np.random.RandomState) -> None:
        init = "k-means++" if self.init is None else np.asarray(self.init, dtype=np.float64)
        n_init = self.n_init if self.init is None else 1
        seed = rng.randint(2**31 - 1)
        if X.shape[0] > self.minibatch_threshold:
            model = MiniBatchKMeans(
                self.n_clusters, init=init, n_init=n_init, batch_size=4096, random_state=seed
            )
        else:
            model = KMeans(self.n_clusters, init=init, n_init=n_init, random_state=seed)
        self.labels_ = model.fit_predict(X)
        self.cluster_centers_ = model.cluster_centers_

    def _fit_gmm(self, X: np.ndarray, rng: np.random.RandomState) -> None:
        self.mixture_ = GaussianMixture(
            self.n_clusters,
            n_init=self.n_init,
            reg_covar=1e-4,
            random_state=rng.randint(2**31 - 1),
        ).fit(self._sample(X, rng))
        self.labels_ = self.mixture_.predict(X)
        self.cluster_centers_ = self.mixture_.means_

    def _fit_ward(self, X: np.ndarray, rng: np.random.RandomState) -> None:
        sample = self._sample(X, rng)
        labels = AgglomerativeClustering(
            self.n_clusters, linkage="ward", memory=self.memory, compute_full_tree=True
        ).fit_predict(sample)
        self.cluster_centers_ = np.vstack(
            [sample[labels == label].mean(axis=0) for label in range(self.n_clusters)]
        )
        self.labels_ = pairwise_distances_argmin(X, self.cluster_centers_)

    def _fit_hdbscan(self, X: np.ndarray, rng: np.random.RandomState) -> None:
        sample = self._sample(X, rng)
        min_size = max(5, round(self.min_cluster_size * len(sample)))
        labels = HDBSCAN(min_cluster_size=min_size, copy=True).fit_predict(sample)
        found = sorted(set(labels) - {NOISE_LABEL})
        # HDBSCAN labels are 0..n-1 already; the sample is kept as exemplars for predict. With
        # no cluster found everyone is noise (acceptance then rejects the model).
        self.exemplars_ = sample
        self.exemplar_labels_ = labels
        self.neighbors_ = NearestNeighbors(n_neighbors=2).fit(sample)
        clustered = sample[labels != NOISE_LABEL]
        self.assign_radius_ = (
            float(self.neighbors_.kneighbors(clustered)[0][:, 1].max()) if len(clustered) else 0.0
        )
        self.cluster_centers_ = (
            np.vstack([sample[labels == label].mean(axis=0) for label in found])
            if found
            else np.empty((0, X.shape[1]))
        )
        self.labels_ = self._nearest_exemplar_labels(X)

    def _nearest_exemplar_labels(self, X: np.ndarray) -> np.ndarray:
        labels = np.empty(X.shape[0], dtype=np.int64)
        for start in range(0, X.shape[0], 100_000):
            distance, index = self.neighbors_.kneighbors(X[start : start + 100_000], n_neighbors=1)
            nearest = self.exemplar_labels_[index[:, 0]]
            nearest[distance[:, 0] > self.assign_radius_] = NOISE_LABEL
            labels[start : start + 100_000] = nearest
        return labels
