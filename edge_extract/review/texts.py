"""The report text each result was made from.

A batch does not keep report text (records hold only what was extracted), so the review reads the
reports again: each record's `source` as it was given at extraction, or the inputs the reviewer
names. A text is used only when its sha256 is the record's `provenance.input_sha256`: evidence
offsets index that exact text (for DOCX/PDF/HTML/RTF the text extracted from the file, so the
file is read with the same readers), and spans laid on another text would point at wrong words.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..batch import collect
from ..errors import InputError
from ..pipeline import Result
from ..reading import Report, read_path


@dataclass(frozen=True)
class ReportText:
    """A record's report text, or why there is none.

    Attributes:
        text: the text whose sha256 is the record's input_sha256; None when not found.
        problem: one line saying why `text` is None (no report content in it).
    """

    text: str | None = None
    problem: str | None = None


def _by_hash(reports: Sequence[Report]) -> dict[str, str]:
    return {report.sha256: report.text for report in reports}


def texts_from_inputs(results: Sequence[Result], inputs: Sequence[str], *, encoding: str | None) -> list[ReportText]:
    """Texts among the reports of `inputs` (files, folders, as `extract` takes them), by sha256."""
    texts = _by_hash(collect(inputs, encoding=encoding).reports)
    missing = ReportText(problem="its report is not among the inputs given, or has changed since it was extracted")
    return [
        ReportText(text=texts[result.provenance.input_sha256]) if result.provenance.input_sha256 in texts else missing
        for result in results
    ]


def texts_from_sources(results: Sequence[Result], *, encoding: str | None) -> list[ReportText]:
    """Texts read from each record's `source` (relative to the current folder, as at extraction)."""
    read: dict[str, dict[str, str] | InputError] = {}
    texts = []
    for result in results:
        source = result.source
        if source == "-":
            texts.append(ReportText(problem="read from standard input: pass its report file to `review` as INPUT"))
            continue
        if source not in read:
            try:
                read[source] = _by_hash(read_path(Path(source), encoding=encoding))
            except InputError as error:
                read[source] = error
        found = read[source]
        if isinstance(found, InputError):
            texts.append(ReportText(problem=f"{found}; pass the reports to `review` as INPUT"))
        elif result.provenance.input_sha256 in found:
            texts.append(ReportText(text=found[result.provenance.input_sha256]))
        else:
            texts.append(
                ReportText(
                    problem=f"{source} has changed since it was extracted (its text's sha256 is not the record's); "
                    "extract it again"
                )
            )
    return texts
