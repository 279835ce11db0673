"""The sources config: where each source's files are and how their columns map to the landing
contract. One YAML file (``SEGMENTS_SOURCES_CONFIG``, default ``ingestion/sources.yml``: the demo's
landing layout) describes every source the nightly run loads; the loader (``ingestion.load``)
reads the files through it, so a user's own files and the demo's go through the same row rules,
quarantine, reconciliation and quality gates.

A source's entry (every key but ``path`` is optional)::

    orders:
      path: retail/transactions.csv  # daily_partitions: the folder of date=YYYY-MM-DD folders;
                                     # snapshot: a file or glob. Relative to the config file;
                                     # {landing_dir} is SEGMENTS_LANDING_DIR
      layout: snapshot               # daily_partitions (path is a folder) | snapshot (a file)
      format: csv                    # csv (also .csv.gz) | text (whitespace-aligned) | parquet
      delimiter: ";"                 # csv; default ","
      header: true                   # false: give column_names, in file order
      column_names: [...]
      date_format: "%d/%m/%Y %H:%M"  # iso | yyyymmdd | a strptime format
      decimal: ","                   # number columns (amount, quantity, unit_price)
      thousands: "."                 # without it, a '.' under decimal "," is refused
      currency_symbol: "€"
      max_parse_failure_share: 0.05  # a configured parse failing for more stops the load
      max_malformed_lines: 3         # a malformed region spanning more lines stops the load
      grain: lines                   # orders: orders (default) | lines
      cancelled_order_pattern: "^C"  # orders: order ids of cancellations (regex)
      key: [InvoiceNo, StockCode]    # what makes two lines duplicates; default the whole line
      columns:                       # contract column: the file's column; default the
        order_id: InvoiceNo          # contract's own names, all of them required
        customer_id: CustomerID
        ordered_at: InvoiceDate
        quantity: Quantity           # lines only, with unit_price (and optional product_id)
        unit_price: UnitPrice

A landing line is identified by its file and line number, never by its values: two lines that
map to the same contract values are both loaded. An exact duplicate is the whole source line
repeated (or the declared ``key``) in the same partition; it is quarantined as ``duplicate_row``.

Snapshot sources are split by event date at load (``ordered_at``, ``occurred_at``, the
customer's ``updated_at`` or else ``signup_at``): each day is a partition, loaded, quarantined,
reconciled and validated like a landed daily folder; a line whose date cannot be read belongs to
the as-of day (where the row rules quarantine it).
"""

from __future__ import annotations

import glob
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from core.contract import SOURCE_COLUMNS, SOURCES
from core.settings import Settings, get_settings
from core.warehouse import quote_ident

LAYOUTS = ("daily_partitions", "snapshot")
FORMATS = ("csv", "text", "parquet")
GRAINS = ("orders", "lines")
# Per source, the contract columns holding a timestamp (the first is required when mapping).
TIME_COLUMNS = {
    "customers": ("signup_at", "updated_at"),
    "orders": ("ordered_at",),
    "web_events": ("occurred_at",),
    "email_events": ("occurred_at",),
}
DATE_COLUMNS = {"customers": ("birth_date",)}
# The contract columns whose day is a snapshot line's partition (the first one present).
PARTITION_COLUMNS = {
    "customers": ("updated_at", "signup_at"),
    "orders": ("ordered_at",),
    "web_events": ("occurred_at",),
    "email_events": ("occurred_at",),
}
NUMBER_COLUMNS = ("amount", "quantity", "unit_price")
LINE_COLUMNS = ("quantity", "unit_price", "product_id")
SUFFIXES = {"csv": (".csv", ".csv.gz"), "text": (".txt", ".dat", ".prn"), "parquet": (".parquet",)}
DEFAULT_MAX_PARSE_FAILURE_SHARE = 0.05
# A malformed region (one record the CSV reader could not split, e.g. after an unterminated
# quote) spanning more lines than this stops the load: it has swallowed good lines.
DEFAULT_MAX_MALFORMED_LINES = 3
_KEYS = {
    "path", "layout", "format", "delimiter", "header", "column_names", "date_format", "decimal",
    "thousands", "currency_symbol", "max_parse_failure_share", "max_malformed_lines", "grain",
    "cancelled_order_pattern", "key", "columns", "anonymous_orders",
}  # fmt: skip
# What the loader does with an order (line) without a customer id: quarantine it as
# missing_customer_id (the default), or keep it as a guest order that belongs to nobody.
ANONYMOUS_ORDERS = ("quarantine", "keep")


class IngestionError(RuntimeError):
    """A landing file cannot be loaded as it is; the message names the file and the problem."""


class SourcesConfigError(IngestionError, ValueError):
    """The sources config (or a file it names) cannot be used; the message names the key."""


@dataclass(frozen=True)
class SourceSpec:
    name: str
    path: Path
    layout: str
    # Paths in raw._source_file and quarantine are relative to this folder.
    base_dir: Path
    config_path: Path
    format: str = "csv"
    delimiter: str = ","
    header: bool = True
    column_names: tuple[str, ...] = ()
    date_format: str | None = None
    decimal: str = "."
    thousands: str | None = None
    currency_symbol: str | None = None
    max_parse_failure_share: float = DEFAULT_MAX_PARSE_FAILURE_SHARE
    max_malformed_lines: int = DEFAULT_MAX_MALFORMED_LINES
    grain: str = "orders"
    cancelled_order_pattern: str | None = None
    key: tuple[str, ...] = ()
    anonymous_orders: str = "quarantine"
    # contract column -> file column (lower case); the contract's own names when not configured.
    columns: dict[str, str] = field(default_factory=dict)
    identity: bool = True

    @property
    def where(self) -> str:
        return f"{self.config_path}: sources.{self.name}"

    @property
    def parses_numbers(self) -> bool:
        return self.decimal != "." or bool(self.thousands) or bool(self.currency_symbol)

    @property
    def keeps_anonymous_orders(self) -> bool:
        return self.name == "orders" and self.anonymous_orders == "keep"

    @property
    def is_lines(self) -> bool:
        return self.name == "orders" and self.grain == "lines"

    def accepts(self, path: Path) -> bool:
        return path.name.lower().endswith(SUFFIXES[self.format])

    def snapshot_files(self) -> list[Path]:
        pattern = str(self.path)
        matches = sorted(Path(p) for p in glob.glob(pattern) if Path(p).is_file())
        if not matches:
            raise SourcesConfigError(f"{self.where}.path: no file matches {pattern!r}.")
        return matches


@dataclass(frozen=True)
class SourcesConfig:
    path: Path
    sources: dict[str, SourceSpec]

    @property
    def available_sources(self) -> list[str]:
        return [source for source in SOURCES if source in self.sources]


def load_sources_config(
    path: Path | None = None, settings: Settings | None = None
) -> SourcesConfig:
    """Read and check the sources config; every problem raises ``SourcesConfigError`` naming the
    key. ``path`` defaults to the settings' (``SEGMENTS_SOURCES_CONFIG``)."""
    settings = settings or get_settings()
    path = Path(path or settings.sources_config)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise SourcesConfigError(f"Cannot read the sources config {path}: {exc}") from exc
    except yaml.YAMLError as exc:
        raise SourcesConfigError(f"{path} is not valid YAML: {exc}") from exc
    if not isinstance(raw, dict) or not isinstance(raw.get("sources"), dict):
        raise SourcesConfigError(f"{path}: expected a mapping with a 'sources' key.")
    unknown = sorted(set(raw) - {"sources"})
    if unknown:
        raise SourcesConfigError(f"{path}: unknown key(s) {', '.join(unknown)}.")
    names = sorted(set(raw["sources"]) - set(SOURCES))
    if names:
        raise SourcesConfigError(
            f"{path}: unknown source(s) {', '.join(names)}; the sources are {', '.join(SOURCES)}."
        )
    if "orders" not in raw["sources"]:
        raise SourcesConfigError(f"{path}: the 'orders' source is required.")
    sources = {
        name: _source_spec(path, name, raw["sources"][name] or {}, settings)
        for name in SOURCES
        if name in raw["sources"]
    }
    return SourcesConfig(path=path, sources=sources)


def _source_spec(  # noqa: PLR0912, PLR0915 (one check per key, in the order of the docs)
    config_path: Path, name: str, spec: Any, settings: Settings
) -> SourceSpec:
    where = f"{config_path}: sources.{name}"
    if not isinstance(spec, dict) or "path" not in spec:
        raise SourcesConfigError(f"{where}: 'path' (a folder, file or glob) is required.")
    unknown = sorted(set(spec) - _KEYS)
    if unknown:
        raise SourcesConfigError(
            f"{where}: unknown key(s) {', '.join(unknown)}; known keys: {', '.join(sorted(_KEYS))}."
        )
    text = str(spec["path"]).replace("{landing_dir}", str(settings.landing_dir))
    path = Path(text).expanduser()
    if not path.is_absolute():
        path = config_path.parent.resolve() / path
    layout = str(spec.get("layout") or ("daily_partitions" if path.is_dir() else "snapshot"))
    _one_of(layout, LAYOUTS, f"{where}.layout")
    if layout == "snapshot" and not any(Path(p).is_file() for p in glob.glob(str(path))):
        raise SourcesConfigError(f"{where}.path: no file matches {str(spec['path'])!r} ({path}).")
    fmt = str(spec.get("format", "csv")).lower()
    _one_of(fmt, FORMATS, f"{where}.format")
    grain = str(spec.get("grain", "orders")).lower()
    _one_of(grain, GRAINS, f"{where}.grain")
    if grain == "lines" and name != "orders":
        raise SourcesConfigError(f"{where}.grain: only orders can be line level.")
    header = spec.get("header", True)
    if not isinstance(header, bool):
        raise SourcesConfigError(f"{where}.header: expected true or false, got {header!r}.")
    column_names = _names(spec.get("column_names") or [], f"{where}.column_names")
    if not header and not column_names and fmt != "parquet":
        raise SourcesConfigError(
            f"{where}: header: false needs column_names (the file's columns, in order)."
        )
    columns = spec.get("columns")
    identity = columns is None
    if identity:
        if grain == "lines":
            raise SourcesConfigError(f"{where}.columns: grain lines needs a column mapping.")
        columns = {column: column for column in SOURCE_COLUMNS[name]}
    if not isinstance(columns, dict):
        raise SourcesConfigError(f"{where}.columns: expected a mapping contract column: column.")
    allowed = set(SOURCE_COLUMNS[name]) | (set(LINE_COLUMNS) if grain == "lines" else set())
    extra = sorted(set(columns) - allowed)
    if extra:
        raise SourcesConfigError(
            f"{where}.columns: {', '.join(extra)} not in the contract of {name} "
            f"({', '.join(sorted(allowed))})."
        )
    required = {"customer_id", TIME_COLUMNS[name][0]}
    if name == "orders":
        required |= {"quantity", "unit_price"} if grain == "lines" else {"amount"}
    missing = sorted(required - set(columns))
    if missing:
        raise SourcesConfigError(f"{where}.columns: {', '.join(missing)} must be mapped.")
    pattern = spec.get("cancelled_order_pattern")
    if pattern is not None:
        try:
            re.compile(str(pattern))
        except re.error as exc:
            raise SourcesConfigError(f"{where}.cancelled_order_pattern: {exc}") from exc
    share = spec.get("max_parse_failure_share", DEFAULT_MAX_PARSE_FAILURE_SHARE)
    if isinstance(share, bool) or not isinstance(share, int | float) or not 0 <= share <= 1:
        raise SourcesConfigError(
            f"{where}.max_parse_failure_share: expected a share between 0 and 1, got {share!r}."
        )
    malformed = spec.get("max_malformed_lines", DEFAULT_MAX_MALFORMED_LINES)
    if isinstance(malformed, bool) or not isinstance(malformed, int) or malformed < 1:
        raise SourcesConfigError(
            f"{where}.max_malformed_lines: expected a whole number of at least 1, got "
            f"{malformed!r}."
        )
    decimal = str(spec.get("decimal", "."))
    _one_of(decimal, (".", ","), f"{where}.decimal")
    anonymous = spec.get("anonymous_orders", "quarantine")
    if anonymous != "quarantine" and name != "orders":
        raise SourcesConfigError(f"{where}.anonymous_orders: only orders can keep anonymous rows.")
    if not isinstance(anonymous, str) or anonymous not in ANONYMOUS_ORDERS:
        raise SourcesConfigError(
            f"{where}.anonymous_orders: expected one of {', '.join(ANONYMOUS_ORDERS)}, "
            f"got {anonymous!r}."
        )
    date_format = spec.get("date_format")
    return SourceSpec(
        name=name,
        path=path,
        layout=layout,
        base_dir=path.parent if layout == "daily_partitions" else config_path.parent.resolve(),
        config_path=config_path,
        format=fmt,
        delimiter=str(spec.get("delimiter", ",")),
        header=header,
        column_names=column_names,
        date_format=None if date_format is None else str(date_format),
        decimal=decimal,
        thousands=_optional_text(spec.get("thousands")),
        currency_symbol=_optional_text(spec.get("currency_symbol")),
        max_parse_failure_share=float(share),
        max_malformed_lines=malformed,
        grain=grain,
        cancelled_order_pattern=None if pattern is None else str(pattern),
        key=_names(spec.get("key") or [], f"{where}.key"),
        anonymous_orders=anonymous,
        columns={str(k): str(v).strip().lower() for k, v in columns.items()},
        identity=identity,
    )


def _one_of(value: str, allowed: tuple[str, ...], where: str) -> None:
    if value not in allowed:
        raise SourcesConfigError(f"{where}: {value!r} is not one of {', '.join(allowed)}.")


def _names(value: Any, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise SourcesConfigError(f"{where}: expected a list of column names, got {value!r}.")
    return tuple(v.strip().lower() for v in value)


def _optional_text(value: Any) -> str | None:
    return None if value is None or value == "" else str(value)


def normalise_header(names: list[str]) -> tuple[str, ...]:
    return tuple(name.strip().lstrip("\ufeff").lower() for name in names)


# -- mapping: SQL over the read table (the file's columns as text, plus _file and _record) -------


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _strptime_format(date_format: str) -> str | None:
    if date_format == "iso":
        return None
    return "%Y%m%d" if date_format == "yyyymmdd" else date_format


def _text(column: str) -> str:
    return f"nullif(trim({quote_ident(column)}), '')"


def _foreign_mark(spec: SourceSpec, column: str) -> str | None:
    """SQL: the value holds a '.' although the decimal mark is ',' and '.' is no thousands mark.
    A European export's ``1.234`` is one thousand two hundred thirty-four, or a typo: either way
    not 1.234, so it is refused (no guess) instead of read with the dot as a decimal mark."""
    if not _refuses_dot(spec):
        return None
    return f"contains({_without_currency(spec, column)}, '.')"


def _without_currency(spec: SourceSpec, column: str) -> str:
    if not spec.currency_symbol:
        return _text(column)
    return f"replace({_text(column)}, {_literal(spec.currency_symbol)}, '')"


def _refuses_dot(spec: SourceSpec) -> bool:
    return spec.decimal == "," and spec.thousands != "."


def _number_text(spec: SourceSpec, column: str) -> str:
    """The number as plain text (``1234.5``) from the configured currency, thousands and decimal
    marks; null when it holds a mark the config does not give (``_foreign_mark``)."""
    expression = _without_currency(spec, column)
    foreign = _foreign_mark(spec, column)
    if foreign is not None:
        expression = f"if({foreign}, null, {expression})"
    if spec.thousands:
        expression = f"replace({expression}, {_literal(spec.thousands)}, '')"
    if spec.decimal == ",":
        expression = f"replace({expression}, ',', '.')"
    return f"nullif(trim({expression}), '')"


def _parsed_time(spec: SourceSpec, column: str, out: str) -> str | None:
    fmt = _strptime_format(spec.date_format or "iso")
    if fmt is None:
        return None
    parsed = f"try_strptime({_text(column)}, {_literal(fmt)})"
    if "%z" in fmt or "%Z" in fmt:
        # A zoned parse is a timestamptz, which strftime would write in the session's time zone
        # (the machine's, unless set): written as its UTC time instead, whatever the session.
        parsed = f"timezone('UTC', {parsed})"
    return f"strftime({parsed}, '{out}')"


@dataclass(frozen=True)
class ParseCheck:
    """A configured parse of one file column: the SQL of a value it fails on."""

    contract_column: str
    file_column: str
    format: str
    failed_sql: str


def parse_checks(spec: SourceSpec) -> list[ParseCheck]:
    """The configured parses (date format, number marks) of the mapped columns."""
    checks = []
    if spec.date_format is not None:
        for column in TIME_COLUMNS[spec.name] + DATE_COLUMNS.get(spec.name, ()):
            user = spec.columns.get(column)
            if not user:
                continue
            fmt = _strptime_format(spec.date_format)
            parsed = (
                f"try_strptime({_text(user)}, {_literal(fmt)})"
                if fmt
                else f"try_cast({_text(user)} as timestamp)"
            )
            checks.append(
                ParseCheck(
                    column,
                    user,
                    f"date_format {spec.date_format!r}",
                    f"{_text(user)} is not null and {parsed} is null",
                )
            )
    if spec.parses_numbers:
        marks = ", ".join(
            f"{name} {value!r}"
            for name, value in (
                ("decimal", spec.decimal),
                ("thousands", spec.thousands),
                ("currency_symbol", spec.currency_symbol),
            )
            if value
        )
        if _refuses_dot(spec):
            marks += " (a '.' is refused: set thousands '.' if it marks thousands)"
        for column in NUMBER_COLUMNS:
            user = spec.columns.get(column)
            if user:
                checks.append(
                    ParseCheck(
                        column,
                        user,
                        f"a number with {marks}",
                        f"{_text(user)} is not null "
                        f"and try_cast({_number_text(spec, user)} as double) is null",
                    )
                )
    return checks


def _time_sql(spec: SourceSpec, column: str, *, is_date: bool = False) -> str:
    # A value the format cannot read stays as it was, so the row rules quarantine it as
    # unparseable (with the original text) instead of it turning into a missing value.
    parsed = _parsed_time(spec, column, "%Y-%m-%d" if is_date else "%Y-%m-%d %H:%M:%S")
    return f"coalesce({parsed}, {quote_ident(column)})" if parsed else quote_ident(column)


def _number_sql(spec: SourceSpec, column: str) -> str:
    if not spec.parses_numbers:
        return quote_ident(column)
    normalised = _number_text(spec, column)
    # A value the marks cannot read stays as it was, for the row rules to quarantine
    # (unparseable_amount); one with a refused '.' would read as a number there: it goes empty
    # (the line keeps it in _raw_line).
    foreign = _foreign_mark(spec, column)
    refused = f"when {foreign} then null " if foreign else ""
    return (
        f"case when try_cast({normalised} as double) is not null then {normalised} "
        f"{refused}else {quote_ident(column)} end"
    )


def _mapped(spec: SourceSpec, column: str) -> str:
    user = spec.columns.get(column)
    if not user:
        return "null::varchar"
    if column in TIME_COLUMNS[spec.name]:
        return _time_sql(spec, user)
    if column in DATE_COLUMNS.get(spec.name, ()):
        return _time_sql(spec, user, is_date=True)
    if column in NUMBER_COLUMNS:
        return _number_sql(spec, user)
    return quote_ident(user)


def _cancelled(spec: SourceSpec, order_id_sql: str) -> str:
    if not spec.cancelled_order_pattern:
        return "false"
    pattern = _literal(spec.cancelled_order_pattern)
    return f"coalesce(regexp_matches({order_id_sql}, {pattern}), false)"


def mapping_select(
    spec: SourceSpec,
    file_columns: tuple[str, ...],
    source_file_sql: str,
    relation: str = "_read",
    passthrough: tuple[str, ...] = (),
) -> str:
    """SELECT over ``relation`` (the file's columns, ``_file`` and ``_record``) giving the
    contract columns (text), ``_source_file``, ``_line_number``, ``_line_key``, ``_line_hash``,
    ``_raw_line`` and ``_line_amount``.

    Order lines (grain lines) keep their grain here: a negative quantity makes the line part of
    a return of its own (``<order id>-R``, status ``returned``); the loader sums the lines of an
    order into its amount after the row rules' duplicate check."""
    every = ", ".join(quote_ident(c) for c in file_columns)
    line_hash = f"hash({every})"
    key = f"hash({', '.join(quote_ident(c) for c in spec.key)})" if spec.key else line_hash
    header_lines = 1 if spec.header and spec.format != "parquet" else 0
    # The line as read, for the quarantine, when the contract columns may not hold its text (a
    # mapping, or a number with a refused '.' emptied).
    raw_line = (
        "null::varchar"
        if spec.identity and not _refuses_dot(spec)
        else f"concat_ws({_literal(spec.delimiter)}, "
        + ", ".join(f"coalesce({quote_ident(c)}, '')" for c in file_columns)
        + ")"
    )
    items = []
    line_amount = "null::double"
    generated_id = f"({source_file_sql} || ':' || _record)"
    for column in SOURCE_COLUMNS[spec.name]:
        if spec.name == "orders" and column == "order_id" and "order_id" not in spec.columns:
            items.append(f"{generated_id} as order_id")
        elif spec.is_lines and column in ("order_id", "status", "amount"):
            continue
        elif spec.name == "orders" and column == "status" and "status" not in spec.columns:
            source_id = _mapped(spec, "order_id") if "order_id" in spec.columns else "null"
            items.append(
                f"case when {_cancelled(spec, f'trim({source_id})')} then 'cancelled' "
                "else 'completed' end as status"
            )
        else:
            items.append(f"{_mapped(spec, column)} as {quote_ident(column)}")
    if spec.is_lines:
        quantity = f"try_cast({_number_text(spec, spec.columns['quantity'])} as double)"
        price = f"try_cast({_number_text(spec, spec.columns['unit_price'])} as double)"
        source_id = (
            f"trim({quote_ident(spec.columns['order_id'])})"
            if "order_id" in spec.columns
            else generated_id
        )
        line_amount = f"{quantity} * {price}"
        items += [
            f"nullif({source_id}, '') || case when {quantity} < 0 then '-R' else '' end "
            "as order_id",
            "null::varchar as amount",
            f"case when {_cancelled(spec, source_id)} then 'cancelled' "
            f"when {quantity} < 0 then 'returned' else 'completed' end as status",
        ]
    return (
        f"select {', '.join(items)}, {source_file_sql} as _source_file, "
        f"_record + {header_lines} as _line_number, {key} as _line_key, "
        f"{line_hash} as _line_hash, {raw_line} as _raw_line, {line_amount} as _line_amount"
        + "".join(f", {quote_ident(column)}" for column in passthrough)
        + f" from {relation} as _read"
    )


def needed_file_columns(spec: SourceSpec) -> list[str]:
    """The file columns the config names (mapped and key columns)."""
    return sorted(set(spec.columns.values()) | set(spec.key))
