"""The demo generator: reproducible files in the landing contract, the planted mess, and segments
that clustering really recovers."""

from __future__ import annotations

import hashlib
import re
from datetime import date, timedelta
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score, silhouette_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

from tools.demo_data import DemoDataError, DemoSummary, generate_demo_data, main
from tools.demo_features import connect_landing, customer_features

ROOT = Path(__file__).resolve().parents[2]
START, END, AS_OF = date(2025, 7, 1), date(2026, 7, 7), date(2026, 6, 30)
SOURCES = ("customers", "orders", "web_events", "email_events")
FEATURES = (
    "recency_days", "order_count", "order_days", "total_spend", "avg_order_value", "tenure_days",
    "web_session_count", "web_event_count", "cart_add_count", "email_sent_count",
    "email_open_count", "email_click_count",
)  # fmt: skip


def _contract_columns() -> dict[str, list[str]]:
    """The landing columns as docs/architecture.md states them (the binding contract)."""
    text = (ROOT / "docs" / "architecture.md").read_text()
    rows = re.findall(r"^\| `(\w+)` \| `([^`]+)` \|$", text, flags=re.MULTILINE)
    return {source: [c.strip() for c in columns.split(",")] for source, columns in rows}


def _digest(folder: Path) -> dict[str, str]:
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def _generate(root: Path, n: int, seed: int = 42, **kwargs) -> DemoSummary:
    return generate_demo_data(root / "landing", root / "truth", n_customers=n, seed=seed, **kwargs)


def _scalar(con: duckdb.DuckDBPyConnection, sql: str):
    return con.execute(sql).fetchone()[0]


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> tuple[Path, DemoSummary]:
    root = tmp_path_factory.mktemp("demo")
    return root, _generate(root, 1500)


def test_same_seed_gives_byte_identical_files_and_another_seed_does_not(tmp_path):
    first = _generate(tmp_path / "a", 1000, seed=7)
    _generate(tmp_path / "b", 1000, seed=7)
    _generate(tmp_path / "c", 1000, seed=8)
    a, b, c = (_digest(tmp_path / name) for name in "abc")
    assert a == b
    assert a.keys() == c.keys()  # same layout...
    assert a != c  # ...other content
    assert set(first.rows) == set(SOURCES)
    assert all(count > 0 for count in first.rows.values())


def test_layout_is_one_csv_per_source_and_day_with_the_contract_columns(demo):
    root, summary = demo
    contract = _contract_columns()
    assert set(contract) == set(SOURCES)
    days = [f"date={START + timedelta(days=i)}" for i in range((END - START).days + 1)]
    assert sorted(p.name for p in (root / "landing").iterdir()) == sorted(SOURCES)
    assert summary.partitions == len(SOURCES) * len(days)
    for source in SOURCES:
        folders = sorted(p.name for p in (root / "landing" / source).iterdir())
        assert folders == days, source
        for day in (days[0], days[len(days) // 2], days[-1]):
            files = list((root / "landing" / source / day).glob("*.csv"))
            assert len(files) == 1
            header = files[0].read_text().splitlines()[0]
            assert header.split(",") == contract[source], source
    con = connect_landing(root)
    for source in SOURCES:
        assert _scalar(con, f"select count(*) from {source}") == summary.rows[source]
    timestamp = r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$"
    for source, column in (("orders", "ordered_at"), ("web_events", "occurred_at"),
                           ("email_events", "occurred_at"), ("customers", "signup_at"),
                           ("customers", "updated_at")):  # fmt: skip
        bad = f"select count(*) from {source} where not regexp_matches({column}, '{timestamp}')"
        assert _scalar(con, bad) == 0, (source, column)
    # Rows land on the day they happened or later, never earlier.
    assert _scalar(con, "select count(*) from orders where ordered_at::date > date::date") == 0
    assert _scalar(con, "select count(*) from web_events where occurred_at::date > date") == 0
    assert _scalar(con, "select count(*) from customers where updated_at::date <> date::date") == 0
    # Values the contract enumerates.
    assert _scalar(con, "select string_agg(distinct status, ',' order by status) from orders") == (
        "cancelled,completed,returned"
    )
    assert _scalar(con, "select count(distinct event_type) from web_events") == 5
    assert _scalar(con, "select count(distinct event_type) from email_events") == 5
    consent = con.execute("select distinct marketing_consent from customers").fetchall()
    assert {value for (value,) in consent} == {"false", "true"}


def test_ids_are_unique_and_shaped_like_source_ids(demo):
    root, _ = demo
    con = connect_landing(root)
    assert _scalar(con, "select count(*) from customers where customer_id !~ '^C\\d{7}$'") == 0
    assert _scalar(con, "select count(*) from orders where order_id !~ '^O\\d{9}$'") == 0
    # Event ids are unique; an order id repeats only where the whole row was exported twice.
    for source in ("web_events", "email_events"):
        assert _scalar(con, f"select count(*) - count(distinct event_id) from {source}") == 0
    repeated_ids = _scalar(con, "select count(*) - count(distinct order_id) from orders")
    repeated_rows = _scalar(con, "select count(*) - count(distinct orders) from orders")
    assert repeated_ids == repeated_rows > 0


def test_every_planted_mess_is_in_the_files(demo):
    root, _ = demo
    con = connect_landing(root)
    counts = {
        "exact duplicate CRM rows": "select count(*) - count(distinct customers) from customers",
        "CRM updates in a later partition": """
            select count(*) from (select customer_id from customers
            group by 1 having count(distinct updated_at) > 1 and count(distinct date) > 1)""",
        "dotted state codes (N.Y.)": r"""select count(*) from customers
            where regexp_matches(state, '^[A-Z]\.[A-Z]\.$')""",
        "lower-case state names (new york)": """select count(*) from customers
            where state in ('new york', 'california', 'texas', 'illinois', 'florida')""",
        "spelled-out state names (New York)": """select count(*) from customers
            where state in ('New York', 'California', 'Texas', 'Illinois', 'Florida')""",
        "country spellings": """select count(*) from customers
            where country in ('USA', 'United States', 'united states')""",
        "missing phone": "select count(*) from customers where phone is null",
        "missing birth_date": "select count(*) from customers where birth_date is null",
        "missing city": "select count(*) from customers where city is null",
        "missing income_band": "select count(*) from customers where income_band is null",
        "missing gender": "select count(*) from customers where gender is null",
        "negative age": f"select count(*) from customers where birth_date::date > '{AS_OF}'",
        "age 150+": "select count(*) from customers where birth_date::date < '1877-01-01'",
        "negative amounts": "select count(*) from orders where amount::double < 0",
        "extreme amounts": "select count(*) from orders where amount::double >= 100000",
        "cancelled orders": "select count(*) from orders where status = 'cancelled'",
        "returned orders": "select count(*) from orders where status = 'returned'",
        "late orders": "select count(*) from orders where ordered_at::date < date::date",
        "late web events": "select count(*) from web_events where occurred_at::date < date",
        "late email events": "select count(*) from email_events where occurred_at::date < date",
        "anonymous web events": """select count(*) from web_events
            where customer_id is null and anonymous_id is not null""",
    }
    missing = [name for name, sql in counts.items() if not _scalar(con, sql)]
    assert not missing, f"planted mess not found: {missing}"
    late = con.execute(
        """select min(date::date - ordered_at::date), max(date::date - ordered_at::date)
        from orders where ordered_at::date < date::date"""
    ).fetchone()
    assert late == (1, 3)


def test_near_duplicates_are_the_same_person_in_each_planted_way(demo):
    root, _ = demo
    con = connect_landing(root)
    pairs = con.execute(
        """
        with records as (
            select distinct customer_id, first_name, last_name, email, phone from customers
        )
        select truth.duplicate_kind, duplicate.email, person.email,
            duplicate.first_name = person.first_name and duplicate.last_name = person.last_name,
            right(regexp_replace(duplicate.phone, '[^0-9]', '', 'g'), 10)
                is not distinct from right(regexp_replace(person.phone, '[^0-9]', '', 'g'), 10),
            duplicate.phone
        from truth
        inner join records as duplicate on duplicate.customer_id = truth.customer_id
        inner join records as person on person.customer_id = truth.person_id
        where truth.is_duplicate = 'true'
        """
    ).fetchall()
    seen = set()
    for kind, email, original, same_name, same_phone, phone in pairs:
        assert same_name, (kind, email, original)
        local, _, domain = email.strip().lower().partition("@")
        original_local, _, original_domain = original.partition("@")
        if kind == "exact":
            assert email == original
        elif kind == "case":
            assert email != original and email.lower() == original
        elif kind == "whitespace":
            assert email != original and email.strip() == original
        elif kind == "dots":
            assert email != original and local == original_local.replace(".", "")
            assert domain == original_domain
        elif kind == "typo":
            assert len(email) == len(original) and domain == original_domain
            assert sum(a != b for a, b in zip(email, original, strict=True)) == 1
            assert phone is None  # only the address, name and birth date tell who it is
        elif kind == "name_phone":
            assert same_phone and email.lower() != original.lower()
            assert phone.startswith("(")  # the same digits, typed the national way
        seen.add(kind)
    assert seen == {"exact", "case", "whitespace", "dots", "typo", "name_phone"}
    # The duplicate record carries some of the person's activity.
    with_orders = _scalar(
        con,
        """select count(distinct truth.customer_id) from truth
        inner join orders using (customer_id) where truth.is_duplicate = 'true'""",
    )
    assert with_orders > 0


def test_truth_covers_every_crm_record_and_points_duplicates_to_real_persons(demo):
    root, summary = demo
    con = connect_landing(root)
    crm_ids = {
        row[0] for row in con.execute("select distinct customer_id from customers").fetchall()
    }
    truth = pd.read_csv(root / "truth" / "customers.csv", dtype=str, keep_default_na=False)
    assert list(truth.columns) == [
        "customer_id", "person_id", "segment", "is_duplicate", "duplicate_kind",
    ]  # fmt: skip
    assert truth.customer_id.is_unique
    assert set(truth.customer_id) == crm_ids
    assert len(truth) == summary.crm_records
    canonical = truth[truth.is_duplicate == "false"]
    duplicates = truth[truth.is_duplicate == "true"]
    assert (canonical.person_id == canonical.customer_id).all()
    assert (canonical.duplicate_kind == "").all()
    assert len(canonical) == summary.persons
    assert duplicates.person_id.isin(canonical.customer_id).all()
    assert (duplicates.person_id < duplicates.customer_id).all()  # resolved id = smallest id
    segment_of = canonical.set_index("customer_id").segment
    assert (duplicates.segment.to_numpy() == segment_of[duplicates.person_id].to_numpy()).all()

    segments = pd.read_csv(root / "truth" / "segments.csv")
    assert list(segments.columns) == ["segment", "share", "description"]
    assert list(segments.segment) == list(summary.segments)
    assert segments.share.sum() == pytest.approx(1.0, abs=1e-3)
    assert segments.description.str.len().min() > 20
    assert set(truth.segment) == set(summary.segments)


def test_planted_behaviour_holds_at_the_demo_as_of_date(demo):
    root, summary = demo
    assert summary.as_of_date == AS_OF
    con = connect_landing(root)
    con.execute(
        f"""
        create view person_orders as
        select truth.person_id, truth.segment, orders.ordered_at::timestamp as ordered_at
        from orders inner join truth using (customer_id)
        where orders.status = 'completed' and orders.amount::double between 0.01 and 99999
            and orders.date::date <= '{AS_OF}' and orders.ordered_at::timestamp < '{END}'
        """
    )
    # Every person of a behavioural segment has ordered by the as-of date, no prospect ever has.
    without_orders = f"""
        select count(*) from truth
        where is_duplicate = 'false' and segment <> 'prospect'
            and person_id not in (select person_id from person_orders
                                  where ordered_at < '{AS_OF + timedelta(days=1)}')"""
    assert _scalar(con, without_orders) == 0
    prospect_orders = (
        "select count(*) from orders join truth using (customer_id) where segment = 'prospect'"
    )
    assert _scalar(con, prospect_orders) == 0
    lapsed_last = "select max(ordered_at)::date from person_orders where segment = 'lapsed'"
    assert _scalar(con, lapsed_last) <= AS_OF - timedelta(days=150)
    new_customers = con.execute(
        """
        select min(signup_at::timestamp)::date,
            max(datediff('hour', signup_at::timestamp, first_order_at))
        from truth
        inner join (select customer_id, min(signup_at) as signup_at from customers group by 1)
            using (customer_id)
        inner join (select person_id, min(ordered_at) as first_order_at from person_orders
                    group by 1) using (person_id)
        where truth.segment = 'new' and truth.is_duplicate = 'false'
        """
    ).fetchone()
    assert new_customers[0] >= AS_OF - timedelta(days=60)
    assert new_customers[1] <= 3 * 24


def test_refuses_a_non_empty_landing_dir_and_overwrite_replaces_only_its_own_files(tmp_path):
    landing, truth = tmp_path / "landing", tmp_path / "truth"
    landing.mkdir()
    keep = landing / "README.txt"
    keep.write_text("not the generator's")
    with pytest.raises(ValueError, match="not empty"):
        generate_demo_data(landing, truth, n_customers=200)
    assert sorted(p.name for p in landing.iterdir()) == ["README.txt"]

    generate_demo_data(landing, truth, n_customers=200, overwrite=True)
    first = _digest(landing)
    with pytest.raises(DemoDataError):
        generate_demo_data(landing, truth, n_customers=300)
    assert _digest(landing) == first  # a refused run leaves the data as it was

    generate_demo_data(landing, truth, n_customers=300, seed=1, overwrite=True)
    assert keep.read_text() == "not the generator's"
    assert _digest(landing) != first
    truth_ids = pd.read_csv(truth / "customers.csv", dtype=str).customer_id
    assert truth_ids.str.fullmatch(r"C\d{7}").all()
    assert len(truth_ids) > 300  # persons plus their duplicate records
    # No half-written or renamed-aside folders left next to the targets.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["landing", "truth"]


def test_cli_writes_the_demo_and_refuses_to_write_twice(tmp_path, capsys):
    args = ["--customers", "200", "--landing-dir", str(tmp_path / "l"),
            "--truth-dir", str(tmp_path / "t")]  # fmt: skip
    assert main(args) == 0
    assert "demo as-of date 2026-06-30" in capsys.readouterr().out
    assert main(args) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert main([*args, "--overwrite"]) == 0


def segment_recovery(root: Path, as_of: date = AS_OF) -> tuple[int, float, dict[int, float]]:
    """k chosen by silhouette (k = 2..8) and its adjusted Rand index against the planted segment,
    over the customers with at least one order, on unresolved customer ids (duplicates included,
    so this is harder than what the pipeline sees after identity resolution)."""
    features = customer_features(root, as_of)
    features = features[features.order_count > 0]
    truth = pd.read_csv(root / "truth" / "customers.csv", dtype=str).set_index("customer_id")
    planted = truth.segment[features.index].to_numpy()
    scaled = Pipeline(
        [("log1p", FunctionTransformer(np.log1p)), ("scale", StandardScaler())]
    ).fit_transform(features[list(FEATURES)].to_numpy(dtype=float))
    silhouette, ari = {}, {}
    for k in range(2, 9):
        labels = KMeans(n_clusters=k, n_init=10, random_state=0).fit_predict(scaled)
        silhouette[k] = silhouette_score(
            scaled, labels, sample_size=min(5000, len(scaled)), random_state=0
        )
        ari[k] = adjusted_rand_score(planted, labels)
    best = max(silhouette, key=silhouette.get)
    return best, ari[best], silhouette


def test_clustering_recovers_the_planted_segments(tmp_path):
    summary = _generate(tmp_path, 4000)
    k, ari, silhouette = segment_recovery(tmp_path)
    assert k == summary.n_segments == 5, silhouette
    assert ari >= 0.9
    runner_up = max(score for other, score in silhouette.items() if other != k)
    assert silhouette[k] - runner_up > 0.02, silhouette  # chosen clearly, not by a hair


def test_the_realistic_profile_has_a_real_shops_shape_and_no_clean_clusters(tmp_path):
    summary = _generate(tmp_path, 6000, profile="realistic")
    assert summary.n_segments == 0 and summary.segments == ("buyer", "voided", "prospect")
    features = customer_features(tmp_path, summary.as_of_date)
    buyers = features[features.order_count > 0]
    spend = np.sort(buyers.total_spend.to_numpy())[::-1]
    top_5_percent = spend[: len(spend) // 20].sum() / spend.sum()
    assert 0.4 <= top_5_percent <= 0.65  # heavy tail: about half the revenue
    assert 0.4 <= (buyers.order_count == 1).mean() <= 0.75  # many one-time buyers...
    assert buyers.order_count.max() >= 20  # ...and a continuum up to very frequent ones
    assert 0.2 <= (buyers.recency_days > 180).mean() <= 0.5  # many lapsed
    con = connect_landing(tmp_path)
    by_quarter = dict(
        con.execute(
            f"""select quarter(ordered_at::timestamp), count(*) from orders
            where status = 'completed' and ordered_at::date <= '{AS_OF}' group by 1"""
        ).fetchall()
    )
    assert by_quarter[4] > 1.3 * by_quarter[2]  # the season peaks before Christmas
    # Persons whose every order was cancelled, returned or zero: orders, none of them counted.
    truth = pd.read_csv(tmp_path / "truth" / "customers.csv", dtype=str).set_index("customer_id")
    voided = truth.index[(truth.segment == "voided") & (truth.is_duplicate == "false")]
    assert len(voided) > 50
    assert (features.loc[voided, "order_count"] == 0).all()
    assert (features.loc[voided, "voided_order_count"] > 0).all()
    # No clean clusters: the best silhouette over k = 2..8 stays far below the planted profile's.
    _, _, silhouette = segment_recovery(tmp_path)
    assert max(silhouette.values()) < 0.3, silhouette
    # The future planted for the prediction tests: the dropped-out keep no pace.
    rates = pd.read_csv(tmp_path / "truth" / "purchase_rates.csv")
    assert (rates.loc[rates.is_dropped_out, "orders_per_day"] == 0).all()
    assert 0.2 < rates.is_dropped_out.mean() < 0.9


def test_the_realistic_profile_is_reproducible_and_on_the_cli(tmp_path, capsys):
    _generate(tmp_path / "a", 500, seed=3, profile="realistic")
    _generate(tmp_path / "b", 500, seed=3, profile="realistic")
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b")
    args = ["--customers", "200", "--profile", "realistic",
            "--landing-dir", str(tmp_path / "l"), "--truth-dir", str(tmp_path / "t")]  # fmt: skip
    assert main(args) == 0
    assert "buyer" in (tmp_path / "t" / "segments.csv").read_text()
    with pytest.raises(DemoDataError, match="profile must be one of"):
        _generate(tmp_path / "c", 200, profile="clean")


def test_a_demo_generated_in_shards_is_one_consistent_dataset_with_the_same_shape(tmp_path):
    """Above ``shard_persons`` the generator works shard by shard (bounded memory at 10M): the
    files still hold one header each, unique ids across shards, a truth that covers every
    record, and segments that clustering recovers as well as in a one-shard demo."""
    summary = _generate(tmp_path, 4000, shard_persons=1000)
    con = connect_landing(tmp_path)
    assert _scalar(con, "select count(*) from customers where customer_id !~ '^C\\d{7}$'") == 0
    assert _scalar(con, "select count(distinct customer_id) from customers") == (
        summary.crm_records
    )
    assert summary.crm_records > summary.persons  # every shard planted its duplicates
    for source in ("web_events", "email_events"):
        assert _scalar(con, f"select count(*) - count(distinct event_id) from {source}") == 0
    repeated_ids = _scalar(con, "select count(*) - count(distinct order_id) from orders")
    assert repeated_ids == _scalar(con, "select count(*) - count(distinct orders) from orders")
    # Addresses carry the customer number, so the shards' persons never share one.
    assert (
        _scalar(
            con,
            "select count(*) from (select email from customers where customer_id in "
            "(select customer_id from truth where is_duplicate = 'false') "
            "group by email having count(distinct customer_id) > 1)",
        )
        == 0
    )
    for source in SOURCES:
        files = sorted((tmp_path / "landing" / source).glob("date=*/*.csv"))
        assert len(files) == (END - START).days + 1
        lines = sum(len(path.read_bytes().splitlines()) for path in files)
        assert lines == summary.rows[source] + len(files)  # one header per file, none repeated
    truth = pd.read_csv(tmp_path / "truth" / "customers.csv", dtype=str, keep_default_na=False)
    assert truth.customer_id.is_unique and len(truth) == summary.crm_records
    duplicates = truth[truth.is_duplicate == "true"]
    assert duplicates.person_id.isin(truth.customer_id[truth.is_duplicate == "false"]).all()
    segments = pd.read_csv(tmp_path / "truth" / "segments.csv")
    assert segments.share.sum() == pytest.approx(1.0, abs=1e-3)
    assert (pd.read_csv(tmp_path / "truth" / "purchase_rates.csv").shape[0]) == summary.persons

    k, ari, silhouette = segment_recovery(tmp_path)
    assert k == summary.n_segments == 5, silhouette
    assert ari >= 0.9


def test_a_sharded_demo_is_reproducible(tmp_path):
    _generate(tmp_path / "a", 600, seed=5, shard_persons=200)
    _generate(tmp_path / "b", 600, seed=5, shard_persons=200)
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b")
