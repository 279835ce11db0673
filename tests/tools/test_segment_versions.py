"""``make versions`` prints a table for people: no ``None`` or ``NaN`` in it."""

from __future__ import annotations

import numpy as np
import pandas as pd

from tools.segment_versions import format_versions


def test_missing_values_print_as_blanks_and_the_current_version_is_marked():
    frame = pd.DataFrame(
        {
            "version_id": [2, 1],
            "as_of_date": pd.to_datetime(["2026-07-01", "2026-06-30"]),
            "status": ["rejected", "published"],
            "mode": ["full", "assign"],
            "k": [pd.NA, 5],
            "silhouette": [np.nan, 0.4567],
            "stability_ari": [None, 0.99],
            "customer_count": [10, 4972],
            "is_current": [False, True],
            "status_reason": ["silhouette 0.1 < 0.25", None],
        }
    )

    text = format_versions(frame)

    for missing in ("None", "NaN", "nan", "<NA>", "NaT"):
        assert missing not in text
    header, rejected, published = text.splitlines()
    assert header.split()[:3] == ["version", "current", "as-of"]
    assert "silhouette 0.1 < 0.25" in rejected and "*" not in rejected
    assert published.split()[:3] == ["1", "*", "2026-06-30"]
    assert "0.457" in published and "4,972" in published
