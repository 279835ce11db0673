"""Feature preprocessing as one scikit-learn Pipeline, built from the config's ``features`` and
``preprocessing`` sections: log1p for skewed money and counts, scaling, one-hot for categoricals,
optional PCA."""

from __future__ import annotations

import numpy as np
from sklearn.compose import ColumnTransformer
from sklearn.decomposition import PCA
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import (
    FunctionTransformer,
    MinMaxScaler,
    OneHotEncoder,
    QuantileTransformer,
    StandardScaler,
)

from ml_tasks.config import FeatureConfig, PreprocessingConfig


def log1p_nonnegative(values: np.ndarray) -> np.ndarray:
    """log1p after clipping at 0: spend and counts are right-skewed and never negative."""
    return np.log1p(np.clip(values, 0, None))


def make_preprocessor(
    features: FeatureConfig, preprocessing: PreprocessingConfig, random_state: int | None = None
) -> Pipeline:
    """A Pipeline from a DataFrame of the configured columns to the matrix the clusters see.

    Missing numbers are imputed with the median (a customer without orders has no average order
    value), missing categories with the most frequent one; categories unseen at fit time encode
    as all zeros.
    """

    def scaler():
        if preprocessing.scaler == "rank":
            # Each feature becomes its percentile: value tiers are evenly spread, whatever the
            # tail (measured against the others in docs/reclustering.md).
            return QuantileTransformer(n_quantiles=1000, subsample=100_000, random_state=0)
        return StandardScaler() if preprocessing.scaler == "standard" else MinMaxScaler()

    transformers = []
    if features.log1p:
        transformers.append(
            (
                "skewed",
                Pipeline(
                    [
                        ("impute", SimpleImputer(strategy="median")),
                        (
                            "log1p",
                            FunctionTransformer(log1p_nonnegative, feature_names_out="one-to-one"),
                        ),
                        ("scale", scaler()),
                    ]
                ),
                list(features.log1p),
            )
        )
    if features.numeric:
        transformers.append(
            (
                "numeric",
                Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", scaler())]),
                list(features.numeric),
            )
        )
    if features.categorical:
        transformers.append(
            (
                "categorical",
                Pipeline(
                    [
                        ("impute", SimpleImputer(strategy="most_frequent")),
                        ("onehot", OneHotEncoder(handle_unknown="ignore", sparse_output=False)),
                    ]
                ),
                list(features.categorical),
            )
        )
    pca = (
        PCA(n_components=preprocessing.pca_variance, svd_solver="full", random_state=random_state)
        if preprocessing.pca_variance is not None and preprocessing.pca_variance < 1
        else "passthrough"
    )
    return Pipeline(
        [
            ("columns", ColumnTransformer(transformers, verbose_feature_names_out=False)),
            ("pca", pca),
        ]
    )
