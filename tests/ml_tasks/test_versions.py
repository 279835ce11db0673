"""Segment versions: invisible until published, atomic, a re-run replaces only its date,
rollback in one recorded step, retention that keeps the history."""

from __future__ import annotations

from datetime import date, datetime

import duckdb
import pandas as pd
import pytest

from ml_tasks.versions import (
    Candidate,
    PublishError,
    PublishTarget,
    RollbackError,
    check_publishable,
    current_version,
    ensure_segments_schema,
    publish_makes_current,
    publish_version,
    retention_retires,
    rollback_to,
    version_members,
    write_version,
)
from tests.version_candidates import make_candidate


def _current(con) -> dict[str, int]:
    return dict(
        con.execute("select customer_id, segment_id from segments.current_segments").fetchall()
    )


def _status(con) -> dict[int, str]:
    return dict(con.execute("select version_id, status from segments.segment_versions").fetchall())


@pytest.fixture
def con(tmp_path):
    with duckdb.connect(str(tmp_path / "w.duckdb")) as connection:
        yield connection


def test_a_candidate_is_invisible_until_published(con):
    version = write_version(con, make_candidate(date(2026, 6, 1), {"C1": 1, "C2": 2}))
    assert current_version(con) is None
    assert _current(con) == {}
    publish_version(con, version)
    assert _current(con) == {"C1": 1, "C2": 2}
    assert current_version(con)["version_id"] == version


def test_a_failed_run_leaves_the_previous_version_current(con):
    first = write_version(con, make_candidate(date(2026, 6, 1), {"C1": 1, "C2": 2}))
    publish_version(con, first)
    # The next night writes a candidate but never publishes (e.g. a later gate failed).
    write_version(con, make_candidate(date(2026, 6, 2), {"C1": 2, "C2": 2, "C3": 1}))
    assert _current(con) == {"C1": 1, "C2": 2}
    assert current_version(con)["version_id"] == first


def test_a_leftover_candidate_is_marked_failed_when_its_date_is_published(con):
    abandoned = write_version(con, make_candidate(date(2026, 6, 1), {"C1": 1}))
    other_day = write_version(con, make_candidate(date(2026, 6, 2), {"C1": 1}))
    rerun = write_version(con, make_candidate(date(2026, 6, 1), {"C1": 2}))
    publish_version(con, rerun)
    assert _status(con) == {abandoned: "failed", other_day: "candidate", rerun: "published"}


def test_rerunning_an_older_date_supersedes_it_without_replacing_newer_segments(con):
    day_one = write_version(con, make_candidate(date(2026, 6, 1), {"C1": 1}))
    publish_version(con, day_one)
    day_two = write_version(con, make_candidate(date(2026, 6, 2), {"C1": 2}))
    publish_version(con, day_two)
    rerun = write_version(con, make_candidate(date(2026, 6, 1), {"C1": 3}))
    result = publish_version(con, rerun)

    assert result["current"] is False
    assert _status(con) == {day_one: "superseded", day_two: "published", rerun: "published"}
    # The newest as-of date stays current even though the re-run was published later.
    assert current_version(con)["version_id"] == day_two


def test_an_incomplete_candidate_cannot_be_published(con):
    version = write_version(con, make_candidate(date(2026, 6, 1), {"C1": 1, "C2": 1}))
    con.execute("delete from segments.customer_segments where customer_id = 'C2'")
    with pytest.raises(PublishError, match="incomplete: 1 of 2"):
        publish_version(con, version)
    assert current_version(con) is None


def test_only_a_candidate_can_be_published(con):
    version = write_version(con, make_candidate(date(2026, 6, 1), {"C1": 1}))
    publish_version(con, version)
    with pytest.raises(PublishError, match="only a candidate"):
        publish_version(con, version)
    rejected = write_version(
        con,
        make_candidate(date(2026, 6, 2), {"C1": 1}, status="rejected", status_reason="too small"),
    )
    with pytest.raises(PublishError, match="'rejected'"):
        publish_version(con, rejected)


def test_a_version_write_is_all_or_nothing(con):
    bad = make_candidate(date(2026, 6, 1), {"C1": 1})
    broken = Candidate(**{**bad.__dict__, "profiles": bad.profiles.drop(columns="share")})
    with pytest.raises(KeyError):
        write_version(con, broken)
    assert con.execute("select count(*) from segments.segment_versions").fetchone()[0] == 0
    assert con.execute("select count(*) from segments.customer_segments").fetchone()[0] == 0


def test_rollback_makes_an_earlier_version_current_and_records_who_when_why(con):
    day_one = write_version(con, make_candidate(date(2026, 6, 1), {"C1": 1, "C2": 2}))
    publish_version(con, day_one)
    day_two = write_version(con, make_candidate(date(2026, 6, 2), {"C1": 2, "C2": 2}))
    publish_version(con, day_two)

    result = rollback_to(con, day_one, by="ana", reason="campaign ids broke")

    assert result["rolled_back_version_id"] == day_two
    assert _current(con) == {"C1": 1, "C2": 2}
    assert _status(con) == {day_one: "published", day_two: "rolled_back"}
    action, by, reason, previous = con.execute(
        "select action, changed_by, reason, previous_version_id from segments.current_changes "
        "order by change_id desc limit 1"
    ).fetchone()
    assert (action, by, reason, previous) == ("rollback", "ana", "campaign ids broke", day_two)
    # The next night publishes as usual and becomes current.
    day_three = write_version(con, make_candidate(date(2026, 6, 3), {"C1": 1, "C2": 1}))
    publish_version(con, day_three)
    assert current_version(con)["version_id"] == day_three


def test_rollback_refuses_what_cannot_be_current(con):
    published = write_version(con, make_candidate(date(2026, 6, 1), {"C1": 1}))
    publish_version(con, published)
    rejected = write_version(con, make_candidate(date(2026, 6, 2), {"C1": 1}, status="rejected"))
    with pytest.raises(RollbackError, match="already current"):
        rollback_to(con, published, by="ana", reason="test")
    with pytest.raises(RollbackError, match="'rejected'"):
        rollback_to(con, rejected, by="ana", reason="test")
    with pytest.raises(RollbackError, match="does not exist"):
        rollback_to(con, 99, by="ana", reason="test")
    with pytest.raises(RollbackError, match="needs a reason"):
        rollback_to(con, rejected, by="ana", reason=" ")
    assert current_version(con)["version_id"] == published


def test_retention_prunes_old_member_rows_but_keeps_metadata_and_the_current_version(con):
    ids = []
    for day in range(1, 5):
        ids.append(write_version(con, make_candidate(date(2026, 6, day), {"C1": day, "C2": 1})))
        publish_version(con, ids[-1])
    rollback_to(con, ids[0], by="ana", reason="keep the first")
    # A backfill of an older date: published, but the rolled-back-to version stays current.
    newest = write_version(con, make_candidate(date(2026, 5, 31), {"C1": 9}))
    result = publish_version(con, newest, keep_member_rows=2)

    # Kept: the newest two written (the backfill's among them: its night still exports its
    # audiences and draws its report), the newest two by as-of date and the current one.
    assert result["current"] is False
    assert sorted(result["retired_versions"]) == [ids[1]]
    members = con.execute(
        "select distinct version_id from segments.customer_segments order by 1"
    ).fetchall()
    assert [m[0] for m in members] == [ids[0], ids[2], ids[3], newest]
    assert _status(con)[newest] == "published"
    assert _status(con)[ids[1]] == "retired"
    assert current_version(con)["version_id"] == ids[0]
    assert con.execute("select count(*) from segments.segment_profiles").fetchone()[0] == 8
    with pytest.raises(RollbackError, match="retired"):
        rollback_to(con, ids[1], by="ana", reason="too late")
    # The next backfilled date's publish keeps it (one of the two newest written); the next
    # night's retires it (neither among the newest written nor the newest dates), with the
    # rolled-back-to version, current no more.
    after = write_version(con, make_candidate(date(2026, 5, 30), {"C1": 9}))
    assert publish_version(con, after, keep_member_rows=2)["retired_versions"] == []
    night = write_version(con, make_candidate(date(2026, 6, 5), {"C1": 1}))
    retired = publish_version(con, night, keep_member_rows=2)["retired_versions"]
    assert retired == [ids[0], ids[2], newest]


def test_a_run_of_rejected_nights_leaves_the_rollback_targets(con):
    """Rejected versions keep their rows while among the newest written (their reports can be
    looked into), but a week of them does not retire the published nights a rollback needs."""
    published = []
    for day in range(1, 4):
        published.append(write_version(con, make_candidate(date(2026, 6, day), {"C1": day})))
        publish_version(con, published[-1], keep_member_rows=3)
    rejected = [
        write_version(con, make_candidate(date(2026, 6, day), {"C1": 9}, status="rejected"))
        for day in range(4, 8)
    ]
    night = write_version(con, make_candidate(date(2026, 6, 8), {"C1": 1}))

    retired = publish_version(con, night, keep_member_rows=3)["retired_versions"]

    # Kept: the newest three written (the night, the newest rejected two) and the newest three
    # a rollback can return to (the night, the two published before the week).
    assert retired == [published[0], *rejected[:2]]
    rollback_to(con, published[1], by="ana", reason="the week's model was rejected")
    assert current_version(con)["version_id"] == published[1]


def test_retention_ranks_only_the_rollback_targets_by_date():
    nights = [(v, date(2026, 6, v)) for v in range(1, 9)]  # 4-7 rejected, 8 published now
    targets = {1, 2, 3, 8}
    assert retention_retires(nights, set(), {8}, keep=3, rollback_targets=targets) == [1, 4, 5]
    # Without the targets every version ranks: the week pushes the published nights out.
    assert retention_retires(nights, set(), {8}, keep=3) == [1, 2, 3, 4, 5]


def test_a_backfill_candidate_survives_a_nightly_publish_before_its_own(con):
    """The nightly run and a backfill share the warehouse in turns: a night can publish between
    a backfilled date's recluster and its publish."""
    for day in range(1, 4):
        publish_version(con, write_version(con, make_candidate(date(2026, 6, day), {"C1": day})))
    backfilled = write_version(con, make_candidate(date(2026, 5, 1), {"C1": 7}))
    nightly = write_version(con, make_candidate(date(2026, 6, 4), {"C1": 4}))
    publish_version(con, nightly, keep_member_rows=2)

    publish_version(con, backfilled, keep_member_rows=2)  # not retired before its turn
    assert _status(con)[backfilled] == "published"
    assert version_members(con, backfilled).to_dict() == {"C1": 7}


def test_a_warehouse_from_before_the_change_log_keeps_its_current_version(con):
    con.execute("create schema segments")
    con.execute(
        "create table segments.segment_versions (version_id integer primary key, "
        "as_of_date date not null, created_at timestamp not null, published_at timestamp, "
        "algorithm varchar not null, k integer not null, silhouette double, "
        "davies_bouldin double, calinski_harabasz double, customer_count integer not null, "
        "status varchar not null, status_reason varchar, run_id varchar, params json)"
    )
    con.execute(
        "insert into segments.segment_versions values "
        "(1, '2026-06-01', now(), now(), 'kmeans', 2, 0.5, 1, 1, 1, 'published', null, 'r', '{}'),"
        "(2, '2026-06-02', now(), now(), 'kmeans', 2, 0.5, 1, 1, 1, 'published', null, 'r', '{}')"
    )
    ensure_segments_schema(con)
    assert current_version(con)["version_id"] == 2
    assert current_version(con)["current_by"] == "migration"


def test_keyed_member_tables_lose_their_key_and_keep_their_rows(con):
    """Warehouses made before the keys were dropped: the members of every version move to the
    tables without the key, once, and the versions read as before."""
    ensure_segments_schema(con)
    first = write_version(con, make_candidate(date(2026, 6, 1), {"C1": 1, "C2": 2}))
    publish_version(con, first)
    changes = pd.DataFrame(
        {
            "customer_id": ["C1", "C2", "C3"],
            "previous_segment_id": [1, 2, None],
            "segment_id": [2, 2, 1],
            "change": ["moved", "stayed", "entered"],
        }
    )
    second = write_version(
        con,
        make_candidate(date(2026, 6, 2), {"C1": 2, "C2": 2, "C3": 1}, membership_changes=changes),
    )
    before = {
        table: con.execute(f"select * from segments.{table} order by all").fetchall()
        for table in ("customer_segments", "segment_membership_changes")
    }
    assert all(before.values())
    for table in before:  # as such a warehouse has them
        con.execute(f"alter table segments.{table} rename to {table}_old")
        con.execute(f"create table segments.{table} as select * from segments.{table}_old limit 0")
        con.execute(f"alter table segments.{table} add primary key (version_id, customer_id)")
        con.execute(f"insert into segments.{table} select * from segments.{table}_old")
        con.execute(f"drop table segments.{table}_old")
    keys = (
        "select count(*) from duckdb_constraints() where schema_name = 'segments' "
        "and table_name in ('customer_segments', 'segment_membership_changes') "
        "and constraint_type = 'PRIMARY KEY'"
    )
    assert con.execute(keys).fetchone()[0] == 2
    for _ in range(2):  # the second time there is nothing left to do
        ensure_segments_schema(con)
        assert con.execute(keys).fetchone()[0] == 0
        for table, rows in before.items():
            assert con.execute(f"select * from segments.{table} order by all").fetchall() == rows
    assert _current(con) == {"C1": 1, "C2": 2}
    publish_version(con, second)
    assert _current(con) == {"C1": 2, "C2": 2, "C3": 1}
    # Without the key, a version still holds one row per customer.
    assert con.execute(
        "select count(*) = count(distinct (version_id, customer_id)) "
        "from segments.customer_segments"
    ).fetchone()[0]


def _target(**kwargs) -> PublishTarget:
    fields = dict(
        as_of_date=date(2026, 6, 2),
        status="candidate",
        expected_rows=2,
        written_rows=2,
        rollback_since=None,
        current_as_of=date(2026, 6, 1),
    )
    return PublishTarget(**{**fields, **kwargs})


def test_the_publish_decisions_need_no_warehouse():
    check_publishable(5, _target())
    with pytest.raises(PublishError, match="does not exist"):
        check_publishable(5, None)
    with pytest.raises(PublishError, match="incomplete: 1 of 2"):
        check_publishable(5, _target(written_rows=1))
    with pytest.raises(PublishError, match="before the rollback by ana"):
        check_publishable(5, _target(rollback_since=(datetime(2026, 6, 2, 8), "ana")))
    assert publish_makes_current(_target())
    assert publish_makes_current(_target(current_as_of=None))
    assert not publish_makes_current(_target(current_as_of=date(2026, 6, 3)))


def test_retention_keeps_the_newest_versions_and_the_current_one():
    nights = [(v, date(2026, 6, v)) for v in range(1, 6)]  # one version a night
    assert retention_retires(nights, set(), {1}, keep=2) == [2, 3]
    assert retention_retires(nights, {2}, {5}, keep=2) == [1, 3]
    assert retention_retires(nights[:2], set(), set(), keep=3) == []


def test_retention_keeps_the_newest_written_and_the_newest_dates_so_backfills_are_safe():
    nights = [(v, date(2026, 6, v)) for v in range(1, 4)]  # versions 1-3: June 1st to 3rd
    backfill = [(v, date(2026, 5, v)) for v in range(4, 8)]  # then May 4th to 7th
    rerun = [(8, date(2026, 6, 3))]  # and June 3rd again, now current
    retired = retention_retires(nights + backfill + rerun, set(), {8}, keep=3)
    # Kept: the newest three written (8, 7, 6: the backfill's last nights still need theirs)
    # and the newest three by date (June 3rd twice, the rerun first, and June 2nd).
    assert retired == [1, 4, 5]
    # A backfill longer than the window does not push the recent nights out.
    long_backfill = [(v, date(2026, 4, v - 3)) for v in range(4, 14)]
    assert retention_retires(nights + long_backfill, set(), {3}, keep=2) == [1, *range(4, 12)]
    # Of one date's versions the later id ranks first.
    assert retention_retires(nights + rerun, set(), {8}, keep=1) == [1, 2, 3]
    # The current version and the one being published keep their rows whatever their rank.
    assert retention_retires(nights + backfill, set(), {1, 5}, keep=1) == [2, 4, 6]
