"""The segment report page rendered from hand-made table rows (no warehouse): every section,
the numbers as given, nothing loaded from outside, predictions only when there are some."""

from __future__ import annotations

import json
import re
from datetime import date

import pandas as pd
import pytest

from reporting.segment_report import SECTIONS, ReportData, render_report

# Anything a browser would fetch: an address, a script, a stylesheet, a CSS url() that is not a
# reference inside the page (SVG clip paths use url(#id)).
EXTERNAL = re.compile(
    r"https?:|//[a-z0-9.-]+\.[a-z]{2,}/|<script|<link|@import|url\((?!#)|src=", re.I
)


def _data(**changes: object) -> ReportData:
    by_k = pd.DataFrame(
        {
            "k": [2, 3, 4],
            "silhouette": [0.31, 0.45, 0.40],
            "davies_bouldin": [1.2, 0.9, 1.0],
            "calinski_harabasz": [2500.0, 3500.0, 3000.0],
            "gap": [0.8, 1.1, 1.2],
            "inertia": [300.0, 200.0, 180.0],
            "stability_ari": [0.99, 0.97, 0.80],
        }
    )
    traits = json.dumps([{"feature": "total_spend", "phrase": "spends 3x", "z_score": 1.8}])
    data = ReportData(
        version={
            "version_id": 7,
            "as_of_date": date(2026, 6, 30),
            "status": "published",
            "algorithm": "kmeans",
            "k": 3,
            "customer_count": 1234,
            "silhouette": 0.45,
            "stability_ari": 0.97,
            "mode": "full",
            "mode_reason": "drift: total_spend PSI 0.310 > 0.2",
            "previous_version_id": 6,
            "run_id": "scheduled__2026-06-30",
            "scores": {
                "selection": {"by_k": by_k.to_dict("records"), "notes": []},
                "drift": {"feature_psi": {"total_spend": 0.31, "order_count": 0.05}},
            },
            "config": {"refresh": {"max_feature_psi": 0.2, "full_every_days": 7}},
        },
        by_k=by_k,
        profiles=pd.DataFrame(
            {
                "segment_id": [0, 1, 2, 3],
                "segment_name": ["Prospects", "Loyal", "Lapsed", "New"],
                "customer_count": [34, 600, 400, 200],
                "share": [0.0276, 0.486, 0.324, 0.162],
                "description": ["no order yet", "buys often", "gone quiet", "just joined"],
                "top_traits": [None, traits, traits, traits],
            }
        ),
        feature_stats=pd.DataFrame(
            {
                "segment_id": [1],
                "feature": ["total_spend"],
                "mean": [900.0],
                "median": [850.0],
                "population_mean": [300.0],
                "z_score": [1.8],
            }
        ),
        history=pd.DataFrame(
            {
                "version_id": [6, 6, 7, 7],
                "as_of_date": [date(2026, 6, 29)] * 2 + [date(2026, 6, 30)] * 2,
                "status": ["superseded"] * 2 + ["published"] * 2,
                "segment_id": [1, 2, 1, 2],
                "segment_name": ["Loyal", "Lapsed"] * 2,
                "customer_count": [590, 410, 600, 400],
                "share": [0.5, 0.4, 0.5, 0.3],
            }
        ),
        transitions=pd.DataFrame(
            {
                "from_version_id": [6, 6, 6],
                "from_segment_id": [1, 1, 2],
                "to_segment_id": [1, 2, 2],
                "customer_count": [580, 10, 390],
            }
        ),
        projection=pd.DataFrame(
            {"x": [0.0, 1.0, 2.0], "y": [1.0, 0.0, 2.0], "segment_id": [1, 2, 3]}
        ),
        cohorts=pd.DataFrame(
            {
                "cohort_month": pd.to_datetime(["2026-01-01", "2026-01-01", "2026-02-01"]),
                "months_since_first_order": [0, 1, 0],
                "cohort_size": [100, 100, 80],
                "retention_rate": [1.0, 0.42, 1.0],
            }
        ),
        rfm=pd.DataFrame(
            {
                "recency_score": [5, 1],
                "frequency_score": [5, 1],
                "customers": [50, 70],
                "avg_monetary_score": [4.5, 1.2],
            }
        ),
        loads=pd.DataFrame(
            {
                "loaded_at": ["2026-07-01 02:05"],
                "run_id": ["scheduled__2026-06-30"],
                "source": ["orders"],
                "partitions": [1],
                "rows_loaded": [80],
                "rows_quarantined": [2],
            }
        ),
        quarantine=pd.DataFrame(
            {
                "as_of_date": [date(2026, 6, 30)],
                "source": ["orders"],
                "reason": ["negative_amount"],
                "rows": [2],
            }
        ),
        gates=pd.DataFrame(
            {
                "as_of_date": [date(2026, 6, 30)],
                "stage": ["raw"],
                "expectations": [40],
                "failed": [0],
                "blocking_failed": [0],
            }
        ),
    )
    for name, value in changes.items():
        setattr(data, name, value)
    return data


def test_every_section_with_the_tables_numbers_and_nothing_external():
    page = render_report(_data())

    for key, title in SECTIONS:
        assert f"<section id='{key}'><h2>{title}</h2>" in page
    assert not EXTERNAL.search(page)
    assert "data-chosen-k='3'" in page and "<tr data-k='3' class='chosen'" in page
    cards = re.findall(r"data-segment-id='(\d+)' data-customer-count='(\d+)'", page)
    assert cards == [("0", "34"), ("1", "600"), ("2", "400"), ("3", "200")]
    assert "drift: total_spend PSI 0.310 &gt; 0.2" in page
    assert "negative_amount" in page and "42%" in page
    assert "No predicted value or churn risk" in page


@pytest.mark.parametrize("extra_column", [False, True])
def test_predictions_are_shown_when_present(extra_column: bool):
    predictions = pd.DataFrame(
        {"segment_id": [1, 2], "predicted_value": [812.5, 120.0], "churn_risk": [0.05, 0.61]}
    )
    data = _data(predictions=predictions)
    if extra_column:
        data.profiles["avg_churn_risk"] = [0.0, 0.05, 0.61, 0.2]

    page = render_report(data)

    assert "predicted value: 812.50, churn risk: 0.05 (average)" in page
    assert ("avg churn risk: 0.61" in page) is extra_column
    assert "No predicted value" not in page


def test_an_assign_night_and_a_first_version_render_too():
    data = _data(by_k=pd.DataFrame(), transitions=pd.DataFrame(), projection=pd.DataFrame())
    data.version = {**data.version, "mode": "assign", "previous_version_id": None}
    data.version["scores"] = {"drift": {}}

    page = render_report(data)

    assert "data-chosen-k='3'" in page
    assert "there is no previous version" in page
    assert "No drift measured" in page
