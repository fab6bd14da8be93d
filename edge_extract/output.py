"""Result writers: whole files via temp file + os.replace, JSONL via append + fsync."""

from __future__ import annotations

import json
import os
from pathlib import Path

from .files import atomic_write_text
from .pipeline import Result


def result_json(result: Result) -> str:
    """A result as pretty JSON, summary keys in the published order."""
    return result.model_dump_json(indent=2)


def output_path(out_dir: Path, report_id: str) -> Path:
    """OUT/<input path relative to its root>.json; `#n` of a dataset record becomes `.n`."""
    safe = report_id.replace("#", ".")
    return out_dir / f"{safe}.json"


def write_result(out_dir: Path, result: Result) -> Path:
    path = output_path(out_dir, result.id)
    atomic_write_text(path, result_json(result) + "\n")
    return path


def append_jsonl(path: Path, obj: dict) -> None:
    """Append one line and fsync: a crash loses at most the line being written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(obj, ensure_ascii=False) + "\n")
        handle.flush()
        os.fsync(handle.fileno())
