"""Examples in quality reports help debugging without copying personal data into logs and XCom."""

from __future__ import annotations

import pytest

from expectations.masking import mask_value


@pytest.mark.parametrize(
    ("column", "value", "shown"),
    [
        ("email", "john.doe@example.com", "j***@e***.com"),
        ("email", "not-an-address", "n***"),
        ("phone", "+1 (555) 123-4567", "***67"),
        ("phone", 15551234567, "***67"),  # a phone column typed as a number
        ("first_name", "John", "J."),
        ("last_name", " Smith ", "S."),
        ("birth_date", "1985-04-12", "1985-**-**"),
        ("contact_email", "ann@shop.co.uk", "a***@s***.uk"),
    ],
)
def test_personal_columns_are_masked(column, value, shown):
    assert mask_value(column, value) == shown


def test_an_email_in_the_wrong_column_is_masked_too():
    # A shifted CSV row can put an address anywhere.
    assert mask_value("customer_id", "jane@corp.io") == "j***@c***.io"


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("customer_id", "C00042"),
        ("status", "shipped"),
        ("email_sent_count", 4),  # about e-mails, not an e-mail
        ("recency_score", 6),
        ("rfm_segment", "champions"),
        ("segment_name", "Loyal big spenders"),
        ("amount", None),
    ],
)
def test_ordinary_values_stay_readable(column, value):
    assert mask_value(column, value) == value


def test_long_garbage_is_truncated():
    shown = mask_value("amount", "x" * 500)
    assert len(shown) == 40
    assert shown.endswith("...")


def test_a_huge_value_is_masked_quickly_and_truncated():
    # A 1 MB value without '@' made the e-mail safety net's regex run for minutes.
    huge = "x" * 1_000_000 + "@example.com"
    assert mask_value("status", huge) == "x" * 37 + "..."
    assert mask_value("status", "a" * 30 + " j.doe@example.com") == "a***@e***.com"
