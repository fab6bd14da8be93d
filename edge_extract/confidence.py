"""Per-field confidence: the schema decoder's own scores (decoding.value_score) through a
calibration map fitted on val, rounded, and a `check:FIELD` flag on each field whose confidence
is below `CHECK_BELOW`.

A field's score is the probability of its present/absent decision where the value starts, times,
for a written value, the geometric mean probability of its tokens (gender: its option's
probability among the three). Measured on val in docs/evaluation.md ("Per-field confidence",
benchmarks/confidence.py).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from .schema import FIELDS, NA

CALIBRATION: dict[bool, tuple[float, float]] = {True: (1.052, 2.028), False: (1.527, -1.586)}
"""Platt scaling of a score, per decision (the value is N/A: True, written: False): confidence =
sigmoid(a * logit(score) + b), (a, b) fitted on the even-numbered half of the default's val records
(`benchmarks.confidence --fit`). The raw score is under-confident for N/A (the absent bias lowers
"N/A"'s probability where the model still chose it) and over-confident for written values. Other
models get the same map, which was not fitted for them: their confidences rank fields but are not
calibrated."""

_EDGE = 1e-4
"""Scores are clipped to [_EDGE, 1 - _EDGE] before the logit, so 0 and 1 map to finite values."""


def calibrate(score: float, *, absent: bool) -> float:
    """A field's confidence from its decoder score; `absent`: its value is N/A."""
    a, b = CALIBRATION[absent]
    clipped = min(max(score, _EDGE), 1.0 - _EDGE)
    return 1.0 / (1.0 + math.exp(-(a * math.log(clipped / (1.0 - clipped)) + b)))


def uncalibrate(confidence: float, *, absent: bool) -> float:
    """The decoder score a confidence was calibrated from (`calibrate`'s inverse, up to rounding
    and clipping): how benchmarks/confidence.py gets the raw score back from a record."""
    a, b = CALIBRATION[absent]
    clipped = min(max(confidence, _EDGE), 1.0 - _EDGE)
    return 1.0 / (1.0 + math.exp(-(math.log(clipped / (1.0 - clipped)) - b) / a))


CHECK_BELOW = 0.5
"""Fields with a confidence below this are flagged `check:FIELD`: on held-out val, about one field
in eight, right 35% of the time against 83% above (docs/evaluation.md "Per-field confidence")."""

CHECK = "check:"
"""Flag prefix, followed by the field's name."""


def field_confidence(scores: Mapping[str, float], values: Mapping[str, str]) -> dict[str, float] | None:
    """The 15 confidences of a record's `values` in the published order, calibrated and rounded
    to 3 decimals; None unless the decoder scored every field (the grammar decoder scores none)."""
    if any(name not in scores for name in FIELDS):
        return None
    return {name: round(calibrate(scores[name], absent=values[name] == NA), 3) for name in FIELDS}


def check_flags(confidence: Mapping[str, float] | None) -> list[str]:
    """`check:FIELD` for each field below CHECK_BELOW, in the published order."""
    if confidence is None:
        return []
    return [CHECK + name for name in FIELDS if confidence[name] < CHECK_BELOW]
