"""Evidence spans: where in the report each extracted item comes from.

Every item of every text field is looked up in the report text: an exact match (ignoring case and
runs of whitespace, which the model may normalise), else the best fuzzy match (rapidfuzz's
partial_ratio_alignment) at or above `FUZZY_MIN`, holding a number of the item if it has any,
else none. Offsets are character offsets into
the report text the record was made from (`report.text`, whose sha256 is the record's
`provenance.input_sha256`; for DOCX/PDF/HTML input the text extracted from the file, not the file).
A field with an item that is found nowhere gets the flag `ungrounded:FIELD`: a value likely
invented or paraphrased too far.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict
from rapidfuzz import fuzz

from .schema import FIELDS, Record, items

FUZZY_MIN = 65.0
"""partial_ratio score (0-100) at which an item counts as found: chosen on val
(benchmarks/evidence.py, docs/evaluation.md "Evidence spans")."""

SKIPPED = ("gender",)
"""Fields not aligned: gender is a choice among Male/Female/N/A, not a copy of report text. Age is
aligned: the model copies it ("64 years" from "64-year-old" is a fuzzy match)."""

NUMBER = re.compile(r"\d+(?:[.,]\d+)?")
"""A number in an item (an age, a dose, a lab value): a fuzzy span of an item with numbers must
hold one of them, or "58 years" would be found in "smoked for 30 years". All of them is too strict
(items join facts from two sentences; measured on val)."""

UNGROUNDED = "ungrounded:"
"""Flag prefix, followed by the field's name."""


class Evidence(BaseModel):
    """Where one item was found: [start, end) into the report text, or nothing when not found."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    item: str
    start: int | None = None
    end: int | None = None
    match: Literal["exact", "fuzzy", "none"]
    score: float | None = None
    """The fuzzy score (0-100); None for exact matches and items not found."""


class NormalisedText:
    """Text lowered and with whitespace runs as one space, plus where each of its characters was.

    Case is folded a character at a time (final sigma folds to sigma), falling back to the lower
    case and then to the character itself where folding makes two characters ("ß" -> "ss", the
    dotted capital I), so each normalised character maps back to exactly one original.
    """

    def __init__(self, text: str) -> None:
        chars: list[str] = []
        origin: list[int] = []
        for index, char in enumerate(text):
            if char.isspace():
                if chars and chars[-1] == " ":
                    continue
                char = " "
            else:
                char = next((folded for folded in (char.casefold(), char.lower()) if len(folded) == 1), char)
            chars.append(char)
            origin.append(index)
        self.text = "".join(chars)
        self.origin = origin

    def span(self, start: int, end: int) -> tuple[int, int]:
        """Original offsets of the normalised slice [start, end) (end > start)."""
        return self.origin[start], self.origin[end - 1] + 1


def normalise(text: str) -> str:
    """The comparison form of a text: what `NormalisedText` makes of it, stripped."""
    return NormalisedText(text).text.strip()


SPAN_EDGES = " .,;:"
"""Characters trimmed off both ends of a fuzzy span: the alignment may start or end between words."""


def _inside(text: str, at: int) -> bool:
    """Whether offset `at` falls between two characters of one word."""
    return 0 < at < len(text) and text[at - 1].isalnum() and text[at].isalnum()


def _trimmed(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start] in SPAN_EDGES:
        start += 1
    while end > start and text[end - 1] in SPAN_EDGES:
        end -= 1
    return start, end


def _whole_words(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """An alignment [start, end) widened to whole words, and narrowed to them, each trimmed of
    spaces and punctuation, so a person reads words ("63-year", not "3-year-o")."""
    wide_start, wide_end, narrow_start, narrow_end = start, end, start, end
    while _inside(text, wide_start):
        wide_start -= 1
    while _inside(text, wide_end):
        wide_end += 1
    while narrow_start < narrow_end and _inside(text, narrow_start):
        narrow_start += 1
    while narrow_end > narrow_start and _inside(text, narrow_end):
        narrow_end -= 1
    return [_trimmed(text, wide_start, wide_end), _trimmed(text, narrow_start, narrow_end)]


def _regions(wanted: str, text: str) -> list[tuple[int, int]]:
    """Where a fuzzy match may lie: the whole text, or for an item with numbers the stretches
    around each occurrence of any of them."""
    numbers = set(NUMBER.findall(wanted))
    if not numbers:
        return [(0, len(text))]
    pattern = re.compile(r"(?<!\d)(?:" + "|".join(map(re.escape, numbers)) + r")(?!\d)")
    return [(max(0, m.start() - len(wanted)), m.end() + len(wanted)) for m in pattern.finditer(text)]


def _fuzzy(wanted: str, text: str, threshold: float) -> tuple[float, int, int] | None:
    """The best fuzzy (score, start, end) on whole words that shares a number with the item, if it
    has any."""
    numbers = set(NUMBER.findall(wanted))
    spans = []
    for low, high in _regions(wanted, text):
        best = fuzz.partial_ratio_alignment(wanted, text[low:high], score_cutoff=threshold)
        if best is None:
            continue
        # Scored again on the span the record gives: the alignment widened or narrowed to words.
        for start, end in _whole_words(text, low + best.dest_start, low + best.dest_end):
            if start < end and (not numbers or numbers & set(NUMBER.findall(text[start:end]))):
                spans.append((fuzz.ratio(wanted, text[start:end]), start, end))
    best_span = max(spans, default=None, key=lambda span: span[0])
    return best_span if best_span is not None and best_span[0] >= threshold else None


def locate(item: str, report: NormalisedText, *, threshold: float = FUZZY_MIN) -> Evidence:
    """One item's evidence in a report; `threshold` is the lowest fuzzy score that counts."""
    wanted = normalise(item)
    if not wanted:
        return Evidence(item=item, match="none")
    found = report.text.find(wanted)
    if found >= 0:
        start, end = report.span(found, found + len(wanted))
        return Evidence(item=item, start=start, end=end, match="exact")
    fuzzy = _fuzzy(wanted, report.text, threshold)
    if fuzzy is None:
        return Evidence(item=item, match="none")
    score, start, end = fuzzy
    start, end = report.span(start, end)
    return Evidence(item=item, start=start, end=end, match="fuzzy", score=round(score, 1))


def align(text: str, record: Record, *, threshold: float = FUZZY_MIN) -> dict[str, list[Evidence]]:
    """Evidence for every item of every aligned field (fields without items are left out)."""
    report = NormalisedText(text)
    evidence: dict[str, list[Evidence]] = {}
    for name, value in record.values().items():
        if name in SKIPPED:
            continue
        found = [locate(item, report, threshold=threshold) for item in items(value)]
        if found:
            evidence[name] = found
    return evidence


def ungrounded_flags(evidence: dict[str, list[Evidence]]) -> list[str]:
    """`ungrounded:FIELD` once per field with an item found nowhere, in the published order."""
    return [UNGROUNDED + name for name in FIELDS if any(entry.match == "none" for entry in evidence.get(name, ()))]
