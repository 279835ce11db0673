"""Reports for people: one self-contained HTML page per segment version (``segment_report``).

Importing this package is cheap: matplotlib and scikit-learn are imported when a report is built.
"""

from reporting.segment_report import report_path, write_segment_report

__all__ = ["report_path", "write_segment_report"]
