"""Identity resolution on generated demo data, scored against the planted duplicates.

The demo generator plants near-duplicate CRM records of six kinds (exact copies, email case,
whitespace and dot variants, a one-letter typo without a phone, same name and phone typed
another way) and writes which person each record belongs to. Ingest and the real dbt build
resolve them; precision and recall of the merge must both be at least 0.95, for every kind.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from core.settings import get_settings
from pipeline import steps
from tools.demo_data import generate_demo_data
from tools.identity_report import IdentityScore, report

pytestmark = pytest.mark.slow

DEMO_DATE = date(2026, 6, 30)


@pytest.fixture(scope="module")
def score(tmp_path_factory: pytest.TempPathFactory) -> IdentityScore:
    data_dir: Path = tmp_path_factory.mktemp("identity")
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setenv("SEGMENTS_DATA_DIR", str(data_dir))
        for name in ("SEGMENTS_WAREHOUSE", "SEGMENTS_LANDING_DIR", "SEGMENTS_TRUTH_DIR"):
            monkeypatch.delenv(name, raising=False)
        settings = get_settings()
        generate_demo_data(settings.landing_dir, settings.truth_dir, n_customers=4000, seed=11)
        steps.ingest(DEMO_DATE, settings=settings)
        steps.build_marts(DEMO_DATE, settings=settings)
        return report(settings)


def test_precision_and_recall_of_the_merge(score: IdentityScore) -> None:
    assert score.true_pairs >= 50  # 1.5% of 4,000 people have a duplicate record
    assert score.precision >= 0.95, score.to_dict()
    assert score.recall >= 0.95, score.to_dict()


def test_every_planted_kind_is_found(score: IdentityScore) -> None:
    assert set(score.recall_by_kind) == {
        "exact", "case", "whitespace", "dots", "typo", "name_phone",
    }  # fmt: skip
    assert min(score.recall_by_kind.values()) >= 0.9, score.recall_by_kind
