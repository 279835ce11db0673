"""The nightly recluster: features of the as-of date in, a candidate segment version out."""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass
from datetime import date

import duckdb
import numpy as np
import pandas as pd
import sklearn

from ml_tasks.features import FEATURE_COLUMNS, load_customer_features
from ml_tasks.model import make_segmentation_pipeline, quality_scores
from ml_tasks.profiles import (
    PROSPECT_SEGMENT_ID,
    describe_segments,
    order_segments_by_value,
)
from ml_tasks.versions import Candidate, write_candidate

log = logging.getLogger(__name__)

ALGORITHM = "kmeans-silhouette"


@dataclass(frozen=True)
class ReclusterConfig:
    k_min: int = 2
    k_max: int = 8
    sample_size: int = 10_000
    n_init: int = 4
    minibatch_threshold: int = 200_000
    random_state: int = 42


def fit_segments(
    features: pd.DataFrame, config: ReclusterConfig
) -> tuple[pd.Series, int, dict, pd.DataFrame]:
    """Cluster the customers with orders; prospects get segment 0.

    Returns the segment id per customer, the chosen k, the quality scores and the profiles.
    """
    buyers = features[features["has_orders"]]
    X = buyers[list(FEATURE_COLUMNS)].to_numpy(dtype=np.float64)
    pipeline = make_segmentation_pipeline(
        random_state=config.random_state,
        k_min=config.k_min,
        k_max=config.k_max,
        sample_size=config.sample_size,
        n_init=config.n_init,
        minibatch_threshold=config.minibatch_threshold,
    )
    started = time.perf_counter()
    # Fit the preprocessing once and keep its output: the clustering step and the quality
    # scores both need the scaled features (the steps are shared, so the pipeline is fitted).
    X_scaled = pipeline[:-1].fit_transform(X)
    model = pipeline.named_steps["cluster"].fit(X_scaled)
    log.info(
        "Fitted k-means on %d customers in %.1f s; silhouette by k: %s; chose k=%d",
        len(buyers),
        time.perf_counter() - started,
        {k: round(v, 3) for k, v in model.silhouette_by_k_.items()},
        model.n_clusters_,
    )
    scores = quality_scores(X_scaled, model.labels_, model.sample_index_)
    scores["silhouette_by_k"] = model.silhouette_by_k_
    id_by_label = order_segments_by_value(buyers, model.labels_)
    segment_ids = pd.Series(PROSPECT_SEGMENT_ID, index=features.index, name="segment_id")
    segment_ids.loc[buyers.index] = [id_by_label[int(label)] for label in model.labels_]
    profiles = describe_segments(features, segment_ids, FEATURE_COLUMNS)
    return segment_ids, model.n_clusters_, scores, profiles


def recluster(
    con: duckdb.DuckDBPyConnection,
    as_of_date: date,
    *,
    run_id: str = "manual",
    config: ReclusterConfig | None = None,
) -> dict:
    """Fit segments on the as-of date's features and store them as a candidate version."""
    config = config or ReclusterConfig()
    features = load_customer_features(con, as_of_date)
    log.info(
        "Loaded features of %d customers (%d with orders) for %s",
        len(features),
        int(features["has_orders"].sum()),
        as_of_date,
    )
    segment_ids, k, scores, profiles = fit_segments(features, config)
    names = profiles.set_index("segment_id")["segment_name"]
    assignments = pd.DataFrame(
        {
            "customer_id": features.index,
            "segment_id": segment_ids.to_numpy(),
            "segment_name": names.reindex(segment_ids.to_numpy()).to_numpy(),
        }
    )
    candidate = Candidate(
        as_of_date=as_of_date,
        run_id=run_id,
        algorithm=ALGORITHM,
        k=k,
        scores=scores,
        params={
            **asdict(config),
            "features": list(FEATURE_COLUMNS),
            "scikit_learn": sklearn.__version__,
            "silhouette_by_k": {str(k): round(v, 6) for k, v in scores["silhouette_by_k"].items()},
        },
        assignments=assignments,
        profiles=profiles,
    )
    version_id = write_candidate(con, candidate)
    log.info(
        "Stored candidate version %d: k=%d, silhouette=%.3f, %d customers",
        version_id,
        k,
        scores["silhouette"] or float("nan"),
        len(assignments),
    )
    return {
        "version_id": version_id,
        "as_of_date": as_of_date.isoformat(),
        "k": k,
        "silhouette": scores["silhouette"],
        "davies_bouldin": scores["davies_bouldin"],
        "calinski_harabasz": scores["calinski_harabasz"],
        "customers": len(assignments),
        "segments": profiles[["segment_id", "segment_name", "customer_count"]].to_dict("records"),
    }
