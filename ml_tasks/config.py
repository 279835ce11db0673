"""The recluster's configuration: one YAML file (``ml_tasks/segmentation.yml`` by default).

Every section is a frozen dataclass whose defaults are the shipped values, so a file only needs the
keys it changes. Unknown keys and values of the wrong kind are errors that name the file and key:
a typo must not silently fall back to a default.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.config_file import ConfigFileError, as_plain, build, load_config_file

DEFAULT_CONFIG_PATH = Path(__file__).with_name("segmentation.yml")
ALGORITHMS = ("kmeans", "gmm", "ward", "hdbscan")
REFRESH_MODES = ("auto", "full", "assign")
GUARD_NAMES = ("top_value", "lapsed", "one_time")


class ConfigError(ConfigFileError):
    """The segmentation config file is missing, malformed or inconsistent."""


@dataclass(frozen=True)
class FeatureConfig:
    log1p: tuple[str, ...] = (
        "order_count", "order_days", "total_spend", "avg_order_value", "web_session_count",
        "web_event_count", "cart_add_count", "email_sent_count", "email_open_count",
        "email_click_count",
    )  # fmt: skip
    numeric: tuple[str, ...] = ("recency_days", "tenure_days")
    categorical: tuple[str, ...] = ()

    @property
    def numeric_columns(self) -> tuple[str, ...]:
        return self.log1p + self.numeric

    @property
    def all_columns(self) -> tuple[str, ...]:
        return self.log1p + self.numeric + self.categorical


@dataclass(frozen=True)
class PreprocessingConfig:
    scaler: str = "standard"
    pca_variance: float | None = None


@dataclass(frozen=True)
class AlgorithmConfig:
    name: str = "kmeans"
    minibatch_threshold: int = 200_000
    fit_sample_size: int = 10_000
    hdbscan_min_cluster_size: float = 0.02


@dataclass(frozen=True)
class SelectionConfig:
    k_min: int = 4  # the business floor: fewer segments are rarely actionable
    k_max: int = 8
    random_states: int = 3
    sample_size: int = 10_000
    silhouette_sample_size: int = 5_000
    gap_references: int = 5
    bootstrap_resamples: int = 5


@dataclass(frozen=True)
class GuardConfig:
    """The business guards split clusters that mix customers a campaign must tell apart
    (``ml_tasks/guards.py``)."""

    # Which guards are on (empty: none): top_value, lapsed, one_time.
    keep_apart: tuple[str, ...] = ("top_value", "lapsed", "one_time")
    top_revenue_share: float = 0.4  # top_value: the top customers holding this share of revenue
    lapsed_after_days: int = 180  # lapsed: no counted order for more than this many days
    min_purity: float = 0.8  # share of each side that must sit where its side is the majority


@dataclass(frozen=True)
class AcceptanceConfig:
    min_silhouette: float = 0.1
    min_stability_ari: float = 0.8
    min_segment_share: float = 0.01
    max_unassigned_share: float = 0.2


@dataclass(frozen=True)
class MatchingConfig:
    min_member_overlap: float = 0.3


@dataclass(frozen=True)
class RefreshConfig:
    mode: str = "auto"
    full_every_days: int = 7
    max_feature_psi: float = 0.2
    max_segment_share_change: float = 0.05


@dataclass(frozen=True)
class VersionsConfig:
    keep_member_rows: int = 60
    keep_slices_days: int = 7


@dataclass(frozen=True)
class PredictionsConfig:
    """CLV and propensity models (``docs/predictions.md``)."""

    clv_months: int = 12
    annual_discount_rate: float = 0.10
    clv_fit_customers: int = 200_000
    churn_days: int = 90
    purchase_days: int = 30
    max_training_rows: int = 50_000
    evaluation_rows: int = 100_000
    importance_rows: int = 5_000
    min_class_rows: int = 50
    min_roc_auc: float = 0.7
    max_brier: float = 0.25
    # The newest accepted model of a kind is reused without fitting while it is younger than
    # this many days and was fitted with the same settings, and a rejected fit is not tried
    # again before it is this old; 1: fit every night.
    refit_every_days: int = 7


@dataclass(frozen=True)
class SegmentationConfig:
    random_state: int = 42
    features: FeatureConfig = field(default_factory=FeatureConfig)
    preprocessing: PreprocessingConfig = field(default_factory=PreprocessingConfig)
    algorithm: AlgorithmConfig = field(default_factory=AlgorithmConfig)
    selection: SelectionConfig = field(default_factory=SelectionConfig)
    guards: GuardConfig = field(default_factory=GuardConfig)
    acceptance: AcceptanceConfig = field(default_factory=AcceptanceConfig)
    matching: MatchingConfig = field(default_factory=MatchingConfig)
    refresh: RefreshConfig = field(default_factory=RefreshConfig)
    versions: VersionsConfig = field(default_factory=VersionsConfig)
    predictions: PredictionsConfig = field(default_factory=PredictionsConfig)

    def with_overrides(self, **sections: dict[str, Any]) -> SegmentationConfig:
        """A copy with some keys of some sections replaced, e.g. ``refresh={"mode": "full"}``."""
        plain = self.to_dict()
        for section, values in sections.items():
            plain[section] = {**plain.get(section, {}), **values}
        return build(SegmentationConfig, plain, "overrides", error=ConfigError)

    def to_dict(self) -> dict[str, Any]:
        return as_plain(self)

    def __post_init__(self) -> None:
        problems = []
        if self.algorithm.name not in ALGORITHMS:
            problems.append(f"algorithm.name must be one of {ALGORITHMS}")
        if self.refresh.mode not in REFRESH_MODES:
            problems.append(f"refresh.mode must be one of {REFRESH_MODES}")
        if self.preprocessing.scaler not in ("standard", "minmax", "rank"):
            problems.append("preprocessing.scaler must be 'standard', 'minmax' or 'rank'")
        pca = self.preprocessing.pca_variance
        if pca is not None and not 0 < pca <= 1:
            problems.append("preprocessing.pca_variance must be in (0, 1] or null")
        if not 2 <= self.selection.k_min <= self.selection.k_max:
            problems.append("selection needs 2 <= k_min <= k_max")
        problems += _range_problems(self)
        unknown_guards = set(self.guards.keep_apart) - set(GUARD_NAMES)
        if unknown_guards:
            problems.append(
                f"guards.keep_apart: unknown {sorted(unknown_guards)}, use {GUARD_NAMES}"
            )
        if not self.features.numeric_columns:
            problems.append("features needs at least one log1p or numeric column")
        repeated = {c for c in self.features.all_columns if self.features.all_columns.count(c) > 1}
        if repeated:
            problems.append(f"features lists {sorted(repeated)} more than once")
        if problems:
            raise ConfigError("; ".join(problems))


# (section, key): (lowest, highest) allowed, inclusive.
_RANGES = {
    ("algorithm", "minibatch_threshold"): (1, None),
    ("algorithm", "fit_sample_size"): (10, None),
    ("algorithm", "hdbscan_min_cluster_size"): (0.0, 0.5),
    ("selection", "random_states"): (1, None),
    ("selection", "sample_size"): (10, None),
    ("selection", "silhouette_sample_size"): (10, None),
    ("selection", "gap_references"): (1, None),
    ("selection", "bootstrap_resamples"): (2, None),
    ("guards", "top_revenue_share"): (0.0, 1.0),
    ("guards", "lapsed_after_days"): (1, None),
    ("guards", "min_purity"): (0.5, 1.0),
    ("acceptance", "min_silhouette"): (-1.0, 1.0),
    ("acceptance", "min_stability_ari"): (-1.0, 1.0),
    ("acceptance", "min_segment_share"): (0.0, 1.0),
    ("acceptance", "max_unassigned_share"): (0.0, 1.0),
    ("matching", "min_member_overlap"): (0.0, 1.0),
    ("refresh", "full_every_days"): (1, None),
    ("refresh", "max_feature_psi"): (0.0, None),
    ("refresh", "max_segment_share_change"): (0.0, 1.0),
    ("versions", "keep_member_rows"): (1, None),
    ("versions", "keep_slices_days"): (0, None),
    ("predictions", "clv_months"): (1, 120),
    ("predictions", "refit_every_days"): (1, None),
    ("predictions", "annual_discount_rate"): (0.0, 1.0),
    ("predictions", "clv_fit_customers"): (1000, None),
    ("predictions", "churn_days"): (7, 365),
    ("predictions", "purchase_days"): (7, 365),
    ("predictions", "max_training_rows"): (1000, None),
    ("predictions", "evaluation_rows"): (1000, None),
    ("predictions", "importance_rows"): (100, None),
    ("predictions", "min_class_rows"): (1, None),
    ("predictions", "min_roc_auc"): (0.0, 1.0),
    ("predictions", "max_brier"): (0.0, 1.0),
}


def _range_problems(config: SegmentationConfig) -> list[str]:
    problems = []
    for (section, key), (low, high) in _RANGES.items():
        value = getattr(getattr(config, section), key)
        if (low is not None and value < low) or (high is not None and value > high):
            bounds = f"at least {low}" if high is None else f"between {low} and {high}"
            problems.append(f"{section}.{key} must be {bounds}, got {value}")
    return problems


def config_path() -> Path:
    return Path(os.environ.get("SEGMENTS_ML_CONFIG", DEFAULT_CONFIG_PATH))


def load_config(path: Path | str | None = None) -> SegmentationConfig:
    """Read the YAML config (``SEGMENTS_ML_CONFIG`` or the shipped default)."""
    path = Path(path) if path else config_path()
    return load_config_file(path, SegmentationConfig, what="Segmentation config", error=ConfigError)
