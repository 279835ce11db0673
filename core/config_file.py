"""The one loader of the project's YAML config files (``ml_tasks/segmentation.yml``,
``expectations/quality.yml``): a file maps onto a frozen dataclass whose defaults are the shipped
values, so a file only needs the keys it changes.

An unknown key, or a value of the wrong kind, is an error naming the file and the key: a typo must
not silently fall back to a default (or loosen a gate). A field whose default is itself a dataclass
is a section: a nested mapping checked the same way.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, TypeVar

import yaml

T = TypeVar("T")


class ConfigFileError(ValueError):
    """A config file is missing, malformed or out of range (each config has its own subclass)."""


def load_config_file(
    path: Path, cls: type[T], *, what: str, error: type[ConfigFileError] = ConfigFileError
) -> T:
    """The dataclass ``cls`` from the YAML file at ``path``; ``what`` names the file in errors
    (e.g. "Segmentation config"), ``error`` is the exception raised."""
    try:
        values = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise error(f"{what} {path} does not exist.") from None
    except yaml.YAMLError as exc:
        raise error(f"{what} {path} is not valid YAML: {exc}") from None
    return build(cls, values, str(path), error=error)


def build(
    cls: type[T],
    values: Any,
    source: str,
    *,
    error: type[ConfigFileError] = ConfigFileError,
    prefix: str = "",
) -> T:
    """The dataclass ``cls`` from a mapping, checking every key and value kind."""
    where = f"{source}: {prefix or 'top level'}"
    if not isinstance(values, dict):
        raise error(f"{where}: expected a mapping, got {values!r}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise error(f"{where}: unknown key(s) {unknown}; known keys: {sorted(fields)}")
    kwargs = {}
    for name, value in values.items():
        key = f"{prefix}.{name}" if prefix else name
        section = _section_class(fields[name])
        if section is not None:
            kwargs[name] = build(section, value or {}, source, error=error, prefix=key)
        else:
            kwargs[name] = _coerce(value, fields[name].default, f"{source}: {key}", error)
    try:
        return cls(**kwargs)
    except error as exc:
        raise error(f"{source}: {exc}") from None


def as_plain(value: Any) -> Any:
    """A config dataclass as plain YAML/JSON values (tuples as lists, sections as mappings)."""
    if dataclasses.is_dataclass(value):
        return {f.name: as_plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, tuple):
        return list(value)
    return value


def _section_class(field: dataclasses.Field) -> type | None:
    factory = field.default_factory
    if factory is not dataclasses.MISSING and dataclasses.is_dataclass(factory):
        return factory  # type: ignore[return-value]
    return None


def _coerce(value: Any, default: Any, where: str, error: type[ConfigFileError]) -> Any:
    """A YAML value as the kind of its default: column list, number (or null) or text."""
    if isinstance(default, tuple):
        if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
            raise error(f"{where}: expected a list of column names, got {value!r}")
        return tuple(value)
    if isinstance(default, int | float) or default is None:
        if value is None and default is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise error(f"{where}: expected a number, got {value!r}")
        if isinstance(default, int) and not float(value).is_integer():
            raise error(f"{where}: expected a whole number, got {value!r}")
        return int(value) if isinstance(default, int) else float(value)
    if not isinstance(value, str):
        raise error(f"{where}: expected text, got {value!r}")
    return value
