"""A Result and its report text -> what a review page shows: the 15 fields with their marks, and
the stretches of text each item's evidence covers.

Offsets go to the page in UTF-16 code units, the unit of JavaScript strings: Python's evidence
offsets count code points, and the two differ after any character outside the Basic
Multilingual Plane (an emoji, some CJK), which would shift every later highlight.
"""

from __future__ import annotations

from itertools import accumulate
from typing import Literal

from pydantic import BaseModel

from ..confidence import CHECK
from ..evidence import UNGROUNDED, Evidence
from ..pipeline import Result
from ..schema import FIELD_MAX_CHARS
from .texts import ReportText


class FieldView(BaseModel):
    """One of the 15 fields as the page shows it."""

    name: str
    value: str
    max_chars: int
    confidence: float | None
    """The decoder's confidence in the value, 0-1; None for records made without it."""
    check: bool
    """The field's confidence is below the threshold (`check:FIELD`)."""
    ungrounded: bool
    """An item of the field was found nowhere in the report (`ungrounded:FIELD`)."""
    evidence: list[Evidence]


class Mark(BaseModel):
    """A stretch of report text [start, end) (UTF-16 offsets) covered by the evidence of `items`,
    each `FIELD:INDEX` (the item's index in its field's evidence); overlapping spans are cut at
    every boundary, so each stretch lists every item over it."""

    start: int
    end: int
    items: list[str]


class RecordView(BaseModel):
    """One record on a page."""

    id: str
    source: str
    status: Literal["ok", "failed"]
    page: str
    """The record's own page, a URL relative to the review folder."""
    model: str
    flags: list[str]
    error: str | None
    text: str | None
    text_problem: str | None
    marks: list[Mark]
    fields: list[FieldView]


def marks(text: str, evidence: dict[str, list[Evidence]]) -> list[Mark]:
    """The marked stretches of `text`, in order; spans outside the text are left out."""
    spans = [
        (entry.start, entry.end, f"{name}:{index}")
        for name, entries in evidence.items()
        for index, entry in enumerate(entries)
        if entry.start is not None and entry.end is not None and 0 <= entry.start < entry.end <= len(text)
    ]
    bounds = sorted({at for start, end, _ in spans for at in (start, end)})
    units = utf16_offsets(text)
    stretches = []
    for low, high in zip(bounds, bounds[1:]):
        keys = [key for start, end, key in spans if start <= low and high <= end]
        if keys:
            stretches.append(Mark(start=units[low], end=units[high], items=keys))
    return stretches


def utf16_offsets(text: str) -> list[int]:
    """For each code-point offset 0..len(text), the UTF-16 offset of the same place."""
    return [0, *accumulate(2 if ord(char) > 0xFFFF else 1 for char in text)]


def record_view(result: Result, text: ReportText, *, page: str) -> RecordView:
    """What the page shows of `result`; its text only when the record is ok and the text was found."""
    flags = set(result.flags)
    summary = result.summary.values() if result.summary else {}
    evidence = result.evidence or {}
    confidence = result.confidence or {}
    fields = [
        FieldView(
            name=name,
            value=value,
            max_chars=FIELD_MAX_CHARS[name],
            confidence=confidence.get(name),
            check=CHECK + name in flags,
            ungrounded=UNGROUNDED + name in flags,
            evidence=evidence.get(name, []),
        )
        for name, value in summary.items()
    ]
    shown = text.text if result.status == "ok" else None
    return RecordView(
        id=result.id,
        source=result.source,
        status=result.status,
        page=page,
        model=result.provenance.model,
        flags=result.flags,
        error=f"{result.error.kind}: {result.error.message}" if result.error else None,
        text=shown,
        text_problem=text.problem if result.status == "ok" else None,
        marks=marks(shown, evidence) if shown is not None else [],
        fields=fields,
    )
