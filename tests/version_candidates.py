"""Test helper: a segment-version candidate from a customer -> segment mapping."""

from __future__ import annotations

from datetime import date

import pandas as pd

from ml_tasks.versions import Candidate


def make_candidate(as_of: date, segment_of: dict[str, int], **kwargs) -> Candidate:
    """A candidate version of ``as_of`` putting each customer in its segment."""
    assignments = pd.DataFrame(
        {
            "customer_id": list(segment_of),
            "segment_id": list(segment_of.values()),
            "segment_name": [f"Segment {s}" for s in segment_of.values()],
        }
    )
    sizes = assignments.groupby("segment_id").size()
    profiles = pd.DataFrame(
        {
            "segment_id": sizes.index,
            "segment_name": [f"Segment {s}" for s in sizes.index],
            "description": [f"Segment {s}: a test segment" for s in sizes.index],
            "customer_count": sizes.to_numpy(),
            "share": (sizes / sizes.sum()).to_numpy(),
            "top_traits": [[] for _ in sizes.index],
        }
    )
    return Candidate(as_of, "test", "kmeans", len(sizes), assignments, profiles, **kwargs)
