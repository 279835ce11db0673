"""The recluster's deciding part alone: DataFrames in, a candidate version out, no warehouse."""

from __future__ import annotations

from datetime import date, timedelta

import pandas as pd
import pytest
from sklearn.metrics import adjusted_rand_score

from ml_tasks.config import SegmentationConfig
from ml_tasks.profiles import PROSPECT_SEGMENT_NAME, VOIDED_SEGMENT_ID, VOIDED_SEGMENT_NAME
from ml_tasks.recluster import BaseVersion, ReclusterError, compute_candidate
from tests.ml_tasks.synthetic import GROUPS, nudge, planted_customers

NIGHT = date(2026, 6, 1)
# These tests follow the planted groups through the clustering mechanics; the business guards,
# which split groups mixing one-time and repeat buyers on purpose, have their own tests
# (test_guards.py, test_segments_on_demo_profiles.py).
CONFIG = SegmentationConfig().with_overrides(
    selection={"k_max": 7, "random_states": 2, "bootstrap_resamples": 3},
    guards={"keep_apart": []},
)


def _features(customers: pd.DataFrame) -> pd.DataFrame:
    """The planted customers as ``load_customer_features`` returns them."""
    frame = customers.drop(columns="group").sort_index()
    frame["has_orders"] = frame["order_count"] > 0
    return frame


def _as_base(computed, version_id: int) -> BaseVersion:
    """A computed version as the next night would read it back from the warehouse."""
    assignments = computed.candidate.assignments
    profiles = computed.candidate.profiles
    return BaseVersion(
        version_id=version_id,
        members=assignments.set_index("customer_id")["segment_id"],
        names=dict(zip(profiles["segment_id"], profiles["segment_name"], strict=True)),
        model_version_id=version_id,
        stored_model=computed.fitted_model,
        model_stability=computed.candidate.scores["stability_ari"],
    )


def test_a_first_night_fits_the_planted_groups_without_a_warehouse():
    customers = planted_customers(1600, seed=21)

    computed = compute_candidate(_features(customers), NIGHT, None, CONFIG, next_segment_id=1)

    candidate = computed.candidate
    assert (candidate.status, candidate.mode, candidate.k) == ("candidate", "full", len(GROUPS))
    assert computed.rejected_reasons == []
    assert computed.fitted_model is not None and candidate.model is not None
    assert candidate.previous_version_id is None and candidate.transitions is None
    segment_of = candidate.assignments.set_index("customer_id")["segment_id"]
    buyers = customers[customers["group"] != "prospect"]
    assert adjusted_rand_score(buyers["group"], segment_of.loc[buyers.index]) > 0.95
    assert (segment_of.loc[customers["group"] == "prospect"] == 0).all()
    assert set(candidate.lineage["outcome"]) == {"new", "fixed"}
    assert candidate.profiles["customer_count"].sum() == len(customers)


def test_a_quiet_next_night_assigns_to_the_base_model_and_keeps_ids_and_names():
    customers = planted_customers(1600, seed=22)
    first = compute_candidate(_features(customers), NIGHT, None, CONFIG)
    base = _as_base(first, version_id=7)

    second = compute_candidate(
        _features(nudge(customers, seed=23)),
        NIGHT + timedelta(days=1),
        base,
        CONFIG,
        next_segment_id=len(GROUPS) + 1,
    )

    candidate = second.candidate
    assert candidate.mode == "assign", candidate.mode_reason
    assert (candidate.model_version_id, candidate.previous_version_id) == (7, 7)
    assert second.fitted_model is None and candidate.model is None
    kept = candidate.assignments.set_index("customer_id")["segment_id"]
    assert (kept == base.members.reindex(kept.index)).mean() > 0.98
    assert set(candidate.profiles["segment_name"]) == set(base.names.values())
    assert set(candidate.lineage["outcome"]) <= {"kept", "fixed"}


def test_contradictory_or_empty_input_is_a_clear_error():
    customers = _features(planted_customers(200, seed=24))
    with pytest.raises(ReclusterError, match="k override needs a full recluster"):
        compute_candidate(customers, NIGHT, None, CONFIG, mode="assign", k=3)
    with pytest.raises(ReclusterError, match="Assign mode needs a reusable model"):
        compute_candidate(customers, NIGHT, None, CONFIG, mode="assign")
    prospects = customers.assign(has_orders=False)
    with pytest.raises(ReclusterError, match="No customer has an order"):
        compute_candidate(prospects, NIGHT, None, CONFIG)
    # No slice at all (never built, or deleted by retention): say so, and what to rerun.
    with pytest.raises(ReclusterError, match=r"no slice for 2026-06-01: .* clear dbt_build"):
        compute_candidate(customers.iloc[:0], NIGHT, None, CONFIG)


def test_a_customer_whose_every_order_was_voided_is_labelled_so_not_as_a_prospect():
    """Cancelled, returned or zero orders only (``voided_order_count`` > 0, no counted order,
    the marts' lifecycle stage ``voided``): a fixed segment of its own, never clustered."""
    customers = _features(planted_customers(400, seed=25, prospects=3))
    voided = customers.loc[customers["order_count"] == 0].index[:2]
    customers["has_only_voided_orders"] = customers.index.isin(voided)

    candidate = compute_candidate(customers, NIGHT, None, CONFIG).candidate

    labels = candidate.assignments.set_index("customer_id")
    assert (labels.loc[voided, "segment_id"] == VOIDED_SEGMENT_ID).all()
    assert (labels.loc[voided, "segment_name"] == VOIDED_SEGMENT_NAME).all()
    prospect = customers.index[(customers["order_count"] == 0) & ~customers.index.isin(voided)]
    assert (labels.loc[prospect, "segment_name"] == PROSPECT_SEGMENT_NAME).all()
    profile = candidate.profiles.set_index("segment_id").loc[VOIDED_SEGMENT_ID]
    assert profile["customer_count"] == 2
    assert "cancelled, returned or worth nothing" in profile["description"]
    lineage = candidate.lineage.set_index("segment_id")
    assert lineage.loc[VOIDED_SEGMENT_ID, "outcome"] == "fixed"
