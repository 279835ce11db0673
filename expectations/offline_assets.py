"""The CSS and JavaScript of the Data Docs site, served from the site folder instead of CDNs.

GX 1.x renders pages that load jQuery, Bootstrap, bootstrap-table, Font Awesome and Vega from
public CDNs; without internet access the index throws ``$ is not defined`` and lists nothing.
Every one of those files is published on the npm registry (unpkg and jsDelivr serve npm packages;
the other CDNs host the same releases), so:

* ``install_assets`` (``make install``: ``python -m expectations.offline_assets``) fetches the
  pinned packages with ``npm pack``, checks each tarball against its pinned ``sha512`` and
  unpacks it under the assets folder (``SEGMENTS_DATA_DOCS_ASSETS``, default ``vendor/data-docs``
  in the repository; git-ignored). Nothing is downloaded at run time.
* ``localize_pages`` (called by ``build_data_docs`` after GX wrote pages) copies the files the
  pages use into ``<site>/static/vendor/`` and rewrites each CDN address in the given pages to a
  relative path, so the site opens from ``file://`` or any static server with no network. The
  GX logo, which the navbar loads from GX's S3 bucket, comes from the site's own
  ``static/images`` (GX ships it there).

Links a person may click (greatexpectations.io) stay as they are: they load nothing.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

ASSETS_ENV = "SEGMENTS_DATA_DOCS_ASSETS"
VENDOR_DIR = Path("static") / "vendor"


@dataclass(frozen=True)
class NpmPackage:
    name: str
    version: str
    integrity: str  # the registry's dist.integrity (sha512, base64)

    @property
    def folder(self) -> str:
        """The unpacked package's folder name: ``name@version`` (scope separator flattened)."""
        return f"{self.name.replace('/', '__')}@{self.version}"


JQUERY = NpmPackage(
    "jquery",
    "3.7.1",
    "sha512-m4avr8yL8kmFN8psrbFFFmB/If14iN5o9nw/NgnnM+kybDJpRsAynV2BsfpTYrTRysYUdADVD7CkUUizgkpLfg==",
)
BOOTSTRAP = NpmPackage(
    "bootstrap",
    "4.3.1",
    "sha512-rXqOmH1VilAt2DyPzluTi2blhk17bO7ef+zLLPlWvG494pDxcM234pJ8wTc/6R40UWizAIIMgxjvxZg5kmsbag==",
)
BOOTSTRAP_TABLE = NpmPackage(
    "bootstrap-table",
    "1.19.1",
    "sha512-WvV+l1AI/C+zThaKmfHmi/IuayVNB0qdFyEhFx1jyZhO0oLtNJNANkCR3rvJf6Dkh72dsLElxpE/bzK9seEQLA==",
)
POPPER = NpmPackage(
    "popper.js",
    "1.12.9",
    "sha512-s0EEi9xiSCdqz9lV4IiVH5yIZnDX/U1t0tCjB+0jXx9jW8lrR7kOpVupiUg175ogqVoudpDXHF1p6dKATCHMeg==",
)
FONT_AWESOME = NpmPackage(
    "@fortawesome/fontawesome-free",
    "6.6.0",
    "sha512-60G28ke/sXdtS9KZCpZSHHkCbdsOGEhIUGlwq6yhY74UpTiToIh8np7A8yphhM4BWsvNFtIvLpi4co+h9Mr9Ow==",
)
DATEPICKER = NpmPackage(
    "bootstrap-datepicker",
    "1.9.0",
    "sha512-9rYYbaVOheGYxjOr/+bJCmRPihfy+LkLSg4fIFMT9Od8WwWB/MB50w0JO1eBgKUMbb7PFHQD5uAfI3ArAxZRXA==",
)
BOOTSTRAP_DARK = NpmPackage(
    "@forevolve/bootstrap-dark",
    "1.1.0",
    "sha512-A3ucpEpxPoTVO490lZZCfjPXxv832l7mm1IxX3bXyxvgwnPGXDLyh7dWrphXKO8YBAu3EswbBEu3VSW8NRMW3A==",
)
# The pages ask for vega@5, vega-lite@5 and vega-embed@6 (the newest 5.x / 6.x); pinned here.
VEGA = NpmPackage(
    "vega",
    "5.33.1",
    "sha512-1fArfVDUqVbb5z8n+/nVQb+VNBzx8svY6CrsyTK4Ujm4yrd9I1auoKxBAPXLCavY1LcrbHUskQbGUP8gXOzyQw==",
)
VEGA_LITE = NpmPackage(
    "vega-lite",
    "5.23.0",
    "sha512-l4J6+AWE3DIjvovEoHl2LdtCUkfm4zs8Xxx7INwZEAv+XVb6kR6vIN1gt3t2gN2gs/y4DYTs/RPoTeYAuEg6mA==",
)
VEGA_EMBED = NpmPackage(
    "vega-embed",
    "6.29.0",
    "sha512-PmlshTLtLFLgWtF/b23T1OwX53AugJ9RZ3qPE2c01VFAbgt3/GSNI/etzA/GzdrkceXFma+FDHNXUppKuM0U6Q==",
)
PACKAGES = (
    JQUERY,
    BOOTSTRAP,
    BOOTSTRAP_TABLE,
    POPPER,
    FONT_AWESOME,
    DATEPICKER,
    BOOTSTRAP_DARK,
    VEGA,
    VEGA_LITE,
    VEGA_EMBED,
)

_FILTER_CONTROL = "dist/extensions/filter-control/bootstrap-table-filter-control"
# Each CDN address GX 1.24's templates use -> (package, file in the package). The 1.19.0
# filter-control stylesheet is the same file in 1.19.1.
CDN_FILES: dict[str, tuple[NpmPackage, str]] = {
    "https://code.jquery.com/jquery-3.7.1.min.js": (JQUERY, "dist/jquery.min.js"),
    "https://maxcdn.bootstrapcdn.com/bootstrap/4.3.1/css/bootstrap.min.css": (
        BOOTSTRAP,
        "dist/css/bootstrap.min.css",
    ),
    "https://stackpath.bootstrapcdn.com/bootstrap/4.3.1/js/bootstrap.min.js": (
        BOOTSTRAP,
        "dist/js/bootstrap.min.js",
    ),
    "https://unpkg.com/bootstrap-table@1.19.1/dist/bootstrap-table.min.css": (
        BOOTSTRAP_TABLE,
        "dist/bootstrap-table.min.css",
    ),
    "https://unpkg.com/bootstrap-table@1.19.1/dist/bootstrap-table.min.js": (
        BOOTSTRAP_TABLE,
        "dist/bootstrap-table.min.js",
    ),
    f"https://unpkg.com/bootstrap-table@1.19.1/{_FILTER_CONTROL}.min.js": (
        BOOTSTRAP_TABLE,
        f"{_FILTER_CONTROL}.min.js",
    ),
    f"https://unpkg.com/bootstrap-table@1.19.0/{_FILTER_CONTROL}.min.css": (
        BOOTSTRAP_TABLE,
        f"{_FILTER_CONTROL}.min.css",
    ),
    f"https://unpkg.com/bootstrap-table@1.19.0/{_FILTER_CONTROL}.css": (
        BOOTSTRAP_TABLE,
        f"{_FILTER_CONTROL}.css",
    ),
    "https://cdnjs.cloudflare.com/ajax/libs/popper.js/1.12.9/umd/popper.min.js": (
        POPPER,
        "dist/umd/popper.min.js",
    ),
    "https://cdnjs.cloudflare.com/ajax/libs/font-awesome/6.6.0/css/all.min.css": (
        FONT_AWESOME,
        "css/all.min.css",
    ),
    "https://cdnjs.cloudflare.com/ajax/libs/bootstrap-datepicker/1.9.0/css/bootstrap-datepicker.min.css": (  # noqa: E501
        DATEPICKER,
        "dist/css/bootstrap-datepicker.min.css",
    ),
    "https://cdnjs.cloudflare.com/ajax/libs/bootstrap-datepicker/1.9.0/js/bootstrap-datepicker.min.js": (  # noqa: E501
        DATEPICKER,
        "dist/js/bootstrap-datepicker.min.js",
    ),
    "https://cdn.jsdelivr.net/npm/@forevolve/bootstrap-dark@1.1.0/dist/css/bootstrap-prefers-dark.css": (  # noqa: E501
        BOOTSTRAP_DARK,
        "dist/css/bootstrap-prefers-dark.css",
    ),
    "https://cdn.jsdelivr.net/npm/vega@5": (VEGA, "build/vega.min.js"),
    "https://cdn.jsdelivr.net/npm/vega-lite@5": (VEGA_LITE, "build/vega-lite.min.js"),
    "https://cdn.jsdelivr.net/npm/vega-embed@6": (VEGA_EMBED, "build/vega-embed.min.js"),
}
# Folders a stylesheet refers to relatively (Font Awesome's ../webfonts/*.woff2).
_COMPANION_FOLDERS: dict[NpmPackage, tuple[str, ...]] = {FONT_AWESOME: ("webfonts",)}
# The navbar logo: GX's S3 bucket + file name + a cache-busting query.
_GX_IMAGES = re.compile(
    r"https://great-expectations-web-assets\.s3\.us-east-2\.amazonaws\.com/([\w.-]+)(\?[^\"']*)?"
)
_CDN_ADDRESS = re.compile(
    "|".join(re.escape(url) for url in sorted(CDN_FILES, key=len, reverse=True)) + r"(?=[\"'])"
)


class OfflineAssetsMissing(RuntimeError):
    """The npm packages are not unpacked in the assets folder (run ``make install``)."""


def assets_dir() -> Path:
    configured = os.environ.get(ASSETS_ENV)
    if configured:
        return Path(configured)
    return Path(__file__).resolve().parents[1] / "vendor" / "data-docs"


def missing_packages(root: Path | None = None) -> list[NpmPackage]:
    root = root or assets_dir()
    return [package for package in PACKAGES if not (root / package.folder / ".complete").is_file()]


def install_assets(root: Path | None = None) -> list[NpmPackage]:
    """Fetch and unpack the packages not yet under ``root``; returns the ones installed."""
    root = root or assets_dir()
    todo = missing_packages(root)
    if not todo:
        return []
    npm = shutil.which("npm")
    if npm is None:
        raise OfflineAssetsMissing(
            "npm (Node.js) is needed once to fetch the Data Docs assets from the npm registry"
        )
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=root) as scratch:
        for package in todo:
            spec = f"{package.name}@{package.version}"
            completed = subprocess.run(
                [npm, "pack", spec, "--pack-destination", scratch, "--silent"],
                capture_output=True,
                text=True,
                check=False,
                timeout=300,
            )
            if completed.returncode != 0:
                raise OfflineAssetsMissing(f"npm pack {spec} failed: {completed.stderr.strip()}")
            tarball = Path(scratch) / completed.stdout.strip().splitlines()[-1]
            _check_integrity(tarball, package)
            target = root / package.folder
            shutil.rmtree(target, ignore_errors=True)
            with tarfile.open(tarball) as archive:
                archive.extractall(scratch, filter="data")
            shutil.move(Path(scratch) / "package", target)
            (target / ".complete").write_text(package.integrity + "\n")
    return todo


def _check_integrity(tarball: Path, package: NpmPackage) -> None:
    algorithm, _, expected = package.integrity.partition("-")
    digest = base64.b64encode(hashlib.new(algorithm, tarball.read_bytes()).digest()).decode()
    if digest != expected:
        raise OfflineAssetsMissing(
            f"{package.name}@{package.version}: tarball {algorithm} {digest} is not the pinned "
            f"{expected}"
        )


def localize_pages(site_dir: Path, pages: Iterable[Path], root: Path | None = None) -> int:
    """Serve the CDN files of ``pages`` (HTML files under ``site_dir``) from the site folder.

    Copies the assets into ``<site_dir>/static/vendor`` (once) and rewrites the pages in place;
    returns how many pages changed. Raises ``OfflineAssetsMissing`` when the packages are not
    installed.
    """
    root = root or assets_dir()
    missing = missing_packages(root)
    if missing:
        names = ", ".join(f"{p.name}@{p.version}" for p in missing)
        raise OfflineAssetsMissing(f"not in {root}: {names} (make install fetches them)")
    _copy_assets(site_dir, root)
    changed = 0
    for page in pages:
        html = page.read_text(encoding="utf-8")
        localized = _localized(html, os.path.relpath(site_dir, page.parent).replace(os.sep, "/"))
        if localized != html:
            page.write_text(localized, encoding="utf-8")
            changed += 1
    return changed


def _localized(html: str, prefix: str) -> str:
    """``html`` with each CDN address replaced by ``<prefix>/static/...`` (prefix: the site)."""
    html = _CDN_ADDRESS.sub(lambda match: f"{prefix}/{_local_path(match.group(0))}", html)
    return _GX_IMAGES.sub(lambda match: f"{prefix}/static/images/{match.group(1)}", html)


def _local_path(url: str) -> str:
    package, file = CDN_FILES[url]
    return f"{VENDOR_DIR.as_posix()}/{package.folder}/{file}"


def _copy_assets(site_dir: Path, root: Path) -> None:
    wanted: set[tuple[NpmPackage, str]] = set(CDN_FILES.values())
    for package, folders in _COMPANION_FOLDERS.items():
        source = root / package.folder
        for folder in folders:
            wanted |= {
                (package, path.relative_to(source).as_posix())
                for path in (source / folder).rglob("*")
                if path.is_file()
            }
    for package, file in wanted:
        target = site_dir / VENDOR_DIR / package.folder / file
        if not target.is_file():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(root / package.folder / file, target)


def main() -> int:
    try:
        installed = install_assets()
    except OfflineAssetsMissing as error:
        # The pipeline runs without them; only the Data Docs pages then need a network.
        print(f"WARNING: Data Docs assets not installed: {error}", file=sys.stderr)
        return 0
    if installed:
        names = ", ".join(f"{p.name}@{p.version}" for p in installed)
        print(f"Data Docs assets installed in {assets_dir()}: {names}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
