"""Result writers: whole files via temp file + os.replace, JSONL via append + fsync.

Per report: OUT/<id>.json. Per batch: results.jsonl, results.csv (the 15 fields as columns) and
errors.jsonl, each rewritten whole, so a reader never sees half a table.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import quote

from pydantic import BaseModel, ValidationError

from .confidence import CHECK
from .evidence import UNGROUNDED
from .files import atomic_write_text
from .pipeline import Result
from .schema import FIELDS

CSV_COLUMNS: tuple[str, ...] = ("id", "status", *FIELDS, "check_fields", "flags", "error", "source", "model", "seconds")
"""results.csv: one row per report, ready for a spreadsheet. `check_fields`: the fields to check
by hand, low-confidence (`check:`) or ungrounded, in the published order."""

_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
"""Spreadsheet programs run a cell starting with one of these as a formula (CSV injection)."""


class ErrorLine(BaseModel):
    """One line of errors.jsonl: an input that gave no record, and why (no report text)."""

    id: str
    source: str
    kind: str
    """A stable word: empty, binary, encoding, too_large, missing, permission, ..., generation, invalid_output."""
    message: str


def result_json(result: Result) -> str:
    """A result as pretty JSON, summary keys in the published order."""
    return result.model_dump_json(indent=2)


def output_path(out_dir: Path, report_id: str) -> Path:
    """OUT/<id>.json: the input path relative to its root, plus `#<record>` for a dataset record.

    Distinct ids give distinct files: the path part holds no `#` (the id is cut at its first), and
    the record part, which comes from inside a dataset file, is percent-encoded (`%` and `/` too),
    so it stays one file name inside OUT and two records never share one.
    """
    path, hash_sign, record = report_id.partition("#")
    return out_dir / f"{path}{hash_sign}{quote(record, safe=' #')}.json"


def write_result(out_dir: Path, result: Result) -> Path:
    path = output_path(out_dir, result.id)
    atomic_write_text(path, result_json(result) + "\n")
    return path


def read_result(path: Path) -> Result | None:
    """A per-report file written earlier, or None when it is missing or not a valid result."""
    try:
        return Result.model_validate_json(path.read_bytes())
    except (OSError, ValidationError):
        return None


def append_jsonl(path: Path, obj: dict) -> None:
    """Append one line and fsync: a crash loses at most the line being written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(obj, ensure_ascii=False) + "\n")
        handle.flush()
        os.fsync(handle.fileno())


def repair_jsonl(path: Path) -> list[dict]:
    """Cut the torn tail a kill may have left off an append-only JSONL file; return its rows.

    A last line without its newline was being written when the process died: the file is
    truncated after the last complete line, so the next append starts clean.
    """
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    complete = data.rfind(b"\n") + 1
    if complete < len(data):
        os.truncate(path, complete)
    rows = []
    for line in data[:complete].decode("utf-8", "replace").splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue  # only a torn write makes one; its report is simply not done
        if isinstance(row, dict):
            rows.append(row)
    return rows


def write_jsonl(path: Path, rows: Iterable[dict | BaseModel]) -> None:
    """A whole JSONL file, atomically."""
    lines = [
        row.model_dump_json() if isinstance(row, BaseModel) else json.dumps(row, ensure_ascii=False) for row in rows
    ]
    atomic_write_text(path, "".join(line + "\n" for line in lines))


def csv_cell(value: str) -> str:
    """A cell a spreadsheet shows as text: one that would start a formula gets a leading `'`
    (the OWASP advice); results.jsonl and the per-report files keep the exact value."""
    return f"'{value}" if value.startswith(_FORMULA_STARTS) else value


def check_fields(flags: list[str]) -> list[str]:
    """The fields flagged low-confidence or ungrounded, once each, in the published order."""
    flagged = set(flags)
    return [name for name in FIELDS if CHECK + name in flagged or UNGROUNDED + name in flagged]


def csv_row(result: Result) -> dict[str, str]:
    values = result.summary.values() if result.summary else dict.fromkeys(FIELDS, "")
    row = {
        "id": result.id,
        "status": result.status,
        **values,
        "check_fields": "; ".join(check_fields(result.flags)),
        "flags": "; ".join(result.flags),
        "error": result.error.message if result.error else "",
        "source": result.source,
        "model": result.provenance.model,
        "seconds": f"{result.provenance.seconds:.2f}",
    }
    return {column: csv_cell(value) for column, value in row.items()}


def write_csv(path: Path, results: Iterable[Result]) -> None:
    """results.csv, atomically; UTF-8 with a byte-order mark so spreadsheet programs read accents right."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(csv_row(result) for result in results)
    atomic_write_text(path, "\ufeff" + buffer.getvalue())
