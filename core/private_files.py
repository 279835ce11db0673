"""Files that may carry personal data (run records, quality reports) are the owner's only.

Examples in them are masked (``core.masking``), but a report still describes customers' data, and
the data folder is often on a shared host: files are created ``0o600`` and folders ``0o700``,
whatever the process umask.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

FILE_MODE = 0o600
DIR_MODE = 0o700


def private_dir(path: Path) -> Path:
    """Create ``path`` and any missing parent as owner-only folders (existing ones unchanged)."""
    path = Path(path)
    missing = []
    while not path.exists():
        missing.append(path)
        path = path.parent
    for folder in reversed(missing):
        with contextlib.suppress(FileExistsError):
            folder.mkdir(mode=DIR_MODE)
            os.chmod(folder, DIR_MODE)  # mkdir's mode is filtered by the umask
    return Path(missing[0]) if missing else path


def write_private_text(path: Path, text: str) -> Path:
    """Write ``text`` atomically (a reader sees the old or the new file) as an owner-only file."""
    path = Path(path)
    private_dir(path.parent)
    handle, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:  # mkstemp: 0o600
            stream.write(text)
        Path(tmp_name).replace(path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return path
