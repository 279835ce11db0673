"""One self-contained HTML report per segment version: ``<reports>/segments/version-<id>.html``.

Read, decide, write:

* ``read_report_data`` reads everything the page shows from the warehouse tables (the version's
  scores JSON, profiles, feature statistics, transitions, the marts, the load log, quarantine
  and the gate results) into a ``ReportData``. Numbers are shown as the tables hold them; the
  only thing computed here is the 2-D PCA projection of a sample of customers (a picture, not a
  number anyone reads back).
* ``render_report`` turns a ``ReportData`` into the HTML text (pure: a test can call it).
* ``write_segment_report`` does both and writes the file (atomically).

The page opens with no network: charts are matplotlib figures inlined as SVG (the scatter's dots
as an embedded PNG inside the SVG), tables are plain HTML, the CSS is in the page, and there is
no JavaScript. It is laid out for a laptop screen (one column up to 1,100 px wide).
"""

from __future__ import annotations

import html
import io
import json
import logging
import math
import os
import re
import tempfile
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

log = logging.getLogger(__name__)

REPORTS_SUBDIR = "segments"
RECENT_VERSIONS = 8
RECENT_NIGHTS = 14
PROJECTION_SAMPLE = 2000
PREDICTIONS_TABLE = "customer_predictions"
# The selection criteria of the scores JSON, how to read them, in the order shown.
CRITERIA: dict[str, str] = {
    "silhouette": "higher is better",
    "davies_bouldin": "lower is better",
    "calinski_harabasz": "higher is better",
    "gap": "higher is better",
    "inertia": "lower is better (elbow)",
    "stability_ari": "bootstrap stability, higher is better",
}
SECTIONS = (
    ("overview", "Overview"),
    ("choice-of-k", "Choice of k"),
    ("projection", "Customers in two dimensions"),
    ("personas", "Personas"),
    ("history", "Segment sizes across versions"),
    ("transitions", "Transitions from the previous version"),
    ("drift", "Drift and why this night refitted or assigned"),
    ("cohorts", "Acquisition-cohort retention"),
    ("rfm", "RFM grid"),
    ("data-quality", "Data quality, recent nights"),
)
_PALETTE = (
    "#4e79a7",
    "#f28e2b",
    "#59a14f",
    "#e15759",
    "#76b7b2",
    "#edc948",
    "#b07aa1",
    "#ff9da7",
    "#9c755f",
    "#bab0ac",
)


class ReportError(RuntimeError):
    """The version does not exist (or its data cannot be read)."""


@dataclass
class ReportData:
    version: dict[str, Any]
    by_k: pd.DataFrame  # k + one column per criterion
    profiles: pd.DataFrame  # segment_id, segment_name, customer_count, share, description, ...
    feature_stats: pd.DataFrame  # segment_id, feature, mean, median, population_mean, z_score
    history: pd.DataFrame  # version_id, as_of_date, status, segment_id, customer_count, share
    transitions: pd.DataFrame  # from_segment_id, to_segment_id, customer_count
    projection: pd.DataFrame  # x, y, segment_id (a sample)
    cohorts: pd.DataFrame  # cohort_month, months_since_first_order, cohort_size, retention_rate
    rfm: pd.DataFrame  # recency_score, frequency_score, customers, avg_monetary_score
    loads: pd.DataFrame  # as_of_date/run, source, rows_loaded, rows_quarantined, partitions
    quarantine: pd.DataFrame  # as_of_date, source, reason, rows
    gates: pd.DataFrame  # as_of_date, stage, expectations, failed, blocking_failed
    predictions: pd.DataFrame | None = None  # segment_id + averages of prediction columns
    notes: list[str] = field(default_factory=list)


def report_path(reports_dir: Path, version_id: int) -> Path:
    return Path(reports_dir) / REPORTS_SUBDIR / f"version-{version_id}.html"


def write_segment_report(
    con: duckdb.DuckDBPyConnection, version_id: int, reports_dir: Path
) -> Path:
    """Read the version's data, render the page, write it; returns the file's path."""
    data = read_report_data(con, version_id)
    target = report_path(reports_dir, version_id)
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, scratch = tempfile.mkstemp(dir=target.parent, suffix=".html.tmp")
    with os.fdopen(handle, "w", encoding="utf-8") as out:
        out.write(render_report(data))
    Path(scratch).replace(target)
    return target


# ---- read ------------------------------------------------------------------------------------


def _frame(con: duckdb.DuckDBPyConnection, sql: str, params: list | None = None) -> pd.DataFrame:
    return con.execute(sql, params or []).df()


def _table_exists(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> bool:
    return bool(
        con.execute(
            "select count(*) from information_schema.tables "
            "where table_schema = ? and table_name = ?",
            [schema, table],
        ).fetchone()[0]
    )


def read_report_data(con: duckdb.DuckDBPyConnection, version_id: int) -> ReportData:
    versions = _frame(
        con, "select * from segments.segment_versions where version_id = ?", [version_id]
    )
    if versions.empty:
        raise ReportError(f"No segment version {version_id}")
    version = versions.iloc[0].to_dict()
    for key in ("scores", "params", "config"):
        version[key] = json.loads(version[key]) if version.get(key) else {}
    as_of = version["as_of_date"]
    as_of = as_of.date() if hasattr(as_of, "date") else as_of
    version["as_of_date"] = as_of
    selection = version["scores"].get("selection") or {}
    by_k = pd.DataFrame(selection.get("by_k") or [])
    # Every column: personas may gain some (predicted value, churn risk), shown when present.
    profiles = _frame(
        con,
        "select * from segments.segment_profiles where version_id = ? order by segment_id",
        [version_id],
    )
    feature_stats = _frame(
        con,
        "select segment_id, feature, mean, median, population_mean, z_score "
        "from segments.segment_feature_stats where version_id = ?",
        [version_id],
    )
    history = _frame(
        con,
        "with recent as (select version_id, as_of_date, status from segments.segment_versions "
        "  where version_id <= ? order by version_id desc limit ?) "
        "select recent.version_id, recent.as_of_date, recent.status, profiles.segment_id, "
        "  profiles.segment_name, profiles.customer_count, profiles.share "
        "from recent inner join segments.segment_profiles as profiles using (version_id) "
        "order by recent.version_id, profiles.segment_id",
        [version_id, RECENT_VERSIONS],
    )
    transitions = _frame(
        con,
        "select from_version_id, from_segment_id, to_segment_id, customer_count "
        "from segments.segment_transitions where to_version_id = ? "
        "order by from_segment_id, to_segment_id",
        [version_id],
    )
    cohorts = _frame(
        con,
        "select cohort_month, months_since_first_order, cohort_size, retention_rate "
        "from marts.cohort_retention where as_of_date = ? "
        "order by cohort_month, months_since_first_order",
        [as_of],
    )
    rfm = _frame(
        con,
        "select recency_score, frequency_score, count(*) as customers, "
        "  avg(monetary_score) as avg_monetary_score "
        "from marts.customer_rfm where as_of_date = ? group by all order by all",
        [as_of],
    )
    data = ReportData(
        version=version,
        by_k=by_k,
        profiles=profiles,
        feature_stats=feature_stats,
        history=history,
        transitions=transitions,
        projection=_projection(con, version_id, as_of, version["config"]),
        cohorts=cohorts,
        rfm=rfm,
        loads=_loads(con, as_of),
        quarantine=_quarantine(con, as_of),
        gates=_gates(con, as_of),
        predictions=_predictions(con, version_id, as_of),
    )
    return data


def _projection(
    con: duckdb.DuckDBPyConnection, version_id: int, as_of: date, config: dict
) -> pd.DataFrame:
    """PCA to 2-D of a fixed sample of the version's customers, on the clustering's features
    transformed as the version's config says (log1p where configured, then standardised)."""
    features = config.get("features") or {}
    columns = [*features.get("log1p", []), *features.get("numeric", [])]
    available = set(
        _frame(
            con,
            "select column_name from information_schema.columns "
            "where table_schema = 'marts' and table_name = 'customer_features'",
        )["column_name"]
    )
    columns = [column for column in columns if column in available]
    if len(columns) < 2:
        return pd.DataFrame(columns=["x", "y", "segment_id"])
    selected = ", ".join(f"features.{column}" for column in columns)
    frame = _frame(
        con,
        f"select members.segment_id, {selected} "
        "from segments.customer_segments as members "
        "inner join marts.customer_features as features "
        "  on features.customer_id = members.customer_id and features.as_of_date = ? "
        "where members.version_id = ? "
        "order by hash(members.customer_id) limit ?",
        [as_of, version_id, PROJECTION_SAMPLE],
    )
    if len(frame) < 3:
        return pd.DataFrame(columns=["x", "y", "segment_id"])
    import numpy as np

    values = frame[columns].astype(float).fillna(0.0)
    for column in features.get("log1p", []):
        if column in values:
            values[column] = np.log1p(values[column].clip(lower=0))
    spread = values.std(ddof=0).replace(0, 1.0)
    scaled = (values - values.mean()) / spread
    # PCA by SVD of the centred matrix (scikit-learn's PCA does the same; its import costs ~5 s).
    matrix = scaled.to_numpy()
    _, _, components = np.linalg.svd(matrix - matrix.mean(axis=0), full_matrices=False)
    points = matrix @ components[:2].T
    return pd.DataFrame({"x": points[:, 0], "y": points[:, 1], "segment_id": frame["segment_id"]})


def _loads(con: duckdb.DuckDBPyConnection, as_of: date) -> pd.DataFrame:
    """Rows loaded and quarantined per run (its as-of date) and source, recent runs."""
    return _frame(
        con,
        "with runs as (select run_id, max(loaded_at) as loaded_at from raw._load_log "
        "  group by run_id order by loaded_at desc limit ?) "
        "select strftime(runs.loaded_at, '%Y-%m-%d %H:%M') as loaded_at, log.run_id, log.source, "
        "  count(*) as partitions, sum(log.row_count) as rows_loaded, "
        "  sum(log.rows_quarantined) as rows_quarantined "
        "from raw._load_log as log inner join runs using (run_id) "
        "where log.partition_date <= ? "
        "group by all order by loaded_at desc, log.source",
        [RECENT_NIGHTS, as_of],
    )


def _quarantine(con: duckdb.DuckDBPyConnection, as_of: date) -> pd.DataFrame:
    tables = _frame(
        con,
        "select table_name from information_schema.tables where table_schema = 'quarantine' "
        "order by table_name",
    )["table_name"]
    parts = [
        f"select _as_of_date as as_of_date, '{name}' as source, unnest(_reasons) as reason "
        f'from quarantine."{name}" where _as_of_date <= ?'
        for name in tables
        if re.fullmatch(r"\w+", name)
    ]
    if not parts:
        return pd.DataFrame(columns=["as_of_date", "source", "reason", "rows"])
    union = " union all ".join(parts)
    return _frame(
        con,
        f"with reasons as ({union}), nights as (select distinct as_of_date from reasons "
        "  order by as_of_date desc limit ?) "
        "select as_of_date, source, reason, count(*) as rows from reasons "
        "where as_of_date in (select as_of_date from nights) "
        "group by all order by as_of_date desc, source, rows desc",
        [as_of] * len(parts) + [RECENT_NIGHTS],
    )


def _gates(con: duckdb.DuckDBPyConnection, as_of: date) -> pd.DataFrame:
    return _frame(
        con,
        "with nights as (select distinct as_of_date from quality.validation_results "
        "  where as_of_date <= ? order by as_of_date desc limit ?) "
        "select as_of_date, stage, count(*) as expectations, "
        "  count(*) filter (where not success) as failed, "
        "  count(*) filter (where not success and severity = 'blocking') as blocking_failed "
        "from quality.validation_results where as_of_date in (select as_of_date from nights) "
        "group by all order by as_of_date desc, stage",
        [as_of, RECENT_NIGHTS],
    )


def _predictions(
    con: duckdb.DuckDBPyConnection, version_id: int, as_of: date
) -> pd.DataFrame | None:
    """Per-segment averages of the numeric columns of ``segments.customer_predictions`` (CLV,
    churn risk, ...) when that table exists; ``None`` otherwise."""
    if not _table_exists(con, "segments", PREDICTIONS_TABLE):
        return None
    columns = _frame(
        con,
        "select column_name, data_type from information_schema.columns "
        "where table_schema = 'segments' and table_name = ?",
        [PREDICTIONS_TABLE],
    )
    names = set(columns["column_name"])
    numeric = [
        name
        for name, kind in columns.itertuples(index=False)
        if re.fullmatch(r"\w+", name)
        and name not in {"version_id", "segment_id"}
        and not name.endswith("_id")
        and re.match(r"(DOUBLE|FLOAT|DECIMAL|REAL|INTEGER|BIGINT)", kind.upper())
    ]
    if "customer_id" not in names or not numeric:
        return None
    where, params = [], [version_id]
    if "version_id" in names:
        where.append("predictions.version_id = ?")
        params.append(version_id)
    elif "as_of_date" in names:
        where.append("predictions.as_of_date = ?")
        params.append(as_of)
    averages = ", ".join(f'avg(predictions."{name}") as "{name}"' for name in numeric)
    return _frame(
        con,
        f"select members.segment_id, {averages} from segments.customer_segments as members "
        f"inner join segments.{PREDICTIONS_TABLE} as predictions "
        "  on predictions.customer_id = members.customer_id "
        f"where members.version_id = ? {''.join(' and ' + w for w in where)} "
        "group by all order by members.segment_id",
        params,
    )


# ---- render ----------------------------------------------------------------------------------


def render_report(data: ReportData) -> str:
    version = data.version
    title = f"Segment version {version['version_id']}, as-of {version['as_of_date']:%Y-%m-%d}"
    body = [
        _overview(data),
        _choice_of_k(data),
        _projection_section(data),
        _personas(data),
        _history(data),
        _transitions(data),
        _drift(data),
        _cohorts(data),
        _rfm(data),
        _data_quality(data),
    ]
    nav = " · ".join(f'<a href="#{key}">{html.escape(name)}</a>' for key, name in SECTIONS)
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head>"
        f"<body><header><h1>{html.escape(title)}</h1><nav>{nav}</nav></header><main>"
        + "\n".join(body)
        + "</main></body></html>\n"
    )


def _section(key: str, content: str, intro: str = "") -> str:
    name = dict(SECTIONS)[key]
    lead = f"<p class='intro'>{intro}</p>" if intro else ""
    return f"<section id='{key}'><h2>{html.escape(name)}</h2>{lead}{content}</section>"


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "&ndash;"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer() and digits == 0):
        return f"{int(value):,}"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return html.escape(str(value))


def _table(
    frame: pd.DataFrame, headers: dict[str, str], row_attrs: Any = None, digits: int = 3
) -> str:
    head = "".join(f"<th>{html.escape(label)}</th>" for label in headers.values())
    rows = []
    for record in frame.to_dict("records"):
        attrs = row_attrs(record) if row_attrs else ""
        cells = "".join(
            f"<td>{_fmt(_plain(record.get(column)), digits)}</td>" for column in headers
        )
        rows.append(f"<tr{attrs}>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _plain(value: Any) -> Any:
    """numpy / pandas scalars as Python ones (so formatting sees int vs float)."""
    if hasattr(value, "item"):
        value = value.item()
    if hasattr(value, "strftime"):
        return value.strftime("%Y-%m-%d")
    return value


def _overview(data: ReportData) -> str:
    version = data.version
    facts = {
        "status": version.get("status"),
        "algorithm": version.get("algorithm"),
        "k (segments)": version.get("k"),
        "customers": version.get("customer_count"),
        "silhouette": version.get("silhouette"),
        "stability (ARI)": version.get("stability_ari"),
        "mode": version.get("mode"),
        "why": version.get("mode_reason"),
        "previous version": version.get("previous_version_id"),
        "run": version.get("run_id"),
    }
    if version.get("status_reason"):
        facts["status reason"] = version["status_reason"]
    items = "".join(
        f"<dt>{html.escape(name)}</dt><dd>{_fmt(_plain(value))}</dd>"
        for name, value in facts.items()
    )
    return _section("overview", f"<dl class='facts'>{items}</dl>")


def _choice_of_k(data: ReportData) -> str:
    chosen = data.version.get("k")
    by_k = data.by_k
    if by_k.empty:
        content = (
            f"<p data-chosen-k='{chosen}'>This version did not choose k: it "
            f"{html.escape(str(data.version.get('mode')))}ed customers to an existing model "
            f"(k = {chosen}). The criteria are in the version that fitted that model.</p>"
        )
        return _section("choice-of-k", content)
    criteria = [name for name in CRITERIA if name in by_k]
    chart = _criteria_chart(by_k, criteria, chosen)
    headers = {"k": "k", **{name: name.replace("_", " ") for name in criteria}}

    def mark(record: dict) -> str:
        is_chosen = int(record["k"]) == chosen
        return f" data-k='{int(record['k'])}'" + (
            " class='chosen' data-chosen='true'" if is_chosen else ""
        )

    notes = (data.version["scores"].get("selection") or {}).get("notes") or []
    legend = "; ".join(f"{name.replace('_', ' ')}: {how}" for name, how in CRITERIA.items())
    content = (
        f"<p data-chosen-k='{chosen}'>Chosen: <strong>k = {chosen}</strong> "
        "(highlighted row, dashed line).</p>"
        + chart
        + _table(by_k, headers, mark)
        + f"<p class='small'>{html.escape(legend)}.</p>"
        + "".join(f"<p class='small'>Selection note: {html.escape(str(n))}</p>" for n in notes)
    )
    return _section("choice-of-k", content, "Every criterion per k, from the version's scores.")


def _projection_section(data: ReportData) -> str:
    points = data.projection
    if points.empty:
        return _section("projection", "<p>No feature rows for this version's customers.</p>")
    return _section(
        "projection",
        _scatter_chart(points, _names(data)),
        f"PCA of a sample of {len(points):,} customers (the clustering's features, log1p and "
        "standardised as configured), coloured by segment.",
    )


def _names(data: ReportData) -> dict[int, str]:
    return {
        int(row.segment_id): str(row.segment_name) for row in data.profiles.itertuples(index=False)
    }


def _personas(data: ReportData) -> str:
    stats = data.feature_stats
    predictions = data.predictions.set_index("segment_id") if data.predictions is not None else None
    cards = []
    for row in data.profiles.itertuples(index=False):
        segment_id = int(row.segment_id)
        traits = json.loads(row.top_traits) if isinstance(row.top_traits, str) else []
        trait_rows = []
        for trait in traits:
            stat = stats[(stats.segment_id == segment_id) & (stats.feature == trait["feature"])]
            mean = _fmt(float(stat["mean"].iloc[0]), 2) if len(stat) else "&ndash;"
            average = _fmt(float(stat["population_mean"].iloc[0]), 2) if len(stat) else "&ndash;"
            trait_rows.append(
                f"<tr><td>{html.escape(trait['feature'].replace('_', ' '))}</td><td>{mean}</td>"
                f"<td>{average}</td><td>{_fmt(trait.get('z_score'), 2)}</td></tr>"
            )
        traits_table = (
            "<table class='traits'><thead><tr><th>trait</th><th>segment</th><th>average</th>"
            f"<th>z</th></tr></thead><tbody>{''.join(trait_rows)}</tbody></table>"
            if trait_rows
            else ""
        )
        predicted = _extra_profile_values(row)
        if predictions is not None and segment_id in predictions.index:
            values = predictions.loc[segment_id]
            predicted += (
                "<p class='predicted'>"
                + ", ".join(
                    f"{html.escape(name.replace('_', ' '))}: {_fmt(_plain(value), 2)}"
                    for name, value in values.items()
                )
                + " (average)</p>"
            )
        colour = _colour(segment_id)
        cards.append(
            f"<article class='persona' data-segment-id='{segment_id}' "
            f"data-customer-count='{int(row.customer_count)}' style='border-top-color:{colour}'>"
            f"<h3>{segment_id} · {html.escape(str(row.segment_name))}</h3>"
            f"<p class='size'><span class='count'>{int(row.customer_count):,}</span> customers, "
            f"{row.share:.1%}</p><p>{html.escape(str(row.description))}</p>"
            f"{traits_table}{predicted}</article>"
        )
    intro = "Size, share, description and the traits that set each segment apart (mean vs all)."
    if data.predictions is None:
        intro += " No predicted value or churn risk (no segments.customer_predictions)."
    return _section("personas", f"<div class='cards'>{''.join(cards)}</div>", intro)


_PROFILE_COLUMNS = {
    "version_id",
    "segment_id",
    "segment_name",
    "customer_count",
    "share",
    "description",
    "top_traits",
}


def _extra_profile_values(row: Any) -> str:
    """Numeric persona columns beyond the base ones (e.g. a predicted value or churn risk)."""
    extras = {
        name: value
        for name, value in row._asdict().items()
        if name not in _PROFILE_COLUMNS
        and isinstance(_plain(value), int | float)
        and not isinstance(_plain(value), bool)
    }
    if not extras:
        return ""
    listed = ", ".join(
        f"{html.escape(name.replace('_', ' '))}: {_fmt(float(_plain(value)), 2)}"
        for name, value in extras.items()
    )
    return f"<p class='predicted'>{listed}</p>"


def _history(data: ReportData) -> str:
    history = data.history
    if history.empty:
        return _section("history", "<p>No versions.</p>")
    table = history.pivot_table(
        index="segment_id", columns="version_id", values="customer_count", aggfunc="sum"
    )
    headers = "".join(f"<th>v{int(v)}</th>" for v in table.columns)
    rows = "".join(
        f"<tr><td>{int(segment_id)}</td>"
        + "".join(f"<td>{_fmt(_plain(value), 0)}</td>" for value in values)
        + "</tr>"
        for segment_id, values in table.iterrows()
    )
    meta = history.drop_duplicates("version_id")
    caption = ", ".join(
        f"v{int(r.version_id)}: {r.as_of_date:%Y-%m-%d} {r.status}"
        for r in meta.itertuples(index=False)
    )
    content = (
        _history_chart(history, _names(data))
        + f"<table><thead><tr><th>segment</th>{headers}</tr></thead><tbody>{rows}</tbody></table>"
        + f"<p class='small'>{html.escape(caption)}</p>"
    )
    return _section("history", content, f"The newest {RECENT_VERSIONS} versions up to this one.")


def _transitions(data: ReportData) -> str:
    moves = data.transitions
    if moves.empty:
        previous = data.version.get("previous_version_id")
        text = (
            "This is the first version: there is no previous version to compare with."
            if previous is None or (isinstance(previous, float) and math.isnan(previous))
            else f"No transitions recorded from version {int(previous)}."
        )
        return _section("transitions", f"<p>{text}</p>")
    matrix = moves.pivot_table(
        index="from_segment_id", columns="to_segment_id", values="customer_count", aggfunc="sum"
    ).fillna(0)
    peak = max(float(matrix.to_numpy().max()), 1.0)
    head = "".join(f"<th>to {int(c)}</th>" for c in matrix.columns)
    rows = []
    for source, values in matrix.iterrows():
        cells = "".join(
            f"<td style='background:{_heat(v / peak)}'>{_fmt(int(v), 0)}</td>" for v in values
        )
        rows.append(f"<tr><th>from {int(source)}</th>{cells}</tr>")
    source_version = int(moves["from_version_id"].iloc[0])
    content = (
        f"<table class='matrix'><thead><tr><th></th>{head}</tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
    )
    return _section(
        "transitions",
        content,
        f"Customers per segment in version {source_version} (rows) and in this one (columns).",
    )


def _drift(data: ReportData) -> str:
    version = data.version
    drift = version["scores"].get("drift") or {}
    refresh = version["config"].get("refresh") or {}
    threshold = refresh.get("max_feature_psi")
    reason = (
        f"<p><strong>Mode {html.escape(str(version.get('mode')))}</strong>: "
        f"{html.escape(str(version.get('mode_reason')))}</p>"
    )
    psi = drift.get("feature_psi") or {}
    if not psi:
        return _section(
            "drift",
            reason + "<p>No drift measured: no earlier model to compare with.</p>",
        )
    frame = pd.DataFrame(sorted(psi.items(), key=lambda item: -item[1]), columns=["feature", "psi"])
    frame["over"] = frame["psi"] > threshold if threshold is not None else False
    shares = drift.get("segment_share_change") or {}
    share_table = (
        _table(
            pd.DataFrame(sorted(shares.items()), columns=["segment", "change"]),
            {"segment": "segment", "change": "share change"},
        )
        if shares
        else ""
    )
    content = (
        reason
        + _psi_chart(frame, threshold)
        + _table(frame, {"feature": "feature", "psi": "PSI", "over": "over threshold"})
        + share_table
        + f"<p class='small'>Thresholds: feature PSI {threshold}, segment share change "
        f"{refresh.get('max_segment_share_change')}, full refit every "
        f"{refresh.get('full_every_days')} days.</p>"
    )
    return _section("drift", content, "Population stability index per feature vs the model.")


def _cohorts(data: ReportData) -> str:
    cohorts = data.cohorts
    if cohorts.empty:
        return _section("cohorts", "<p>No rows in marts.cohort_retention for this date.</p>")
    table = cohorts.pivot_table(
        index="cohort_month", columns="months_since_first_order", values="retention_rate"
    )
    sizes = cohorts.groupby("cohort_month")["cohort_size"].max()
    head = "".join(f"<th>{int(c)}</th>" for c in table.columns)
    rows = []
    for month, values in table.iterrows():
        cells = "".join(
            "<td></td>" if pd.isna(v) else f"<td style='background:{_heat(v)}'>{v:.0%}</td>"
            for v in values
        )
        rows.append(f"<tr><th>{month:%Y-%m}</th><td>{int(sizes[month]):,}</td>{cells}</tr>")
    content = (
        "<table class='matrix'><thead><tr><th>cohort</th><th>size</th>"
        f"{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )
    return _section(
        "cohorts",
        content,
        "Share of each first-order month's customers who ordered N months later "
        "(marts.cohort_retention).",
    )


def _rfm(data: ReportData) -> str:
    rfm = data.rfm
    if rfm.empty:
        return _section("rfm", "<p>No rows in marts.customer_rfm for this date.</p>")
    counts = rfm.pivot_table(
        index="recency_score", columns="frequency_score", values="customers", aggfunc="sum"
    ).fillna(0)
    monetary = rfm.pivot_table(
        index="recency_score", columns="frequency_score", values="avg_monetary_score"
    )
    peak = max(float(counts.to_numpy().max()), 1.0)
    head = "".join(f"<th>F {int(c)}</th>" for c in counts.columns)
    rows = []
    for recency, values in counts.sort_index(ascending=False).iterrows():
        cells = []
        for frequency, value in values.items():
            avg = monetary.loc[recency, frequency] if frequency in monetary.columns else None
            note = "" if avg is None or pd.isna(avg) else f"<br><small>M {avg:.1f}</small>"
            cells.append(f"<td style='background:{_heat(value / peak)}'>{int(value):,}{note}</td>")
        rows.append(f"<tr><th>R {int(recency)}</th>{''.join(cells)}</tr>")
    content = (
        f"<table class='matrix'><thead><tr><th></th>{head}</tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
    )
    return _section(
        "rfm",
        content,
        "Customers per recency (rows) and frequency (columns) score, with the average monetary "
        "score (marts.customer_rfm).",
    )


def _data_quality(data: ReportData) -> str:
    loads = _table(
        data.loads,
        {
            "loaded_at": "loaded at (UTC)",
            "source": "source",
            "partitions": "partitions",
            "rows_loaded": "rows loaded",
            "rows_quarantined": "quarantined",
        },
    )
    reasons = (
        _table(
            data.quarantine,
            {"as_of_date": "as-of", "source": "source", "reason": "reason", "rows": "rows"},
        )
        if not data.quarantine.empty
        else "<p>No quarantined rows.</p>"
    )
    gates = _table(
        data.gates,
        {
            "as_of_date": "as-of",
            "stage": "gate",
            "expectations": "expectations",
            "failed": "failed",
            "blocking_failed": "blocking failed",
        },
    )
    content = (
        "<h3>Rows loaded (raw._load_log)</h3>"
        + loads
        + "<h3>Quarantined by reason (quarantine.*)</h3>"
        + reasons
        + "<h3>Gate results (quality.validation_results)</h3>"
        + gates
    )
    return _section("data-quality", content, f"The newest {RECENT_NIGHTS} nights up to this one.")


# ---- charts (matplotlib to inline SVG) -------------------------------------------------------


def _colour(segment_id: int) -> str:
    return "#9e9e9e" if segment_id < 0 else _PALETTE[segment_id % len(_PALETTE)]


def _heat(fraction: float) -> str:
    """A light-to-dark blue for 0..1 that keeps black text readable."""
    fraction = min(max(float(fraction), 0.0), 1.0)
    light = round(97 - 45 * fraction)
    return f"hsl(210, 70%, {light}%)"


def _figure(width: float, height: float, rows: int = 1, columns: int = 1) -> Any:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    plt.rcParams["svg.fonttype"] = "none"  # text stays text: small and sharp
    return plt.subplots(rows, columns, figsize=(width, height), layout="constrained", squeeze=False)


def _svg(figure: Any) -> str:
    import matplotlib.pyplot as plt

    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", metadata={"Date": None})
    plt.close(figure)
    text = buffer.getvalue()
    text = text[text.index("<svg") :]
    # Namespaces and metadata carry URIs that a reader might take for external references.
    text = re.sub(r"<metadata>.*?</metadata>", "", text, flags=re.S)
    text = re.sub(r'\s+xmlns(:\w+)?="[^"]*"', "", text)
    text = text.replace("xlink:href", "href")
    return f"<figure>{text}</figure>"


def _criteria_chart(by_k: pd.DataFrame, criteria: list[str], chosen: int | None) -> str:
    columns = 3
    rows = math.ceil(len(criteria) / columns)
    figure, axes = _figure(10, 2.4 * rows, rows, columns)
    flat = list(axes.ravel())
    for axis, name in zip(flat, criteria, strict=False):
        axis.plot(by_k["k"], by_k[name], marker="o", color="#4e79a7")
        if chosen is not None:
            axis.axvline(chosen, color="#e15759", linestyle="--")
        axis.set_title(f"{name.replace('_', ' ')} ({CRITERIA[name].split(',')[0]})", fontsize=9)
        axis.set_xticks(list(by_k["k"]))
        axis.tick_params(labelsize=8)
    for axis in flat[len(criteria) :]:
        axis.set_visible(False)
    return _svg(figure)


def _scatter_chart(points: pd.DataFrame, names: dict[int, str]) -> str:
    figure, axes = _figure(8, 5.5)
    axis = axes[0, 0]
    for segment_id, group in points.groupby("segment_id"):
        axis.scatter(
            group["x"],
            group["y"],
            s=6,
            alpha=0.6,
            color=_colour(int(segment_id)),
            label=f"{int(segment_id)} {names.get(int(segment_id), '')}",
            rasterized=True,
        )
    axis.set_xlabel("PC 1")
    axis.set_ylabel("PC 2")
    axis.legend(fontsize=8, markerscale=3, loc="best")
    return _svg(figure)


def _history_chart(history: pd.DataFrame, names: dict[int, str]) -> str:
    table = history.pivot_table(
        index="version_id", columns="segment_id", values="customer_count", aggfunc="sum"
    ).fillna(0)
    figure, axes = _figure(8, 3)
    axis = axes[0, 0]
    bottom = None
    labels = [f"v{int(v)}" for v in table.index]
    for segment_id in table.columns:
        values = table[segment_id].to_numpy()
        axis.bar(
            labels,
            values,
            bottom=bottom,
            color=_colour(int(segment_id)),
            label=f"{int(segment_id)} {names.get(int(segment_id), '')}",
        )
        bottom = values if bottom is None else bottom + values
    axis.set_ylabel("customers")
    axis.legend(fontsize=7, loc="center left", bbox_to_anchor=(1, 0.5))
    return _svg(figure)


def _psi_chart(frame: pd.DataFrame, threshold: float | None) -> str:
    figure, axes = _figure(8, 0.3 * len(frame) + 1)
    axis = axes[0, 0]
    colours = ["#e15759" if over else "#4e79a7" for over in frame["over"]]
    axis.barh(frame["feature"], frame["psi"], color=colours)
    axis.invert_yaxis()
    if threshold is not None:
        axis.axvline(threshold, color="#333", linestyle="--")
    axis.set_xlabel("PSI")
    axis.tick_params(labelsize=8)
    return _svg(figure)


_CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:0;color:#222;
background:#f7f7f8;line-height:1.4}
header{background:#1f2d3d;color:#fff;padding:12px 24px;position:sticky;top:0;z-index:1}
header h1{margin:0 0 4px;font-size:20px}nav{font-size:13px}nav a{color:#cfe3ff}
main{max-width:1100px;margin:0 auto;padding:8px 24px 40px}
section{background:#fff;border-radius:8px;padding:12px 20px;margin:16px 0;
box-shadow:0 1px 2px rgba(0,0,0,.08)}
h2{font-size:18px;margin:4px 0 8px}h3{font-size:15px;margin:12px 0 6px}
.intro,.small{color:#555;font-size:13px}
table{border-collapse:collapse;font-size:13px;margin:6px 0}
th,td{border:1px solid #ddd;padding:3px 8px;text-align:right}th{background:#f0f2f5}
td:first-child,th:first-child{text-align:left}
tr.chosen td{background:#fff3cd;font-weight:600}
figure{margin:8px 0}figure svg{max-width:100%;height:auto}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(320px,1fr));gap:12px}
.persona{border:1px solid #ddd;border-top:6px solid #888;border-radius:6px;padding:8px 12px}
.persona h3{margin:2px 0}.persona .size{font-size:15px;margin:4px 0}
.traits{width:100%}.predicted{font-size:13px;color:#333}
dl.facts{display:grid;grid-template-columns:max-content 1fr;gap:2px 16px;font-size:14px}
dl.facts dt{color:#555}dl.facts dd{margin:0}
.matrix td{min-width:36px}
"""
