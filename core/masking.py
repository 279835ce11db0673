"""Mask personal data in the example values errors, reports, logs and alerts show.

Messages travel further than the warehouse (Airflow XCom, logs, run records, validation reports,
alert webhooks), so an example of a failing value must help a data engineer recognise the problem
without copying a customer's e-mail, phone number, name or birth date into those places. This is
the one home of the rule for every layer (the loader's errors, the quality gates, the run record,
the alerts).

A value is masked by its column's name (whole name or its last part: ``email``,
``contact_email``, but not ``email_sent_count``) **and by its own shape, whatever the column**,
because a shifted CSV row can put an address, a phone number or a name into e.g. ``customer_id``:
an e-mail-shaped value is masked as an e-mail, a phone-shaped one as a phone, and any other text
is shown only when it cannot be a name: without a run of two letters (``C00042``, ``12,50``,
``2026-13-45``) or one lower-case code word (``shipped``, ``page_view``). Everything else keeps
only its shape (``Ann Lee`` -> ``xxx xxx``). ``scrub_text`` applies the e-mail and phone rules
to free text (an error message), as a last net for the run record and the alerts.

Rows of a table of CRM records (``raw.customers``, ``quarantine.customers``: see
``is_personal_table``) are masked whole: a shifted or broken CRM row can put a name, phone or
birth date into any column (or an unreadable line holds all of them), so there every value of an
ordinary column keeps only its shape (``Ann Lee`` -> ``xxx xxx``, ``31/02/1990`` -> ``99/99/9999``).
"""

from __future__ import annotations

import math
import re
from typing import Any

# Long garbage (a whole shifted CSV line) would bloat the report and may carry personal data.
MAX_EXAMPLE_CHARS = 40
_MAX_SCANNED_CHARS = 256

# Matched on the whole column name (or its last part), so ``email_sent_count`` stays readable.
_EMAIL_COLUMNS = frozenset({"email", "email_address", "e_mail"})
_PHONE_COLUMNS = frozenset({"phone", "phone_number", "mobile", "mobile_phone"})
_NAME_COLUMNS = frozenset({"first_name", "last_name", "middle_name", "full_name", "name"})
_BIRTH_DATE_COLUMNS = frozenset({"birth_date", "date_of_birth", "dob", "birthday"})
_LOOKS_LIKE_EMAIL = re.compile(r"[^@\s]+@[^@\s]+")
# A date or timestamp (not a phone number, however many digits it has).
_DATE_SHAPE = re.compile(r"^\d{4}-\d{1,2}-\d{1,2}([ T]\d{1,2}(:\d{2}){0,2}(\.\d+)?)?$")
# Seven or more digits written like a phone number: a leading + or (, or digit groups.
_PHONE_SHAPE = re.compile(r"^(\+|\()?\d[\d\s().-]{5,}\d$")
_LETTER_RUN = re.compile(r"[^\W\d_]{2,}")
_CODE_WORD = re.compile(r"^[a-z][a-z0-9_]{0,23}$")
# Tables whose rows are CRM records before the identifiers are split off (by the last part of
# "<schema>.<table>"; the marts hold no identifiers, the pii schema is never validated).
_PERSONAL_TABLES = frozenset({"customers"})
_PERSONAL_SCHEMAS = frozenset({"raw", "quarantine", "staging", "pii"})


def mask_email(value: str) -> str:
    """``john.doe@example.com`` -> ``j***@e***.com``: enough to see the shape, not the person."""
    text = value.strip()
    if "@" not in text:
        return f"{text[:1]}***" if text else text
    local, _, domain = text.rpartition("@")
    host, dot, tld = domain.rpartition(".")
    if not dot:  # no top-level domain: "john@localhost"
        host, tld = domain, ""
    # Only the letters of the top-level domain: in a whole shifted line, what follows the
    # address (",555-0100,1985-04-12") must not ride along.
    tld = re.match(r"[^\W\d_]*", tld).group(0)
    masked_domain = f"{host[:1]}***" + (f".{tld}" if tld else "")
    return f"{local[:1]}***@{masked_domain}"


def mask_phone(value: str) -> str:
    """Keep only the last two digits, which is what support needs to match a record."""
    digits = re.sub(r"\D", "", value)
    return f"***{digits[-2:]}" if len(digits) >= 2 else "***"


def mask_name(value: str) -> str:
    """A name becomes its initial (``John`` -> ``J.``)."""
    text = value.strip()
    return f"{text[:1]}." if text else text


def mask_birth_date(value: str) -> str:
    """A birth date keeps its year: enough to spot ``1900`` or ``2090``, not to identify anyone."""
    text = value.strip()
    match = re.match(r"^(\d{4})", text)
    return f"{match.group(1)}-**-**" if match else "***"


def mask_shape(value: str) -> str:
    """Keep only the shape of a value: letters become ``x``, digits ``9``, the rest stays."""
    return re.sub(r"\d", "9", re.sub(r"[^\W\d_]", "x", value))


def looks_like_phone(text: str) -> bool:
    """``+1 (555) 010-0199``, ``555-010-0199``, ``555 0100 199``: not a date, not a plain amount."""
    stripped = text.strip()
    if not _PHONE_SHAPE.match(stripped) or _DATE_SHAPE.match(stripped):
        return False
    digits = sum(character.isdigit() for character in stripped)
    separated = stripped[0] in "+(" or any(mark in stripped for mark in " -()")
    return digits >= 7 and separated


def show_if_safe(text: str) -> str:
    """An ordinary column's text value as shown: in clear only when its shape cannot hold a
    name, an e-mail or a phone number; otherwise its shape."""
    if looks_like_phone(text):
        return mask_phone(text)
    if _CODE_WORD.match(text) or not _LETTER_RUN.search(text):
        return text
    return mask_shape(text)


_TEXT_EMAIL = re.compile(r"[^\s@,;:'\"()<>\[\]{}|]+@[^\s@,;:'\"()<>\[\]{}|]+")
_QUOTED_LINE = re.compile(r"""(['"])([^'"\n]*,[^'"\n]*,[^'"\n]*)\1""")
_TEXT_PHONE = re.compile(r"(?<![\w.:/-])\+?\(?\d[\d ().-]{5,}\d(?![\w.:/])")


def scrub_text(text: str) -> str:
    """Free text (an error message, a log line) with e-mail addresses, phone numbers and quoted
    source lines (two commas or more) masked; dates, counts and ids are left alone. A last net:
    the example values in messages are masked where they are made (``mask_value``)."""
    if not text or not isinstance(text, str):
        return text
    # A quoted source line ('C1,Ann,Lee,...'): every field keeps only its shape.
    text = _QUOTED_LINE.sub(
        lambda match: (
            match.group(1)
            + ",".join(
                mask_email(field) if _LOOKS_LIKE_EMAIL.search(field) else mask_shape(field)
                for field in match.group(2).split(",")
            )
            + match.group(1)
        ),
        text,
    )
    text = _TEXT_EMAIL.sub(lambda match: mask_email(match.group(0)), text)
    return _TEXT_PHONE.sub(
        lambda match: (
            mask_phone(match.group(0)) if looks_like_phone(match.group(0)) else match.group(0)
        ),
        text,
    )


def is_personal_table(table: str | None) -> bool:
    """Whether every value of ``table`` (``<schema>.<table>``, optionally followed by a batch
    description such as ``partition 2026-06-30``) may be personal: the CRM records of the
    restricted layers."""
    name = (table or "").strip().split(" ", 1)[0].lower()
    schema, _, relation = name.rpartition(".")
    return schema in _PERSONAL_SCHEMAS and relation in _PERSONAL_TABLES


def personal_kind(column: str | None) -> str | None:
    """Which kind of personal data a column holds, by its name: email, phone, name, birth_date."""
    name = (column or "").lower()
    kinds = (
        ("email", _EMAIL_COLUMNS),
        ("phone", _PHONE_COLUMNS),
        ("name", _NAME_COLUMNS),
        ("birth_date", _BIRTH_DATE_COLUMNS),
    )
    for kind, names in kinds:
        if name in names or any(name.endswith(f"_{known}") for known in names - {"name"}):
            return kind
    return None


_MASKERS = {
    "email": mask_email,
    "phone": mask_phone,
    "name": mask_name,
    "birth_date": mask_birth_date,
}


def mask_value(column: str | None, value: Any, *, personal_row: bool = False) -> Any:
    """Return ``value`` safe to show in a report about ``column``; ``personal_row``: the value
    comes from a table of CRM records (``is_personal_table``), so ordinary columns keep only
    their shape."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    kind = personal_kind(column)
    if kind is None and not isinstance(value, str) and not personal_row:
        return value  # numbers, dates, booleans of ordinary columns
    text = value if isinstance(value, str) else str(value)  # e.g. a phone read as BIGINT
    # Only the start is ever shown; bounding the text also bounds the regex below, which is
    # quadratic on a long run of characters without '@' (a 1 MB value took minutes).
    text = text[:_MAX_SCANNED_CHARS]
    if kind is None and "@" in text and _LOOKS_LIKE_EMAIL.search(text):
        kind = "email"
    masker = _MASKERS.get(kind) or (mask_shape if personal_row else show_if_safe)
    masked = masker(text)
    if len(masked) > MAX_EXAMPLE_CHARS:
        masked = masked[: MAX_EXAMPLE_CHARS - 3] + "..."
    return masked


def mask_example(columns: list[str], value: Any, *, personal_row: bool = False) -> Any:
    """Mask one failing value of a rule reading ``columns``: a dict is masked by its keys, a
    pair or compound rule's list value by the rule's columns, a single value by its column
    (``personal_row``: see ``mask_value``)."""
    if isinstance(value, dict):
        return {
            key: mask_value(str(key), item, personal_row=personal_row)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple) and len(columns) == len(value) > 1:
        return [
            mask_value(column, item, personal_row=personal_row)
            for column, item in zip(columns, value, strict=True)
        ]
    return mask_value(columns[0] if len(columns) == 1 else None, value, personal_row=personal_row)
