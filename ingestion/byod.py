"""Bring your own data: a YAML config maps a user's files to the four sources, without code.

``load_byod`` reads the files the config names, maps their columns to the landing contract
(docs/architecture.md) and replaces the ``raw`` tables with them; ``python -m pipeline.byod``
then builds, checks and reclusters (see there). Only ``orders`` is required:
with transactions alone, RFM, lifecycle, cohorts and clustering run, and the features that need
the other sources are null (absent), not 0.

A source's config::

    orders:
      path: retail/*.csv            # glob, relative to the config file
      format: csv                   # csv | parquet | text (whitespace-aligned columns)
      delimiter: ";"                # csv only; default ","
      date_format: "%d/%m/%Y %H:%M" # iso (default) | yyyymmdd | a strptime format
      grain: lines                  # orders only: lines | orders (default)
      cancelled_order_pattern: "^C" # orders only: order ids of cancellations (regex)
      columns:                      # contract column: the file's column
        order_id: InvoiceNo
        customer_id: CustomerID
        ordered_at: InvoiceDate
        quantity: Quantity          # lines only
        unit_price: UnitPrice       # lines only
        # amount: Total             # orders grain: the order's total
        # status: Status            # orders grain, optional (else completed)

Line-level transactions become one order per order id: its total is the sum of quantity x unit
price of its lines with a positive quantity. Lines with a negative quantity are returns: they
become a ``returned`` order of their own (``<order id>-R``), so they never reduce frequency or
monetary. Orders whose id matches ``cancelled_order_pattern`` are ``cancelled``. Exact duplicate
lines are dropped (a file exported twice); rows without a customer id are kept in ``raw`` but
belong to nobody. Without an order id, each row is one order (id ``<file>:<row>``).

The user's files are only read. Loading replaces the whole of ``raw`` (the config describes the
complete data), so a re-run with the same files and as-of date gives the same marts.
"""

from __future__ import annotations

import glob
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import yaml

from core.contract import SOURCE_COLUMNS, SOURCES
from core.warehouse import quote_ident, transaction
from ingestion.load import ensure_raw_schema

log = logging.getLogger(__name__)

FORMATS = ("csv", "parquet", "text")
GRAINS = ("orders", "lines")
# Per source, the contract columns that hold a timestamp or a date (parsed with date_format).
TIME_COLUMNS = {
    "customers": ("signup_at", "updated_at"),
    "orders": ("ordered_at",),
    "web_events": ("occurred_at",),
    "email_events": ("occurred_at",),
}
DATE_COLUMNS = {"customers": ("birth_date",)}
# The contract column whose day is a row's partition date in raw.
PARTITION_COLUMN = {
    "customers": "updated_at",
    "orders": "ordered_at",
    "web_events": "occurred_at",
    "email_events": "occurred_at",
}
LINE_COLUMNS = ("quantity", "unit_price", "product_id")


class ByodConfigError(ValueError):
    """The config (or a file it names) cannot be used; the message says what to fix."""


@dataclass(frozen=True)
class SourceConfig:
    name: str
    paths: tuple[Path, ...]
    format: str = "csv"
    delimiter: str = ","
    date_format: str = "iso"
    columns: dict[str, str] = field(default_factory=dict)
    grain: str = "orders"
    cancelled_order_pattern: str | None = None


@dataclass(frozen=True)
class ByodConfig:
    path: Path
    sources: dict[str, SourceConfig]

    @property
    def available_sources(self) -> list[str]:
        return [source for source in SOURCES if source in self.sources]


def load_config(path: Path) -> ByodConfig:
    """Read and check the config; every problem raises ``ByodConfigError`` naming the key."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise ByodConfigError(f"Cannot read the config {path}: {exc}") from exc
    except yaml.YAMLError as exc:
        raise ByodConfigError(f"{path} is not valid YAML: {exc}") from exc
    if not isinstance(raw, dict) or not isinstance(raw.get("sources"), dict):
        raise ByodConfigError(f"{path}: expected a mapping with a 'sources' key.")
    unknown = sorted(set(raw["sources"]) - set(SOURCES))
    if unknown:
        raise ByodConfigError(
            f"{path}: unknown source(s) {', '.join(unknown)}; the sources are {', '.join(SOURCES)}."
        )
    if "orders" not in raw["sources"]:
        raise ByodConfigError(f"{path}: the 'orders' source is required.")
    sources = {
        name: _source_config(path, name, spec or {}) for name, spec in raw["sources"].items()
    }
    return ByodConfig(path=path, sources=sources)


def _source_config(config_path: Path, name: str, spec: dict[str, Any]) -> SourceConfig:
    where = f"{config_path}: sources.{name}"
    if not isinstance(spec, dict) or "path" not in spec:
        raise ByodConfigError(f"{where}: 'path' (a file or glob) is required.")
    pattern = str(spec["path"])
    base = config_path.parent
    matches = (
        sorted(Path(p) for p in glob.glob(pattern))
        if Path(pattern).is_absolute()
        else sorted(base.glob(pattern))
    )
    if not matches:
        raise ByodConfigError(f"{where}.path: no file matches {pattern!r} (relative to {base}).")
    fmt = str(spec.get("format", "csv")).lower()
    if fmt not in FORMATS:
        raise ByodConfigError(f"{where}.format: {fmt!r} is not one of {', '.join(FORMATS)}.")
    grain = str(spec.get("grain", "orders")).lower()
    if grain not in GRAINS:
        raise ByodConfigError(f"{where}.grain: {grain!r} is not one of {', '.join(GRAINS)}.")
    if grain == "lines" and name != "orders":
        raise ByodConfigError(f"{where}.grain: only orders can be line level.")
    columns = spec.get("columns") or {}
    if not isinstance(columns, dict):
        raise ByodConfigError(f"{where}.columns: expected a mapping contract column: file column.")
    allowed = set(SOURCE_COLUMNS[name]) | (set(LINE_COLUMNS) if grain == "lines" else set())
    extra = sorted(set(columns) - allowed)
    if extra:
        raise ByodConfigError(
            f"{where}.columns: {', '.join(extra)} not in the contract of {name} "
            f"({', '.join(sorted(allowed))})."
        )
    required = {"customer_id"} | set(TIME_COLUMNS[name][:1])
    if name == "orders":
        required |= {"quantity", "unit_price"} if grain == "lines" else {"amount"}
    missing = sorted(required - set(columns))
    if missing:
        raise ByodConfigError(f"{where}.columns: {', '.join(missing)} must be mapped.")
    pattern_text = spec.get("cancelled_order_pattern")
    if pattern_text is not None:
        try:
            re.compile(str(pattern_text))
        except re.error as exc:
            raise ByodConfigError(f"{where}.cancelled_order_pattern: {exc}") from exc
    return SourceConfig(
        name=name,
        paths=tuple(matches),
        format=fmt,
        delimiter=str(spec.get("delimiter", ",")),
        date_format=str(spec.get("date_format", "iso")),
        columns={str(k): str(v) for k, v in columns.items()},
        grain=grain,
        cancelled_order_pattern=None if pattern_text is None else str(pattern_text),
    )


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _read_files(con: duckdb.DuckDBPyConnection, source: SourceConfig) -> str:
    """Register the source's files as the view ``byod_input`` (all text, plus row numbers)."""
    files = [str(p) for p in source.paths]
    # views cannot take prepared parameters: the paths are SQL literals
    file_list = "[" + ", ".join(_literal(f) for f in files) + "]"
    if source.format == "parquet":
        relation = f"read_parquet({file_list}, filename = true)"
        con.execute(f"create or replace temp view byod_typed as select * from {relation}")
        names = [row[0] for row in con.execute("describe byod_typed").fetchall()]
        select = ", ".join(f"cast({quote_ident(n)} as varchar) as {quote_ident(n)}" for n in names)
        con.execute(f"create or replace temp view byod_read as select {select} from byod_typed")
    elif source.format == "text":
        # Whitespace-aligned columns: pandas infers the column spans from the layout.
        import pandas as pd

        frames = []
        for path in source.paths:
            frame = pd.read_fwf(path, dtype=str, keep_default_na=False)
            frame["filename"] = str(path)
            frames.append(frame)
        byod_frame = pd.concat(frames, ignore_index=True)
        con.register("byod_frame", byod_frame)
        con.execute("create or replace temp view byod_read as select * from byod_frame")
    else:
        con.execute(
            f"create or replace temp view byod_read as select * from read_csv({file_list}, "
            f"delim = {_literal(source.delimiter)}, header = true, all_varchar = true, "
            "filename = true, union_by_name = true)"
        )
    found = {row[0] for row in con.execute("describe byod_read").fetchall()}
    missing = sorted(set(source.columns.values()) - found)
    if missing:
        raise ByodConfigError(
            f"{source.name}: column(s) {', '.join(missing)} named in the config are not in "
            f"{', '.join(files[:3])} (found: {', '.join(sorted(found - {'filename'}))})."
        )
    con.execute(
        "create or replace temp table byod_input as "
        "select *, row_number() over () as byod_row from byod_read"
    )
    return "byod_input"


def _timestamp_sql(column: str, date_format: str, *, is_date: bool = False) -> str:
    """SQL giving the column as ISO text (``YYYY-MM-DD HH:MM:SS`` or ``YYYY-MM-DD``)."""
    text = f"nullif(trim({column}), '')"
    if date_format == "iso":
        parsed = f"try_cast({text} as timestamp)"
    elif date_format == "yyyymmdd":
        parsed = f"try_strptime({text}, '%Y%m%d')"
    else:
        parsed = f"try_strptime({text}, {_literal(date_format)})"
    out = "%Y-%m-%d" if is_date else "%Y-%m-%d %H:%M:%S"
    return f"strftime({parsed}, '{out}')"


def _mapped(source: SourceConfig, column: str) -> str:
    user = source.columns.get(column)
    return f"nullif(trim({quote_ident(user)}), '')" if user else "null"


def _source_select(source: SourceConfig) -> str:
    """SELECT of the contract columns (as text) from ``byod_input`` for a non-line source."""
    # without an order id, each row is one order
    order_id = (
        _mapped(source, "order_id")
        if "order_id" in source.columns
        else "concat(filename, ':', byod_row)"
    )
    items = []
    for column in SOURCE_COLUMNS[source.name]:
        user = source.columns.get(column)
        if user and column in TIME_COLUMNS[source.name]:
            items.append(f"{_timestamp_sql(quote_ident(user), source.date_format)} as {column}")
        elif user and column in DATE_COLUMNS.get(source.name, ()):
            items.append(
                f"{_timestamp_sql(quote_ident(user), source.date_format, is_date=True)} as {column}"
            )
        elif source.name == "orders" and column == "order_id":
            items.append(f"{order_id} as order_id")
        elif source.name == "orders" and column == "status" and not user:
            items.append(
                f"case when {_cancel_test(source, order_id)} then 'cancelled' "
                "else 'completed' end as status"
            )
        else:
            items.append(f"{_mapped(source, column)} as {column}")
    return ", ".join(items)


def _orders_from_lines(source: SourceConfig) -> str:
    """One order per order id from line-level rows (see the module docstring)."""
    order_id = _mapped(source, "order_id") if "order_id" in source.columns else None
    order_id_sql = order_id or "concat(filename, ':', byod_row)"
    ordered_at = _timestamp_sql(quote_ident(source.columns["ordered_at"]), source.date_format)
    return f"""
        with lines as (
            select distinct
                {order_id_sql} as order_id,
                {_mapped(source, "customer_id")} as customer_id,
                {ordered_at} as ordered_at,
                {_mapped(source, "product_id")} as product_id,
                try_cast({_mapped(source, "quantity")} as double) as quantity,
                try_cast({_mapped(source, "unit_price")} as double) as unit_price,
                -- exact duplicate lines are one line; distinct rows of the file stay apart
                {"" if order_id else "byod_row,"}
                filename
            from byod_input
        ),
        orders as (
            select
                order_id || case when quantity < 0 then '-R' else '' end as order_id,
                any_value(customer_id) as customer_id,
                min(ordered_at) as ordered_at,
                cast(round(abs(sum(quantity * unit_price)), 2) as varchar) as amount,
                bool_or(quantity < 0) as is_return,
                any_value(order_id) as source_order_id,
                min(filename) as filename
            from lines
            group by order_id || case when quantity < 0 then '-R' else '' end
        )
        select
            order_id,
            customer_id,
            ordered_at,
            amount,
            case
                when {_cancel_test(source, "source_order_id")} then 'cancelled'
                when is_return then 'returned'
                else 'completed'
            end as status,
            filename
        from orders
    """


def _cancel_test(source: SourceConfig, column: str) -> str:
    """SQL: the order id matches the config's cancellation pattern (false without one)."""
    if not source.cancelled_order_pattern:
        return "false"
    return f"regexp_matches({column}, {_literal(source.cancelled_order_pattern)})"


def load_byod(con: duckdb.DuckDBPyConnection, config: ByodConfig) -> dict[str, int]:
    """Replace every raw table with the config's files; rows loaded per source."""
    ensure_raw_schema(con)
    loaded: dict[str, int] = {}
    with transaction(con):
        for name in SOURCES:
            con.execute(f"delete from raw.{name}")
            source = config.sources.get(name)
            if source is None:
                continue
            _read_files(con, source)
            columns = ", ".join(SOURCE_COLUMNS[name])
            if name == "orders" and source.grain == "lines":
                body = _orders_from_lines(source)
            else:
                body = f"select {_source_select(source)}, filename from byod_input"
            partition = PARTITION_COLUMN[name]
            con.execute(
                f"""
                insert into raw.{name}
                select
                    {columns},
                    coalesce(cast(try_cast({partition} as timestamp) as date), date '1970-01-01'),
                    filename
                from ({body}) as mapped
                """
            )
            loaded[name] = con.execute(f"select count(*) from raw.{name}").fetchone()[0]
    log.info("bring-your-own-data: loaded %s", loaded)
    return loaded
