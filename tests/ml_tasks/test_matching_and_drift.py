"""Stable ids by member overlap, transitions, and drift by population stability index."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ml_tasks.drift import (
    bin_shares,
    feature_psi,
    feature_reference,
    population_stability_index,
    segment_share_change,
)
from ml_tasks.matching import match_segments, member_overlap, transitions


def _series(mapping: dict[str, int]) -> pd.Series:
    return pd.Series(mapping)


def test_relabelled_clusters_keep_their_previous_ids():
    previous = _series({f"C{i}": 1 + i % 3 for i in range(30)})
    # The refit numbers the same groups differently.
    labels = previous.map({1: 2, 2: 0, 3: 1})
    match = match_segments(previous, labels, min_member_overlap=0.3, next_id=4)
    assert match.segment_id_by_label == {2: 1, 0: 2, 1: 3}
    assert match.kept == {1: 1.0, 2: 1.0, 3: 1.0}
    assert match.new == [] and match.retired == []


def test_an_unmatched_cluster_is_new_and_an_unmatched_segment_retired():
    previous = _series({f"C{i}": 1 if i < 10 else 2 for i in range(20)})
    labels = _series({f"C{i}": 0 for i in range(10)} | {f"N{i}": 1 for i in range(8)})
    match = match_segments(previous, labels, min_member_overlap=0.3, next_id=7)
    assert match.segment_id_by_label == {0: 1, 1: 7}
    assert match.new == [7] and match.retired == [2]


def test_a_weak_overlap_does_not_keep_an_id():
    previous = _series({f"C{i}": 1 for i in range(10)})
    labels = _series({f"C{i}": 0 for i in range(2)} | {f"N{i}": 0 for i in range(18)})
    overlap = member_overlap(previous, labels)
    assert overlap.loc[1, 0] == pytest.approx(2 / 28)
    match = match_segments(previous, labels, min_member_overlap=0.3, next_id=2)
    assert match.segment_id_by_label == {0: 2} and match.retired == [1]


def test_the_first_version_uses_the_given_ids():
    labels = _series({"A": 0, "B": 1})
    match = match_segments(None, labels, min_member_overlap=0.3, next_id=1, first_ids={0: 2, 1: 1})
    assert match.segment_id_by_label == {0: 2, 1: 1}


def test_transitions_count_moves_arrivals_and_departures():
    previous = _series({"A": 1, "B": 1, "C": 2, "D": 2})
    current = _series({"A": 1, "B": 2, "C": 2, "E": 3})
    moves = transitions(previous, current)
    got = {
        (None if pd.isna(f) else int(f), None if pd.isna(t) else int(t)): int(n)
        for f, t, n in moves.itertuples(index=False)
    }
    assert got == {(None, 3): 1, (1, 1): 1, (1, 2): 1, (2, 2): 1, (2, None): 1}


def test_psi_is_zero_for_the_same_population_and_grows_with_shift():
    rng = np.random.default_rng(0)
    reference = pd.DataFrame({"spend": rng.lognormal(3, 1, 5000)})
    stored = feature_reference(reference)
    same = feature_psi(stored, pd.DataFrame({"spend": rng.lognormal(3, 1, 5000)}))["spend"]
    shifted = feature_psi(stored, pd.DataFrame({"spend": rng.lognormal(3.5, 1, 5000)}))["spend"]
    assert same < 0.02
    assert shifted > 0.2
    assert feature_psi(stored, pd.DataFrame({"other": [1.0]}))["spend"] == float("inf")


def test_psi_matches_a_hand_computation():
    # Two bins, 50/50 expected, 80/20 actual: 0.3 ln(1.6) + (-0.3) ln(0.4) = 0.4159
    assert population_stability_index([0.5, 0.5], [0.8, 0.2]) == pytest.approx(0.41589, abs=1e-4)
    shares = bin_shares(pd.Series([1.0, 2.0, np.nan, 5.0]), [1.5, 3.0])
    assert list(shares) == [0.25, 0.25, 0.25, 0.25]


def test_segment_share_change_is_absolute_per_segment():
    before = _series({"A": 1, "B": 1, "C": 2, "D": 2})
    after = _series({"A": 1, "B": 2, "C": 2, "D": 2})
    assert segment_share_change(before, after) == {1: 0.25, 2: 0.25}
