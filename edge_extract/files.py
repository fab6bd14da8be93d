"""Atomic whole-file writes, shared by every writer (records, manifests, tables), and what marks
a file or folder as ours."""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

STATE_DIR = ".edge-extract"
"""Inside a folder edge-extract writes records to: its journal and lock. Its presence marks the folder
as an output folder: input walks skip it, and a batch may write into it without --force."""

TEMP_PREFIX = ".edge-extract-"
TEMP_SUFFIX = ".tmp"
TEMP_FILE = re.compile(r"^\.edge-extract-[a-z0-9_]{8}\.tmp$")
"""Our temp files, `.edge-extract-<8 random characters>.tmp`: a fixed, short name whatever the
target's, so a target name of up to 255 bytes still fits, and cleanup never touches a user's `.x.tmp`."""


def atomic_write_text(path: Path, text: str) -> None:
    """Write a whole file through a temp file + fsync + rename, so readers see the old file or
    the new one, never half of one, even after a power cut."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=TEMP_PREFIX, suffix=TEMP_SUFFIX)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
