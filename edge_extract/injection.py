"""Spot records whose values come from instruction-like or answer-like passages of their report.

A report can carry text written to steer the model: "ignore the previous instructions", fake chat
turns, a ready-made answer to copy. Report text is tokenized as plain text and the default model is
trained on such reports, but a small model can still obey. This check runs on every record: when a
value of the record is found in such a passage and nowhere else in the report, the record gets the
flag `suspected_injection`, so that a person looks before it is used.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from rapidfuzz import fuzz

from .schema import FIELDS, Record, items

SUSPECTED_INJECTION = "suspected_injection"
"""The record's flag."""

INSTRUCTION = re.compile(
    r"""
    ignore\s+(?:all\s+|any\s+|the\s+|your\s+)?(?:previous|prior|above|preceding|earlier|former)\s+
        (?:instructions?|text|prompts?|rules|template)
    | disregard\s+(?:the|all|any|your|previous|prior|above|everything)
    | (?:copy|repeat|return|output|reproduce|use)\s+(?:the\s+|this\s+|your\s+|it\s+)?
        (?:correct\s+|last\s+|following\s+|verified\s+)?(?:answer|json|summary|record|output)
    | (?:correct|real|true|verified|final)\s+(?:answer|summary|record|output|json)\s+(?:is|reads|follows)
    | new\s+(?:instructions?|rules|task|system\s+prompt)
    | updated\s+(?:extraction\s+)?(?:rules|instructions)
    | (?:note|message|instruction)s?\s+(?:to|for)\s+the\s+(?:\w+\s+)?(?:ai|model|assistant|system|extractor|llm)
    | \b(?:ai|llm)\s+(?:system|assistant|model)\b
    | end_of_turn | start_of_turn | <\|?im_(?:start|end)\|?> | <\|eot_id\|> | <\|start_header_id\|>
    | ^[ \t]*(?:system|assistant|user|model)[ \t]*:
    | \[(?:system|inst|/inst|assistant)\]
    | ^[ \t]*\#{2,}[ \t]*(?:new[ \t]+)?(?:instructions?|system|prompt|response)
    | (?:every|each|all)\s+(?:fields?|values?)\s+(?:must|should|shall)\s+(?:be|say|read)
    | (?:write|put|enter|fill)\s+.{0,40}?\s+(?:in|into)\s+(?:every|each|all)\s+(?:the\s+)?fields?
    | (?:set|change)\s+(?:the\s+)?(?:age|gender|sex|diagnosis)\s+to
    """,
    re.IGNORECASE | re.MULTILINE | re.VERBOSE,
)
"""Phrases that address the model rather than describe the patient."""

FIELD_KEY = re.compile(
    r"\b(?:" + "|".join(name for name in FIELDS if "_" in name) + r")\b|\"(?:" + "|".join(FIELDS) + r")\"\s*:"
)
"""An ELMTEX key as the model writes it: with underscores, or quoted as a JSON key. Clinical prose
has neither ("diagnosis", "age" and "gender" alone are ordinary words)."""

MIN_KEYS = 3
"""Keys in one passage that make it look like a ready-made answer."""

MATCH = 90
"""rapidfuzz partial_ratio at which a value counts as found in a stretch of text."""

PARAGRAPH_BREAK = re.compile(r"\n\s*\n")
"""A blank line (spaces allowed): where a passage ends."""


def _passage(text: str, start: int, end: int) -> tuple[int, int]:
    """The stretch around a match: from its line's start to the next blank line (or the end)."""
    begin = text.rfind("\n", 0, start) + 1
    stop = PARAGRAPH_BREAK.search(text, end)
    return begin, len(text) if stop is None else stop.start()


def suspicious_passages(text: str) -> list[tuple[int, int]]:
    """Character spans of instruction-like or answer-like passages, merged where they overlap."""
    spans = [_passage(text, m.start(), m.end()) for m in INSTRUCTION.finditer(text)]
    for begin, end in _paragraphs(text):
        if len(set(FIELD_KEY.findall(text, begin, end))) >= MIN_KEYS:
            spans.append((begin, end))
    merged: list[tuple[int, int]] = []
    for begin, end in sorted(spans):
        if merged and begin <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((begin, end))
    return merged


def _paragraphs(text: str) -> Iterator[tuple[int, int]]:
    start = 0
    for match in PARAGRAPH_BREAK.finditer(text):
        yield start, match.start()
        start = match.end()
    yield start, len(text)


def _found(item: str, folded_text: str) -> bool:
    """Whether an item occurs in a text already casefolded (once per record, not per item)."""
    if not folded_text:
        return False
    item = item.casefold()
    return item in folded_text or fuzz.partial_ratio(item, folded_text) >= MATCH


def values_from_passages(report: str, record: Record) -> list[str]:
    """Fields with an item found in a suspicious passage of the report and nowhere outside one."""
    spans = suspicious_passages(report)
    if not spans:
        return []
    inside = "\n".join(report[begin:end] for begin, end in spans).casefold()
    outside, last = [], 0
    for begin, end in spans:
        outside.append(report[last:begin])
        last = end
    outside.append(report[last:])
    rest = "\n".join(outside).casefold()
    fields = []
    for name, value in record.values().items():
        if name == "gender":
            continue  # Male/Female/N/A: three words that say nothing about where they came from
        if any(len(item) >= 3 and _found(item, inside) and not _found(item, rest) for item in items(value)):
            fields.append(name)
    return fields
