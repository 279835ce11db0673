"""Print what a run for an as-of date did: ``python -m tools.summary --as-of YYYY-MM-DD``.

Exits 1 when the run failed or published nothing for that date, so ``make run`` fails loudly.
"""

from __future__ import annotations

import argparse
import math
import sys
from datetime import date
from typing import Any

from core.read_copy import published_path
from core.run_record import read_record, run_record_path
from core.settings import Settings, get_settings
from core.warehouse import connect


def _gate_line(name: str, report: dict[str, Any] | None) -> str:
    if not report:
        return f"  {name:<14} not run"
    results = report.get("results", [])
    failed_blocking = [r for r in results if not r["success"] and r["severity"] == "blocking"]
    warnings = [r for r in results if not r["success"] and r["severity"] != "blocking"]
    verdict = "BLOCKED" if failed_blocking else "passed"
    line = (
        f"  {name:<14} {verdict}: {len(results) - len(failed_blocking) - len(warnings)}"
        f"/{len(results)} expectations met, {_plural(len(failed_blocking), 'blocking failure')}, "
        f"{_plural(len(warnings), 'warning')} ({report.get('seconds', 0):.1f} s)"
    )
    details = [_failure_line(r) for r in failed_blocking + warnings]
    if report.get("data_docs_path"):
        details.append(f"    Data Docs: {report['data_docs_path']}")
    return "\n".join([line, *details[:6]])


def _failure_line(result: dict[str, Any]) -> str:
    """The rule, the table, the count; for quarantine, the count per reason code."""
    observed = result.get("observed_value")
    reasons = observed.get("quarantined_by_reason") if isinstance(observed, dict) else None
    column = f"({result['column']})" if result.get("column") else ""
    line = f"    {result['severity']}: {result['table']}: {result['expectation_type']}{column}"
    if reasons:
        listed = ", ".join(f"{reason} {count:,}" for reason, count in reasons.items())
        return (
            f"{line}: {result.get('unexpected_count') or 0:,} of "
            f"{result.get('element_count') or 0:,} incoming rows quarantined ({listed})"
        )
    if result.get("element_count") is None and observed is not None:
        expected = f", expected {result['expected']}" if result.get("expected") else ""
        return f"{line}: observed {observed}{expected}"
    return (
        f"{line} on {result.get('unexpected_count') or 0:,} of "
        f"{result.get('element_count') or 0:,} rows"
    )


def _plural(count: int, noun: str) -> str:
    return f"{count:,} {noun}{'' if count == 1 else 's'}"


def _ingest_lines(ingest: dict[str, Any]) -> list[str]:
    """Per source: rows loaded, quarantined and released from quarantine; what was not loaded."""
    lines: list[str] = []
    if ingest.get("sources_config"):
        lines.append(f"Sources config: {ingest['sources_config']}")
    lines.append("Rows loaded into raw (this run), rows set aside in quarantine.<source>:")
    for source, load in ingest["sources"].items():
        unit = "days" if load.get("layout") == "snapshot" else "partitions"
        raw_rows = load.get("raw_rows", load["rows_loaded"])
        made = f" (= {raw_rows:,} orders)" if raw_rows != load["rows_loaded"] else ""
        lines.append(
            f"  {source:<14} {load['rows_loaded']:>10,} rows{made} from "
            f"{len(load['partitions_loaded'])} {unit} "
            f"({load['partitions_unchanged']} already loaded), "
            f"{load.get('rows_quarantined', 0):,} quarantined"
        )
        if load.get("anonymous_rows_loaded"):
            lines.append(_anonymous_line(load))
        if load.get("partitions_retimed"):
            lines.append(
                f"  {'':<14} {_plural(load['partitions_retimed'], 'partition')} with new file "
                "modification times and the bytes already loaded: not reloaded"
            )
        if load.get("rows_released"):
            lines.append(
                f"  {'':<14} {_plural(load['rows_released'], 'row')} of earlier days released "
                "from quarantine (their customer's CRM record arrived)"
            )
    problems = [
        *ingest.get("unknown_folders", []),
        *(p for load in ingest["sources"].values() for p in load.get("layout_problems", [])),
    ]
    if problems:
        lines.append(f"Not loaded ({len(problems):,}; the ingest log lists every one):")
        lines += [f"  {problem}" for problem in problems[:5]]
    return lines


def _anonymous_line(load: dict[str, Any]) -> str:
    """Guest orders the sources config keeps (``anonymous_orders: keep``): loaded, no buyer."""
    rows, orders = load["anonymous_rows_loaded"], load.get("anonymous_raw_rows", 0)
    made = f" (= {_plural(orders, 'order')})" if orders != rows else ""
    return (
        f"  {'':<14} of these, {_plural(rows, 'anonymous order row')}{made} without a "
        "customer id: kept (anonymous_orders: keep), in the totals, attributed to nobody"
    )


def summarize(as_of_date: date, settings: Settings | None = None) -> tuple[str, bool]:
    """The summary text and whether the as-of date ended with a published version."""
    settings = settings or get_settings()
    record = read_record(as_of_date, settings)
    lines = [f"Customer segmentation, as-of {as_of_date.isoformat()}", ""]
    if record.get("ingest"):
        lines += _ingest_lines(record["ingest"])
    lines.append("Quality gates:")
    lines.append(_gate_line("raw", record.get("validate_raw")))
    lines.append(_gate_line("marts", record.get("validate_marts")))
    dbt = record.get("dbt_build")
    if dbt:
        outcomes = ", ".join(
            _plural(sum(counts.values()), kind.replace("_", " "))
            + (f" ({counts['warn']} warn)" if counts.get("warn") else "")
            for kind, counts in dbt.get("counts", {}).items()
        )
        verdict = "passed" if dbt.get("success", True) else "FAILED"
        lines.append(f"dbt build {verdict}: {outcomes} ({dbt.get('seconds', 0):.1f} s)")
    failure = record.get("failure")
    published = record.get("publish")
    recluster = record.get("recluster")
    ok = published is not None and failure is None
    if failure:
        lines += ["", f"RUN FAILED in step '{failure['step']}':", f"  {failure['error']}"]
    if recluster and recluster.get("status") == "rejected":
        lines += [
            "",
            f"MODEL REJECTED: segment version {recluster['version_id']} missed the acceptance "
            "thresholds (segmentation config, section acceptance):",
            *(f"  {reason}" for reason in recluster["rejected_reasons"]),
            "  The previous version stays current; customers new since it have no segment. To "
            "assign them with the current model, re-run with recluster_mode=assign.",
        ]
    with connect(settings, read_only=True) as con:
        from ml_tasks.versions import current_version

        current = current_version(con)
        if published:
            version_id = published["version_id"]
            k, silhouette, stability, customers, mode, mode_reason = con.execute(
                "select k, silhouette, stability_ari, customer_count, mode, mode_reason "
                "from segments.segment_versions where version_id = ?",
                [version_id],
            ).fetchone()
            lines += [
                "",
                f"Published segment version {version_id}: k={k}, silhouette {silhouette:.3f}, "
                f"stability ARI {stability or float('nan'):.3f}, {customers:,} customers",
                f"  mode {mode}: {mode_reason}",
                f"  {'id':>3} {'customers':>9} {'share':>6}  description",
            ]
            for segment_id, count, share, description in con.execute(
                "select segment_id, customer_count, share, description "
                "from segments.segment_profiles where version_id = ? order by segment_id",
                [version_id],
            ).fetchall():
                lines.append(f"  {segment_id:>3} {count:>9,} {share:6.1%}  {description}")
        if published and published.get("slices_deleted", {}) is None:
            lines += [
                "",
                "RETENTION FAILED: the old as-of slices of the marts and predictions were not "
                "deleted (the publish step's log says why); the next publish tries again.",
            ]
        lines += _prediction_lines(con, as_of_date, record, published)
        if current:
            lines += [
                "",
                f"Current segments (segments.current_segments): version "
                f"{current['version_id']}, as-of {current['as_of_date']:%Y-%m-%d}",
            ]
        else:
            lines += ["", "No published segments yet."]
    report = (published or {}).get("report_path") or (recluster or {}).get("report_path")
    lines += [
        "",
        "Outputs:",
        f"  warehouse   {settings.warehouse_path}",
        "              schemas raw, quarantine, staging, pii, intermediate, marts, segments, "
        "quality",
        f"  read copy   {published_path(settings.warehouse_path)}  (query here; a night never "
        "locks it)",
        f"  run record  {run_record_path(as_of_date, settings)}",
        f"  reports     {settings.reports_dir}",
        f"  Data Docs   {settings.data_dir / 'gx' / 'data_docs' / 'index.html'}",
    ]
    if report:
        lines.append(f"  report      {report}  (segment version report, opens offline)")
    return "\n".join(lines), ok


def _prediction_lines(con, as_of_date: date, record: dict, published: dict | None) -> list[str]:
    """Expected 12-month value and churn risk per segment, and the prediction models' verdicts."""
    from ml_tasks.predict import segment_value_and_risk

    predict = record.get("predict")
    if not predict:
        return []
    lines = [
        "",
        f"Predictions (segments.customer_predictions), {predict['customers']:,} customers:",
    ]
    for kind, model in predict["models"].items():
        metrics = ", ".join(
            f"{m} {model[m]:.3f}" for m in ("roc_auc", "pr_auc", "brier") if m in model
        )
        verdict = model["status"] + (
            f" ({model['status_reason']})" if model["status_reason"] else ""
        )
        used = model.get("used_model_id")
        lines.append(
            f"  {kind:<9} model {model['model_id']}: {verdict}"
            + (f"; {metrics}" if metrics else "")
            + ("" if used == model["model_id"] else f"; in use: {used or 'none'}")
        )
    if published:
        table = segment_value_and_risk(con, as_of_date, published["version_id"])
        if not table.empty:
            lines.append(
                "  segment  customers  mean 12-month value  churn risk (mean, share >= 0.5)"
            )
            for row in table.itertuples():
                lines.append(
                    f"  {row.segment_id:>7} {row.customers:>10,} "
                    f"{_shown(row.mean_clv_12m, ',.2f', 20)}  "
                    f"{_shown(row.mean_churn_probability, '.1%', 6)} "
                    f"{_shown(row.high_churn_risk_share, '.1%', 6)}  {row.segment_name}"
                )
    return lines


def _shown(value: float | None, spec: str, width: int) -> str:
    """A number as the table shows it; a segment without predictions (the prospects) shows -."""
    if value is None or math.isnan(value):
        return "-".rjust(width)
    return format(value, spec).rjust(width)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--as-of", required=True, type=date.fromisoformat, help="YYYY-MM-DD")
    args = parser.parse_args(argv)
    text, ok = summarize(args.as_of)
    print(text)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
