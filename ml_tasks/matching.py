"""Stable segment ids: the clusters of a new fit inherit the ids of the previous version's
segments they most resemble, judged by shared members.

The overlap of a new cluster and a previous segment is the Jaccard index of their member sets.
The Hungarian method (``scipy.optimize.linear_sum_assignment``) pairs clusters and segments so
the total overlap is largest; a pair keeps the previous id only when its overlap reaches
``min_member_overlap``. A cluster left unpaired is a new segment with an id never used before; a
previous segment left unpaired is retired. Prospects and unassigned customers have fixed ids and
are not matched.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.optimize import linear_sum_assignment


@dataclass(frozen=True)
class SegmentMatch:
    segment_id_by_label: dict[int, int]  # new cluster label -> segment id
    kept: dict[int, float]  # segment id -> member overlap with its previous self
    new: list[int]  # ids of segments that did not exist before
    retired: list[int]  # previous segment ids with no successor


def member_overlap(previous: pd.Series, labels: pd.Series) -> pd.DataFrame:
    """Jaccard overlap of every previous segment (rows) with every new cluster (columns).

    ``previous`` maps customer id to previous segment id, ``labels`` customer id to new label.
    """
    rows = np.array(sorted(previous.unique()))
    columns = np.array(sorted(labels.unique()))
    common_previous, common_labels = in_both(previous, labels)
    # Customers in both, counted per (segment, cluster) pair: codes into the sorted ids.
    pairs = np.searchsorted(rows, common_previous) * len(columns) + np.searchsorted(
        columns, common_labels
    )
    shared = pd.DataFrame(
        np.bincount(pairs, minlength=len(rows) * len(columns)).reshape(len(rows), len(columns)),
        index=pd.Index(rows, name=previous.name),
        columns=pd.Index(columns, name=labels.name),
    )
    previous_sizes = previous.value_counts().reindex(shared.index).to_numpy()[:, None]
    label_sizes = labels.value_counts().reindex(shared.columns).to_numpy()[None, :]
    return shared / (previous_sizes + label_sizes - shared)


def in_both(previous: pd.Series, current: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """The values of the customers (index) in both series, paired: one join of the two id
    indexes (a merge when both are sorted, as the warehouse returns them), not a hash lookup
    per id, which at a million customers costs seconds."""
    _, in_previous, in_current = previous.index.join(
        current.index, how="inner", return_indexers=True
    )
    return _taken(previous.to_numpy(), in_previous), _taken(current.to_numpy(), in_current)


def _taken(values: np.ndarray, indexer: np.ndarray | None) -> np.ndarray:
    """``values`` at a join's ``indexer`` (None: all of them, in order)."""
    return values if indexer is None else values[indexer]


def _side_by_side(previous: pd.Series | None, current: pd.Series) -> pd.DataFrame:
    """Both versions' segment ids (nullable integers) of every customer of either, indexed by
    customer id: ``previous_segment_id`` and ``segment_id`` (one join, as ``in_both``)."""
    previous = pd.Series(dtype="Int64") if previous is None else previous
    index, in_previous, in_current = previous.index.join(
        current.index, how="outer", return_indexers=True
    )

    def at(series: pd.Series, indexer: np.ndarray | None):
        values = series.astype("Int64").array
        return values if indexer is None else values.take(indexer, allow_fill=True)

    return pd.DataFrame(
        {"previous_segment_id": at(previous, in_previous), "segment_id": at(current, in_current)},
        index=index,
    )


def match_segments(
    previous: pd.Series | None,
    labels: pd.Series,
    *,
    min_member_overlap: float,
    next_id: int,
    first_ids: dict[int, int] | None = None,
) -> SegmentMatch:
    """Give every new cluster label a segment id.

    Without a previous version, labels get ``first_ids`` (e.g. ranked by value). Otherwise
    matched clusters keep their id, and unmatched ones get ``next_id``, ``next_id + 1``, ...
    in order of size (largest first).
    """
    clusters = sorted(int(label) for label in labels.unique())
    if previous is None or previous.empty:
        mapping = first_ids or {label: next_id + rank for rank, label in enumerate(clusters)}
        return SegmentMatch(mapping, {}, sorted(mapping.values()), [])
    overlap = member_overlap(previous, labels)
    rows, columns = linear_sum_assignment(overlap.to_numpy(), maximize=True)
    mapping: dict[int, int] = {}
    kept: dict[int, float] = {}
    for row, column in zip(rows, columns, strict=True):
        score = float(overlap.iat[row, column])
        if score >= min_member_overlap:
            segment_id = int(overlap.index[row])
            mapping[int(overlap.columns[column])] = segment_id
            kept[segment_id] = round(score, 6)
    sizes = labels.value_counts()
    unmatched = sorted(
        (label for label in clusters if label not in mapping), key=lambda label: -sizes[label]
    )
    new = []
    for offset, label in enumerate(unmatched):
        mapping[label] = next_id + offset
        new.append(next_id + offset)
    retired = sorted(int(s) for s in overlap.index if int(s) not in kept)
    return SegmentMatch(mapping, kept, new, retired)


def transitions(previous: pd.Series | None, current: pd.Series) -> pd.DataFrame:
    """Customers per (from segment, to segment) between two versions; a customer only in one
    version has a null on the other side."""
    frame = _side_by_side(previous, current).set_axis(
        ["from_segment_id", "to_segment_id"], axis="columns"
    )
    counts = (
        frame.value_counts(dropna=False)
        .rename("customer_count")
        .reset_index()
        .sort_values(["from_segment_id", "to_segment_id"], na_position="first")
    )
    counts["customer_count"] = counts["customer_count"].astype(np.int64)
    return counts.reset_index(drop=True)


def membership_changes(previous: pd.Series | None, current: pd.Series) -> pd.DataFrame:
    """Per customer of either version: previous and new segment id and the change, one of
    ``entered`` (not in the previous version), ``exited`` (not in this one), ``moved`` (another
    segment) or ``stayed``. Without a previous version every customer entered."""
    frame = _side_by_side(previous, current)
    before = frame["previous_segment_id"].isna().to_numpy()
    after = frame["segment_id"].isna().to_numpy()
    other = (frame["previous_segment_id"] != frame["segment_id"]).fillna(False).to_numpy(bool)
    frame["change"] = np.select(
        [before, after, other],
        ["entered", "exited", "moved"],
        default="stayed",
    )
    frame.index.name = "customer_id"
    return frame.reset_index().sort_values("customer_id", ignore_index=True)
