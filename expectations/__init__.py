"""Quality gates: Great Expectations suites that decide whether a run may go on.

``validate_raw`` checks the raw partitions a run just loaded, ``validate_marts`` checks the mart
slice of the as-of date; both raise ``QualityGateError`` on a blocking failure and always write a
JSON report. Importing this package is cheap: Great Expectations itself (~5 s) is imported only
when a gate runs, so DAG parsing never pays for it.
"""

from expectations.gx_logging import quiet_gx_logging

# Before any submodule imports GX, whose import floods INFO logs (see gx_logging).
quiet_gx_logging()

from expectations.gate import QualityGateError, validate_marts, validate_raw  # noqa: E402
from expectations.report import ExpectationOutcome, GateReport, SuiteOutcome  # noqa: E402

__all__ = [
    "ExpectationOutcome",
    "GateReport",
    "QualityGateError",
    "SuiteOutcome",
    "validate_marts",
    "validate_raw",
]
