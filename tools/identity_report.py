"""Precision and recall of identity resolution against the demo generator's planted duplicates.

``python -m tools.identity_report`` reads ``intermediate.int_customers_resolved`` (the mapping
of every CRM id to its resolved id, as of the last dbt build) and the generator's truth file
(``$SEGMENTS_TRUTH_DIR/customers.csv``: ``customer_id, person_id, duplicate_kind``) and scores
the merge pairwise: a pair of CRM records is *predicted* to be one person when they share a
resolved id, and *truly* one person when they share a ``person_id``.

* precision = true pairs predicted / pairs predicted (merges that were right);
* recall = true pairs predicted / true pairs (planted duplicates that were found),

overall and per planted ``duplicate_kind``.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

import duckdb

from core.settings import Settings, get_settings


@dataclass
class IdentityScore:
    records: int
    true_pairs: int
    predicted_pairs: int
    correct_pairs: int
    recall_by_kind: dict[str, float] = field(default_factory=dict)

    @property
    def precision(self) -> float:
        return self.correct_pairs / self.predicted_pairs if self.predicted_pairs else 1.0

    @property
    def recall(self) -> float:
        return self.correct_pairs / self.true_pairs if self.true_pairs else 1.0

    def to_dict(self) -> dict:
        return {**asdict(self), "precision": self.precision, "recall": self.recall}


def score_identity_resolution(con: duckdb.DuckDBPyConnection, truth_csv: Path) -> IdentityScore:
    """Pairwise precision and recall of ``int_customers_resolved`` against the truth file.

    Only the CRM records known to the last build are scored (the truth also lists records that
    land after the as-of date).
    """
    if not truth_csv.is_file():
        raise FileNotFoundError(f"No truth file at {truth_csv} (written by tools.demo_data).")
    con.execute(
        """
        create or replace temp table identity_scored as
        select
            resolved.source_customer_id,
            resolved.customer_id as predicted_id,
            truth.person_id as true_id,
            coalesce(truth.duplicate_kind, '') as duplicate_kind
        from intermediate.int_customers_resolved as resolved
        inner join read_csv(?, all_varchar = true) as truth
            on resolved.source_customer_id = truth.customer_id
        """,
        [str(truth_csv)],
    )
    records, true_pairs, predicted_pairs, correct_pairs = con.execute(
        """
        with pairs as (
            select
                a.true_id = b.true_id as is_true,
                a.predicted_id = b.predicted_id as is_predicted
            from identity_scored as a
            inner join identity_scored as b
                on a.source_customer_id < b.source_customer_id
                and (a.true_id = b.true_id or a.predicted_id = b.predicted_id)
        )
        select
            (select count(*) from identity_scored),
            count(*) filter (where is_true),
            count(*) filter (where is_predicted),
            count(*) filter (where is_true and is_predicted)
        from pairs
        """
    ).fetchone()
    # A planted duplicate is found when it resolves to the same id as its person's record.
    by_kind = con.execute(
        """
        select
            duplicate.duplicate_kind,
            avg(case when duplicate.predicted_id = person.predicted_id then 1.0 else 0.0 end)
        from identity_scored as duplicate
        inner join identity_scored as person
            on duplicate.true_id = person.source_customer_id
        where duplicate.duplicate_kind <> ''
        group by all
        order by all
        """
    ).fetchall()
    return IdentityScore(
        records=records,
        true_pairs=true_pairs,
        predicted_pairs=predicted_pairs,
        correct_pairs=correct_pairs,
        recall_by_kind={kind: round(float(share), 4) for kind, share in by_kind},
    )


def report(settings: Settings | None = None) -> IdentityScore:
    settings = settings or get_settings()
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        return score_identity_resolution(con, settings.truth_dir / "customers.csv")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.identity_report", description=__doc__)
    parser.add_argument("--json", action="store_true", help="print the score as JSON")
    args = parser.parse_args(argv)
    try:
        score = report()
    except (FileNotFoundError, duckdb.Error) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(score.to_dict(), indent=2))
        return 0
    print(
        f"Identity resolution on {score.records:,} CRM records: precision {score.precision:.4f} "
        f"({score.correct_pairs:,} of {score.predicted_pairs:,} merged pairs right), recall "
        f"{score.recall:.4f} ({score.correct_pairs:,} of {score.true_pairs:,} planted pairs found)"
    )
    for kind, share in score.recall_by_kind.items():
        print(f"  {kind:<12} {share:.1%} of planted duplicates found")
    return 0


if __name__ == "__main__":
    sys.exit(main())
