"""Per-field confidence: the schema decoder's own scores (decoding.value_score), rounded, and a
`check:FIELD` flag on each field whose confidence is below `CHECK_BELOW`.

A field's confidence is the probability of its present/absent decision where the value starts,
times, for a written value, the geometric mean probability of its tokens (gender: its option's
probability among the three). Measured on val in docs/evaluation.md ("Per-field confidence",
benchmarks/confidence.py).
"""

from __future__ import annotations

from collections.abc import Mapping

from .schema import FIELDS

CHECK_BELOW = 0.5
"""Fields with a confidence below this are flagged `check:FIELD`: chosen on val
(benchmarks/confidence.py, docs/evaluation.md "Per-field confidence")."""

CHECK = "check:"
"""Flag prefix, followed by the field's name."""


def field_confidence(scores: Mapping[str, float]) -> dict[str, float] | None:
    """The 15 confidences in the published order, rounded to 3 decimals; None unless the decoder
    scored every field (the grammar decoder scores none)."""
    if any(name not in scores for name in FIELDS):
        return None
    return {name: round(min(max(scores[name], 0.0), 1.0), 3) for name in FIELDS}


def check_flags(confidence: Mapping[str, float] | None) -> list[str]:
    """`check:FIELD` for each field below CHECK_BELOW, in the published order."""
    if confidence is None:
        return []
    return [CHECK + name for name in FIELDS if confidence[name] < CHECK_BELOW]
