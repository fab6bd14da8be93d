"""The review folder of a batch: index.html for the whole batch, records/<id>.html per record.

Record pages mirror the batch's per-report files (OUT/a/b.txt.json -> review/records/a/b.txt.html).
Every page is written atomically; pages of records no longer in the batch are removed, so the
folder never shows a record the index does not list.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from pydantic import ValidationError

from ..batch import RESULTS_JSONL
from ..errors import InputError, OutputError
from ..files import atomic_write_text
from ..output import output_path
from ..pipeline import Result
from ..reading import printable
from .page import PageData, render_page
from .texts import ReportText, texts_from_inputs, texts_from_sources
from .view import RecordView, record_view

REVIEW_DIR = "review"
"""Default folder of the pages, inside the batch's output folder."""

INDEX = "index.html"
CORRECTIONS = "corrections.jsonl"
"""What the index's Save downloads; a record page's Save adds the record's name."""


@dataclass(frozen=True)
class ReviewSite:
    """What `write_review` wrote.

    Attributes:
        index: the index page.
        records: pages written, one per record of the batch.
        without_text: (id, why) of each ok record whose report text was not found or has changed.
    """

    index: Path
    records: int
    without_text: list[tuple[str, str]]


def read_results(out: Path) -> list[Result]:
    """The batch's results, in its order, from OUT/results.jsonl."""
    path = out / RESULTS_JSONL
    if not path.is_file():
        raise InputError(
            f"{printable(str(out))}: no {RESULTS_JSONL}; review takes the --out folder of `edge-extract extract`",
            reason="missing",
        )
    results = []
    # Read only: the batch writes this table whole and atomically, so it has no torn line to repair.
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        try:
            results.append(Result.model_validate_json(line))
        except ValidationError:
            raise InputError(f"{printable(str(path))}: line {number} is not a record", reason="not_a_result") from None
    return results


def _download_name(record_id: str) -> str:
    """corrections-<id>.jsonl, the id cut to characters every file system takes."""
    return f"corrections-{re.sub(r'[^A-Za-z0-9._-]+', '_', record_id).strip('._')[:80]}.jsonl"


def write_review(
    out: Path, *, to: Path | None = None, inputs: Sequence[str] = (), encoding: str | None = None
) -> ReviewSite:
    """Write the review pages of the batch in OUT into `to` (default OUT/review).

    Report texts are read from `inputs` (files and folders, as `extract` took them) when given,
    else from each record's source; a text is used only when its sha256 is the record's.
    """
    results = read_results(out)
    site = to if to is not None else out / REVIEW_DIR
    texts = (
        texts_from_inputs(results, inputs, encoding=encoding)
        if inputs
        else texts_from_sources(results, encoding=encoding)
    )
    pages = [output_path(site / "records", result.id).with_suffix(".html") for result in results]
    views = [
        record_view(result, text, page=quote(page.relative_to(site).as_posix()))
        for result, text, page in zip(results, texts, pages)
    ]
    try:
        for view, page in zip(views, pages):
            back = "../" * (len(page.relative_to(site).parts) - 1) + INDEX
            data = PageData(mode="record", title=view.id, index=back, download=_download_name(view.id), records=[view])
            atomic_write_text(page, render_page(data))
        title = f"edge-extract review: {printable(str(out.resolve().name))}"
        index = PageData(mode="index", title=title, index=None, download=CORRECTIONS, records=views)
        atomic_write_text(site / INDEX, render_page(index))
        _remove_stale(site / "records", keep=set(pages))
    except OSError as error:
        raise OutputError(f"cannot write the review pages in {printable(str(site))}: {error.strerror}") from None
    return ReviewSite(index=site / INDEX, records=len(pages), without_text=_without_text(views, texts))


def _without_text(views: list[RecordView], texts: list[ReportText]) -> list[tuple[str, str]]:
    return [
        (view.id, text.problem or "") for view, text in zip(views, texts) if view.status == "ok" and view.text is None
    ]


def _remove_stale(folder: Path, *, keep: set[Path]) -> None:
    for page in folder.rglob("*.html"):
        if page not in keep:
            page.unlink()
