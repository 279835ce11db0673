"""Audiences for activation: what an e-mail tool, an ad platform or a CRM takes after each publish.

For a published segment version, per segment: the full member list, the customers who entered
it and those who exited it since the previous published version
(``segments.segment_membership_changes``), each as CSV and Parquet, plus a ``manifest.json``
(version, as-of date, files with row counts and SHA-256, who was left out and why). Layout
under ``$SEGMENTS_REPORTS_DIR/exports/audiences``::

    v<version>-<as-of>-<written>/manifest.json
    v<version>-<as-of>-<written>/segment-<id>-{members,entered,exited}.{csv,parquet}
    current -> v<version>-<as-of>-<written>

Consent: only customers whose CRM record says yes to marketing (``has_marketing_consent`` of
``marts.customers`` at the version's as-of date) are in any file; the manifest counts the others
by reason (``no_consent``, ``consent_unknown``). Identifiers: ``email_sha256`` and
``phone_sha256`` from ``pii.customer_identifiers`` (normalised as the ad platforms require:
docs/privacy.md). The ``crm`` profile (``SEGMENTS_EXPORT_PROFILE=crm``) adds plain ``email`` and
``phone`` for a CRM that is allowed to hold them; the default ``ad_platform`` never does.

Atomic: a version's folder is written under a temporary name and renamed into place, and
``current`` is a symbolic link replaced in one rename, so a consumer that resolves ``current/``
and reads that folder always sees one complete export. Exporting a version that is already
exported only points ``current`` at it (the nightly DAG and the ``segment_export`` DAG may both
ask); ``rewrite`` writes a new folder for it (after an erasure, ``pipeline.erasure``).

Text a spreadsheet would run as a formula (a cell starting with ``=``, ``+``, ``-``, ``@``, a tab
or a carriage return) is written to the CSV files with a leading apostrophe (OWASP's advice on
CSV injection); Parquet keeps the values as they are.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb

from core.settings import Settings, get_settings

log = logging.getLogger(__name__)

PROFILES = ("ad_platform", "crm")
LISTS = ("members", "entered", "exited")
CURRENT = "current"


class ExportError(RuntimeError):
    """Nothing can be exported (no current version) or the profile is unknown."""


@dataclass(frozen=True)
class AudienceExport:
    version_id: int
    as_of_date: date
    path: Path
    manifest: dict

    def to_dict(self) -> dict:
        return {
            "version_id": self.version_id,
            "as_of_date": self.as_of_date.isoformat(),
            "path": str(self.path),
            "files": len(self.manifest["files"]),
            "exported_customers": self.manifest["customers"]["exported"],
            "left_out": self.manifest["customers"]["left_out"],
        }


def audiences_dir(settings: Settings) -> Path:
    return settings.reports_dir / "exports" / "audiences"


def export_profile() -> str:
    profile = os.environ.get("SEGMENTS_EXPORT_PROFILE", "ad_platform")
    if profile not in PROFILES:
        raise ExportError(f"SEGMENTS_EXPORT_PROFILE={profile!r}: expected one of {PROFILES}")
    return profile


def export_audiences(
    con: duckdb.DuckDBPyConnection,
    *,
    settings: Settings | None = None,
    version_id: int | None = None,
    profile: str | None = None,
    rewrite: bool = False,
) -> AudienceExport:
    """Export ``version_id`` (default: the current version), and point ``current`` at the
    current version's export (a backfill of an older date exports its version beside it)."""
    settings = settings or get_settings()
    profile = profile or export_profile()
    root = audiences_dir(settings)
    root.mkdir(parents=True, exist_ok=True)
    exported = _export_version(con, root, _version(con, version_id), profile, rewrite=rewrite)
    current = _version(con, None)
    current_path = _export_version(con, root, current, profile).path
    _point_current(root, current_path)
    manifest = exported.manifest
    log.info(
        "Audiences of version %d (as-of %s): %d files, %d customers exported, left out %s, in "
        "%s; current is version %d",
        exported.version_id,
        exported.as_of_date,
        len(manifest["files"]),
        manifest["customers"]["exported"],
        manifest["customers"]["left_out"],
        exported.path,
        current[0],
    )
    return exported


def _export_version(
    con: duckdb.DuckDBPyConnection,
    root: Path,
    version: tuple[int, date],
    profile: str,
    *,
    rewrite: bool = False,
) -> AudienceExport:
    version_id, as_of_date = version
    final = None if rewrite else latest_export(root, version_id)
    if final is None:
        written = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
        final = root / f"v{version_id}-{as_of_date.isoformat()}-{written}"
        _write_version_folder(con, final, version_id, as_of_date, profile)
    manifest = json.loads((final / "manifest.json").read_text())
    return AudienceExport(version_id, as_of_date, final, manifest)


def exports(root: Path) -> list[Path]:
    """Every complete export folder (with its manifest), oldest first."""
    return sorted(p.parent for p in root.glob("v*-*/manifest.json"))


def latest_export(root: Path, version_id: int) -> Path | None:
    """The newest complete export of a version, if any."""
    found = [p for p in exports(root) if p.name.startswith(f"v{version_id}-")]
    return found[-1] if found else None


def _version(con: duckdb.DuckDBPyConnection, version_id: int | None) -> tuple[int, date]:
    if version_id is None:
        row = con.execute("select version_id, as_of_date from segments.current_version").fetchone()
        if row is None:
            raise ExportError("No segment version is current yet: nothing to export.")
    else:
        row = con.execute(
            "select version_id, as_of_date from segments.segment_versions "
            "where version_id = ? and status in ('published', 'superseded', 'rolled_back')",
            [version_id],
        ).fetchone()
        if row is None:
            raise ExportError(f"Segment version {version_id} was never published.")
    return int(row[0]), row[1]


def _write_version_folder(
    con: duckdb.DuckDBPyConnection, final: Path, version_id: int, as_of_date: date, profile: str
) -> None:
    """Write every file into a temporary folder, then rename it into place (all or nothing)."""
    tmp = final.with_name(f".{final.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        left_out = _stage_audience(con, version_id, as_of_date, profile)
        files = []
        segments = con.execute(
            "select segment_id, segment_name from segments.segment_profiles "
            "where version_id = ? order by segment_id",
            [version_id],
        ).fetchall()
        for segment_id, _ in segments:
            for kind in LISTS:
                files += _write_list(con, tmp, segment_id, kind, _identifier_columns(profile))
        exported = con.execute("select count(*) from _audience where is_member").fetchone()[0]
        manifest = {
            "version_id": version_id,
            "as_of_date": as_of_date.isoformat(),
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "profile": profile,
            "consent_rule": "only customers with marketing consent at the as-of date",
            "identifiers": _identifier_columns(profile),
            "segments": [{"segment_id": s, "segment_name": n} for s, n in segments],
            "customers": {"exported": int(exported), "left_out": left_out},
            "files": files,
        }
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
        tmp.rename(final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        con.execute("drop table if exists _audience")


def _identifier_columns(profile: str) -> list[str]:
    hashed = ["email_sha256", "phone_sha256"]
    return [*hashed, "email", "phone"] if profile == "crm" else hashed


def _stage_audience(
    con: duckdb.DuckDBPyConnection, version_id: int, as_of_date: date, profile: str
) -> dict[str, int]:
    """The temp table ``_audience``: one row per (customer, segment, list) of the consenting
    customers. Returns the customers of the version left out, by reason."""
    plain = ", identifiers.email, identifiers.phone" if profile == "crm" else ""
    con.execute(
        f"""
        create or replace temp table _audience as
        with changes as (
            select customer_id, previous_segment_id, segment_id, change
            from segments.segment_membership_changes
            where version_id = ?
        ),
        lists as (
            select customer_id, segment_id, 'members' as list, true as is_member
            from segments.customer_segments where version_id = ?
            union all
            select customer_id, segment_id, 'entered', false
            from changes where change in ('entered', 'moved')
            union all
            select customer_id, previous_segment_id, 'exited', false
            from changes where change in ('exited', 'moved')
        ),
        consent as (
            select customer_id, has_marketing_consent
            from marts.customers where as_of_date = ?
        )
        select
            lists.customer_id,
            lists.segment_id,
            profiles.segment_name,
            lists.list,
            lists.is_member,
            consent.has_marketing_consent,
            identifiers.email_sha256,
            identifiers.phone_sha256{plain}
        from lists
        inner join segments.segment_profiles as profiles
            on profiles.version_id = ? and lists.segment_id = profiles.segment_id
        left join consent on lists.customer_id = consent.customer_id
        left join pii.customer_identifiers as identifiers
            on lists.customer_id = identifiers.customer_id
        """,
        [version_id, version_id, as_of_date, version_id],
    )
    reasons = Counter(
        dict(
            con.execute(
                """
                select case when has_marketing_consent is null then 'consent_unknown'
                            else 'no_consent' end, count(*)
                from _audience
                where is_member and coalesce(has_marketing_consent, false) = false
                group by all
                """
            ).fetchall()
        )
    )
    con.execute("delete from _audience where coalesce(has_marketing_consent, false) = false")
    return {reason: int(reasons.get(reason, 0)) for reason in ("no_consent", "consent_unknown")}


def _write_list(
    con: duckdb.DuckDBPyConnection,
    folder: Path,
    segment_id: int,
    kind: str,
    identifiers: list[str],
) -> list[dict]:
    """One audience list as CSV and Parquet; the manifest entries of both files."""
    chosen = f"from _audience where segment_id = {int(segment_id)} and list = '{kind}'"
    rows = int(con.execute(f"select count(*) {chosen}").fetchone()[0])
    csv_columns = [_text_cell("customer_id"), "segment_id", _text_cell("segment_name")]
    formats = {
        "csv": (", ".join([*csv_columns, *identifiers]), "(header, delimiter ',')"),
        "parquet": (
            ", ".join(["customer_id", "segment_id", "segment_name", *identifiers]),
            "(format parquet)",
        ),
    }
    entries = []
    for suffix, (select, options) in formats.items():
        path = folder / f"segment-{int(segment_id)}-{kind}.{suffix}"
        query = f"select {select} {chosen} order by customer_id"
        con.execute(f"copy ({query}) to '{_sql_path(path)}' {options}")
        entries.append(
            {
                "file": path.name,
                "segment_id": int(segment_id),
                "list": kind,
                "rows": rows,
                "sha256": _sha256(path),
            }
        )
    return entries


def _point_current(root: Path, final: Path) -> None:
    """Replace the ``current`` link in one rename: a reader sees the old export or the new."""
    link = root / CURRENT
    tmp = root / f".{CURRENT}.tmp-{os.getpid()}"
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(final.name, target_is_directory=True)
    tmp.replace(link)


def _text_cell(column: str) -> str:
    """The column, with a leading apostrophe when a spreadsheet would read it as a formula."""
    return (
        f"case when regexp_matches({column}, '^[-=+@\\t\\r]') "
        f"then chr(39) || {column} else {column} end as {column}"
    )


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _sql_path(path: Path) -> str:
    return str(path).replace("'", "''")


def main() -> int:
    """``python -m activation.audiences``: export the current version by hand."""
    from core.warehouse import connect

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    with connect() as con:
        print(export_audiences(con).path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
