"""What a quality gate found, in a shape that survives JSON (Airflow XCom, run summaries, files).

The report is plain data: it knows nothing about Great Expectations, so the DAG, the run summary
and the tests can read it without importing GX. Example values in it are already masked.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from core.private_files import write_private_text

BLOCKING = "blocking"
WARNING = "warning"


@dataclass
class ExpectationOutcome:
    """One expectation's verdict on one table's batch."""

    table: str
    expectation_type: str
    column: str | None
    severity: str
    success: bool
    element_count: int | None = None
    unexpected_count: int | None = None
    unexpected_percent: float | None = None
    mostly: float | None = None
    # Aggregate/table-level result (row count, missing columns, missing partition dates).
    observed_value: Any = None
    # Up to five failing values, PII masked.
    examples: list[Any] = field(default_factory=list)
    # The bounds of a between-rule, as the rule was run ("between 5 and 140").
    expected: str | None = None
    # Set when the expectation could not be evaluated (missing column, GX error): a failure.
    error: str | None = None

    @property
    def blocking(self) -> bool:
        return self.severity == BLOCKING

    @property
    def label(self) -> str:
        """``expect_column_values_to_not_be_null(order_id)``: how people refer to a rule."""
        return f"{self.expectation_type}({self.column})" if self.column else self.expectation_type

    def describe_failure(self) -> str:
        """One line a data engineer can act on: table, rule, how much failed, masked examples."""
        text = f"{self.table}: {self.label} "
        quarantined = (self.observed_value or {}) if isinstance(self.observed_value, dict) else {}
        if "quarantined_by_reason" in quarantined and self.unexpected_count is not None:
            reasons = ", ".join(
                f"{reason} {count:,}"
                for reason, count in quarantined["quarantined_by_reason"].items()
            )
            allowed = quarantined.get("allowed") or f"{100 * (1 - (self.mostly or 1)):.3g}%"
            text += (
                f"failed: {self.unexpected_count:,} of {self.element_count or 0:,} incoming rows "
                f"quarantined ({self.unexpected_percent or 0:.1f}%; allowed: {allowed}); "
                f"by reason: {reasons}"
            )
        elif self.error:
            text += f"could not be evaluated: {self.error}"
        elif self.unexpected_count is not None and self.element_count is not None:
            text += f"failed on {self.unexpected_count} of {self.element_count} rows"
            if self.unexpected_percent is not None and self.mostly is not None and self.mostly < 1:
                # GX measures value rules on non-null values and not-null rules on all rows.
                text += (
                    f" ({self.unexpected_percent:.1f}%, tolerance {100 * (1 - self.mostly):.3g}%)"
                )
        elif self.expectation_type.startswith("expect_table_row_count"):
            text += f"failed: the batch has {self.observed_value} rows"
        else:
            text += f"failed{_describe_observed(self.observed_value)}"
        if self.expected and not self.error:
            text += f", expected {self.expected}"
        text += f" ({self.severity})"
        if self.examples:
            text += f"; examples: {', '.join(_show(value) for value in self.examples)}"
        return text


@dataclass
class SuiteOutcome:
    """One suite run against one table's batch."""

    suite: str
    table: str
    row_count: int
    seconds: float
    expectations: list[ExpectationOutcome]

    @property
    def failed(self) -> list[ExpectationOutcome]:
        return [outcome for outcome in self.expectations if not outcome.success]

    @property
    def blocking_failures(self) -> list[ExpectationOutcome]:
        return [outcome for outcome in self.failed if outcome.blocking]

    @property
    def warnings(self) -> list[ExpectationOutcome]:
        return [outcome for outcome in self.failed if not outcome.blocking]

    @property
    def success(self) -> bool:
        """Warnings do not fail a suite; only blocking expectations do."""
        return not self.blocking_failures

    def summary_line(self) -> str:
        passed = len(self.expectations) - len(self.failed)
        verdict = "passed" if self.success else "FAILED"
        return (
            f"{self.table}: {verdict}, {passed}/{len(self.expectations)} expectations met, "
            f"{_count(len(self.blocking_failures), 'blocking failure')}, "
            f"{_count(len(self.warnings), 'warning')} ({self.row_count} rows, {self.seconds:.2f} s)"
        )


@dataclass
class GateReport:
    """Everything one gate call checked; ``to_dict()`` is what goes to XCom and to disk."""

    stage: str
    run_id: str
    scope: dict[str, Any]
    started_at: str
    seconds: float = 0.0
    suites: list[SuiteOutcome] = field(default_factory=list)
    report_path: str | None = None
    # index.html of the GX Data Docs site holding this gate's validations.
    data_docs_path: str | None = None

    @property
    def success(self) -> bool:
        return all(suite.success for suite in self.suites)

    @property
    def blocking_failures(self) -> list[ExpectationOutcome]:
        return [outcome for suite in self.suites for outcome in suite.blocking_failures]

    @property
    def warnings(self) -> list[ExpectationOutcome]:
        return [outcome for suite in self.suites for outcome in suite.warnings]

    def summary_lines(self) -> list[str]:
        """Short lines for logs and the run summary: verdict, one per suite, one per failure."""
        verdict = "passed" if self.success else "FAILED"
        lines = [
            f"Quality gate {self.stage} {verdict}: {_count(len(self.suites), 'suite')}, "
            f"{_count(len(self.blocking_failures), 'blocking failure')}, "
            f"{_count(len(self.warnings), 'warning')} ({self.seconds:.1f} s)"
        ]
        for suite in self.suites:
            lines.append(f"  {suite.summary_line()}")
            lines.extend(f"    {failure}" for failure in describe_failures(suite.failed))
        return lines

    def failure_message(self) -> str:
        """The QualityGateError text: every blocking failure, not just the first."""
        failures = describe_failures(self.blocking_failures)
        if len(failures) == 1:
            return f"Quality gate failed: {failures[0]}"
        listed = "\n".join(f"  {failure}" for failure in failures)
        count = len(self.blocking_failures)
        return f"Quality gate failed ({count} blocking expectations):\n{listed}"

    def to_dict(self) -> dict[str, Any]:
        """Suites as one-line summaries plus a flat ``results`` list (one entry per expectation,
        naming its suite and table), so readers filter results without walking a tree."""
        suites = [
            {
                "suite": suite.suite,
                "table": suite.table,
                "success": suite.success,
                "row_count": suite.row_count,
                "seconds": suite.seconds,
                "expectations": len(suite.expectations),
                "failed_blocking": len(suite.blocking_failures),
                "failed_warning": len(suite.warnings),
            }
            for suite in self.suites
        ]
        results = [
            {"suite": suite.suite, **asdict(outcome)}
            for suite in self.suites
            for outcome in suite.expectations
        ]
        return json_safe(
            {
                "stage": self.stage,
                "run_id": self.run_id,
                "success": self.success,
                "scope": self.scope,
                "started_at": self.started_at,
                "seconds": self.seconds,
                "report_path": self.report_path,
                "data_docs_path": self.data_docs_path,
                "suites": suites,
                "results": results,
            }
        )

    def write_json(self, path: Path) -> Path:
        """Write atomically, so a reader (run summary, a person tailing the dir) never sees half;
        owner-only (``core.private_files``): examples are masked, but it still describes data."""
        self.report_path = str(path)
        text = json.dumps(self.to_dict(), indent=2, allow_nan=False) + "\n"
        return write_private_text(path, text)


def describe_failures(outcomes: list[ExpectationOutcome]) -> list[str]:
    """One line per failure, except that rules which could not run for the same reason (a missing
    table or column) share a line instead of repeating it for every rule."""
    lines: list[str] = []
    grouped: dict[tuple[str, str, str], list[ExpectationOutcome]] = {}
    for outcome in outcomes:
        if outcome.error:
            grouped.setdefault((outcome.table, outcome.error, outcome.severity), []).append(outcome)
    described: set[tuple[str, str, str]] = set()
    for outcome in outcomes:
        key = (outcome.table, outcome.error or "", outcome.severity)
        group = grouped.get(key, [])
        if len(group) <= 1:
            lines.append(outcome.describe_failure())
        elif key not in described:
            described.add(key)
            labels = (
                ", ".join(member.label for member in group)
                if len(group) <= 3
                else f"{len(group)} expectations"
            )
            lines.append(
                f"{outcome.table}: {labels} could not be evaluated: {outcome.error} "
                f"({outcome.severity})"
            )
    return lines


def report_file_name(run_id: str, stage: str) -> str:
    """``<run_id>-<stage>.json``; Airflow run ids may hold characters unsafe in a file name."""
    safe_run_id = re.sub(r"[^A-Za-z0-9._:+=-]", "_", run_id) or "run"
    return f"{safe_run_id}-{stage}.json"


def json_safe(value: Any) -> Any:
    """Turn numpy/pandas scalars, dates, decimals and NaN into plain JSON values."""
    if isinstance(value, dict):
        return {str(key): json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [json_safe(item) for item in value]
    return _json_scalar(value)


def _json_scalar(value: Any) -> Any:
    if isinstance(value, np.datetime64):
        value = pd.Timestamp(value)  # .item() would give an int for nanosecond precision
    elif isinstance(value, np.generic):
        value = value.item()
    if value is None or isinstance(value, bool | int | str):
        result = value
    elif isinstance(value, float):
        result = value if math.isfinite(value) else None
    elif _is_missing(value):  # NaT, pd.NA
        result = None
    elif isinstance(value, datetime | date):
        result = value.isoformat()
    elif isinstance(value, Decimal):
        result = float(value)
    else:
        result = str(value)
    return result


def _is_missing(value: Any) -> bool:
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):  # array-likes have no single truth value
        return False


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


def _show(value: Any) -> str:
    return "null" if value is None else repr(value) if isinstance(value, str) else str(value)


def _describe_observed(observed: Any) -> str:
    if isinstance(observed, dict):
        parts = [
            f"{key.replace('_', ' ')}: {', '.join(_show(item) for item in items)}"
            for key, items in observed.items()
            if items
        ]
        return f" ({'; '.join(parts)})" if parts else ""
    if observed is None:
        return ""
    return f" (observed {_show(observed)})"
