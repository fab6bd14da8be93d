"""Files edge-extract writes: atomic replacement through a temp file, the temp files' names and
their sweep, the sha256 of a file, and what marks a folder as ours."""

from __future__ import annotations

import hashlib
import os
import re
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

STATE_DIR = ".edge-extract"
"""Inside a folder edge-extract writes records to: its journal and lock. Its presence marks the folder
as an output folder: input walks skip it, and a batch may write into it without --force."""

TEMP_PREFIX = ".edge-extract-"
TEMP_SUFFIX = ".tmp"
TEMP_FILE = re.compile(rf"^{re.escape(TEMP_PREFIX)}[a-z0-9_]{{8}}{re.escape(TEMP_SUFFIX)}$")
"""Our temp files, `.edge-extract-<8 random characters>.tmp`: a fixed, short name whatever the
target's, so a target name of up to 255 bytes still fits, and cleanup never touches a user's `.x.tmp`."""


def temp_path(target: Path) -> Path:
    """A fresh temp file name beside `target` (not created): `.edge-extract-<8 random hex digits>.tmp`."""
    return target.with_name(f"{TEMP_PREFIX}{secrets.token_hex(4)}{TEMP_SUFFIX}")


@contextmanager
def replacing(path: Path) -> Iterator[Path]:
    """A temp file name beside `path` to write to; when the block ends without an error the file
    replaces `path` in one rename, else it is removed. Readers see the old file or the new one,
    never half of one, and a failed step never leaves a file that looks finished."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(path)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


_NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)


def atomic_write_text(path: Path, text: str, *, private: bool = True) -> None:
    """Write a whole file atomically, fsynced before the rename so that it survives a power cut.
    It is readable by the user only (records hold what was extracted from reports), unless not
    `private`: then as the umask says, for files that hold no report data and that other accounts
    read (a model's manifest beside the GGUF they load)."""
    mode = 0o600 if private else 0o666
    with replacing(path) as tmp, os.fdopen(os.open(tmp, _NEW_FILE, mode), "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())


def remove_temp_files(root: Path) -> None:
    """Delete the temp files a kill left anywhere under `root`; other files, a user's `.x.tmp` too, stay."""
    for path in root.rglob(f"{TEMP_PREFIX}*{TEMP_SUFFIX}"):
        if TEMP_FILE.match(path.name) and path.is_file():
            path.unlink(missing_ok=True)


def sha256_file(path: Path, *, on_bytes: Callable[[int], None] | None = None) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks; `on_bytes` is told each block's size."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
            if on_bytes:
                on_bytes(len(block))
    return digest.hexdigest()
