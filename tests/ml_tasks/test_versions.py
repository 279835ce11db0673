"""Segment versions: invisible until published, atomic, and a re-run replaces only its date."""

from __future__ import annotations

from datetime import date

import duckdb
import pandas as pd
import pytest

from ml_tasks.features import FEATURE_COLUMNS
from ml_tasks.versions import (
    Candidate,
    PublishError,
    current_version,
    publish_version,
    write_candidate,
)


def _candidate(as_of: date, segment_of: dict[str, int]) -> Candidate:
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
            "customer_count": sizes.to_numpy(),
            "share": (sizes / sizes.sum()).to_numpy(),
            **{f"mean_{c}": 1.0 for c in FEATURE_COLUMNS},
        }
    )
    return Candidate(
        as_of, "test", "kmeans", len(sizes), {"silhouette": 0.5}, {}, assignments, profiles
    )


def _current(con) -> dict[str, int]:
    return dict(
        con.execute("select customer_id, segment_id from segments.current_segments").fetchall()
    )


@pytest.fixture
def con(tmp_path):
    return duckdb.connect(str(tmp_path / "w.duckdb"))


def test_a_candidate_is_invisible_until_published(con):
    version = write_candidate(con, _candidate(date(2026, 6, 1), {"C1": 1, "C2": 2}))
    assert current_version(con) is None
    assert _current(con) == {}
    publish_version(con, version)
    assert _current(con) == {"C1": 1, "C2": 2}
    assert current_version(con)["version_id"] == version


def test_a_failed_run_leaves_the_previous_version_current(con):
    first = write_candidate(con, _candidate(date(2026, 6, 1), {"C1": 1, "C2": 2}))
    publish_version(con, first)
    # The next night writes a candidate but never publishes (e.g. a later gate failed).
    write_candidate(con, _candidate(date(2026, 6, 2), {"C1": 2, "C2": 2, "C3": 1}))
    assert _current(con) == {"C1": 1, "C2": 2}
    assert current_version(con)["version_id"] == first


def test_a_leftover_candidate_is_marked_failed_when_its_date_is_published(con):
    abandoned = write_candidate(con, _candidate(date(2026, 6, 1), {"C1": 1}))
    other_day = write_candidate(con, _candidate(date(2026, 6, 2), {"C1": 1}))
    rerun = write_candidate(con, _candidate(date(2026, 6, 1), {"C1": 2}))
    publish_version(con, rerun)
    status = dict(
        con.execute("select version_id, status from segments.segment_versions").fetchall()
    )
    assert status == {abandoned: "failed", other_day: "candidate", rerun: "published"}


def test_rerunning_a_date_supersedes_only_that_dates_version(con):
    day_one = write_candidate(con, _candidate(date(2026, 6, 1), {"C1": 1}))
    publish_version(con, day_one)
    day_two = write_candidate(con, _candidate(date(2026, 6, 2), {"C1": 2}))
    publish_version(con, day_two)
    rerun = write_candidate(con, _candidate(date(2026, 6, 1), {"C1": 3}))
    publish_version(con, rerun)

    status = dict(
        con.execute("select version_id, status from segments.segment_versions").fetchall()
    )
    assert status == {day_one: "superseded", day_two: "published", rerun: "published"}
    # The newest as-of date stays current even though the re-run was published later.
    assert current_version(con)["version_id"] == day_two


def test_an_incomplete_candidate_cannot_be_published(con):
    version = write_candidate(con, _candidate(date(2026, 6, 1), {"C1": 1, "C2": 1}))
    con.execute("delete from segments.customer_segments where customer_id = 'C2'")
    with pytest.raises(PublishError, match="incomplete: 1 of 2"):
        publish_version(con, version)
    assert current_version(con) is None


def test_a_version_is_published_once(con):
    version = write_candidate(con, _candidate(date(2026, 6, 1), {"C1": 1}))
    publish_version(con, version)
    with pytest.raises(PublishError, match="only a candidate"):
        publish_version(con, version)


def test_a_candidate_write_is_all_or_nothing(con):
    bad = _candidate(date(2026, 6, 1), {"C1": 1})
    broken = Candidate(**{**bad.__dict__, "profiles": bad.profiles.drop(columns="share")})
    with pytest.raises(KeyError):
        write_candidate(con, broken)
    assert con.execute("select count(*) from segments.segment_versions").fetchone()[0] == 0
    assert con.execute("select count(*) from segments.customer_segments").fetchone()[0] == 0
