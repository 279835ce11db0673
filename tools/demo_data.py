"""Deterministic demo data: a year of daily landing partitions with planted segments and mess.

Two profiles. ``planted`` (the default) plants five clean behavioural segments, below. The
``realistic`` profile (``--profile realistic``, ``RealisticShape``) plants none: it draws buyers
the way a real shop's log looks (heavy-tailed spend where a few percent of the buyers hold about
half the revenue, many one-time buyers, many lapsed, seasonal orders) and a few customers whose
every order was cancelled, returned or zero, with the same mess; it is what the default
segmentation must still make actionable (docs/reclustering.md#business-guards).

The demo has to prove two things at once: that the pipeline copes with the dirt real feeds carry,
and that the clustering finds behaviour that is really there. So the generator plants both and
writes down what it planted:

* ``landing_dir/<source>/date=YYYY-MM-DD/<source>.csv`` for the four sources of
  ``docs/architecture.md``: partition date = arrival day, one file per source and day of the
  window (header-only if nothing arrived, which at the demo's size happens for no source);
* ``truth_dir/customers.csv``: which person and planted segment every CRM record belongs to,
  and which records are duplicates of whom (and of what kind);
* ``truth_dir/segments.csv``: the planted segments, their shares and the behaviour planted.
* ``truth_dir/purchase_rates.csv``: the future planted for every person: completed orders per
  day after the as-of date (the repeat orders per day since the first order, times the segment's
  ``keeps_ordering``) and whether the person has dropped out (``keeps_ordering`` 0), so the CLV
  and churn models can be checked against what really drives the later orders.

Behaviour is anchored on the demo as-of date, a week before ``end_date`` (2026-06-30 by default),
so the landing history holds the week in which that day's late rows arrive. Everybody signs up
inside the window; at the as-of date every member of the five behavioural segments has ordered
and no prospect has (prospects keep signing up in the week after it, orders keep coming in).
The segments differ in recency, frequency, order value, tenure, browsing and email engagement,
strongly enough that k-means on log-scaled features finds them (see the test of this module).

Everything is drawn from one ``np.random.default_rng(seed)`` in a fixed order and written in a
fixed row order, so the same arguments give byte-identical files. Above ``SHARD_PERSONS``
(250,000) people the demo is generated in shards, each with its own generator spawned from the
seed, and appended shard by shard to the same daily files, so memory stays bounded (about
0.75 GB) at any size; the output is still the same for the same arguments. The work is
vectorised with numpy and written with pyarrow's CSV writer (DuckDB's partitioned ``COPY`` is
faster to type but its row order inside a file depends on thread scheduling, which breaks
byte-identical output).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import shutil
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import ClassVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from core.contract import (
    EMAIL_EVENT_TYPES,
    ORDER_STATUSES,
    SOURCES,
    WEB_EVENT_TYPES,
)
from core.contract import SOURCE_COLUMNS as COLUMNS
from core.settings import get_settings
from tools.demo_calendar import AS_OF_LAG_DAYS, DEMO_END, DEMO_START

log = logging.getLogger(__name__)

DAY = 86_400
# Segment behaviour reaches back up to this many days before the as-of date.
MIN_HISTORY_DAYS = 300

# People per generation shard: one shard's arrays and tables peak at about 0.75 GB (measured at
# 1M people: 2.5 GB in one piece, 0.75 GB in four shards), so above this size the demo is
# generated in shards of at most this many (``generate_demo_data``).
SHARD_PERSONS = 250_000

TRUTH_FILES = ("customers.csv", "segments.csv", "purchase_rates.csv")
DUPLICATE_KINDS = ("exact", "case", "whitespace", "dots", "typo", "name_phone")


@dataclass(frozen=True)
class MessRates:
    """How often each kind of planted dirt occurs (share of the rows or records it applies to).

    Small enough that clustering on lightly cleaned features still recovers the segments, large
    enough that a 1,000-customer demo holds every kind at least once.
    """

    duplicate_person: float = 0.015  # persons with a second CRM record
    exact_crm_row: float = 0.01  # CRM rows written twice in their partition
    exact_order_row: float = 0.008  # order rows written twice in their partition
    # Later update rows (consent change) as a share of records; at least one a day regardless,
    # so that no daily CRM export is empty.
    crm_update: float = 0.08
    messy_state: float = 0.03  # "N.Y.", "new york", "New York" instead of "NY"
    messy_country: float = 0.03  # "USA", "United States", "united states" instead of "US"
    missing_phone: float = 0.02
    missing_birth_date: float = 0.02
    missing_city: float = 0.015
    missing_income_band: float = 0.03
    missing_gender: float = 0.02
    impossible_age: float = 0.005  # birth dates giving an age of -5 or 150+
    cancelled_order: float = 0.03  # extra orders, on top of the planted completed ones
    returned_order: float = 0.02
    negative_amount: float = 0.005  # extra completed rows with a negative amount (refunds)
    extreme_amount: float = 0.003  # extra completed rows with an absurd amount (>= 100k)
    late_row: float = 0.02  # order/event rows landing 1-3 days after their timestamp
    anonymous_session: float = 0.02  # web sessions without a customer_id


@dataclass(frozen=True)
class SegmentSpec:
    """The behaviour planted for one segment; day counts are relative to the demo as-of date."""

    name: str
    share: float
    description: str
    tenure_days: tuple[float, float]  # signup this many days before the as-of date
    first_order_delay_days: tuple[float, float]  # first order this long after signup
    # Last order this many days before the as-of date; None = anywhere after the first order.
    recency_days: tuple[float, float] | None
    orders_min: int  # completed orders up to the as-of date: orders_min + Poisson(orders_extra)
    orders_extra: float
    order_value: float  # mean order amount
    keeps_ordering: float  # order-rate multiplier for the days after the as-of date
    sessions_per_30_days: float
    browse_days_after_last_order: float | None  # None = browses until the end of the window
    events_per_session_extra: float  # events beyond the first page view, Poisson mean
    cart_share: float  # share of the later events in a session that are add_to_cart
    email_send_prob: float  # chance of being in each campaign (three a week)
    email_open_prob: float
    email_click_prob: float  # given an open
    income_tilt: float = 0.0  # leans to the higher income bands (descriptive only, not a feature)


SEGMENTS: tuple[SegmentSpec, ...] = (
    SegmentSpec(
        name="champions",
        share=0.12,
        description=(
            "customers for 6+ months, ordered in the last week, ~14 orders of ~110, browse often "
            "and fill carts, open and click most emails"
        ),
        tenure_days=(180, 365),
        first_order_delay_days=(0, 7),
        recency_days=(0, 8),
        orders_min=9,
        orders_extra=5.0,
        order_value=110.0,
        keeps_ordering=1.0,
        sessions_per_30_days=1.0,
        browse_days_after_last_order=None,
        events_per_session_extra=1.8,
        cart_share=0.45,
        email_send_prob=0.072,
        email_open_prob=0.60,
        email_click_prob=0.60,
        income_tilt=0.6,
    ),
    SegmentSpec(
        name="loyal",
        share=0.23,
        description=(
            "customers for 4+ months, last order 12-40 days ago, ~9 small orders of ~40, "
            "rarely browse, buy from the emails they open"
        ),
        tenure_days=(120, 365),
        first_order_delay_days=(0, 14),
        recency_days=(12, 40),
        orders_min=6,
        orders_extra=3.0,
        order_value=40.0,
        keeps_ordering=1.0,
        sessions_per_30_days=0.4,
        browse_days_after_last_order=None,
        events_per_session_extra=0.8,
        cart_share=0.08,
        email_send_prob=0.064,
        email_open_prob=0.55,
        email_click_prob=0.30,
        income_tilt=0.3,
    ),
    SegmentSpec(
        name="occasional",
        share=0.30,
        description=(
            "last order 40-100 days ago, 2-3 big orders of ~110, browse a lot without adding "
            "to cart, seldom open emails"
        ),
        tenure_days=(90, 330),
        first_order_delay_days=(0, 30),
        recency_days=(40, 100),
        orders_min=2,
        orders_extra=0.5,
        order_value=110.0,
        keeps_ordering=0.5,
        sessions_per_30_days=0.9,
        browse_days_after_last_order=None,
        events_per_session_extra=1.6,
        cart_share=0.03,
        email_send_prob=0.038,
        email_open_prob=0.30,
        email_click_prob=0.10,
    ),
    SegmentSpec(
        name="lapsed",
        share=0.20,
        description=(
            "joined in the first months, 1-2 orders of ~55, none for 200+ days, stopped "
            "browsing, mostly dropped from campaigns and ignore them"
        ),
        tenure_days=(290, 365),
        first_order_delay_days=(0, 10),
        recency_days=(200, 330),
        orders_min=1,
        orders_extra=1.0,
        order_value=55.0,
        keeps_ordering=0.0,
        sessions_per_30_days=0.1,
        browse_days_after_last_order=10,
        events_per_session_extra=1.0,
        cart_share=0.10,
        email_send_prob=0.023,
        email_open_prob=0.03,
        email_click_prob=0.05,
        income_tilt=0.1,
    ),
    SegmentSpec(
        name="new",
        share=0.12,
        description=(
            "signed up in the last 4-60 days, first order within 3 days, 1-2 small welcome "
            "orders of ~32, browse eagerly, get the welcome series"
        ),
        tenure_days=(4, 60),
        first_order_delay_days=(0, 3),
        recency_days=None,
        orders_min=1,
        orders_extra=0.6,
        order_value=32.0,
        keeps_ordering=1.0,
        sessions_per_30_days=2.5,
        browse_days_after_last_order=None,
        events_per_session_extra=1.3,
        cart_share=0.10,
        email_send_prob=0.15,
        email_open_prob=0.55,
        email_click_prob=0.30,
        income_tilt=0.2,
    ),
)
PROSPECT = SegmentSpec(
    name="prospect",
    share=0.03,
    description=(
        "signed up at any time (also after the as-of date), browse and get emails, never order"
    ),
    tenure_days=(-AS_OF_LAG_DAYS + 0.1, 365),
    first_order_delay_days=(0, 0),
    recency_days=None,
    orders_min=0,
    orders_extra=0.0,
    order_value=0.0,
    keeps_ordering=0.0,
    sessions_per_30_days=1.0,
    browse_days_after_last_order=None,
    events_per_session_extra=1.0,
    cart_share=0.12,
    email_send_prob=0.06,
    email_open_prob=0.25,
    email_click_prob=0.10,
)
ALL_SEGMENTS: tuple[SegmentSpec, ...] = (*SEGMENTS, PROSPECT)
PROSPECT_CODE = len(SEGMENTS)


@dataclass(frozen=True)
class RealisticShape:
    """The realistic profile's distributions (no planted clusters): every buyer's repeat-order
    rate, lifetime and typical order amount are drawn from continuous, skewed distributions, as
    in a real shop's log (the BG/NBD and Gamma-Gamma story: Gamma-distributed rates, exponential
    lifetimes, log-normal amounts), and orders follow a yearly season."""

    prospect_share: float = 0.04  # signed up, never ordered
    voided_share: float = 0.02  # ordered, but every order was cancelled, returned or zero
    rate_shape: float = 0.4  # Gamma shape of the repeat orders per year (small: heavy tail)
    repeats_per_year: float = 6.0  # mean of that Gamma
    lifetime_days: float = 200.0  # mean (exponential) time a buyer keeps ordering
    order_value_median: float = 35.0  # median of the buyers' typical order amount...
    order_value_sigma: float = 1.1  # ...log-normal spread (a few buyers order big baskets)
    season_amplitude: float = 0.6  # order intensity 1 +/- this, peaking on peak_day_of_year
    peak_day_of_year: int = 335  # early December
    first_order_delay_days: float = 5.0  # mean (exponential) delay from signup to first order


REALISTIC = RealisticShape()
_REALISTIC_WEB_EMAIL = {
    "sessions_per_30_days": 0.8,
    "browse_days_after_last_order": 60,
    "events_per_session_extra": 1.3,
    "cart_share": 0.12,
    "email_send_prob": 0.05,
    "email_open_prob": 0.3,
    "email_click_prob": 0.2,
}
REALISTIC_SEGMENTS: tuple[SegmentSpec, ...] = (
    SegmentSpec(
        name="buyer",
        share=1 - REALISTIC.prospect_share - REALISTIC.voided_share,
        description=(
            "no planted segment: Gamma-distributed repeat rates (many one-time buyers, a few very "
            "frequent), exponential lifetimes (many lapsed), log-normal order amounts (a few "
            "percent of buyers hold about half the revenue), seasonal orders"
        ),
        tenure_days=(0.5, 365),
        first_order_delay_days=(0, 0),
        recency_days=None,
        orders_min=1,
        orders_extra=0.0,
        order_value=0.0,
        keeps_ordering=1.0,
        **_REALISTIC_WEB_EMAIL,
    ),
    SegmentSpec(
        name="voided",
        share=REALISTIC.voided_share,
        description="ordered 1-2 times, but every order was cancelled, returned or worth 0",
        tenure_days=(0.5, 365),
        first_order_delay_days=(0, 0),
        recency_days=None,
        orders_min=1,
        orders_extra=0.4,
        order_value=0.0,
        keeps_ordering=0.0,
        **_REALISTIC_WEB_EMAIL,
    ),
    PROSPECT,
)
PROFILES = ("planted", "realistic")

FIRST_NAMES = (
    "Emma", "Liam", "Olivia", "Noah", "Ava", "Elijah", "Sophia", "James", "Isabella", "Lucas",
    "Mia", "Mason", "Amelia", "Ethan", "Harper", "Logan", "Evelyn", "Aiden", "Abigail", "Jacob",
    "Emily", "Michael", "Ella", "Daniel", "Scarlett", "Henry", "Grace", "Jackson", "Chloe",
    "Sebastian", "Aria", "Mateo", "Layla", "Owen", "Zoe", "Samuel", "Nora", "David", "Lily",
    "Joseph", "Maya", "Carter", "Priya", "Wei", "Fatima", "Diego", "Yuki", "Omar",
)  # fmt: skip
LAST_NAMES = (
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez",
    "Martinez", "Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson", "Thomas", "Taylor",
    "Moore", "Jackson", "Martin", "Lee", "Perez", "Thompson", "White", "Harris", "Sanchez",
    "Clark", "Ramirez", "Lewis", "Robinson", "Walker", "Young", "Allen", "King", "Wright",
    "Scott", "Nguyen", "Hill", "Flores", "Green", "Adams", "Nelson", "Baker", "Hall", "Patel",
    "Kim", "Chen", "Schmidt",
)  # fmt: skip
EMAIL_DOMAINS = ("example.com", "example.org", "example.net")
GENDERS = ("female", "male", "nonbinary")
GENDER_WEIGHTS = (0.49, 0.48, 0.03)
INCOME_BANDS = ("<25k", "25-50k", "50-100k", "100k+")
US_STATE_NAMES = {
    "NY": "New York", "CA": "California", "IL": "Illinois", "TX": "Texas", "WA": "Washington",
    "FL": "Florida", "MA": "Massachusetts", "GA": "Georgia", "CO": "Colorado",
    "PA": "Pennsylvania", "AZ": "Arizona", "OR": "Oregon", "MN": "Minnesota",
}  # fmt: skip
# (city, state or None, country, weight): mostly the US, a few other countries.
LOCATIONS: tuple[tuple[str, str | None, str, float], ...] = (
    ("New York", "NY", "US", 9), ("Brooklyn", "NY", "US", 4), ("Buffalo", "NY", "US", 1),
    ("Los Angeles", "CA", "US", 7), ("San Francisco", "CA", "US", 4), ("San Diego", "CA", "US", 3),
    ("Chicago", "IL", "US", 6), ("Houston", "TX", "US", 5), ("Austin", "TX", "US", 3),
    ("Dallas", "TX", "US", 4), ("Seattle", "WA", "US", 4), ("Miami", "FL", "US", 4),
    ("Orlando", "FL", "US", 2), ("Boston", "MA", "US", 4), ("Atlanta", "GA", "US", 4),
    ("Denver", "CO", "US", 3), ("Philadelphia", "PA", "US", 4), ("Phoenix", "AZ", "US", 4),
    ("Portland", "OR", "US", 3), ("Minneapolis", "MN", "US", 3),
    ("Toronto", "ON", "CA", 2.5), ("Vancouver", "BC", "CA", 1.5), ("London", None, "GB", 2),
    ("Manchester", None, "GB", 1), ("Berlin", "BE", "DE", 1.5), ("Munich", "BY", "DE", 1),
)  # fmt: skip
COUNTRY_VARIANTS = {
    "US": ("USA", "United States", "united states"),
    "CA": ("Canada", "canada", "CAN"),
    "GB": ("UK", "United Kingdom", "united kingdom"),
    "DE": ("Germany", "germany", "DEU"),
}
COUNTRY_CALLING_CODES = {"US": "+1", "CA": "+1", "GB": "+44", "DE": "+49"}


class DemoDataError(ValueError):
    """The demo data cannot be written as asked (non-empty target, too short a window...)."""


@dataclass(frozen=True)
class DemoSummary:
    """What was written, for the CLI, the logs and callers that want to check the volume."""

    rows: dict[str, int]  # data rows per source (header rows not counted)
    partitions: int  # partition files written, all sources together
    seconds: float
    n_segments: int  # behavioural segments planted (the clustering should find this many; 0:
    # the realistic profile plants none)
    segments: tuple[str, ...]  # every planted segment name, prospect last
    persons: int
    crm_records: int  # distinct customer_ids, duplicates included
    as_of_date: date
    landing_dir: Path
    truth_dir: Path


@dataclass(frozen=True)
class _Window:
    """The landing window and the demo as-of date, as dates and as epoch seconds."""

    start_date: date
    end_date: date
    as_of: date

    @property
    def start(self) -> int:
        return _epoch(self.start_date)

    @property
    def end(self) -> int:  # exclusive: midnight after the last landing day
        return _epoch(self.end_date) + DAY

    @property
    def as_of_end(self) -> int:  # exclusive: midnight after the as-of day
        return _epoch(self.as_of) + DAY

    @property
    def n_days(self) -> int:
        return (self.end_date - self.start_date).days + 1

    @property
    def history_days(self) -> int:
        return (self.as_of - self.start_date).days + 1

    def day(self, seconds: np.ndarray) -> np.ndarray:
        return (seconds - self.start) // DAY


@dataclass
class _People:
    """Persons and their CRM records, as numpy arrays.

    Record ``i < n_persons`` is person ``i``'s canonical record; records from ``n_persons`` on are
    near-duplicates. Customer numbers follow signup order, so a person's canonical record always
    has the smaller id (the resolved id of ``int_customers_resolved``).
    """

    n_persons: int
    segment: np.ndarray  # per record: the person's segment code
    person: np.ndarray  # per record: the canonical record of its person
    signup: np.ndarray  # per record: signup time
    duplicate_kind: np.ndarray  # per record: -1 for canonical, else index into DUPLICATE_KINDS
    number: np.ndarray  # per record: customer number, 1 = earliest signup
    n_orders: np.ndarray  # per person: planted completed orders up to the as-of date
    first_order: np.ndarray  # per person
    last_order: np.ndarray  # per person: last planted order up to the as-of date
    duplicate_of_person: np.ndarray  # per person: record of the duplicate, or -1
    specs: tuple[SegmentSpec, ...] = ALL_SEGMENTS  # what the segment codes stand for
    # Per person: typical order amount (default: the segment's order_value).
    order_value: np.ndarray | None = None
    # Per person: completed orders per day after the as-of date (default: see _future_pace).
    future_pace: np.ndarray | None = None
    # Orders planned up to the as-of date, when the profile draws their times itself: the
    # person of each order and its time (default: first and last planted, the rest in between).
    order_owner: np.ndarray | None = None
    order_times: np.ndarray | None = None
    # Per person: every order is cancelled, returned or worth nothing (none of them counts).
    voided: np.ndarray | None = None
    # Sharded generation (``_Ids``): where this shard's numbers start and how wide ids are.
    ids: _Ids | None = None

    @property
    def prospect_code(self) -> int:
        return len(self.specs) - 1  # the prospect spec is always last

    def spec(self, field: str, dtype: type = np.float64) -> np.ndarray:
        return _spec_array(field, dtype, self.specs)

    @property
    def n_records(self) -> int:
        return len(self.segment)

    def customer_ids(self) -> pa.StringArray:
        """Customer ids in customer-number order: ``ids[number - 1]`` is a record's id."""
        return self.id_strings("C", 7, np.arange(1, self.n_records + 1), self.n_records)

    def id_strings(
        self, prefix: str, minimum: int, numbers: np.ndarray, count: int
    ) -> pa.StringArray:
        """Ids ``<prefix><number>`` for this shard's 1-based ``numbers`` (``count`` of them in
        use): zero-padded to ``_id_width`` when the demo is one shard, else shifted past the
        earlier shards' numbers and padded to the width fixed for the whole demo."""
        if self.ids is None:
            return _template_strings(prefix + "#" * _id_width(count, minimum), numbers)
        self.ids.used[prefix] = count
        offset = self.ids.offsets.get(prefix, 0)
        return _template_strings(prefix + "#" * self.ids.widths[prefix], numbers + offset)


@dataclass
class _Ids:
    """Id numbering across shards: every shard numbers its customers, orders, sessions and
    events from 1 and its ids are shifted past the numbers the earlier shards used, so ids stay
    unique; the width is fixed up front for the whole demo from a generous bound per person."""

    widths: dict[str, int]
    offsets: dict[str, int]
    used: dict[str, int]

    # Upper bound of each id's count per person (the demo plants far fewer: about 1.02 CRM
    # records, 6 orders, 8 sessions, 20 web events, 12 email events); a number that would not
    # fit makes ``_template_strings`` fail loudly rather than write a clipped id.
    PER_PERSON: ClassVar[dict[str, int]] = {"C": 2, "O": 100, "S": 100, "W": 1000, "E": 1000}
    MINIMUM: ClassVar[dict[str, int]] = {"C": 7, "O": 9, "S": 9, "W": 10, "E": 10}

    @classmethod
    def for_demo(cls, n_persons: int) -> _Ids:
        widths = {
            prefix: _id_width(n_persons * per_person, cls.MINIMUM[prefix])
            for prefix, per_person in cls.PER_PERSON.items()
        }
        return cls(widths=widths, offsets={}, used={})

    def advance(self) -> None:
        """After a shard: the next one numbers on from where this one stopped."""
        for prefix, count in self.used.items():
            self.offsets[prefix] = self.offsets.get(prefix, 0) + count
        self.used = {}


@contextlib.contextmanager
def _step(name: str) -> Iterator[None]:
    started = time.perf_counter()
    yield
    log.info("demo data: %-13s %6.2f s", name, time.perf_counter() - started)


def _epoch(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp())


def _spec_array(
    field: str, dtype: type = np.float64, specs: tuple[SegmentSpec, ...] = ALL_SEGMENTS
) -> np.ndarray:
    """One value per segment code, to index with an array of codes."""
    return np.array([getattr(spec, field) for spec in specs], dtype=dtype)


def _positions(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For items repeated ``counts`` times: the owner of each item and its index within owner."""
    owner = np.repeat(np.arange(len(counts)), counts)
    starts = np.cumsum(counts) - counts
    return owner, np.arange(len(owner)) - starts[owner]


def _id_width(count: int, minimum: int) -> int:
    return max(minimum, len(str(count)))


# ------------------------------------------------------------------------------------------------
# Vectorised string columns: formatting millions of Python strings would dominate the run time.
# ------------------------------------------------------------------------------------------------


def _template_strings(
    template: str, numbers: np.ndarray, base: int = 10, alphabet: bytes = b"0123456789"
) -> pa.StringArray:
    """Strings from a template whose ``#`` are filled by the digits of ``numbers``, e.g.
    ``C#######`` and 42 give ``C0000042``; built as one byte buffer instead of Python strings."""
    raw = template.encode()
    width, count = len(raw), len(numbers)
    buffer = np.empty((width, count), dtype=np.uint8)
    digits = np.frombuffer(alphabet, dtype=np.uint8)
    rest = numbers.astype(np.int64, copy=True)
    for i in reversed(range(width)):
        if raw[i] == ord("#"):
            buffer[i] = digits[rest % base]
            rest //= base
        else:
            buffer[i] = raw[i]
    if count and rest.max() > 0:
        raise ValueError(f"numbers do not fit the template {template!r}")
    offsets = np.arange(0, count * width + 1, width, dtype=np.int32)
    data = np.ascontiguousarray(buffer.T).reshape(-1)
    return pa.StringArray.from_buffers(count, pa.py_buffer(offsets), pa.py_buffer(data))


def _hex_strings(template: str, numbers: np.ndarray) -> pa.StringArray:
    return _template_strings(template, numbers, 16, b"0123456789abcdef")


def _categorical(
    codes: np.ndarray, values: Sequence[str], missing: np.ndarray | None = None
) -> pa.DictionaryArray:
    """A dictionary-encoded column (cheap to build and to write), optionally with empty values."""
    indices = pa.array(np.asarray(codes, dtype=np.int32), mask=missing)
    return pa.DictionaryArray.from_arrays(indices, pa.array(list(values), pa.string()))


def _timestamps(seconds: np.ndarray) -> pa.Array:
    """Second-resolution timestamps, which the CSV writer prints as ``YYYY-MM-DD HH:MM:SS``."""
    return pa.array(seconds.astype("datetime64[s]"))


def _amounts(cents: np.ndarray) -> pa.Array:
    """Amounts with exactly two decimals, via decimal128 built from the cents (no float noise)."""
    words = np.empty(2 * len(cents), dtype=np.int64)
    words[0::2] = cents
    words[1::2] = np.where(cents < 0, -1, 0)
    decimals = pa.Array.from_buffers(pa.decimal128(18, 2), len(cents), [None, pa.py_buffer(words)])
    return decimals.cast(pa.string())


# ------------------------------------------------------------------------------------------------
# People
# ------------------------------------------------------------------------------------------------


def _plan_people(
    rng: np.random.Generator, n_persons: int, window: _Window, mess: MessRates
) -> _People:
    """Segments, signups and planted order span of every person, then their duplicate records."""
    shares = _spec_array("share")
    counts = np.floor(shares / shares.sum() * n_persons).astype(np.int64)
    counts[0] += n_persons - counts.sum()
    segment = rng.permutation(np.repeat(np.arange(len(ALL_SEGMENTS)), counts))
    as_of_end = window.as_of_end

    tenure_range = np.minimum(_spec_array("tenure_days"), window.history_days - 0.01)
    lo, hi = tenure_range[segment, 0], tenure_range[segment, 1]
    tenure = lo + rng.random(n_persons) * (hi - lo)
    signup = as_of_end - np.round(tenure * DAY).astype(np.int64)

    delay_range = _spec_array("first_order_delay_days")[segment]
    delay = delay_range[:, 0] + rng.random(n_persons) * (delay_range[:, 1] - delay_range[:, 0])
    first_order = np.minimum(signup + np.round(delay * DAY).astype(np.int64) + 600, as_of_end - 60)

    # Last order: the segment's recency, or (recency None) anywhere after the first order.
    recency = np.array([spec.recency_days or (0.0, 0.0) for spec in ALL_SEGMENTS])[segment]
    room = (as_of_end - 60 - first_order) / DAY
    rec_hi = np.minimum(recency[:, 1], room)
    rec_lo = np.minimum(recency[:, 0], rec_hi)
    by_recency = as_of_end - 60 - (rec_lo + rng.random(n_persons) * (rec_hi - rec_lo)) * DAY
    anywhere = first_order + rng.random(n_persons) * (as_of_end - 60 - first_order)
    free = np.array([spec.recency_days is None for spec in ALL_SEGMENTS])[segment]
    last_order = np.round(np.where(free, anywhere, by_recency)).astype(np.int64)
    last_order = np.clip(last_order, first_order, as_of_end - 60)

    n_orders = _spec_array("orders_min", np.int64)[segment] + rng.poisson(
        _spec_array("orders_extra")[segment]
    )
    n_orders[segment == PROSPECT_CODE] = 0
    # A single order of a "recency anywhere" segment (new) is its first order, days after signup.
    last_order = np.where(free & (n_orders == 1), first_order, last_order)
    return _with_duplicates(
        rng, n_persons, mess, segment, signup, n_orders, first_order, last_order
    )


def _plan_people_realistic(
    rng: np.random.Generator, n_persons: int, window: _Window, mess: MessRates
) -> _People:
    """Buyers without planted segments (``RealisticShape``): signups spread over the window, a
    first order days later, then repeat orders at the buyer's own Gamma-distributed rate, with
    the season, until their exponential lifetime ends. Their future pace is that rate while
    alive at the as-of date, else 0."""
    shape, specs = REALISTIC, REALISTIC_SEGMENTS
    codes = len(specs)
    shares = _spec_array("share", specs=specs)
    counts = np.floor(shares / shares.sum() * n_persons).astype(np.int64)
    counts[0] += n_persons - counts.sum()
    segment = rng.permutation(np.repeat(np.arange(codes), counts))
    as_of_end, last_allowed = window.as_of_end, window.as_of_end - 60

    tenure = rng.uniform(0.5, window.history_days - 0.01, n_persons)
    signup = as_of_end - np.round(tenure * DAY).astype(np.int64)
    delay = rng.exponential(shape.first_order_delay_days, n_persons)
    first_order = np.minimum(signup + np.round(delay * DAY).astype(np.int64) + 600, last_allowed)
    rate = rng.gamma(shape.rate_shape, shape.repeats_per_year / shape.rate_shape / 365, n_persons)
    alive_until = first_order + np.round(rng.exponential(shape.lifetime_days, n_persons) * DAY)
    value = np.exp(rng.normal(np.log(shape.order_value_median), shape.order_value_sigma, n_persons))

    # Seasonal intensity per day of the window; its running sum maps uniform draws to days.
    days = window.start_date.toordinal() + np.arange(window.n_days)
    day_of_year = np.array([date.fromordinal(int(d)).timetuple().tm_yday for d in days])
    season = 1 + shape.season_amplitude * np.cos(
        2 * np.pi * (day_of_year - shape.peak_day_of_year) / 365.25
    )
    cumulative = np.concatenate([[0.0], np.cumsum(season)])

    def mass(at: np.ndarray) -> np.ndarray:  # seasonal days from the window start to ``at``
        position = np.clip((at - window.start) / DAY, 0, window.n_days)
        whole = np.minimum(position.astype(np.int64), window.n_days - 1)
        return cumulative[whole] + (position - whole) * season[whole]

    buyer = segment == 0
    end = np.minimum(alive_until, last_allowed)
    repeats = np.where(buyer, rng.poisson(rate * np.maximum(mass(end) - mass(first_order), 0)), 0)
    voided = segment == 1
    n_orders = np.where(buyer, 1 + repeats, 0)
    n_orders[voided] = 1 + rng.poisson(0.4, int(voided.sum()))
    owner, position = _positions(n_orders)
    low, high = mass(first_order)[owner], mass(np.maximum(end, first_order))[owner]
    drawn = low + rng.random(len(owner)) * (high - low)
    day = np.clip(np.searchsorted(cumulative, drawn, side="right") - 1, 0, window.n_days - 1)
    fraction = (drawn - cumulative[day]) / season[day]
    times = window.start + np.round((day + np.clip(fraction, 0, 1)) * DAY).astype(np.int64)
    times[position == 0] = first_order[owner[position == 0]]
    times = np.clip(times, first_order[owner], last_allowed)
    last_order = first_order.copy()
    np.maximum.at(last_order, owner, times)

    alive = buyer & (alive_until > as_of_end)
    return _with_duplicates(
        rng, n_persons, mess, segment, signup, n_orders, first_order, last_order,
        specs=specs,
        order_value=value,
        future_pace=np.where(alive, rate, 0.0),
        order_owner=owner,
        order_times=times,
        voided=voided,
    )  # fmt: skip


def _with_duplicates(
    rng: np.random.Generator,
    n_persons: int,
    mess: MessRates,
    segment: np.ndarray,
    signup: np.ndarray,
    n_orders: np.ndarray,
    first_order: np.ndarray,
    last_order: np.ndarray,
    **profile,
) -> _People:
    """The persons planned, plus their near-duplicate CRM records (``profile``: the optional
    per-person fields of ``_People``)."""
    # Near-duplicates: only persons with 2+ orders, so the duplicate (signing up between the
    # first and the last of them) can take over some of the person's later activity.
    eligible = np.flatnonzero(n_orders >= 2)
    n_dups = min(len(eligible), round(mess.duplicate_person * n_persons))
    dup_persons = np.sort(rng.choice(eligible, size=n_dups, replace=False))
    dup_kinds = np.arange(n_dups) % len(DUPLICATE_KINDS)  # every kind, evenly
    rng.shuffle(dup_kinds)
    span = np.maximum(last_order[dup_persons] - first_order[dup_persons], 0)
    dup_signup = first_order[dup_persons] + 3600 + np.round(rng.random(n_dups) * 0.8 * span)
    duplicate_of_person = np.full(n_persons, -1, dtype=np.int64)
    duplicate_of_person[dup_persons] = n_persons + np.arange(n_dups)

    all_signup = np.concatenate([signup, dup_signup.astype(np.int64)])
    number = np.empty(len(all_signup), dtype=np.int64)
    number[np.lexsort((np.arange(len(all_signup)), all_signup))] = np.arange(1, len(all_signup) + 1)
    return _People(
        n_persons=n_persons,
        segment=np.concatenate([segment, segment[dup_persons]]),
        person=np.concatenate([np.arange(n_persons), dup_persons]),
        signup=all_signup,
        duplicate_kind=np.concatenate([np.full(n_persons, -1), dup_kinds]),
        number=number,
        n_orders=n_orders,
        first_order=first_order,
        last_order=last_order,
        duplicate_of_person=duplicate_of_person,
        **profile,
    )


def _to_records(
    rng: np.random.Generator, people: _People, owner: np.ndarray, times: np.ndarray
) -> np.ndarray:
    """The record of each activity row: the person's, or for about half of what a person with a
    duplicate does after the duplicate signed up, the duplicate's."""
    dup = people.duplicate_of_person[owner]
    after = times > people.signup[np.maximum(dup, 0)]
    moved = (dup >= 0) & after & (rng.random(len(owner)) < 0.5)
    return np.where(moved, dup, owner)


def _partition_days(
    rng: np.random.Generator, window: _Window, times: np.ndarray, rate: float
) -> np.ndarray:
    """Arrival day of each row: its own day, or for a few late rows 1-3 days later (within the
    window), as when a device syncs late or an upstream export is re-run."""
    day = window.day(times)
    late = rng.random(len(times)) < rate
    shifted = day + rng.integers(1, 4, size=len(times))
    return np.where(late & (shifted < window.n_days), shifted, day)


def _numbers_in_time_order(times: np.ndarray, *tiebreak: np.ndarray) -> np.ndarray:
    """1-based sequence numbers by time, as a source system's counter would hand them out."""
    order = np.lexsort((*reversed(tiebreak), times))
    numbers = np.empty(len(times), dtype=np.int64)
    numbers[order] = np.arange(1, len(times) + 1)
    return numbers


# ------------------------------------------------------------------------------------------------
# Customers (CRM)
# ------------------------------------------------------------------------------------------------


def _duplicate_email(rng: np.random.Generator, kind: str, email: str, other: str) -> str:
    """The address a duplicate record of ``email``'s owner was registered with."""
    local, _, domain = email.partition("@")
    if kind == "case":
        return email.upper() if rng.random() < 0.3 else f"{local.title()}@{domain.title()}"
    if kind == "whitespace":
        before = ("", " ", "  ")[int(rng.integers(0, 3))]
        return before + email + (" ", "  ", "\t")[int(rng.integers(0, 3))]
    if kind == "dots":
        return f"{local.replace('.', '')}@{domain}"
    if kind == "typo":
        letters = [i for i, ch in enumerate(local) if ch.isalpha()]
        i = letters[int(rng.integers(0, len(letters)))]
        choices = "abcdefghijklmnopqrstuvwxyz".replace(local[i], "")
        letter = choices[int(rng.integers(0, len(choices)))]
        return f"{local[:i]}{letter}{local[i + 1 :]}@{domain}"
    if kind == "name_phone":
        return other
    return email  # exact


def _emails(
    rng: np.random.Generator, people: _People, first_name: np.ndarray, last_name: np.ndarray
) -> pa.Array:
    """``first.last.<customer number>@domain`` for persons; duplicates get a variant of it."""
    domain = pa.array(EMAIL_DOMAINS).take(
        pa.array(rng.integers(0, len(EMAIL_DOMAINS), people.n_records))
    )
    first = pa.array([n.lower() for n in FIRST_NAMES]).take(pa.array(first_name))
    last = pa.array([n.lower() for n in LAST_NAMES]).take(pa.array(last_name))
    # The customer number the id carries (shifted past earlier shards), so addresses are unique.
    shift = people.ids.offsets.get("C", 0) if people.ids is not None else 0
    person_number = pc.cast(pa.array(people.number[people.person] + shift), pa.string())
    person_domain = domain.take(pa.array(people.person))
    email = pc.binary_join_element_wise(
        first, ".", last, ".", person_number, "@", person_domain, ""
    )
    duplicates = np.flatnonzero(people.duplicate_kind >= 0)
    if not len(duplicates):
        return email
    # name_phone duplicates used another address altogether: no dots, their own number.
    own_number = pc.cast(pa.array(people.number + shift), pa.string())
    other = pc.binary_join_element_wise(first, last, own_number, "@", domain, "")
    picked = pa.array(duplicates)
    variants = [
        _duplicate_email(rng, DUPLICATE_KINDS[people.duplicate_kind[record]], base, alternative)
        for record, base, alternative in zip(
            duplicates,
            email.take(picked).to_pylist(),
            other.take(picked).to_pylist(),
            strict=True,
        )
    ]
    mask = np.zeros(people.n_records, dtype=bool)
    mask[duplicates] = True
    return pc.replace_with_mask(email, pa.array(mask), pa.array(variants, pa.string()))


def _states(rng: np.random.Generator, location: np.ndarray, rate: float) -> pa.DictionaryArray:
    """The state code, or now and then a spelling people type instead ("N.Y.", "new york")."""
    values: list[str] = []
    variants: list[list[int]] = []  # per location: canonical index first, then the spellings
    for _, code, _, _ in LOCATIONS:
        spellings = [code] if code else []
        if code in US_STATE_NAMES:
            name = US_STATE_NAMES[code]
            spellings += [".".join(code) + ".", name.lower(), name]
        for spelling in spellings:
            if spelling not in values:
                values.append(spelling)
        variants.append([values.index(s) for s in spellings] or [-1])
    table = np.array([v + [v[0]] * (4 - len(v)) for v in variants])  # pad: no spelling known
    messy = rng.random(len(location)) < rate
    pick = np.where(messy, rng.integers(1, 4, len(location)), 0)
    index = table[location, pick]
    return _categorical(np.maximum(index, 0), values, index < 0)


def _countries(rng: np.random.Generator, location: np.ndarray, rate: float) -> pa.DictionaryArray:
    """The ISO code, or now and then a spelled-out variant ("USA", "united states")."""
    codes = list(COUNTRY_VARIANTS)
    values = [*codes, *(v for c in codes for v in COUNTRY_VARIANTS[c])]
    canonical = np.array([codes.index(loc[2]) for loc in LOCATIONS])[location]
    messy = rng.random(len(location)) < rate
    variant = len(codes) + 3 * canonical + rng.integers(0, 3, len(location))
    return _categorical(np.where(messy, variant, canonical), values)


def _birth_dates(
    rng: np.random.Generator,
    people: _People,
    age_years: np.ndarray,
    window: _Window,
    mess: MessRates,
) -> pa.Array:
    """Ages 18-80 at signup; a few impossible ones (-5 or 150+ years); some missing."""
    n = people.n_records
    # From the person's signup, so that all records of a person share the birth date.
    signup_day = people.signup[people.person] // DAY
    birth_day = signup_day - np.round(age_years * 365.25).astype(np.int64)
    as_of_day = _epoch(window.as_of) // DAY
    unborn = as_of_day + 5 * 366 + rng.integers(0, 300, n)
    ancient = as_of_day - np.round(rng.uniform(150, 160, n) * 365.25).astype(np.int64)
    # At least one of each kind: at this rate a small demo could otherwise miss one.
    impossible = rng.choice(n, size=min(n, max(2, round(mess.impossible_age * n))), replace=False)
    birth_day[impossible[0::2]] = unborn[impossible[0::2]]
    birth_day[impossible[1::2]] = ancient[impossible[1::2]]
    return pa.array(
        birth_day.astype(np.int32), pa.date32(), mask=rng.random(n) < mess.missing_birth_date
    )


def _customer_rows(
    rng: np.random.Generator, people: _People, window: _Window, mess: MessRates
) -> tuple[pa.Table, np.ndarray]:
    """The CRM rows (sorted by arrival) and their arrival day.

    Every record lands on its signup day; a few land again later with the consent flipped (the
    newest ``updated_at`` wins downstream), and a few rows are exported twice.
    """
    n, persons, n_persons = people.n_records, people.person, people.n_persons
    # A person's records share name, phone, birth date and address; each record has its own
    # email, consent and (for messy spellings) state/country text.
    first_name = rng.integers(0, len(FIRST_NAMES), n_persons)[persons]
    last_name = rng.integers(0, len(LAST_NAMES), n_persons)[persons]
    gender = rng.choice(len(GENDERS), size=n_persons, p=GENDER_WEIGHTS)[persons]
    weights = np.array([loc[3] for loc in LOCATIONS])
    location = rng.choice(len(LOCATIONS), size=n_persons, p=weights / weights.sum())[persons]
    age_years = rng.uniform(18, 80, n_persons)[persons]
    phone_digits = rng.integers(2_000_000_000, 9_999_999_999, n_persons)[persons]
    # Richer segments lean to the higher income bands (descriptive only, not a feature).
    tilt = people.spec("income_tilt")[people.segment[:n_persons]]
    income = np.clip(np.floor(rng.normal(1.4 + tilt, 0.9)), 0, len(INCOME_BANDS) - 1)[persons]
    consent = rng.random(n) < 0.85

    calling_code = pa.array([COUNTRY_CALLING_CODES[loc[2]] for loc in LOCATIONS])
    phone = pc.binary_join_element_wise(
        calling_code.take(pa.array(location)), _template_strings("-###-###-####", phone_digits), ""
    )
    # A name_phone duplicate is only recognisable by its phone: keep both records' phones, the
    # duplicate's typed the national way, "(555) 010-0199". A typo duplicate left its phone out:
    # only its address (one letter off), name and birth date tell who it is.
    name_phone = np.zeros(n, dtype=bool)
    name_phone[people.duplicate_kind == DUPLICATE_KINDS.index("name_phone")] = True
    national = name_phone.copy()
    name_phone[persons[name_phone]] = True
    typo = people.duplicate_kind == DUPLICATE_KINDS.index("typo")
    no_phone = typo | (~name_phone & (rng.random(n) < mess.missing_phone))
    phone = pc.if_else(
        pa.array(national), _template_strings("(###) ###-####", phone_digits % 10**10), phone
    )

    record_columns = {
        "customer_id": people.id_strings("C", 7, people.number, n),
        "first_name": _categorical(first_name, FIRST_NAMES),
        "last_name": _categorical(last_name, LAST_NAMES),
        "email": _emails(rng, people, first_name, last_name),
        "phone": pc.if_else(pa.array(no_phone), pa.scalar(None, pa.string()), phone),
        "birth_date": _birth_dates(rng, people, age_years, window, mess),
        "gender": _categorical(gender, GENDERS, rng.random(n) < mess.missing_gender),
        "city": _categorical(
            location, [loc[0] for loc in LOCATIONS], rng.random(n) < mess.missing_city
        ),
        "state": _states(rng, location, mess.messy_state),
        "country": _countries(rng, location, mess.messy_country),
        "income_band": _categorical(income, INCOME_BANDS, rng.random(n) < mess.missing_income_band),
        "signup_at": _timestamps(people.signup),
    }

    # Updates: some every day (a CRM export is never empty), each for a record that existed then.
    n_spread = max(round(mess.crm_update * n) - (window.n_days - 1), 0)
    update_day = np.concatenate(
        [np.arange(1, window.n_days), rng.integers(1, window.n_days, n_spread)]
    )
    update_at = window.start + update_day * DAY + rng.integers(0, DAY, len(update_day))
    by_signup = np.argsort(people.signup, kind="stable")
    existing = np.searchsorted(people.signup[by_signup], update_at - 3600)
    picked = by_signup[np.minimum((rng.random(len(update_day)) * existing).astype(np.int64), n - 1)]
    updated, update_at = picked[existing > 0], update_at[existing > 0]
    record = np.concatenate([np.arange(n), updated])
    row_consent = np.concatenate([consent, ~consent[updated]])
    updated_at = np.concatenate([people.signup, update_at])
    twice = np.flatnonzero(rng.random(len(record)) < mess.exact_crm_row)
    record, row_consent, updated_at = (
        np.concatenate([column, column[twice]]) for column in (record, row_consent, updated_at)
    )
    order = np.lexsort((people.number[record], updated_at))
    record, row_consent, updated_at = record[order], row_consent[order], updated_at[order]

    taken = pa.array(record)
    table = pa.table({name: column.take(taken) for name, column in record_columns.items()})
    table = table.append_column(
        "marketing_consent", _categorical(row_consent, ("false", "true"))
    ).append_column("updated_at", _timestamps(updated_at))
    return table, window.day(updated_at)


# ------------------------------------------------------------------------------------------------
# Orders
# ------------------------------------------------------------------------------------------------


def _keeps_ordering(people: _People) -> np.ndarray:
    """Per person: the segment's order-rate multiplier after the as-of date (0: dropped out)."""
    if people.future_pace is not None:
        return (people.future_pace > 0).astype(np.float64)
    return people.spec("keeps_ordering")[people.segment[: people.n_persons]]


def _future_pace(people: _People, window: _Window) -> np.ndarray:
    """Per person: completed orders per day after the as-of date: the repeat orders per day
    since the first order (at least 30 days), times the segment's multiplier (or the profile's
    own planted pace)."""
    if people.future_pace is not None:
        return people.future_pace
    days_since_first = np.maximum((window.as_of_end - people.first_order) / DAY, 30.0)
    repeats = np.maximum(people.n_orders - 1, 0)
    return repeats / days_since_first * _keeps_ordering(people)


def _order_rows(
    rng: np.random.Generator, people: _People, window: _Window, mess: MessRates
) -> tuple[pa.Table, np.ndarray]:
    """Planted completed orders, the days after the as-of date, and the messy extra rows."""
    segment = people.segment[: people.n_persons]
    first, last, n_orders = people.first_order, people.last_order, people.n_orders
    if people.order_times is not None:
        owner, times = people.order_owner, people.order_times
    else:
        owner, position = _positions(n_orders)
        # First and last order at the planted times, the others spread in between.
        share = rng.random(len(owner))
        share[position == 0] = 0.0
        share[position == n_orders[owner] - 1] = 1.0
        times = first[owner] + np.round(share * (last[owner] - first[owner])).astype(np.int64)

    # After the as-of date people keep ordering at their own pace (lapsed ones do not).
    pace = _future_pace(people, window)
    n_later = rng.poisson(pace * (window.end - window.as_of_end) / DAY)
    later_owner = np.repeat(np.arange(people.n_persons), n_later)
    later = window.as_of_end + (rng.random(len(later_owner)) * (window.end - window.as_of_end))
    owner = np.concatenate([owner, later_owner])
    times = np.concatenate([times, later.astype(np.int64)])

    value = (
        people.order_value
        if people.order_value is not None
        else people.spec("order_value")[segment]
    )
    typical = value * rng.lognormal(0, 0.15, people.n_persons)
    cents = np.round(typical[owner] * rng.lognormal(-0.03, 0.25, len(owner)) * 100)
    cents = np.clip(cents, 199, 500_000).astype(np.int64)
    status = np.zeros(len(owner), dtype=np.int64)
    if people.voided is not None:
        # Every order of a voided person is cancelled, returned or booked at 0.
        void = people.voided[owner]
        kind = rng.integers(0, 3, len(owner))
        status = np.where(void & (kind < 2), kind + 1, status)
        cents = np.where(void & (kind == 2), 0, cents)

    # Mess as extra rows beside a real order of the same person (about the same time), so it
    # never changes who looks recent or lapsed: cancelled and returned orders, refunds booked
    # as negative completed orders, and absurd amounts (>= 100k).
    n_real = len(owner)
    extra: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    for code, rate in ((1, mess.cancelled_order), (2, mess.returned_order)):
        pick = rng.choice(n_real, size=max(1, round(rate * n_real)), replace=False)
        extra.append((pick, np.full(len(pick), code), cents[pick]))
    pick = rng.choice(n_real, size=max(1, round(mess.negative_amount * n_real)), replace=False)
    extra.append((pick, np.zeros(len(pick)), -rng.integers(100, 20_000, len(pick))))
    pick = rng.choice(n_real, size=max(1, round(mess.extreme_amount * n_real)), replace=False)
    absurd = np.array([100_000_000, 99_999_999, 25_000_000, 12_345_678])
    extra.append((pick, np.zeros(len(pick)), absurd[rng.integers(0, len(absurd), len(pick))]))
    for pick, codes, amounts in extra:
        jitter = rng.integers(-3 * 3600, 3 * 3600, len(pick))
        owner = np.concatenate([owner, owner[pick]])
        times = np.concatenate([times, times[pick] + jitter])
        cents = np.concatenate([cents, amounts.astype(np.int64)])
        status = np.concatenate([status, codes.astype(np.int64)])
    times = np.clip(times, people.signup[owner] + 60, window.end - 1)
    record = _to_records(rng, people, owner, times)

    order_number = _numbers_in_time_order(times, people.number[record])
    day = _partition_days(rng, window, times, mess.late_row)
    # A few rows exported twice, identical, in the same file.
    rows = np.concatenate(
        [np.arange(len(times)), np.flatnonzero(rng.random(len(times)) < mess.exact_order_row)]
    )
    rows = rows[np.lexsort((order_number[rows], day[rows]))]
    customer_ids = people.customer_ids()
    table = pa.table(
        {
            "order_id": people.id_strings("O", 9, order_number[rows], len(times)),
            "customer_id": customer_ids.take(pa.array(people.number[record[rows]] - 1)),
            "ordered_at": _timestamps(times[rows]),
            "amount": _amounts(cents[rows]),
            "status": _categorical(status[rows], ORDER_STATUSES),
        }
    )
    return table, day[rows]


# ------------------------------------------------------------------------------------------------
# Web events
# ------------------------------------------------------------------------------------------------


def _web_event_rows(
    rng: np.random.Generator, people: _People, window: _Window, mess: MessRates
) -> tuple[pa.Table, np.ndarray]:
    """Sessions from signup on (lapsed people stop soon after their last order), a page view
    first, then product views, searches, cart adds and checkouts; a few anonymous sessions."""
    segment = people.segment[: people.n_persons]
    signup = people.signup[: people.n_persons]
    stop_after = np.array([s.browse_days_after_last_order or np.inf for s in people.specs])[segment]
    browse_end = np.minimum(window.end, people.last_order + stop_after * DAY)
    browse_end = np.maximum(browse_end, signup + DAY).astype(np.int64)
    n_sessions = rng.poisson(
        people.spec("sessions_per_30_days")[segment] * (browse_end - signup) / DAY / 30
    )
    owner, _ = _positions(n_sessions)
    start = signup[owner] + (rng.random(len(owner)) * (browse_end - signup)[owner]).astype(np.int64)
    record = _to_records(rng, people, owner, start)
    # One browser cookie per person: a duplicate account used on the same device shares it.
    cookie = rng.integers(1, 16**10, size=people.n_persons)[owner]
    profile = segment[owner]

    n_anonymous = round(mess.anonymous_session * len(owner))
    anonymous_start = window.start + rng.random(n_anonymous) * (window.end - window.start)
    record = np.concatenate([record, np.full(n_anonymous, -1)])
    start = np.concatenate([start, anonymous_start.astype(np.int64)])
    cookie = np.concatenate([cookie, rng.integers(1, 16**10, n_anonymous)])
    profile = np.concatenate([profile, np.full(n_anonymous, people.prospect_code)])

    n_events = 1 + np.minimum(rng.poisson(people.spec("events_per_session_extra")[profile]), 7)
    session, position = _positions(n_events)
    gaps = rng.integers(5, 300, size=len(session))
    gaps[position == 0] = 0
    elapsed = np.cumsum(gaps)
    elapsed -= (elapsed - gaps)[position == 0][session]  # restart the running sum per session
    times = start[session] + elapsed
    # After the page view: add_to_cart at the segment's rate, else a product view or a search;
    # right after an add_to_cart, often a checkout.
    cart = (rng.random(len(session)) < people.spec("cart_share")[profile][session]) & (position > 0)
    after_cart = np.zeros(len(session), dtype=bool)
    after_cart[1:] = cart[:-1] & (position[1:] > 0)
    checkout = ~cart & after_cart & (rng.random(len(session)) < 0.6)
    event_type = np.where(rng.random(len(session)) < 0.6, 1, 2)
    event_type[cart] = 3
    event_type[checkout] = 4
    event_type[position == 0] = 0
    keep = times < window.end
    session, times, event_type = session[keep], times[keep], event_type[keep]

    session_number = _numbers_in_time_order(start)
    event_number = _numbers_in_time_order(times, session_number[session])
    day = _partition_days(rng, window, times, mess.late_row)
    rows = np.lexsort((event_number, day))
    session, times, event_type, day = session[rows], times[rows], event_type[rows], day[rows]
    session_record = record[session]
    anonymous = session_record < 0
    customer = people.number[np.maximum(session_record, 0)] - 1
    table = pa.table(
        {
            "event_id": people.id_strings("W", 10, event_number[rows], len(times)),
            "session_id": people.id_strings("S", 9, session_number[session], len(start)),
            "customer_id": people.customer_ids().take(pa.array(customer, mask=anonymous)),
            "anonymous_id": _hex_strings("A##########", cookie[session]),
            "event_type": _categorical(event_type, WEB_EVENT_TYPES),
            "occurred_at": _timestamps(times),
        }
    )
    return table, day


# ------------------------------------------------------------------------------------------------
# Email events
# ------------------------------------------------------------------------------------------------


def _email_event_rows(
    rng: np.random.Generator, people: _People, window: _Window, mess: MessRates
) -> tuple[pa.Table, np.ndarray]:
    """A welcome email, then campaigns from signup on; opens, clicks, bounces, unsubscribes.

    The volume sent does not depend on marketing consent, so that consent (a CRM field without
    behavioural meaning in this demo) does not split the behavioural clusters.
    """
    segment = people.segment[: people.n_persons]
    signup = people.signup[: people.n_persons]
    # Campaigns on Monday, Wednesday and Friday of each week, opens spread over the next day or
    # two, so that every day has email events, as a real feed does.
    weekday = (window.start_date.weekday() + np.arange(window.n_days)) % 7
    campaign_day = np.flatnonzero(np.isin(weekday, (0, 2, 4)))
    campaign_at = window.start + campaign_day * DAY + 9 * 3600
    first = np.searchsorted(campaign_at, signup)
    available = len(campaign_at) - first
    n_sends = rng.binomial(available, people.spec("email_send_prob")[segment])
    owner, position = _positions(n_sends)
    # Stratified picks: distinct campaigns, spread over the person's time on the list.
    slot = (position + rng.random(len(owner))) * available[owner] / np.maximum(n_sends[owner], 1)
    campaign = first[owner] + np.minimum(slot.astype(np.int64), available[owner] - 1)
    sent = campaign_at[campaign] + rng.integers(0, 4 * 3600, len(owner))
    record = _to_records(rng, people, owner, sent)
    profile = segment[owner]
    # Every record, a duplicate one too, gets a welcome email minutes after signing up.
    welcome = len(campaign_day)
    record = np.concatenate([record, np.arange(people.n_records)])
    profile = np.concatenate([profile, people.segment])
    campaign = np.concatenate([campaign, np.full(people.n_records, welcome)])
    sent = np.concatenate([sent, people.signup + rng.integers(60, 1800, people.n_records)])

    n = len(sent)
    bounced = rng.random(n) < 0.01
    opened = ~bounced & (rng.random(n) < people.spec("email_open_prob")[profile])
    open_at = sent + 30 + rng.exponential(24 * 3600, n).astype(np.int64)
    clicked = opened & (rng.random(n) < people.spec("email_click_prob")[profile])
    unsubscribed = opened & (rng.random(n) < 0.004)
    happened = [
        (np.ones(n, dtype=bool), sent),
        (opened, open_at),
        (clicked, open_at + rng.integers(10, 900, n)),
        (bounced, sent + rng.integers(1, 120, n)),
        (unsubscribed, open_at + rng.integers(20, 300, n)),
    ]
    times = np.concatenate([at[mask] for mask, at in happened])
    send = np.concatenate([np.flatnonzero(mask) for mask, _ in happened])
    event_type = np.concatenate(
        [np.full(mask.sum(), code) for code, (mask, _) in enumerate(happened)]
    )
    keep = times < window.end
    times, send, event_type = times[keep], send[keep], event_type[keep]

    event_number = _numbers_in_time_order(times, people.number[record[send]], event_type)
    day = _partition_days(rng, window, times, mess.late_row)
    rows = np.lexsort((event_number, day))
    times, send, event_type, day = times[rows], send[rows], event_type[rows], day[rows]
    campaign_names = [
        *(f"CMP-{window.start_date + timedelta(days=int(d)):%Y%m%d}" for d in campaign_day),
        "WELCOME",
    ]
    table = pa.table(
        {
            "event_id": people.id_strings("E", 10, event_number[rows], len(times)),
            "customer_id": people.customer_ids().take(pa.array(people.number[record[send]] - 1)),
            "campaign_id": _categorical(campaign[send], campaign_names),
            "event_type": _categorical(event_type, EMAIL_EVENT_TYPES),
            "occurred_at": _timestamps(times),
        }
    )
    return table, day


# ------------------------------------------------------------------------------------------------
# Writing
# ------------------------------------------------------------------------------------------------


def _write_csv(table: pa.Table, sink: pa.NativeFile, quoting: str = "none") -> None:
    """Header and rows, strings unquoted: no value holds a comma, quote or newline, and unquoted
    files look like a plain export. (pyarrow always quotes a header it writes itself.)"""
    sink.write((",".join(table.column_names) + "\n").encode())
    _write_rows(table, sink, quoting)


def _write_rows(table: pa.Table, sink: pa.NativeFile, quoting: str = "none") -> None:
    if table.num_rows:
        pacsv.write_csv(
            table, sink, pacsv.WriteOptions(include_header=False, quoting_style=quoting)
        )


def _write_partitions(
    table: pa.Table,
    day: np.ndarray,
    source: str,
    root: Path,
    window: _Window,
    *,
    append: bool = False,
) -> int:
    """One file per arrival day of the window, header-only on a day nothing arrived (so a quiet
    day is visibly quiet rather than missing); rows must be sorted by ``day``. ``append``: add
    the rows (no header) to the files an earlier shard wrote."""
    if tuple(table.column_names) != COLUMNS[source]:  # the landing contract is binding
        raise AssertionError(f"{source} columns {table.column_names} != {COLUMNS[source]}")
    bounds = np.searchsorted(day, np.arange(window.n_days + 1))
    for offset in range(window.n_days):
        folder = root / source / f"date={window.start_date + timedelta(days=offset)}"
        lo, hi = int(bounds[offset]), int(bounds[offset + 1])
        if append:
            with pa.OSFile(str(folder / f"{source}.csv"), "ab") as sink:
                _write_rows(table.slice(lo, hi - lo), sink)
            continue
        folder.mkdir(parents=True)
        with pa.OSFile(str(folder / f"{source}.csv"), "wb") as sink:
            _write_csv(table.slice(lo, hi - lo), sink)
    return window.n_days


def _write_truth(
    people: _People, window: _Window, folder: Path, *, append: bool = False
) -> np.ndarray:
    """customers.csv and purchase_rates.csv (``append``: this shard's rows after the earlier
    shards'); returns the persons per segment code, for ``_write_segments``."""
    write, mode = (_write_rows, "ab") if append else (_write_csv, "wb")
    order = np.argsort(people.number)
    ids = people.customer_ids()  # already in number order
    kind = people.duplicate_kind[order]
    customers = pa.table(
        {
            "customer_id": ids,
            "person_id": ids.take(pa.array(people.number[people.person[order]] - 1)),
            "segment": _categorical(people.segment[order], [s.name for s in people.specs]),
            "is_duplicate": _categorical(kind >= 0, ("false", "true")),
            "duplicate_kind": _categorical(np.maximum(kind, 0), DUPLICATE_KINDS, kind < 0),
        }
    )
    with pa.OSFile(str(folder / "customers.csv"), mode) as sink:
        write(customers, sink)
    pace = _future_pace(people, window)
    dropped = (_keeps_ordering(people) == 0).astype(np.int64)
    persons = np.argsort(people.number[: people.n_persons])
    rates = pa.table(
        {
            "person_id": ids.take(pa.array(people.number[persons] - 1)),
            "orders_per_day": pa.array(np.round(pace[persons], 6)),
            "is_dropped_out": _categorical(dropped[persons], ("false", "true")),
        }
    )
    with pa.OSFile(str(folder / "purchase_rates.csv"), mode) as sink:
        write(rates, sink)
    return np.bincount(people.segment[: people.n_persons], minlength=len(people.specs))


def _write_segments(specs: tuple[SegmentSpec, ...], counts: np.ndarray, folder: Path) -> None:
    persons = max(int(counts.sum()), 1)
    segments = pa.table(
        {
            "segment": [s.name for s in specs],
            "share": [f"{c / persons:.4f}" for c in counts],
            "description": [s.description for s in specs],
        }
    )
    with pa.OSFile(str(folder / "segments.csv"), "wb") as sink:
        _write_csv(segments, sink, quoting="needed")  # descriptions hold commas


def _check_target(landing_dir: Path, truth_dir: Path, overwrite: bool) -> None:
    if landing_dir.exists() and not landing_dir.is_dir():
        raise DemoDataError(f"{landing_dir} exists and is not a directory.")
    if overwrite:
        return
    found = sorted(p.name for p in landing_dir.iterdir()) if landing_dir.is_dir() else []
    found += [str(truth_dir / name) for name in TRUTH_FILES if (truth_dir / name).exists()]
    if found:
        raise DemoDataError(
            f"Refusing to write demo data: {landing_dir} (or the truth folder) is not empty "
            f"(found: {', '.join(found[:6])}). Pass overwrite=True (CLI: --overwrite) to replace "
            "the demo's source folders and truth files."
        )


def _swap_in(staging: Path, landing_dir: Path, truth_staging: Path, truth_dir: Path) -> None:
    """Replace what an earlier run wrote (and only that) with the freshly written dataset.

    Old folders are renamed aside first and deleted once the new ones are in place, so a crash
    leaves the old or the new dataset, never a mix with half of one.
    """
    landing_dir.mkdir(parents=True, exist_ok=True)
    truth_dir.mkdir(parents=True, exist_ok=True)
    old = landing_dir.parent / f".{landing_dir.name}.demo-old-{uuid.uuid4().hex[:8]}"
    old_truth = truth_dir.parent / f".{truth_dir.name}.demo-old-{uuid.uuid4().hex[:8]}"
    old.mkdir()
    old_truth.mkdir()
    try:
        for source in SOURCES:
            if (landing_dir / source).exists():
                (landing_dir / source).rename(old / source)
        for name in TRUTH_FILES:
            if (truth_dir / name).exists():
                (truth_dir / name).rename(old_truth / name)
        for source in SOURCES:
            (staging / source).rename(landing_dir / source)
        for name in TRUTH_FILES:
            (truth_staging / name).rename(truth_dir / name)
    finally:
        shutil.rmtree(old, ignore_errors=True)
        shutil.rmtree(old_truth, ignore_errors=True)


# ------------------------------------------------------------------------------------------------
# Entry points
# ------------------------------------------------------------------------------------------------

_SOURCE_ROWS = {
    "customers": _customer_rows,
    "orders": _order_rows,
    "web_events": _web_event_rows,
    "email_events": _email_event_rows,
}


def _shards(
    seed: int, n_customers: int, shard_persons: int
) -> tuple[list[tuple[np.random.Generator, int]], _Ids | None]:
    """Each shard's generator and size, and the id numbering across shards. One shard: one
    generator for everything (the demo's historic byte-identical output). More: every shard has
    its own generator, spawned from the seed, and its own persons."""
    n_shards = -(-n_customers // shard_persons)
    if n_shards == 1:
        return [(np.random.default_rng(seed), n_customers)], None
    sizes = [len(part) for part in np.array_split(np.arange(n_customers), n_shards)]
    streams = np.random.SeedSequence(seed).spawn(n_shards)
    generators = [np.random.default_rng(stream) for stream in streams]
    return list(zip(generators, sizes, strict=True)), _Ids.for_demo(n_customers)


def _write_shard(
    rng: np.random.Generator,
    people: _People,
    window: _Window,
    mess: MessRates,
    staging: Path,
    rows: dict[str, int],
    *,
    append: bool,
) -> int:
    """Every source's rows of one shard into the daily files; adds to ``rows``, returns the
    partition files created (none when appending)."""
    partitions = 0
    for source, make_rows in _SOURCE_ROWS.items():
        with _step(source):
            table, day = make_rows(rng, people, window, mess)
            written = _write_partitions(table, day, source, staging, window, append=append)
            partitions += 0 if append else written
            rows[source] += table.num_rows
            del table, day
    return partitions


def generate_demo_data(
    landing_dir: Path,
    truth_dir: Path,
    *,
    n_customers: int,
    seed: int = 42,
    start_date: date = DEMO_START,
    end_date: date = DEMO_END,
    overwrite: bool = False,
    mess: MessRates | None = None,
    as_of_lag_days: int = AS_OF_LAG_DAYS,
    profile: str = "planted",
    shard_persons: int = SHARD_PERSONS,
) -> DemoSummary:
    """Write the demo landing partitions and the planted truth; same arguments, same bytes.

    ``n_customers`` counts people (prospects included); near-duplicate CRM records come on top.
    Behaviour is anchored on the as-of date ``end_date - 7 days``. Refuses (``DemoDataError``, a
    ``ValueError``) to write into a non-empty landing folder unless ``overwrite``; with it, only
    the source folders and truth files a previous run wrote are replaced. Everything is written
    to temporary sibling folders first and renamed into place at the end.

    ``profile``: ``planted`` (default) plants five clean behavioural segments the clustering must
    find; ``realistic`` plants none and draws buyers as a real shop's log looks
    (``RealisticShape``: heavy-tailed spend, many one-time buyers, many lapsed, seasonal orders),
    the data the default segmentation must still make actionable.

    Memory is bounded by ``shard_persons``: above it, the people are generated and written in
    shards of at most that many (each with its own persons, their duplicates and their rows,
    appended to the same daily files, ids numbered on across shards), so the peak stays that of
    one shard whatever ``n_customers`` is. Up to it (every size the tests use) the demo is one
    shard, drawn from one generator as before.
    """
    started = time.perf_counter()
    landing_dir, truth_dir = Path(landing_dir).absolute(), Path(truth_dir).absolute()
    # A longer lag lands more of the planted future (tests of the predictions use 90 days).
    window = _Window(start_date, end_date, end_date - timedelta(days=as_of_lag_days))
    if profile not in PROFILES:
        raise DemoDataError(f"profile must be one of {PROFILES}, got {profile!r}.")
    if n_customers < 100:
        raise DemoDataError(f"n_customers must be at least 100, got {n_customers}.")
    if window.history_days < MIN_HISTORY_DAYS:
        raise DemoDataError(
            f"The window {start_date}..{end_date} is too short: the planted segments need "
            f"{MIN_HISTORY_DAYS} days before the as-of date {window.as_of} "
            f"(end_date - {as_of_lag_days} days)."
        )
    _check_target(landing_dir, truth_dir, overwrite)
    if shard_persons < 100:
        raise DemoDataError(f"shard_persons must be at least 100, got {shard_persons}.")
    mess = mess or MessRates()
    plan = _plan_people_realistic if profile == "realistic" else _plan_people
    specs = REALISTIC_SEGMENTS if profile == "realistic" else ALL_SEGMENTS
    shards, ids = _shards(seed, n_customers, shard_persons)
    n_shards = len(shards)

    token = uuid.uuid4().hex[:8]
    staging = landing_dir.parent / f".{landing_dir.name}.demo-new-{token}"
    truth_staging = truth_dir.parent / f".{truth_dir.name}.demo-new-{token}"
    rows = dict.fromkeys(_SOURCE_ROWS, 0)
    partitions, crm_records = 0, 0
    persons = np.zeros(len(specs), dtype=np.int64)
    try:
        staging.mkdir(parents=True)
        truth_staging.mkdir(parents=True)
        for number, (rng, size) in enumerate(shards):
            if n_shards > 1:
                log.info("demo data: shard %d of %d (%d people)", number + 1, n_shards, size)
            with _step("people"):
                people = plan(rng, size, window, mess)
                people.ids = ids
            partitions += _write_shard(rng, people, window, mess, staging, rows, append=number > 0)
            with _step("truth"):
                persons += _write_truth(people, window, truth_staging, append=number > 0)
            crm_records += people.n_records
            if ids is not None:
                ids.advance()
            del people
        _write_segments(specs, persons, truth_staging)
        with _step("swap in"):
            _swap_in(staging, landing_dir, truth_staging, truth_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        shutil.rmtree(truth_staging, ignore_errors=True)

    summary = DemoSummary(
        rows=rows,
        partitions=partitions,
        seconds=round(time.perf_counter() - started, 3),
        n_segments=len(SEGMENTS) if profile == "planted" else 0,
        segments=tuple(s.name for s in specs),
        persons=n_customers,
        crm_records=crm_records,
        as_of_date=window.as_of,
        landing_dir=landing_dir,
        truth_dir=truth_dir,
    )
    log.info("demo data: %s", summary)
    return summary


def main(argv: Sequence[str] | None = None) -> int:
    settings = get_settings()
    parser = argparse.ArgumentParser(
        prog="python -m tools.demo_data",
        description="Write deterministic demo landing partitions with planted segments and mess.",
    )
    parser.add_argument("--customers", type=int, default=5000, help="people to generate")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--profile",
        choices=PROFILES,
        default="planted",
        help="planted: five clean segments (default); realistic: a real shop's shape, none planted",
    )
    parser.add_argument("--start", type=date.fromisoformat, default=DEMO_START)
    parser.add_argument("--end", type=date.fromisoformat, default=DEMO_END)
    parser.add_argument("--landing-dir", type=Path, default=settings.landing_dir)
    parser.add_argument("--truth-dir", type=Path, default=settings.truth_dir)
    parser.add_argument(
        "--overwrite", action="store_true", help="replace the demo data an earlier run wrote"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    try:
        summary = generate_demo_data(
            args.landing_dir,
            args.truth_dir,
            n_customers=args.customers,
            seed=args.seed,
            start_date=args.start,
            end_date=args.end,
            overwrite=args.overwrite,
            profile=args.profile,
        )
    except DemoDataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    rows = ", ".join(f"{source} {count:,}" for source, count in summary.rows.items())
    print(
        f"Wrote {summary.persons:,} people ({summary.crm_records:,} CRM records) in "
        f"{summary.seconds:.1f} s to {summary.landing_dir}: {rows} rows, "
        f"{summary.partitions} partition files; truth in {summary.truth_dir}; "
        f"demo as-of date {summary.as_of_date}."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
