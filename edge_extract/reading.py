"""Path or stdin -> Report(id, text): formats, encoding, size and binary checks; folder listing.

Every problem is an InputError with a one-line message and a reason word, so a batch can record it and go on.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import stat
import sys
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import ValidationError

from . import documents
from .errors import InputError
from .files import STATE_DIR
from .schema import Example, Record

MAX_BYTES = 5 * 1024 * 1024
"""A text report larger than this is refused: no clinical report is 5 MB of text."""

MAX_CONTAINER_BYTES = 200 * 1024 * 1024
"""Datasets, PDFs and Word files may be larger (many records, images); their text still meets MAX_BYTES."""

TEXT_SUFFIXES = {".txt", ".md", ".text"}
DATASET_SUFFIXES = {".jsonl", ".json"}
MARKUP_SUFFIXES = {".html", ".htm", ".rtf"}
BINARY_SUFFIXES = {".docx", ".pdf"}
SUPPORTED_SUFFIXES = TEXT_SUFFIXES | DATASET_SUFFIXES | MARKUP_SUFFIXES | BINARY_SUFFIXES


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


SNIFF_LENGTH = 8192
"""How much of a file the binary checks look at: bytes for NUL, then characters for control codes."""


def printable(name: str) -> str:
    """A file name that is safe to write as UTF-8: bytes that were not UTF-8 on disk become U+FFFD."""
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def decode_text(data: bytes, *, name: str, encoding: str | None = None) -> tuple[str, str]:
    """Bytes -> (text, encoding). UTF-8 (with or without BOM) by default; `encoding="auto"` asks
    charset-normalizer; any other value is used as given. Refuses binary and empty input."""
    if not data.strip():
        raise InputError(f"{name}: empty file", reason="empty")
    if b"\x00" in data[:SNIFF_LENGTH] and not data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise InputError(f"{name}: binary file, not text", reason="binary")
    if encoding == "auto":
        charset_normalizer = documents.require("charset_normalizer", name=name, what="--encoding auto")
        match = charset_normalizer.from_bytes(data).best()
        if match is None:
            raise InputError(f"{name}: cannot tell the text encoding", reason="encoding")
        text, used = str(match), match.encoding
    else:
        used = encoding or ("utf-8-sig" if data.startswith(b"\xef\xbb\xbf") else "utf-8")
        if encoding is None and data.startswith((b"\xff\xfe", b"\xfe\xff")):
            used = "utf-16"
        try:
            text = data.decode(used)
        except UnicodeDecodeError as error:
            raise InputError(
                f"{name}: not {used} text (byte {error.start}); pass --encoding cp1252 or --encoding auto",
                reason="encoding",
            ) from None
        except LookupError:
            raise InputError(f"{name}: unknown encoding {used!r}", reason="encoding") from None
    if not text.strip():
        raise InputError(f"{name}: empty file", reason="empty")
    controls = sum(1 for ch in text[:SNIFF_LENGTH] if ord(ch) < 32 and ch not in "\n\r\t\f")
    if controls > 0.01 * min(len(text), SNIFF_LENGTH):
        raise InputError(f"{name}: binary file, not text", reason="binary")
    return text, used


def _too_large(name: str, size: int, limit: int) -> InputError:
    return InputError(
        f"{name}: {size / 1e6:.1f} MB is too large for one report (limit {limit // 2**20} MiB)", reason="too_large"
    )


def _read_bytes(path: Path, *, limit: int) -> bytes:
    name = printable(str(path))
    try:
        info = path.stat()
        if stat.S_ISDIR(info.st_mode):
            raise InputError(f"{name}: is a folder", reason="not_a_file")
        if not stat.S_ISREG(info.st_mode):  # a FIFO or device would block or never end
            raise InputError(f"{name}: not a regular file", reason="not_a_file")
        if info.st_size > limit:
            raise _too_large(name, info.st_size, limit)
        return path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"{name}: no such file (moved or deleted?)", reason="missing") from None
    except IsADirectoryError:
        raise InputError(f"{name}: is a folder", reason="not_a_file") from None
    except PermissionError:
        raise InputError(f"{name}: permission denied", reason="permission") from None
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise InputError(f"{name}: symbolic link loop", reason="symlink_loop") from None
        raise InputError(f"{name}: cannot read: {error.strerror}") from None


def _dataset_reports(text: str, *, source: str, rel: str, whole: bool) -> Iterator[Report]:
    """Reports of an ELMTEX-layout file: JSONL (one object a line) or, when `whole`, one JSON
    document holding a list of objects or a single object."""
    if whole or text.lstrip().startswith("["):
        try:
            rows = json.loads(text)
        except json.JSONDecodeError as error:
            raise InputError(
                f"{source}: not valid JSON: {error.msg} (line {error.lineno})", reason="not_elmtex"
            ) from None
        if isinstance(rows, dict):
            rows = [rows]
        if not isinstance(rows, list):
            raise InputError(f"{source}: a JSON dataset must be a list of records", reason="not_elmtex")
        lines = [(n, row) for n, row in enumerate(rows, 1)]
    else:
        lines = []
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                lines.append((n, json.loads(line)))
            except json.JSONDecodeError as error:
                raise InputError(f"{source}: line {n} is not JSON: {error.msg}", reason="not_elmtex") from None
    for n, row in lines:
        try:
            example = Example.model_validate(row)
        except ValidationError as error:
            raise InputError(
                f"{source}: record {n} is not in the ELMTEX layout: {error.errors()[0]['msg']}", reason="not_elmtex"
            ) from None
        if not example.report.strip():
            raise InputError(f"{source}: record {n} has an empty report", reason="empty")
        size = len(example.report.encode("utf-8"))
        if size > MAX_BYTES:
            raise _too_large(f"{source}: record {n}", size, MAX_BYTES)
        yield Report(
            id=f"{rel}#{example.id or n}",
            text=example.report,
            source=source,
            sha256=text_sha256(example.report),
            gold=example.summary,
        )


def _document_text(path: Path, *, name: str, encoding: str | None) -> tuple[str, str]:
    """(text, encoding) of a non-dataset file of any supported format."""
    suffix = path.suffix.lower()
    if suffix in BINARY_SUFFIXES:
        data = _read_bytes(path, limit=MAX_CONTAINER_BYTES)
        if not data.strip():
            raise InputError(f"{name}: empty file", reason="empty")
        convert = documents.pdf_text if suffix == ".pdf" else documents.docx_text
        text, used = convert(data, name=name), "utf-8"
    elif suffix in MARKUP_SUFFIXES:
        # RTF is 7-bit with escapes; stray 8-bit bytes are in the ANSI code page, cp1252 in practice.
        default = "cp1252" if suffix == ".rtf" else None
        markup, used = decode_text(_read_bytes(path, limit=MAX_BYTES), name=name, encoding=encoding or default)
        text = documents.rtf_text(markup, name=name) if suffix == ".rtf" else documents.html_text(markup, name=name)
    else:
        return decode_text(_read_bytes(path, limit=MAX_BYTES), name=name, encoding=encoding)
    if not text.strip():
        raise InputError(f"{name}: the document holds no text", reason="empty")
    size = len(text.encode("utf-8"))
    if size > MAX_BYTES:
        raise _too_large(name, size, MAX_BYTES)
    return text, used


def read_path(
    path: Path, *, root: Path | None = None, encoding: str | None = None, report_id: str | None = None
) -> list[Report]:
    """The reports in one file: one for a document, one per record for an ELMTEX dataset file.

    The id is `report_id` when given, else the path relative to `root` (or the path as given).
    """
    rel = printable(report_id or (str(path.relative_to(root)) if root else str(path)))
    name, source = printable(str(path)), printable(str(path))
    if path.suffix.lower() in DATASET_SUFFIXES:
        text, _ = decode_text(_read_bytes(path, limit=MAX_CONTAINER_BYTES), name=name, encoding=encoding)
        return list(_dataset_reports(text, source=source, rel=rel, whole=path.suffix.lower() == ".json"))
    text, used = _document_text(path, name=name, encoding=encoding)
    return [Report(id=rel, text=text, source=source, sha256=text_sha256(text), encoding=used)]


def read_stdin(*, encoding: str | None = None) -> Report:
    data = sys.stdin.buffer.read(MAX_BYTES + 1)
    if len(data) > MAX_BYTES:
        raise InputError(f"stdin: more than {MAX_BYTES // 2**20} MiB is too large for one report", reason="too_large")
    text, used = decode_text(data, name="stdin", encoding=encoding)
    return Report(id="stdin", text=text, source="-", sha256=text_sha256(text), encoding=used)


@dataclass
class Listing:
    """What a folder walk found.

    Attributes:
        files: supported files, in a stable order (sorted by name, folder by folder).
        problems: entries that cannot be read (symlink loops, broken links, unreadable folders), with why.
        unsupported: regular files of other types, skipped.
    """

    files: list[Path] = field(default_factory=list)
    problems: list[tuple[Path, InputError]] = field(default_factory=list)
    unsupported: list[Path] = field(default_factory=list)


def list_folder(folder: Path, *, skip: Collection[Path] = ()) -> Listing:
    """Supported files below a folder, recursively; hidden entries, the `skip` folders and earlier
    output folders of edge-extract (they hold its state folder) are left out.

    Folder links are followed, but a link back to a folder being walked is reported as a loop
    instead of walked forever.
    """
    listing = Listing()
    skipped = {os.path.realpath(path) for path in skip}

    def walk(directory: Path, ancestors: frozenset[tuple[int, int]]) -> None:
        info = directory.stat()
        key = (info.st_dev, info.st_ino)
        if key in ancestors:
            listing.problems.append(
                (directory, InputError(f"{printable(str(directory))}: symbolic link loop", reason="symlink_loop"))
            )
            return
        try:
            entries = sorted(os.scandir(directory), key=lambda entry: entry.name)
        except OSError as error:
            reason = "permission" if isinstance(error, PermissionError) else "unreadable"
            message = f"{printable(str(directory))}: cannot list folder: {error.strerror}"
            listing.problems.append((directory, InputError(message, reason=reason)))
            return
        for entry in entries:
            path = Path(entry.path)
            if entry.name.startswith(".") or os.path.realpath(path) in skipped:
                continue
            try:
                is_dir, is_file = entry.is_dir(), entry.is_file()
            except OSError:  # a link to itself: reading it below names the loop
                is_dir = is_file = False
            if is_dir:
                if not (path / STATE_DIR).is_dir():  # records of an earlier run are not reports
                    walk(path, ancestors | {key})
            elif path.suffix.lower() not in SUPPORTED_SUFFIXES:
                if is_file:
                    listing.unsupported.append(path)
            elif is_file:
                listing.files.append(path)
            else:  # a dangling or looping link, a FIFO, a socket: reading it says exactly what is wrong
                try:
                    _read_bytes(path, limit=MAX_BYTES)
                except InputError as error:
                    listing.problems.append((path, error))

    walk(folder, frozenset())
    return listing
