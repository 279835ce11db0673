"""What a gate reads for each rule: full rows, a bounded sample, or an aggregate DuckDB computes.

Great Expectations evaluates every rule (on pandas frames, see ``expectations.gate``), but a
frame need not hold every row of a large batch for the verdict to be the one the full batch
would get. Per rule:

* **row count** (``expect_table_row_count_*``): a frame of the batch's length without any
  column, from one ``count(*)``: exact, no memory.
* **distinct values** (``expect_column_distinct_values_*``): the distinct values, from
  ``select distinct``: exact, since these rules only look at the set.
* **violations and sample** (strict rules of a mart: ``mostly`` 1): every row that may break one
  of them (found by the rule's SQL twin below, up to ``SUSPECT_ROWS``), plus a small sample of the
  rest. A strict rule fails on one bad row, and every bad row is in the frame, so it fails exactly
  when it would on the full batch; the twin may take in rows the rule accepts (GX still judges
  them), never leave out one it rejects.
* **sample** (the rules of history caught up on a first run, all tolerant, and tolerant mart
  rules): a deterministic sample of at most ``HISTORY_SAMPLE_ROWS`` rows, chosen by a hash of
  the row's key (raw) or row id (marts), so both copies of a duplicated key are in or out
  together and the duplicate share is kept. These rules measure a share of bad rows
  (``mostly``); the row rules of the loader already checked every single raw row.
* **full rows** otherwise (the as-of day, the quarantine share, a strict rule without an SQL
  twin, and any batch no larger than its sample), only the columns the rules name; the
  quarantine share of a first run's history in chunks of at most ``QUARANTINE_CHUNK_ROWS``
  incoming rows.

A first run's history is judged in chunks (``HISTORY_CHUNK_ROWS``), each on its own sample, so
that a broken stretch is a share of its chunk, not of the year. Before GX reads them, DuckDB
**screens** the chunks: on each chunk's sample it counts the rows each rule's SQL twin flags (a
superset of the rows GX rejects) against the rows GX counts (``above_tolerance``). A chunk whose
counts are within every rule's tolerance would pass every rule: those chunks are validated
together, as one sample of about ``HISTORY_SAMPLE_ROWS`` rows of their partitions, and every
other chunk on its own sample, exactly as without the screen: every chunk that could fail on
its own is judged on its own. The shared sample is a sample of all those chunks together, so
it can fail where each of them alone passes only when the history as a whole sits at a
tolerance, or when an id repeats across chunks (which a chunk's own sample cannot see). Only
the rules ``screenable`` accepts are screened; a suite with any other (a row count, distinct
values, a rule a team adds) has each chunk of its source validated as before.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from datetime import date
from typing import Any

FULL = "full rows"
COUNT = "row count"
DISTINCT = "distinct values"
SUSPECTS = "violations and sample"
SAMPLE = "sample"

# How a batch is read: the as-of day and the quarantine share in full; raw history and marts
# through the per-rule plan above.
FULL_READING = "full"
HISTORY_READING = "history"
MART_READING = "mart"

# History caught up on a first run is judged in chunks of consecutive partitions of at most this
# many rows (a broken stretch must be a share of its chunk to show; a partition larger than this
# is a chunk of its own). Memory does not depend on it: a chunk is read as a sample.
HISTORY_CHUNK_ROWS = 1_000_000
# The share of a first run's incoming history the loader quarantined is judged exactly, every row
# read (one byte of rule column each), in chunks of consecutive partitions of at most this many
# incoming rows: read whole, a year of 10M customers' web events (107M rows) was 2.2 GB of
# validate_raw's 9.9 GB peak.
QUARANTINE_CHUNK_ROWS = 5_000_000
# The sample of a history chunk's rows the tolerant rules read (standard error of a 2% share of
# bad rows: 0.06 percentage points).
HISTORY_SAMPLE_ROWS = 50_000
# The sample of a mart's good rows read beside its suspects (the suspects decide; the sample
# shows the rule ran on typical rows too).
MART_SAMPLE_ROWS = 10_000
# At most this many suspect rows are read per mart batch: enough to fail every broken rule (one
# bad row does) and to show examples; the reported count of a rule broken on more rows than this
# is at least this many.
SUSPECT_ROWS = 100_000

TABLE_LEVEL_TYPES = frozenset(
    {"expect_table_row_count_to_be_between", "expect_table_row_count_to_equal"}
)
# Rules whose predicate reads a window column the reader adds.
WINDOW_TYPES = frozenset({"expect_compound_columns_to_be_unique"})
DISTINCT_TYPES = frozenset(
    {
        "expect_column_distinct_values_to_contain_set",
        "expect_column_distinct_values_to_be_in_set",
        "expect_column_distinct_values_to_equal_set",
    }
)


def chunk_partitions(rows_per_partition: list[tuple[date, int]], max_rows: int) -> list[list[date]]:
    """Consecutive partitions grouped so that each group holds at most ``max_rows`` rows (a
    partition larger than that is a group of its own); every partition is in exactly one group,
    in the given order."""
    chunks: list[list[date]] = []
    rows_in_chunk = 0
    for day, rows in rows_per_partition:
        if chunks and rows_in_chunk + rows <= max_rows:
            chunks[-1].append(day)
            rows_in_chunk += rows
        else:
            chunks.append([day])
            rows_in_chunk = rows
    return chunks


# The rules a history chunk is screened for, and a regex's constructs whose meaning differs
# between Python's ``re`` (which pandas uses for a pattern with a shorthand class) and RE2: a
# negated shorthand class or word boundary, or a shorthand class inside a negated set (``[^\s]``:
# Python's ``\s`` holds the no-break space, RE2's does not). With one, a twin might pass a value
# GX rejects; a shorthand class in a positive set or alone errs the other way (Python accepts
# more), which only sends a chunk to GX on its own.
SCREENED_TYPES = frozenset(
    {
        "expect_column_values_to_not_be_null",
        "expect_column_values_to_be_unique",
        "expect_column_values_to_be_in_set",
        "expect_column_values_to_match_regex",
    }
)
_ENGINE_DEPENDENT_REGEX = re.compile(r"\\[DSWbB]|\[\^(?:[^\]\\]|\\.)*?\\[dsw]")


def screenable(rules: list[Any], text_columns: frozenset[str]) -> bool:
    """Whether DuckDB can screen a history chunk for these rules (GX ``ExpectationConfiguration``
    objects, the schema rules left out) without missing a row GX rejects: every rule is a
    not-null, unique, value-set or regex rule on one text column of the table (no NaN, and
    DuckDB compares text as pandas does), with a tolerance known before the run (not a
    ``$PARAMETER``), a value set of text and a regex without engine-dependent constructs."""
    for rule in rules:
        kwargs = rule.kwargs
        if rule.type not in SCREENED_TYPES or kwargs.get("column") not in text_columns:
            return False
        if violation_sql(rule.type, kwargs, str) is None:  # a row condition, an empty set
            return False
        if not isinstance(kwargs.get("mostly", 1.0), int | float | None):
            return False
        values = kwargs.get("value_set")
        if rule.type == "expect_column_values_to_be_in_set" and not (
            isinstance(values, list | tuple | set) and all(isinstance(v, str) for v in values)
        ):
            return False
        regex = kwargs.get("regex")
        if rule.type == "expect_column_values_to_match_regex" and (
            not isinstance(regex, str) or _ENGINE_DEPENDENT_REGEX.search(regex)
        ):
            return False
    return True


def above_tolerance(flagged: int, counted: int, mostly: float | None) -> bool:
    """Whether a rule may fail on a sample where its SQL twin flags ``flagged`` rows and
    ``counted`` rows have a value in its column. GX fails a rule when more than ``1 - mostly``
    of the rows it counts are unexpected; it counts at least the rows with a value (all rows for
    a not-null rule), and the twin flags at least the rows it rejects, so a sample this says no
    to passes. Equality says yes: GX's own float arithmetic decides that case."""
    if flagged == 0:
        return False
    tolerance = 0.0 if mostly is None else max(1.0 - mostly, 0.0)
    return flagged >= tolerance * counted * (1 - 1e-9)


def sample_modulus(row_count: int, sample_rows: int) -> int:
    """Keep a row when hash % modulus == 0: about ``sample_rows`` of ``row_count`` rows."""
    return max(1, math.ceil(row_count / max(sample_rows, 1)))


def plan(rules: list[Any], reading: str, row_count: int, sample_rows: int) -> dict[str, list[Any]]:
    """The frame each rule (a GX ``ExpectationConfiguration``) reads, in first-use order."""
    if reading == FULL_READING or row_count <= sample_rows:
        return {FULL: list(rules)} if rules else {}
    groups: dict[str, list[Any]] = {}
    for rule in rules:
        if rule.type in TABLE_LEVEL_TYPES:
            kind = COUNT
        elif rule.type in DISTINCT_TYPES:
            kind = DISTINCT
        elif reading == HISTORY_READING:
            kind = SAMPLE
        elif not _strict(rule.kwargs):
            kind = SAMPLE  # a share of the rows, as for history
        elif violation_sql(rule.type, rule.kwargs, str) is not None:
            kind = SUSPECTS
        else:
            kind = FULL
        groups.setdefault(kind, []).append(rule)
    return groups


def _strict(kwargs: dict[str, Any]) -> bool:
    mostly = kwargs.get("mostly")
    return mostly is None or mostly >= 1


def sql_literal(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return "'" + str(value).replace("'", "''") + "'"


Quote = Callable[[str], str]
# The name of the batch's rows in the query the predicates run in (``expectations.gate``).
BATCH_CTE = "gate_batch"


def violation_sql(
    expectation_type: str,
    kwargs: dict[str, Any],
    quote: Quote,
    float_columns: frozenset[str] = frozenset(),
) -> str | None:
    """An SQL predicate true for every row the rule may reject (a superset: GX judges the rows
    it selects), or None when the rule has no such twin here (it is then read in full).

    The predicates run over the CTE ``BATCH_CTE``; compound uniqueness reads a window column
    ``_gate_dup_<columns>`` that the reader adds. ``float_columns``: the columns that may hold
    NaN, which GX counts as missing and DuckDB does not."""
    twin = _TWINS.get(expectation_type)
    if twin is None or kwargs.get("row_condition"):
        return None
    return twin(kwargs, quote, float_columns)


def _not_null(kwargs: dict[str, Any], quote: Quote, float_columns: frozenset[str]) -> str:
    column = quote(kwargs["column"])
    if kwargs["column"] in float_columns:
        return f"{column} is null or isnan({column})"
    return f"{column} is null"


def _unique(kwargs: dict[str, Any], quote: Quote, _floats: frozenset[str]) -> str:
    # GX's unique rule ignores nulls. A semi-join on the duplicated values: faster than a window.
    column = quote(kwargs["column"])
    return (
        f"{column} in (select {column} from {BATCH_CTE} where {column} is not null "
        f"group by all having count(*) > 1)"
    )


def _compound_unique(kwargs: dict[str, Any], quote: Quote, _floats: frozenset[str]) -> str:
    return f"{quote(dup_column(list(kwargs['column_list'])))} > 1"


def _between(kwargs: dict[str, Any], quote: Quote, _floats: frozenset[str]) -> str | None:
    low, high = kwargs.get("min_value"), kwargs.get("max_value")
    if isinstance(low, dict) or isinstance(high, dict) or (low is None and high is None):
        return None  # a $PARAMETER resolved at run time
    column = quote(kwargs["column"])
    parts = []
    if low is not None:
        parts.append(f"{column} {'<=' if kwargs.get('strict_min') else '<'} {sql_literal(low)}")
    if high is not None:
        parts.append(f"{column} {'>=' if kwargs.get('strict_max') else '>'} {sql_literal(high)}")
    # NaN sorts above every number in DuckDB and GX skips it as missing: a harmless extra row.
    return " or ".join(parts)


def _in_set(kwargs: dict[str, Any], quote: Quote, _floats: frozenset[str]) -> str | None:
    values = kwargs.get("value_set")
    if not isinstance(values, list | tuple | set) or not values:
        return None
    return f"{quote(kwargs['column'])} not in ({', '.join(sql_literal(v) for v in values)})"


def _regex(kwargs: dict[str, Any], quote: Quote, _floats: frozenset[str]) -> str | None:
    regex = kwargs.get("regex")
    if not isinstance(regex, str):
        return None
    # GX's pandas check is re.search; DuckDB's regexp_matches also matches anywhere (RE2).
    return f"not regexp_matches({quote(kwargs['column'])}::varchar, {sql_literal(regex)})"


def _pair_greater(kwargs: dict[str, Any], quote: Quote, _floats: frozenset[str]) -> str:
    a, b = quote(kwargs["column_A"]), quote(kwargs["column_B"])
    below = f"{a} {'<' if kwargs.get('or_equal') else '<='} {b}"
    if kwargs.get("ignore_row_if") == "either_value_is_missing":
        return below
    return f"{a} is null or {b} is null or {below}"


_TWINS: dict[str, Callable[[dict[str, Any], Quote, frozenset[str]], str | None]] = {
    "expect_column_values_to_not_be_null": _not_null,
    "expect_column_values_to_be_unique": _unique,
    "expect_compound_columns_to_be_unique": _compound_unique,
    "expect_column_values_to_be_between": _between,
    "expect_column_values_to_be_in_set": _in_set,
    "expect_column_values_to_match_regex": _regex,
    "expect_column_pair_values_a_to_be_greater_than_b": _pair_greater,
}


def dup_column(columns: list[str]) -> str:
    return "_gate_dup_" + "__".join(columns)
