"""The nightly recluster on a real DuckDB warehouse: model choice, stable ids across nights,
new behaviour, drift-driven refresh, acceptance and absent sources."""

from __future__ import annotations

import json
from datetime import date, timedelta

import duckdb
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import adjusted_rand_score

from ml_tasks import versions
from ml_tasks.config import SegmentationConfig
from ml_tasks.features import fingerprint
from ml_tasks.profiles import PROSPECT_SEGMENT_ID, VOIDED_SEGMENT_ID, VOIDED_SEGMENT_NAME
from ml_tasks.recluster import ReclusterError, recluster
from tests.ml_tasks.synthetic import GROUPS, NEW_GROUP, nudge, planted_customers, write_features

NIGHT = date(2026, 6, 1)
# The shipped defaults, with a lighter sweep: these tests judge behaviour, not the last decimal.
# They follow the planted groups through the nightly flow; the business guards, which split
# groups mixing one-time and repeat buyers on purpose, have their own tests (test_guards.py,
# test_segments_on_demo_profiles.py).
CONFIG = SegmentationConfig().with_overrides(
    selection={"k_max": 7, "random_states": 2, "bootstrap_resamples": 3},
    guards={"keep_apart": []},
)


@pytest.fixture
def con(tmp_path):
    with duckdb.connect(str(tmp_path / "warehouse.duckdb")) as connection:
        yield connection


def _members(con, version_id: int) -> pd.Series:
    return versions.version_members(con, version_id)


def _night(con, night: date, frame: pd.DataFrame, **kwargs) -> dict:
    write_features(con, night, frame)
    result = recluster(con, night, config=kwargs.pop("config", CONFIG), **kwargs)
    if result["status"] == "candidate":
        versions.publish_version(con, result["version_id"])
    return result


def test_first_night_chooses_the_planted_groups_and_ranks_ids_by_value(con):
    customers = planted_customers(2400, seed=1)
    result = _night(con, NIGHT, customers)

    assert result["k"] == len(GROUPS)
    assert result["mode"] == "full"
    members = _members(con, result["version_id"])
    buyers = customers[customers["group"] != "prospect"]
    assert adjusted_rand_score(buyers["group"], members.loc[buyers.index]) > 0.95
    assert (members.loc[customers["group"] == "prospect"] == 0).all()
    # Segment 1 is the best-spending group, the champions.
    champions = buyers.index[buyers["group"] == "champions"]
    assert members.loc[champions].mode().iloc[0] == 1
    scores, stability, config = con.execute(
        "select scores, stability_ari, config from segments.segment_versions where version_id = ?",
        [result["version_id"]],
    ).fetchone()
    by_k = {row["k"]: row for row in json.loads(scores)["selection"]["by_k"]}
    assert set(by_k) == set(range(4, 8))  # from the business floor k_min = 4
    assert by_k[len(GROUPS)]["silhouette"] == max(row["silhouette"] for row in by_k.values())
    assert stability > 0.9
    assert json.loads(config)["acceptance"]["min_silhouette"] == 0.1


def test_a_quiet_second_night_keeps_almost_everyone_in_the_same_segment(con):
    customers = planted_customers(2400, seed=2)
    first = _night(con, NIGHT, customers)
    second = _night(con, NIGHT + timedelta(days=1), nudge(customers, seed=3), mode="full")

    assert second["mode"] == "full"
    before, after = _members(con, first["version_id"]), _members(con, second["version_id"])
    same = (before == after.reindex(before.index)).mean()
    assert same >= 0.95, f"only {same:.1%} kept their segment id"
    names = con.execute(
        "select version_id, segment_id, segment_name from segments.segment_profiles"
    ).df()
    by_version = names.pivot(index="segment_id", columns="version_id", values="segment_name")
    assert (by_version[first["version_id"]] == by_version[second["version_id"]]).all()
    moves = con.execute(
        "select sum(customer_count) from segments.segment_transitions "
        "where to_version_id = ? and from_segment_id = to_segment_id",
        [second["version_id"]],
    ).fetchone()[0]
    assert moves == (before == after.reindex(before.index)).sum()


def test_a_new_behaviour_group_gets_a_new_id_and_the_others_keep_theirs(con):
    customers = planted_customers(2400, seed=4)
    first = _night(con, NIGHT, customers)
    newcomers = planted_customers(400, seed=5, groups=dict([NEW_GROUP]), prefix="N", prospects=0)
    tonight = pd.concat([nudge(customers, seed=6), newcomers])
    second = _night(con, NIGHT + timedelta(days=1), tonight, mode="full")

    assert second["k"] == len(GROUPS) + 1
    before, after = _members(con, first["version_id"]), _members(con, second["version_id"])
    old_ids = set(before.unique())
    new_ids = set(after.loc[newcomers.index].unique())
    assert len(new_ids) == 1 and not new_ids & old_ids
    assert new_ids == {max(old_ids) + 1}
    assert (before == after.reindex(before.index)).mean() >= 0.95
    lineage = dict(
        con.execute(
            "select segment_id, outcome from segments.segment_lineage where version_id = ?",
            [second["version_id"]],
        ).fetchall()
    )
    assert lineage[new_ids.pop()] == "new"
    assert {lineage[s] for s in old_ids if s > 0} == {"kept"}


def test_a_vanished_group_is_retired_and_its_id_never_reused(con):
    customers = planted_customers(2400, seed=7)
    first = _night(con, NIGHT, customers)
    lapsed = customers.index[customers["group"] == "lapsed"]
    lapsed_id = int(_members(con, first["version_id"]).loc[lapsed].mode().iloc[0])
    second = _night(con, NIGHT + timedelta(days=1), customers.drop(lapsed), mode="full")
    third = _night(con, NIGHT + timedelta(days=2), customers, mode="full")

    outcome = dict(
        con.execute(
            "select segment_id, outcome from segments.segment_lineage where version_id = ?",
            [second["version_id"]],
        ).fetchall()
    )
    assert outcome[lapsed_id] == "retired"
    returned = _members(con, third["version_id"]).loc[lapsed].mode().iloc[0]
    assert returned != lapsed_id and returned > max(outcome)


def test_auto_mode_assigns_on_quiet_nights_and_refits_on_drift_or_cadence(con):
    customers = planted_customers(2000, seed=8)
    first = _night(con, NIGHT, customers)
    quiet = _night(con, NIGHT + timedelta(days=1), nudge(customers, seed=9))
    assert quiet["mode"] == "assign", quiet["mode_reason"]
    assert quiet["mode_reason"].startswith("small drift")
    assert (_members(con, quiet["version_id"]) == _members(con, first["version_id"])).mean() > 0.98

    drifted = customers.copy()
    drifted["total_spend"] *= 5  # every customer spends five times more
    busy = _night(con, NIGHT + timedelta(days=2), drifted)
    assert busy["mode"] == "full"
    assert "total_spend PSI" in busy["mode_reason"]

    week_later = _night(con, NIGHT + timedelta(days=9), drifted)
    assert week_later["mode"] == "full" and week_later["mode_reason"].startswith("cadence")
    psi = con.execute(
        "select scores->>'$.drift.feature_psi.total_spend' from segments.segment_versions "
        "where version_id = ?",
        [busy["version_id"]],
    ).fetchone()[0]
    assert float(psi) > CONFIG.refresh.max_feature_psi


def test_assign_mode_without_a_model_is_a_clear_error(con):
    write_features(con, NIGHT, planted_customers(500, seed=10))
    with pytest.raises(ReclusterError, match="Assign mode needs a reusable model"):
        recluster(con, NIGHT, config=CONFIG, mode="assign")


def test_a_model_below_the_thresholds_is_rejected_and_the_current_version_stays(con):
    customers = planted_customers(1500, seed=11)
    first = _night(con, NIGHT, customers)
    strict = CONFIG.with_overrides(acceptance={"min_silhouette": 0.99})
    rejected = _night(con, NIGHT + timedelta(days=1), customers, config=strict, mode="full")

    assert rejected["status"] == "rejected"
    assert "silhouette" in rejected["rejected_reasons"][0]
    status, reason = con.execute(
        "select status, status_reason from segments.segment_versions where version_id = ?",
        [rejected["version_id"]],
    ).fetchone()
    assert status == "rejected" and "min_silhouette 0.99" in reason
    assert versions.current_version(con)["version_id"] == first["version_id"]
    with pytest.raises(versions.PublishError, match="only a candidate"):
        versions.publish_version(con, rejected["version_id"])


def test_tiny_segments_are_rejected(con):
    customers = planted_customers(1500, seed=12)
    result = _night(
        con, NIGHT, customers, config=CONFIG.with_overrides(acceptance={"min_segment_share": 0.3})
    )
    assert result["status"] == "rejected"
    assert any("min_segment_share 30%" in r for r in result["rejected_reasons"])
    assert versions.current_version(con) is None


def test_features_of_an_absent_source_are_left_out_not_zero(con):
    customers = planted_customers(1500, seed=13)
    web = ["web_session_count", "web_event_count", "cart_add_count"]
    customers[web] = np.nan  # transactions and email only: no web events
    result = _night(con, NIGHT, customers)

    assert result["status"] == "candidate"
    params = con.execute(
        "select params->>'$.features_absent' from segments.segment_versions"
    ).fetchone()[0]
    assert all(column in params for column in web)
    stats = con.execute("select distinct feature from segments.segment_feature_stats").df()
    assert not set(web) & set(stats["feature"])


def test_personas_describe_each_segment_by_its_most_distinctive_traits(con):
    customers = planted_customers(2000, seed=14)
    result = _night(con, NIGHT, customers)
    profiles = con.execute(
        "select * from segments.segment_profiles where version_id = ? order by segment_id",
        [result["version_id"]],
    ).df()
    stats = con.execute(
        "select * from segments.segment_feature_stats where version_id = ?",
        [result["version_id"]],
    ).df()

    assert profiles["share"].sum() == pytest.approx(1.0)
    assert profiles["segment_name"].is_unique
    newcomers = _members(con, result["version_id"]).loc[
        customers.index[customers["group"] == "newcomers"]
    ]
    newcomer_profile = profiles.set_index("segment_id").loc[newcomers.mode().iloc[0]]
    assert newcomer_profile["segment_name"].endswith("new")
    assert "customer for" in newcomer_profile["description"]
    champions = profiles.set_index("segment_id").loc[1]
    assert champions["segment_name"].startswith("High-value")
    assert champions["description"].startswith(champions["segment_name"] + ": ")
    assert champions["description"].count("x ") + champions["description"].count("days") >= 3
    spend = stats[(stats["segment_id"] == 1) & (stats["feature"] == "total_spend")].iloc[0]
    assert spend["z_score"] > 1
    assert spend["mean"] > spend["population_mean"]


def test_rerunning_a_date_reproduces_its_version(con):
    customers = planted_customers(1500, seed=15)
    first = _night(con, NIGHT, customers)
    second = _night(con, NIGHT + timedelta(days=1), nudge(customers, seed=16))
    rerun = _night(con, NIGHT + timedelta(days=1), nudge(customers, seed=16))

    for key in ("mode", "mode_reason", "k", "silhouette"):
        assert rerun[key] == second[key], key
    pd.testing.assert_series_equal(
        _members(con, rerun["version_id"]), _members(con, second["version_id"])
    )
    based_on = con.execute(
        "select previous_version_id from segments.segment_versions where version_id = ?",
        [rerun["version_id"]],
    ).fetchone()[0]
    assert based_on == first["version_id"]
    # The first date re-run, with nothing older, keeps its own ids.
    again = _night(con, NIGHT, customers)
    pd.testing.assert_series_equal(
        _members(con, again["version_id"]), _members(con, first["version_id"])
    )


def test_a_config_change_forces_a_refit_in_auto_mode(con):
    customers = planted_customers(1500, seed=17)
    _night(con, NIGHT, customers)
    changed = CONFIG.with_overrides(preprocessing={"scaler": "minmax"})
    result = _night(con, NIGHT + timedelta(days=1), nudge(customers, seed=18), config=changed)
    assert result["mode"] == "full"
    assert "config" in result["mode_reason"]
    write_features(con, NIGHT + timedelta(days=2), customers)
    original = changed.with_overrides(preprocessing={"scaler": "standard"})
    with pytest.raises(ReclusterError, match="config"):
        recluster(con, NIGHT + timedelta(days=2), config=original, mode="assign")


def test_after_a_rollback_the_next_night_continues_from_the_rolled_back_to_version(con):
    customers = planted_customers(1500, seed=19)
    first = _night(con, NIGHT, customers)
    newcomers = planted_customers(300, seed=20, groups=dict([NEW_GROUP]), prefix="N", prospects=0)
    second = _night(con, NIGHT + timedelta(days=1), pd.concat([customers, newcomers]), mode="full")
    versions.rollback_to(con, first["version_id"], by="ana", reason="new segment confused")

    third = _night(con, NIGHT + timedelta(days=2), pd.concat([customers, newcomers]), mode="full")
    based_on = con.execute(
        "select previous_version_id from segments.segment_versions where version_id = ?",
        [third["version_id"]],
    ).fetchone()[0]
    assert based_on == first["version_id"]
    new_in_second = set(_members(con, second["version_id"])) - set(
        _members(con, first["version_id"])
    )
    new_in_third = set(_members(con, third["version_id"])) - set(_members(con, first["version_id"]))
    # The new group appears again as new, with an id never used before (not the rolled-back one).
    assert len(new_in_third) == 1 and not new_in_third & new_in_second


def test_a_rollback_during_a_night_stops_that_nights_publish(con):
    customers = planted_customers(1500, seed=21)
    first = _night(con, NIGHT, customers)
    second = _night(con, NIGHT + timedelta(days=1), nudge(customers, seed=22))
    write_features(con, NIGHT + timedelta(days=2), customers)
    pending = recluster(con, NIGHT + timedelta(days=2), config=CONFIG)
    versions.rollback_to(con, first["version_id"], by="ana", reason="bad night")
    with pytest.raises(versions.PublishError, match="computed before the rollback by ana"):
        versions.publish_version(con, pending["version_id"])
    assert versions.current_version(con)["version_id"] == first["version_id"]
    assert second["version_id"] != first["version_id"]


def test_a_backfill_of_an_older_date_leaves_the_current_version_alone(con):
    customers = planted_customers(1500, seed=23)
    latest = _night(con, NIGHT, customers)
    older = _night(con, NIGHT - timedelta(days=10), customers.sample(frac=0.9, random_state=1))
    assert older["mode"] == "full"
    assert (
        "not fitted on earlier data" in older["mode_reason"]
        or "no reusable" in older["mode_reason"]
    )
    assert versions.current_version(con)["version_id"] == latest["version_id"]
    # Nothing older to continue from: the groups take the ids the later version gave them, so a
    # group's id does not depend on the order in which the dates ran.
    older_ids, latest_ids = _members(con, older["version_id"]), _members(con, latest["version_id"])
    both = pd.DataFrame({"older": older_ids, "latest": latest_ids}).dropna()
    assert (both["older"] == both["latest"]).mean() > 0.95
    lineage = con.execute(
        "select outcome, matched_version_id, reason from segments.segment_lineage "
        "where version_id = ? and outcome = 'kept'",
        [older["version_id"]],
    ).fetchall()
    assert len(lineage) == len(GROUPS)
    assert {row[1] for row in lineage} == {latest["version_id"]}
    assert all(f"of version {latest['version_id']}" in row[2] for row in lineage)


def test_customers_who_place_their_first_order_are_not_drift(con):
    customers = planted_customers(1500, seed=24, prospects=200)
    _night(con, NIGHT, customers)
    tonight = nudge(customers, seed=25)
    converted = tonight.index[tonight["group"] == "prospect"]
    regulars = customers[customers["group"] == "regulars"].iloc[: len(converted)]
    tonight.loc[converted, regulars.columns.drop("group")] = regulars.drop(
        columns="group"
    ).to_numpy()
    result = _night(con, NIGHT + timedelta(days=1), tonight)
    assert result["mode"] == "assign", result["mode_reason"]


def test_hdbscan_noise_is_an_explicit_unassigned_segment(con):
    customers = planted_customers(2000, seed=26)
    outliers = planted_customers(30, seed=27, prefix="X", prospects=0)
    outliers[list(outliers.columns.drop("group"))] = np.random.default_rng(0).uniform(
        0, 1e5, size=(30, len(outliers.columns) - 1)
    )
    config = CONFIG.with_overrides(algorithm={"name": "hdbscan"})
    result = _night(con, NIGHT, pd.concat([customers, outliers]), config=config)

    members = _members(con, result["version_id"])
    assert result["k"] == len(GROUPS)
    assert (members.loc[outliers.index] == -1).mean() > 0.8
    profiles = con.execute(
        "select segment_id, segment_name from segments.segment_profiles where version_id = ?",
        [result["version_id"]],
    ).fetchall()
    assert (-1, "Unassigned (no clear segment)") in profiles
    strict = config.with_overrides(acceptance={"max_unassigned_share": 0.001})
    rejected = _night(
        con, NIGHT + timedelta(days=1), pd.concat([customers, outliers]), config=strict, mode="full"
    )
    assert any("unassigned" in reason for reason in rejected["rejected_reasons"])


def test_the_input_fingerprint_changes_with_the_data_and_only_then(con):
    customers = planted_customers(800, seed=28)
    first = _night(con, NIGHT, customers, mode="full")
    same = _night(con, NIGHT, customers, mode="full")
    changed = customers.copy()
    changed.iloc[0, 0] += 1
    other = _night(con, NIGHT, changed, mode="full")
    fingerprints = dict(
        con.execute(
            "select version_id, input_fingerprint from segments.segment_versions"
        ).fetchall()
    )
    assert fingerprints[first["version_id"]] == fingerprints[same["version_id"]]
    assert fingerprints[other["version_id"]] != fingerprints[first["version_id"]]


def test_the_input_fingerprint_covers_the_ids_and_the_column_names():
    frame = pd.DataFrame(
        {"order_count": [1.0, 2.0], "recency_days": [3.0, float("nan")]},
        index=pd.Index(["C1", "C12"], name="customer_id"),
    )
    same = frame.copy()
    moved_boundary = frame.set_axis(pd.Index(["C1C", "12"], name="customer_id"))  # same text
    renamed = frame.rename(columns={"recency_days": "tenure_days"})
    reordered = frame[["recency_days", "order_count"]]

    assert fingerprint(same) == fingerprint(frame) == fingerprint(reordered)
    assert fingerprint(moved_boundary) != fingerprint(frame)
    assert fingerprint(renamed) != fingerprint(frame)


def test_membership_changes_are_the_set_differences_between_two_nights(con):
    customers = planted_customers(1500, seed=31)
    first = _night(con, NIGHT, customers)
    tonight = nudge(customers, seed=32).drop(customers.index[:40])  # 40 customers gone
    tonight = pd.concat([tonight, planted_customers(60, seed=33, prefix="N", prospects=0)])
    second = _night(con, NIGHT + timedelta(days=1), tonight, mode="full")
    before, after = _members(con, first["version_id"]), _members(con, second["version_id"])
    common = before.index.intersection(after.index)
    expected = {
        "entered": len(after.index.difference(before.index)),
        "exited": len(before.index.difference(after.index)),
        "moved": int((before[common] != after[common]).sum()),
        "stayed": int((before[common] == after[common]).sum()),
    }
    stored = dict(
        con.execute(
            "select change, count(*) from segments.segment_membership_changes "
            "where version_id = ? and previous_version_id = ? group by change",
            [second["version_id"], first["version_id"]],
        ).fetchall()
    )
    assert {change: stored.get(change, 0) for change in expected} == expected
    assert expected["entered"] >= 60 and expected["exited"] == 40
    # Per customer: the segment left and the segment joined.
    moved = con.execute(
        "select customer_id, previous_segment_id, segment_id from "
        "segments.segment_membership_changes where version_id = ? and change = 'moved'",
        [second["version_id"]],
    ).fetchall()
    assert all(before[c] == p and after[c] == n for c, p, n in moved)
    # The first version: everyone entered.
    assert con.execute(
        "select distinct change from segments.segment_membership_changes where version_id = ?",
        [first["version_id"]],
    ).fetchall() == [("entered",)]


# This test judges ids: every night must publish, whatever the bootstrap stability of the noise.
PUBLISHABLE = CONFIG.with_overrides(acceptance={"min_stability_ari": 0.5})


def test_a_group_keeps_its_id_whatever_order_the_dates_run_in(tmp_path):
    customers = planted_customers(1500, seed=41)
    nights = {
        NIGHT - timedelta(days=2): nudge(customers, seed=42),
        NIGHT - timedelta(days=1): nudge(customers, seed=43),
        NIGHT: customers,
    }
    ids_by_order = {}
    for order in (sorted(nights), [NIGHT, *sorted(nights)[:2]]):  # 28, 29, 30 and 30, 28, 29
        with duckdb.connect(str(tmp_path / f"{order[0]}.duckdb")) as con:
            ids = {}
            for night in order:
                # k fixed: the same groups are found every date, so only the ids can differ.
                result = _night(
                    con, night, nights[night], mode="full", k=len(GROUPS), config=PUBLISHABLE
                )
                assert result["status"] == "candidate", result["rejected_reasons"]
                members = _members(con, result["version_id"])
                groups = customers.loc[members.index, "group"]
                # Each planted group's segment id (its members' most common id).
                ids[night] = members.groupby(groups).agg(lambda s: s.mode().iloc[0]).to_dict()
        ids_by_order[tuple(order)] = ids
    in_date_order, backfilled = ids_by_order.values()
    assert in_date_order == backfilled
    assert len(set(in_date_order[NIGHT].values())) == len(in_date_order[NIGHT])


def test_customers_whose_every_order_was_voided_are_not_prospects(con):
    """The marts' voided_order_count (cancelled, returned or zero orders, none counted) puts a
    customer in the fixed voided segment, named so, instead of the prospects."""
    customers = planted_customers(600, seed=31, prospects=5)
    customers["voided_order_count"] = 0
    prospects = customers.index[customers["group"] == "prospect"]
    voided, never_ordered = prospects[:2], prospects[2:]
    customers.loc[voided, "voided_order_count"] = [1, 3]

    result = _night(con, NIGHT, customers)

    segments = (
        con.execute(
            "select customer_id, segment_id, segment_name from segments.customer_segments "
            "where version_id = ?",
            [result["version_id"]],
        )
        .df()
        .set_index("customer_id")
    )
    assert (segments.loc[voided, "segment_id"] == VOIDED_SEGMENT_ID).all()
    assert (segments.loc[voided, "segment_name"] == VOIDED_SEGMENT_NAME).all()
    assert (segments.loc[never_ordered, "segment_id"] == PROSPECT_SEGMENT_ID).all()
