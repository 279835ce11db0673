"""The plain script a guide-following analyst writes: the comparison the benchmark makes.

``python -m tools.notebook_baseline LANDING_DIR OUT_CSV`` reads every landing CSV with pandas,
cleans it the way the usual RFM-segmentation guides teach (drop duplicate rows, keep completed
orders with a positive amount, keep the last version of each CRM record), builds RFM and
engagement features per customer, scales them with ``StandardScaler``, runs ``KMeans`` for
k = 2..8, picks the k with the best silhouette (on a sample, as the guides do for speed) and
writes one label per buying customer to ``OUT_CSV`` (``customer_id,segment_id``, segments from 1).

It is deliberately not tuned and knows nothing of the pipeline: no quarantine, no identity
resolution, no late-data handling, no log scaling. The benchmark runs it in its own process
(``tools.bench``) on the same landing data as the pipeline, so its time and peak memory are its
own; the labels are compared to the planted truth with ``tools.planted_truth``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
from sklearn.cluster import KMeans
from sklearn.metrics import silhouette_score
from sklearn.preprocessing import StandardScaler

AS_OF = pd.Timestamp("2026-06-30 23:59:59")  # the demo's as-of date


def read_source(landing_dir: Path, source: str) -> pd.DataFrame:
    files = sorted((landing_dir / source).glob(f"date=*/{source}.csv"))
    return pd.concat([pd.read_csv(f, dtype=str) for f in files], ignore_index=True)


def main(landing_dir: Path, out_csv: Path) -> None:
    # 1. Load
    customers = read_source(landing_dir, "customers")
    orders = read_source(landing_dir, "orders")
    web = read_source(landing_dir, "web_events")
    email = read_source(landing_dir, "email_events")

    # 2. Clean
    customers["updated_at"] = pd.to_datetime(customers["updated_at"], errors="coerce")
    customers = customers.sort_values("updated_at").drop_duplicates("customer_id", keep="last")
    orders = orders.drop_duplicates("order_id")
    orders["ordered_at"] = pd.to_datetime(orders["ordered_at"], errors="coerce")
    orders["amount"] = pd.to_numeric(orders["amount"], errors="coerce")
    orders = orders.dropna(subset=["customer_id", "ordered_at", "amount"])
    orders = orders[(orders["status"] == "completed") & (orders["amount"] > 0)]
    orders = orders[orders["ordered_at"] <= AS_OF]
    web = web.drop_duplicates("event_id").dropna(subset=["customer_id"])
    email = email.drop_duplicates("event_id").dropna(subset=["customer_id"])

    # 3. RFM features
    rfm = orders.groupby("customer_id").agg(
        last_order=("ordered_at", "max"),
        frequency=("order_id", "count"),
        monetary=("amount", "sum"),
    )
    rfm["recency_days"] = (AS_OF - rfm["last_order"]).dt.days
    rfm["avg_order_value"] = rfm["monetary"] / rfm["frequency"]
    signup = pd.to_datetime(customers.set_index("customer_id")["signup_at"], errors="coerce")
    rfm["tenure_days"] = (AS_OF - signup.reindex(rfm.index)).dt.days
    rfm = rfm.drop(columns="last_order")

    # 4. Engagement features
    web_counts = pd.crosstab(web["customer_id"], web["event_type"])
    email_counts = pd.crosstab(email["customer_id"], email["event_type"])
    engagement = pd.DataFrame(index=rfm.index)
    engagement["sessions"] = web.groupby("customer_id")["session_id"].nunique()
    engagement["page_views"] = web_counts.get("page_view")
    engagement["add_to_cart"] = web_counts.get("add_to_cart")
    sent = email_counts.get("sent")
    engagement["open_rate"] = email_counts.get("open") / sent
    engagement["click_rate"] = email_counts.get("click") / sent
    features = rfm.join(engagement).fillna(0)

    # 5. Scale and cluster
    X = StandardScaler().fit_transform(features)
    scores = {}
    for k in range(2, 9):
        labels = KMeans(n_clusters=k, n_init=10, random_state=42).fit_predict(X)
        scores[k] = silhouette_score(X, labels, sample_size=min(10_000, len(X)), random_state=42)
        print(f"k={k}: silhouette {scores[k]:.3f}", file=sys.stderr)
    best_k = max(scores, key=scores.get)
    model = KMeans(n_clusters=best_k, n_init=10, random_state=42).fit(X)

    # 6. Write the labels
    out = pd.DataFrame({"customer_id": features.index, "segment_id": model.labels_ + 1})
    out.to_csv(out_csv, index=False)
    print(f"best k={best_k}; {len(out)} customers labelled in {out_csv}", file=sys.stderr)


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
