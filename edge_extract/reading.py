"""Path or stdin -> Report(id, text): encoding, size and binary checks; folder listing.

Every problem is an InputError with a one-line reason, so a batch can record it and go on.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from .errors import InputError
from .schema import Example, Record

MAX_BYTES = 5 * 1024 * 1024
"""A text report larger than this is refused: no clinical report is 5 MB of text."""

TEXT_SUFFIXES = {".txt", ".md", ".text"}
DATASET_SUFFIXES = {".jsonl", ".json"}


@dataclass(frozen=True)
class Report:
    """One report to extract.

    Attributes:
        id: stable name: the file path relative to the input root, plus `#n` inside a dataset file.
        text: the report text.
        source: where it came from (a path, or "-" for stdin).
        sha256: hash of the report text, the key for resuming and provenance.
        gold: the reference summary when the input was an annotated ELMTEX file.
        encoding: the encoding the text was decoded from.
    """

    id: str
    text: str
    source: str
    sha256: str
    gold: Record | None = None
    encoding: str = "utf-8"


def text_sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def decode_text(data: bytes, *, name: str, encoding: str | None = None) -> tuple[str, str]:
    """Bytes -> (text, encoding). UTF-8 (with or without BOM) by default; `encoding="auto"` asks
    charset-normalizer; any other value is used as given. Refuses binary and empty input."""
    if not data.strip():
        raise InputError(f"{name}: empty file")
    if b"\x00" in data[:8192] and not data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise InputError(f"{name}: binary file, not text")
    if encoding == "auto":
        from charset_normalizer import from_bytes

        match = from_bytes(data).best()
        if match is None:
            raise InputError(f"{name}: cannot tell the text encoding")
        text, used = str(match), match.encoding
    else:
        used = encoding or ("utf-8-sig" if data.startswith(b"\xef\xbb\xbf") else "utf-8")
        if encoding is None and data.startswith((b"\xff\xfe", b"\xfe\xff")):
            used = "utf-16"
        try:
            text = data.decode(used)
        except UnicodeDecodeError as error:
            raise InputError(
                f"{name}: not {used} text (byte {error.start}); pass --encoding cp1252 or --encoding auto"
            ) from None
        except LookupError:
            raise InputError(f"{name}: unknown encoding {used!r}") from None
    if not text.strip():
        raise InputError(f"{name}: empty file")
    controls = sum(1 for ch in text[:8192] if ord(ch) < 32 and ch not in "\n\r\t\f")
    if controls > 0.01 * min(len(text), 8192):
        raise InputError(f"{name}: binary file, not text")
    return text, used


def _read_bytes(path: Path) -> bytes:
    try:
        size = path.stat().st_size
        if size > MAX_BYTES:
            raise InputError(
                f"{path}: {size / 1e6:.1f} MB is too large for one report (limit {MAX_BYTES // 2**20} MiB)"
            )
        return path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{path}: is a folder") from None
    except PermissionError:
        raise InputError(f"{path}: permission denied") from None
    except OSError as error:
        raise InputError(f"{path}: cannot read: {error.strerror}") from None


def _dataset_reports(text: str, *, source: str, rel: str) -> Iterator[Report]:
    """Reports of an ELMTEX-layout file: JSONL (one object a line) or JSON (a list of objects)."""
    stripped = text.lstrip()
    if stripped.startswith("["):
        try:
            rows = json.loads(text)
        except json.JSONDecodeError as error:
            raise InputError(f"{source}: not valid JSON: {error.msg} (line {error.lineno})") from None
        lines = [(n, row) for n, row in enumerate(rows, 1)]
    else:
        lines = []
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                lines.append((n, json.loads(line)))
            except json.JSONDecodeError as error:
                raise InputError(f"{source}: line {n} is not JSON: {error.msg}") from None
    for n, row in lines:
        try:
            example = Example.model_validate(row)
        except ValidationError as error:
            raise InputError(f"{source}: record {n} is not in the ELMTEX layout: {error.errors()[0]['msg']}") from None
        if not example.report.strip():
            raise InputError(f"{source}: record {n} has an empty report")
        yield Report(
            id=f"{rel}#{example.id or n}",
            text=example.report,
            source=source,
            sha256=text_sha256(example.report),
            gold=example.summary,
        )


def read_path(path: Path, *, root: Path | None = None, encoding: str | None = None) -> list[Report]:
    """The reports in one file: one for a text file, one per record for an ELMTEX dataset file."""
    rel = str(path.relative_to(root)) if root else str(path)
    text, used = decode_text(_read_bytes(path), name=str(path), encoding=encoding)
    if path.suffix.lower() in DATASET_SUFFIXES:
        return list(_dataset_reports(text, source=str(path), rel=rel))
    return [Report(id=rel, text=text, source=str(path), sha256=text_sha256(text), encoding=used)]


def read_stdin(*, encoding: str | None = None) -> Report:
    data = sys.stdin.buffer.read(MAX_BYTES + 1)
    if len(data) > MAX_BYTES:
        raise InputError(f"stdin: more than {MAX_BYTES // 2**20} MiB is too large for one report")
    text, used = decode_text(data, name="stdin", encoding=encoding)
    return Report(id="stdin", text=text, source="-", sha256=text_sha256(text), encoding=used)


def list_folder(folder: Path) -> list[Path]:
    """Supported files below a folder, recursively, hidden files and folders skipped, sorted."""
    found = []
    for path in sorted(folder.rglob("*")):
        parts = path.relative_to(folder).parts
        if any(part.startswith(".") for part in parts):
            continue
        if path.is_file() and path.suffix.lower() in TEXT_SUFFIXES | DATASET_SUFFIXES:
            found.append(path)
    return found
