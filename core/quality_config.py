"""The quality gates' thresholds: one YAML file (``expectations/quality.yml`` by default).

Every key is optional (a missing key keeps the default below); an unknown key, a value of the wrong
kind or out of range is an error naming the file and the key, because a typo in a threshold must
not silently loosen a gate. ``SEGMENTS_QUALITY_CONFIG`` points at another file.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from core.config_file import ConfigFileError, load_config_file
from core.settings import PROJECT_ROOT

DEFAULT_CONFIG_PATH = PROJECT_ROOT / "expectations" / "quality.yml"


class QualityConfigError(ConfigFileError):
    """The quality config file is missing, malformed or out of range."""


@dataclass(frozen=True)
class QualityConfig:
    # Row rules (quarantine).
    quarantine_max_share: float = 0.05
    # ... once at least this many rows of the batch are quarantined: a handful of bad rows in a
    # small delivery (a day with 20 new customers) is set aside without stopping the night.
    quarantine_min_rows: int = 10
    max_order_amount: float = 100_000.0
    min_age_years: float = 0.0
    max_age_years: float = 120.0
    max_text_length: int = 1_000
    future_tolerance_hours: float = 24.0
    # The business's first day: an earlier date or timestamp (1900, 'epoch', '-infinity') is not
    # history but a default or a broken value, quarantined (before_business_start).
    business_start_date: str = "2000-01-01"
    # Late reference data: for this many days after its partition's date, a row quarantined
    # only because its customer had no CRM record yet is re-evaluated each night
    # (ingestion.late_reference).
    late_reference_days: int = 7
    # Volume: the as-of day's row count against the median of the trailing days.
    volume_window_days: int = 28
    volume_min_history_days: int = 7
    volume_low_ratio: float = 0.2
    volume_high_ratio: float = 5.0
    # Distribution: the day's mean order amount against the trailing median of daily means.
    mean_order_value_low_ratio: float = 0.33
    mean_order_value_high_ratio: float = 3.0
    # Data Docs: runs kept (older runs' results and pages are pruned).
    data_docs_keep_runs: int = 30

    def __post_init__(self) -> None:
        problems = [
            f"{key} must be {bounds}, got {getattr(self, key)}"
            for key, (low, high, bounds) in _RANGES.items()
            if not low <= getattr(self, key) <= high
        ]
        try:
            date.fromisoformat(self.business_start_date)
        except ValueError:
            problems.append(
                f"business_start_date must be a date (YYYY-MM-DD), got {self.business_start_date!r}"
            )
        if self.min_age_years >= self.max_age_years:
            problems.append("min_age_years must be below max_age_years")
        if self.volume_low_ratio >= self.volume_high_ratio:
            problems.append("volume_low_ratio must be below volume_high_ratio")
        if self.mean_order_value_low_ratio >= self.mean_order_value_high_ratio:
            problems.append("mean_order_value_low_ratio must be below mean_order_value_high_ratio")
        if problems:
            raise QualityConfigError("; ".join(problems))


_INF = float("inf")
_RANGES: dict[str, tuple[float, float, str]] = {
    "quarantine_max_share": (0.0, 1.0, "between 0 and 1"),
    "quarantine_min_rows": (1, _INF, "at least 1"),
    "max_order_amount": (0.0, _INF, "positive"),
    "min_age_years": (0.0, 200.0, "between 0 and 200"),
    "max_age_years": (1.0, 200.0, "between 1 and 200"),
    "max_text_length": (1, _INF, "at least 1"),
    "future_tolerance_hours": (0.0, 24.0 * 30, "between 0 and 720"),
    "late_reference_days": (0, 366, "between 0 and 366"),
    "volume_window_days": (1, 366, "between 1 and 366"),
    "volume_min_history_days": (1, 366, "between 1 and 366"),
    "volume_low_ratio": (0.0, 1.0, "between 0 and 1"),
    "volume_high_ratio": (1.0, _INF, "at least 1"),
    "mean_order_value_low_ratio": (0.0, 1.0, "between 0 and 1"),
    "mean_order_value_high_ratio": (1.0, _INF, "at least 1"),
    "data_docs_keep_runs": (1, _INF, "at least 1"),
}


def config_path() -> Path:
    return Path(os.environ.get("SEGMENTS_QUALITY_CONFIG", DEFAULT_CONFIG_PATH))


def load_quality_config(path: Path | str | None = None) -> QualityConfig:
    """Read the YAML config (``SEGMENTS_QUALITY_CONFIG`` or the shipped default)."""
    path = Path(path) if path else config_path()
    return load_config_file(path, QualityConfig, what="Quality config", error=QualityConfigError)
