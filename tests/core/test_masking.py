"""Examples in quality reports help debugging without copying personal data into logs and XCom."""

from __future__ import annotations

import pytest

from core.masking import is_personal_table, mask_example, mask_value, scrub_text


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
        ("event_type", "page_view"),
        ("amount", "12,50"),
        ("ordered_at", "2026-13-45 10:00:00"),
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


@pytest.mark.parametrize(
    ("table", "personal"),
    [
        ("raw.customers", True),
        ("raw.customers partition 2026-06-30", True),
        ("quarantine.customers", True),
        ("marts.customers", False),  # no identifiers in the marts
        ("raw.orders", False),
    ],
)
def test_tables_of_crm_records_are_personal(table, personal):
    assert is_personal_table(table) is personal


def test_every_field_of_a_crm_row_keeps_only_its_shape():
    # A broken CRM export can put a phone, a name or a birth date into any column.
    row = {
        "customer_id": "C0000042",
        "first_name": "Ann",
        "city": "+1-555-010-0199",
        "signup_at": "1985-04-12",
        "gender": "Ann Lee",
        "email": "ann.lee@example.com",
    }
    assert mask_example([], row, personal_row=True) == {
        "customer_id": "x9999999",
        "first_name": "A.",
        "city": "+9-999-999-9999",
        "signup_at": "9999-99-99",
        "gender": "xxx xxx",
        "email": "a***@e***.com",
    }


def test_a_whole_crm_line_keeps_only_its_shape():
    line = "C1,Ann,Lee,+1-555-010-0199,1985-04-12"
    assert mask_value(None, line, personal_row=True) == "x9,xxx,xxx,+9-999-999-9999,9999-99-99"


def test_a_line_with_an_address_is_masked_as_one_and_nothing_rides_along():
    line = "C1,Ann,Lee,ann@x.com,+1-555-010-0199,1985-04-12"
    for personal_row in (False, True):
        assert mask_value(None, line, personal_row=personal_row) == "C***@x***.com"


@pytest.mark.parametrize(
    ("column", "value", "shown"),
    [
        # A shifted row: a name, a phone, a birth date-and-name in columns that hold none.
        ("customer_id", "Ann Lee", "xxx xxx"),
        ("order_id", "Smith", "xxxxx"),
        ("customer_id", "+1-555-010-0199", "***99"),
        ("amount", "(555) 010 0199", "***99"),
        ("status", "Ann,Lee,1985-04-12", "xxx,xxx,9999-99-99"),
        # Capitalised or multi-word text may be a name: only its shape is shown.
        ("segment_name", "Loyal big spenders", "xxxxx xxx xxxxxxxx"),
        ("ordered_at", "2026-06-30 10:00:00 EST", "9999-99-99 99:99:99 xxx"),
    ],
)
def test_values_are_masked_by_their_shape_whatever_the_column(column, value, shown):
    assert mask_value(column, value) == shown


def test_a_raw_line_of_any_table_keeps_only_its_shape():
    line = "O1,Ann Lee,+1-555-010-0199,1985-04-12"
    assert mask_value(None, line) == "x9,xxx xxx,+9-999-999-9999,9999-99-99"


def test_free_text_loses_addresses_phones_and_quoted_lines_but_keeps_dates_and_counts():
    text = (
        "orders/date=2026-07-01/orders.csv line 12 ('C1,Ann,Lee,ann@x.com,1985-04-12'): "
        "call +44 20 7946 0958 or mail jane.doe@example.com; 1234567 rows on 2026-07-01 10:00:00"
    )
    scrubbed = scrub_text(text)
    for secret in ("Ann", "Lee", "ann@", "1985-04-12", "7946", "jane.doe", "example.com"):
        assert secret not in scrubbed
    for kept in (
        "orders/date=2026-07-01/orders.csv line 12",
        "1234567 rows",
        "2026-07-01 10:00:00",
    ):
        assert kept in scrubbed
