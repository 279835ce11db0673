"""How actionable the segments are on the demo profiles, for several segmentation configs.

Generates a demo profile (``tools.demo_data``), computes the customer features from its landing
files the way the marts compute them (``tools/demo_features.py``), decides a first
version with ``compute_candidate`` (no warehouse) for each variant, and prints per variant: k,
the clusters' silhouette, stability, acceptance, the purity of each business separation (the
share of a group's members sitting in segments where the group is the majority; both sides) and,
on the planted profile, the adjusted Rand index against the planted segments. The numbers of
docs/reclustering.md#business-guards come from:

    python -m tools.segment_separation --profile realistic --customers 20000
    python -m tools.segment_separation --profile planted --customers 4000
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import adjusted_rand_score

from ml_tasks.config import SegmentationConfig
from ml_tasks.profiles import FIXED_SEGMENTS
from ml_tasks.recluster import compute_candidate
from tools.demo_data import PROFILES, generate_demo_data
from tools.demo_features import customer_features

# The selection before the guards, and the alternatives measured against the shipped default.
VARIANTS: dict[str, dict] = {
    "before (k 2-8, no guards)": {
        "selection": {"k_min": 2},
        "guards": {"keep_apart": []},
        "acceptance": {"min_silhouette": 0.25},
    },
    "k floor 4 only": {"guards": {"keep_apart": []}},
    "k floor 4 + rank scaling": {"guards": {"keep_apart": []}, "preprocessing": {"scaler": "rank"}},
    "guards, k 2-8": {"selection": {"k_min": 2}},
    "default (guards + k floor 4)": {},
}


def separations(buyers: pd.DataFrame) -> dict[str, np.ndarray]:
    spend = buyers["total_spend"].sort_values(ascending=False, kind="mergesort")
    reached = int(np.searchsorted((spend.cumsum() / spend.sum()).to_numpy(), 0.4)) + 1
    return {
        "top40%": buyers.index.isin(spend.index[:reached]),
        "lapsed180": (buyers["recency_days"] > 180).to_numpy(),
        "one-time": (buyers["order_count"] == 1).to_numpy(),
    }


def _purity(members: np.ndarray, segment: np.ndarray) -> float:
    share = pd.Series(members).groupby(segment).mean()
    return float(np.isin(segment[members], share.index[share > 0.5]).mean())


def measure(frame: pd.DataFrame, as_of, truth: pd.Series | None, overrides: dict) -> dict:
    started = time.perf_counter()
    computed = compute_candidate(
        frame, as_of, None, SegmentationConfig().with_overrides(**overrides)
    )
    candidate = computed.candidate
    buyers = frame[frame["has_orders"]]
    segment = candidate.assignments.set_index("customer_id")["segment_id"][buyers.index]
    fixed = candidate.profiles["segment_id"].isin(list(FIXED_SEGMENTS))
    row = {
        "k": candidate.k,
        "segments": int((~fixed).sum()),
        "silhouette": round(candidate.scores["silhouette"], 3),
        "stability": round(candidate.scores["stability_ari"], 3),
        "status": candidate.status,
    }
    for name, members in separations(buyers).items():
        worst = min(_purity(members, segment.to_numpy()), _purity(~members, segment.to_numpy()))
        row[f"purity {name}"] = round(worst, 3)
    if truth is not None:
        row["ARI"] = round(adjusted_rand_score(truth[buyers.index], segment), 3)
    row["seconds"] = round(time.perf_counter() - started)
    return row


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.segment_separation", description=__doc__)
    parser.add_argument("--profile", choices=PROFILES, default="realistic")
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="segment-separation-") as folder:
        root = Path(folder)
        summary = generate_demo_data(
            root / "landing",
            root / "truth",
            n_customers=args.customers,
            seed=args.seed,
            profile=args.profile,
        )
        frame = customer_features(root, summary.as_of_date)
        truth = pd.read_csv(root / "truth" / "customers.csv", dtype=str)
    frame["has_orders"] = frame["order_count"] > 0
    frame["has_only_voided_orders"] = ~frame["has_orders"] & (frame["voided_order_count"] > 0)
    planted = truth.set_index("customer_id")["segment"] if args.profile == "planted" else None
    buyers = frame[frame["has_orders"]]
    print(
        f"{args.profile} profile, {len(frame):,} customers, {len(buyers):,} buyers; "
        + ", ".join(f"{name} {members.mean():.1%}" for name, members in separations(buyers).items())
    )
    rows = {name: measure(frame, summary.as_of_date, planted, o) for name, o in VARIANTS.items()}
    print(pd.DataFrame(rows).T.to_markdown())
    return 0


if __name__ == "__main__":
    sys.exit(main())
