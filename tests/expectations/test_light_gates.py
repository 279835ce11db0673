"""Light gates: a first run's history read as bounded samples, the marts through DuckDB.

The gates read a large batch per rule (``expectations.reading``): a row count, distinct values,
a sample, or the rows that may break a strict rule plus a sample. These tests shrink the sample
sizes so that small hand-made tables take those paths, plant bad rows, and check that the rules
still fail, with the batch's true counts in the report and the outcome in the Data Docs.
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest

from expectations import QualityGateError, reading, validate_marts, validate_raw
from tests.expectations.test_quality_gates import (
    DAY,
    _insert,
    _result,
    create_clean_marts,
    create_raw,
    orders,
)


def _pages(data_dir: Path) -> dict[str, str]:
    """The Data Docs validation pages, by batch label (the file name)."""
    root = data_dir / "gx" / "data_docs" / "validations"
    return {page.stem: page.read_text(encoding="utf-8") for page in root.rglob("*.html")}


def test_chunks_cover_every_partition_once_within_the_row_bound():
    rows = [0, 5, 3, 9, 12, 1, 1, 0, 4, 30, 2]
    counts = [(DAY + timedelta(days=offset), n) for offset, n in enumerate(rows)]

    chunks = reading.chunk_partitions(counts, 10)

    assert [len(chunk) for chunk in chunks] == [3, 1, 1, 4, 1, 1]
    # Every partition once, in order, so every row once.
    assert [day for chunk in chunks for day in chunk] == [day for day, _ in counts]
    rows_of = dict(counts)
    sizes = [sum(rows_of[day] for day in chunk) for chunk in chunks]
    assert sum(sizes) == sum(rows)
    # At most the bound, unless a single partition is larger than it.
    assert all(size <= 10 or len(chunk) == 1 for size, chunk in zip(sizes, chunks, strict=True))
    assert reading.chunk_partitions([], 10) == []


def _rule(expectation_type: str, **kwargs):
    return SimpleNamespace(type=expectation_type, kwargs=kwargs)


def test_the_plan_per_rule_and_small_batches_whole():
    count = _rule("expect_table_row_count_to_be_between", min_value=1)
    strict = _rule("expect_column_values_to_be_unique", column="customer_id")
    tolerant = _rule("expect_column_values_to_be_between", column="x", max_value=9, mostly=0.99)
    unknown = _rule("expect_column_mean_to_be_between", column="x", max_value=9)
    parameter = _rule(
        "expect_column_values_to_be_between", column="x", max_value={"$PARAMETER": "p"}
    )
    rules = [count, strict, tolerant, unknown, parameter]

    assert reading.plan(rules, reading.MART_READING, 1000, 10) == {
        reading.COUNT: [count],
        reading.SUSPECTS: [strict],
        reading.SAMPLE: [tolerant],
        reading.FULL: [unknown, parameter],
    }
    assert reading.plan(rules, reading.HISTORY_READING, 1000, 10) == {
        reading.COUNT: [count],
        reading.SAMPLE: [strict, tolerant, unknown, parameter],
    }
    for small in (reading.MART_READING, reading.HISTORY_READING, reading.FULL_READING):
        assert reading.plan(rules, small, 10, 10) == {reading.FULL: rules}
    assert reading.plan(rules, reading.FULL_READING, 1000, 0) == {reading.FULL: rules}


def test_sampled_history_chunks_still_fail_on_planted_bad_rows(con, tmp_path, monkeypatch):
    # Two chunks of five days of 200 orders, each read as a sample of about 200 of its rows.
    monkeypatch.setattr(reading, "HISTORY_CHUNK_ROWS", 1000)
    monkeypatch.setattr(reading, "HISTORY_SAMPLE_ROWS", 200)
    history = [DAY - timedelta(days=offset) for offset in range(10, 0, -1)]
    by_day = {day: orders(200, day) for day in history}
    for day in history[:5]:
        # 20% of the rows share an order_id with another (beyond the 5% warning tolerance): a
        # row-by-row sample of a fifth would keep only ~4% of them as duplicates; a sample by
        # key keeps both copies.
        rows = by_day[day]
        for copy, original in zip(rows[100:120], rows[:20], strict=True):
            copy["order_id"] = original["order_id"]
    for day in history[5:]:
        for row in by_day[day][:10]:  # 5% null order ids: beyond the 1% blocking tolerance
            row["order_id"] = None
    create_raw(con, "orders", {**by_day, DAY: orders(200)})

    with pytest.raises(QualityGateError) as caught:
        validate_raw(con, {"orders": [*history, DAY]}, run_id="sampled")

    report = caught.value.report.to_dict()
    first = f"raw.orders partitions {history[0]}..{history[4]} (5 days)"
    second = f"raw.orders partitions {history[5]}..{history[9]} (5 days)"
    suites = [suite for suite in report["suites"] if suite["suite"] == "raw.orders"]
    # Chunked by rows: every row of the history in exactly one chunk.
    assert [(s["table"], s["row_count"], s["success"]) for s in suites] == [
        (first, 1000, True),  # only a warning fails
        (second, 1000, False),
        (f"raw.orders partition {DAY}", 200, True),
    ]
    nulls = _result(report, second, "expect_column_values_to_not_be_null", "order_id")
    assert nulls["success"] is False
    assert 0 < nulls["element_count"] < 1000  # judged on the sample
    assert nulls["unexpected_count"] >= 0.01 * nulls["element_count"]
    duplicates = _result(report, first, "expect_column_values_to_be_unique", "order_id")
    assert (duplicates["success"], duplicates["severity"]) == (False, "warning")
    assert duplicates["unexpected_count"] > 0.05 * duplicates["element_count"]
    # Freshness (rows arrived, the newest partition among them) is the as-of day's alone.
    freshness = {
        "expect_table_row_count_to_be_between",
        "expect_column_distinct_values_to_contain_set",
    }
    judged = {(r["table"], r["expectation_type"]) for r in report["results"]}
    assert {(f"raw.orders partition {DAY}", rule) for rule in freshness} <= judged
    assert not {(chunk, rule) for chunk in (first, second) for rule in freshness} & judged
    assert f"{second}: expect_column_values_to_not_be_null(order_id) failed" in str(caught.value)

    # The Data Docs show each frame the rules read, the failing sample as failed.
    pages = _pages(tmp_path)
    (sample_page,) = [
        page for label, page in pages.items() if label.startswith(f"{second} (sample")
    ]
    assert "Failed" in sample_page
    assert not any(label.startswith(f"{second} (row count") for label in pages)


def test_history_without_its_sample_key_is_sampled_by_row(con, monkeypatch):
    """A history chunk is sampled by a hash of its key (``SAMPLE_KEYS``); a table that lacks
    the key column is sampled by row id, and its other rules are still judged on the sample."""
    monkeypatch.setattr(reading, "HISTORY_CHUNK_ROWS", 1000)
    monkeypatch.setattr(reading, "HISTORY_SAMPLE_ROWS", 200)
    history = [DAY - timedelta(days=offset) for offset in range(5, 0, -1)]
    by_day = {day: orders(200, day) for day in history}
    for day in history:
        for row in by_day[day][:20]:  # 10% null customer ids: beyond the 1% blocking tolerance
            row["customer_id"] = None
    create_raw(con, "orders", {**by_day, DAY: orders(200)}, drop=("order_id",))

    with pytest.raises(QualityGateError) as caught:
        validate_raw(con, {"orders": [*history, DAY]}, run_id="keyless")

    report = caught.value.report.to_dict()
    chunk = f"raw.orders partitions {history[0]}..{history[-1]} (5 days)"
    nulls = _result(report, chunk, "expect_column_values_to_not_be_null", "customer_id")
    assert nulls["success"] is False
    assert 100 < nulls["element_count"] < 1000  # a sample of about 200 rows, not the chunk
    assert nulls["unexpected_count"] >= 0.05 * nulls["element_count"]
    keyed = _result(report, chunk, "expect_column_values_to_not_be_null", "order_id")
    assert (keyed["success"], keyed["error"]) == (
        False,
        "column order_id is missing from raw.orders",
    )


def test_a_broken_stretch_is_judged_alone_and_the_clean_history_together(
    con, tmp_path, monkeypatch
):
    """DuckDB screens each history chunk on its sample; the chunks within every tolerance are
    validated together (one sample), a chunk that may break a rule on its own, as before."""
    monkeypatch.setattr(reading, "HISTORY_CHUNK_ROWS", 1000)
    monkeypatch.setattr(reading, "HISTORY_SAMPLE_ROWS", 200)
    history = [DAY - timedelta(days=offset) for offset in range(30, 0, -1)]
    by_day = {day: orders(200, day) for day in history}
    for day in history[10:15]:  # the third chunk: 5% null customer ids (1% allowed)...
        for row in by_day[day][:10]:
            row["customer_id"] = None  # ...0.8% of the whole history
    create_raw(con, "orders", {**by_day, DAY: orders(200)})

    with pytest.raises(QualityGateError) as caught:
        validate_raw(con, {"orders": [*history, DAY]}, run_id="screened")

    report = caught.value.report.to_dict()
    together = (
        f"raw.orders partitions {history[0]}..{history[-1]} "
        "(25 days in 5 chunks, screened; 1 chunk judged alone)"
    )
    broken = f"raw.orders partitions {history[10]}..{history[14]} (5 days)"
    suites = [suite for suite in report["suites"] if suite["suite"] == "raw.orders"]
    assert [(s["table"], s["row_count"], s["success"]) for s in suites] == [
        (together, 5000, True),
        (broken, 1000, False),
        (f"raw.orders partition {DAY}", 200, True),
    ]
    nulls = _result(report, together, "expect_column_values_to_not_be_null", "order_id")
    assert 100 < nulls["element_count"] < 400  # one sample of the 5,000 rows
    assert f"{broken}: expect_column_values_to_not_be_null(customer_id) failed" in str(caught.value)
    # The Data Docs: the history validated together on one sample, the broken chunk on its own.
    pages = _pages(tmp_path)
    assert any(label.startswith(f"{together} (sample") for label in pages)
    assert any(label.startswith(f"{broken} (sample") for label in pages)


def test_the_screen_lets_through_only_chunks_that_pass_every_rule(con, monkeypatch):
    """Every chunk GX fails on its own sample (a warning included) is still validated on its own
    after the screen, with the same failures; the chunks validated together all pass alone.
    Messy chunks: shares of bad rows drawn around each rule's tolerance."""
    import random

    monkeypatch.setattr(reading, "HISTORY_CHUNK_ROWS", 1000)
    monkeypatch.setattr(reading, "HISTORY_SAMPLE_ROWS", 250)
    rng = random.Random(16)
    history = [DAY - timedelta(days=offset) for offset in range(80, 0, -1)]
    by_day = {day: orders(200, day) for day in history}

    def null(column):
        def mess(row, _rows):
            row[column] = None

        return mess

    def garbage(column, value):
        def mess(row, _rows):
            row[column] = value

        return mess

    def repeat(row, rows):
        row["order_id"] = rng.choice(rows)["order_id"]

    # Each mess and the share of rows its rule tolerates. Nulls in the regex and value-set
    # columns too: those rules count only the rows with a value.
    messes = [
        (null("order_id"), 0.01),
        (null("customer_id"), 0.01),
        (null("amount"), 0.02),
        (null("status"), 0.01),
        (garbage("amount", "12,50"), 0.02),
        (garbage("ordered_at", "yesterday"), 0.02),
        (garbage("status", "lost"), 0.01),
        (repeat, 0.05 / 2),  # both copies of a repeated id count
    ]
    levels = [0, 0, 0, 0.3, 0.6, 0.8, 0.9, 1.0, 1.1, 1.3, 2, 4]
    level_of: dict[str, float] = {}  # the highest level planted in each chunk
    for first in range(0, len(history), 5):  # a chunk is 5 days, two messes in each
        days = history[first : first + 5]
        label = f"raw.orders partitions {days[0]}..{days[-1]} (5 days)"
        level_of[label] = 0.0
        for mess, tolerated in rng.sample(messes, 2):
            level = rng.choice(levels)
            level_of[label] = max(level_of[label], level)
            for day in days:
                rows = by_day[day]
                for row in rows:
                    if rng.random() < level * tolerated:
                        mess(row, rows)
    create_raw(con, "orders", {**by_day, DAY: orders(200)})

    def failures(report):
        out: dict[str, set] = {}
        for r in report["results"]:
            out.setdefault(r["table"], set())
            if not r["success"]:
                out[r["table"]].add((r["expectation_type"], r["column"]))
        return out

    def run(run_id):
        try:
            return validate_raw(con, {"orders": [*history, DAY]}, run_id=run_id).to_dict()
        except QualityGateError as error:
            return error.report.to_dict()

    with monkeypatch.context() as unscreened:
        unscreened.setattr(reading, "screenable", lambda rules, text_columns: False)
        alone = failures(run("alone"))
    screened = failures(run("screened"))

    chunk_labels = {label for label in alone if "(5 days)" in label}
    assert chunk_labels == set(level_of)
    failed_alone = {label for label in chunk_labels if alone[label]}
    kept_alone = chunk_labels & set(screened)
    (together,) = [label for label in screened if "screened" in label]
    # Not vacuous: some chunks fail; some pass and are screened through, messy ones among them
    # (a screen that sent every chunk with a bad row to GX alone would fail this).
    assert failed_alone and kept_alone != chunk_labels
    assert any(level_of[label] >= 0.6 for label in chunk_labels - kept_alone)
    assert failed_alone <= kept_alone
    assert {label: screened[label] for label in kept_alone} == {
        label: alone[label] for label in kept_alone
    }
    assert screened[together] == set()


def test_the_screen_s_arithmetic_and_the_rules_it_screens():
    assert not reading.above_tolerance(0, 100, 0.99)
    assert reading.above_tolerance(1, 100, 0.99)  # at the tolerance: GX's arithmetic decides
    assert not reading.above_tolerance(1, 101, 0.99)
    assert reading.above_tolerance(2, 101, 0.99)
    assert reading.above_tolerance(1, 0, 0.99)  # every row null
    assert reading.above_tolerance(1, 10**6, None)  # a strict rule fails on one row
    text = frozenset({"x"})
    rule = _rule("expect_column_values_to_not_be_null", column="x", mostly=0.99)
    assert reading.screenable([rule], text)
    assert not reading.screenable([rule], frozenset({"y"}))  # missing, or not text
    assert not reading.screenable([rule, _rule("expect_table_row_count_to_be_between")], text)
    for other in (
        _rule("expect_column_distinct_values_to_be_in_set", column="x", value_set=["a"]),
        _rule("expect_column_mean_to_be_between", column="x"),
        _rule("expect_column_values_to_be_between", column="x", max_value=9, mostly=0.9),
        _rule("expect_column_values_to_not_be_null", column="x", mostly={"$PARAMETER": "p"}),
        _rule("expect_column_values_to_be_in_set", column="x", value_set=[1, 2], mostly=0.9),
        _rule("expect_column_values_to_match_regex", column="x", regex=r"^\D+$", mostly=0.9),
        _rule("expect_column_values_to_match_regex", column="x", regex=r"\bx", mostly=0.9),
        # Python's \s holds the no-break space, RE2's does not: the twin would pass 'a\xa0b@x'
        _rule("expect_column_values_to_match_regex", column="x", regex=r"^[^@\s]+@x$"),
        _rule("expect_column_values_to_match_regex", column="x", regex=r"^[^\d]+$"),
        _rule("expect_column_values_to_not_be_null", column="x", row_condition='x=="a"'),
        _rule("expect_column_values_to_be_in_set", column="x", value_set=[], mostly=0.9),
    ):
        assert not reading.screenable([other], text), other
    assert reading.screenable(
        [
            _rule("expect_column_values_to_be_in_set", column="x", value_set=["a"], mostly=0.9),
            _rule("expect_column_values_to_match_regex", column="x", regex=r"^\d+$"),
            _rule("expect_column_values_to_match_regex", column="x", regex=r"^[^@\t ]+@x$"),
            _rule("expect_column_values_to_be_unique", column="x", mostly=0.95),
        ],
        text,
    )


def test_history_that_cannot_be_screened_is_judged_chunk_by_chunk(con, monkeypatch):
    """A rule the screen cannot count (a row count a team adds), or a twin DuckDB rejects (a
    regex RE2 cannot run): every chunk is validated on its own, as without the screen."""
    import great_expectations.expectations as gxe

    from expectations import gate
    from expectations.suites import raw_suites

    monkeypatch.setattr(reading, "HISTORY_CHUNK_ROWS", 1000)
    history = [DAY - timedelta(days=offset) for offset in range(15, 0, -1)]
    create_raw(con, "orders", {day: orders(200, day) for day in history})
    suite = raw_suites(as_of_day=False)["orders"]
    chunks = reading.chunk_partitions([(day, 200) for day in history], 1000)

    def jobs(extra):
        extended = type(suite)(name=suite.name, expectations=[*suite.expectations, extra])
        return gate._history_jobs(
            con,
            suite=extended,
            table="raw.orders",
            chunks=chunks,
            rows_of=dict.fromkeys(history, 200),
            sample_key="order_id",
        )

    screenable = gxe.ExpectColumnValuesToMatchRegex(column="order_id", regex="^O", mostly=0.9)
    assert [batch.name for _, batch in jobs(screenable)] == [
        f"raw.orders partitions {history[0]}..{history[-1]} (15 days in 3 chunks, screened)"
    ]
    for extra in (
        gxe.ExpectTableRowCountToBeBetween(min_value=1),
        gxe.ExpectColumnValuesToMatchRegex(column="order_id", regex="^(?=O)", mostly=0.9),
    ):
        assert [batch.name for _, batch in jobs(extra)] == [
            f"raw.orders partitions {chunk[0]}..{chunk[-1]} (5 days)" for chunk in chunks
        ]


def test_pushed_down_marts_pass_when_clean(con, tmp_path, monkeypatch):
    monkeypatch.setattr(reading, "MART_SAMPLE_ROWS", 5)
    create_clean_marts(con)

    report = validate_marts(con, DAY, run_id="pushdown-clean").to_dict()

    assert report["success"] is True
    assert [r for r in report["results"] if not r["success"]] == []
    unique = _result(
        report, "marts.customer_features", "expect_column_values_to_be_unique", "customer_id"
    )
    assert (unique["element_count"], unique["unexpected_count"]) == (40, 0)
    labels = list(_pages(tmp_path))
    assert any(
        label.startswith("marts.customer_features (violations and sample") for label in labels
    )
    assert any(label.startswith("marts.customer_features (row count, 40 rows)") for label in labels)


def test_pushed_down_marts_fail_on_duplicates_nulls_nan_and_an_out_of_range_value(
    con, tmp_path, monkeypatch
):
    # The marts of 40 customers are larger than this sample: the strict rules read only the
    # rows that may break them (found in DuckDB) and a sample of the others.
    monkeypatch.setattr(reading, "MART_SAMPLE_ROWS", 5)
    create_clean_marts(con)
    con.execute(
        "insert into marts.customer_features select * from marts.customer_features "
        "where customer_id = 'C00003'"
    )
    con.execute("update marts.customer_rfm set frequency_score = null where customer_id = 'C00011'")
    con.execute("update marts.customers set age_years = 130 where customer_id = 'C00020'")
    # NaN is missing to GX, not to DuckDB.
    con.execute(
        "update marts.cohort_retention set retention_rate = 'nan'::double "
        "where cohort_month = '2025-11-01' and months_since_first_order = 1"
    )
    _insert(
        con,
        "marts.cohort_retention",
        [
            {
                "as_of_date": DAY,
                "cohort_month": date(2025, 10, 1),
                "months_since_first_order": 0,
                "cohort_size": 20,
                "active_customers": 20,
                "retention_rate": 1.0,
                "revenue": 800.0,
            }
        ],
    )

    with pytest.raises(QualityGateError) as caught:
        validate_marts(con, DAY, run_id="pushdown-broken")

    message = str(caught.value)
    assert message.startswith("Quality gate failed (5 blocking expectations):")
    # The counts are the batch's: every failing row is in the frame.
    assert (
        "marts.customer_features: expect_column_values_to_be_unique(customer_id) "
        "failed on 2 of 41 rows (blocking); examples: 'C00003'"
    ) in message
    assert (
        "marts.customer_rfm: expect_column_values_to_not_be_null(frequency_score) "
        "failed on 1 of 40 rows"
    ) in message
    assert (
        "marts.customers: expect_column_values_to_be_between(age_years) "
        "failed on 1 of 40 rows, expected between 0 and 120 (blocking); examples: 130"
    ) in message
    assert (
        "marts.cohort_retention: expect_compound_columns_to_be_unique"
        "(cohort_month,months_since_first_order) failed on 2 of"
    ) in message
    assert (
        "marts.cohort_retention: expect_column_values_to_not_be_null(retention_rate) "
        "failed on 1 of 10 rows"
    ) in message
    report = caught.value.report.to_dict()
    assert {s["table"]: s["row_count"] for s in report["suites"]}["marts.customer_features"] == 41

    # GX judged a reduced frame, and the Data Docs show it failed.
    pages = _pages(tmp_path)
    (features_page,) = [
        page
        for label, page in pages.items()
        if label.startswith("marts.customer_features (violations and sample")
    ]
    assert "Failed" in features_page
