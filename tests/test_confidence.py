"""Per-field confidence: the probability math on known logits, the flags, where people see them
(terminal table, results.csv), and a real record of the default model."""

from __future__ import annotations

import math

import numpy as np
import pytest

from edge_extract.confidence import CALIBRATION, CHECK_BELOW, calibrate, check_flags, field_confidence, uncalibrate
from edge_extract.decoding import DecodingSettings, SchemaDecoder, log_probs, value_score
from edge_extract.output import CSV_COLUMNS, csv_row
from edge_extract.pipeline import Result
from edge_extract.reading import read_path
from edge_extract.schema import FIELDS, NA, Record
from edge_extract.ui import LEGEND, record_table

from .fakes import FAKE_PROVENANCE
from .test_cli import SAMPLE
from .test_decoding import HesitantModel, ScriptedModel
from .test_ui import render


def test_log_probs_are_a_softmax_of_the_logits():
    rng = np.random.default_rng(0)
    logits = (rng.normal(size=50_000) * 8).astype(np.float32)
    expected = logits.astype(np.float64) - np.log(np.exp(logits.astype(np.float64)).sum())
    got = log_probs(logits, [3, 17, int(np.argmax(logits))], np.empty_like(logits))
    assert got == pytest.approx(expected[[3, 17, int(np.argmax(logits))]], abs=1e-4)
    assert np.all(got <= 0)


def test_value_score_is_the_decision_times_the_mean_token_probability():
    absent, first = math.log(0.2), math.log(0.4)
    # P(present) 0.8; the first token given presence 0.5, then tokens of 0.9 and 0.7
    score = value_score("fever", absent=absent, first=first, rest=[math.log(0.9), math.log(0.7)])
    assert score == pytest.approx(0.8 * (0.5 * 0.9 * 0.7) ** (1 / 3))
    assert value_score(NA, absent=absent, first=absent, rest=[math.log(0.1)]) == pytest.approx(0.2)
    # a value made longer by equally sure tokens is not less certain
    longer = value_score("fever", absent=absent, first=first, rest=[math.log(0.5)] * 10)
    assert longer == pytest.approx(0.8 * 0.5)
    assert value_score("fever", absent=0.0, first=-np.inf, rest=[]) == 0.0  # all mass on N/A
    assert value_score(NA, absent=-np.inf, first=-np.inf, rest=[]) == 0.0  # no room: not the model's choice


def _softmax_at(logits: list[float], size: int, index: int) -> float:
    """Probability of logits[index] when the other size - len(logits) logits are 0."""
    return math.exp(logits[index]) / (sum(math.exp(x) for x in logits) + size - len(logits))


@pytest.mark.parametrize("bias", [0.0, 0.8])
def test_decoder_scores_the_decision_under_the_logits_it_picked_from(bias):
    model = HesitantModel({"comorbidities": NA, "gender": "Male"})
    size = len(model.pieces)
    values, stats = SchemaDecoder(model, settings=DecodingSettings(absent_bias=bias)).decode(model.tokenize("p"))
    assert list(stats.scores) == list(FIELDS)
    # where comorbidities starts: N/A at 1 - bias, "fever" at 0.5, every other piece at 0
    p_absent = _softmax_at([1.0 - bias, 0.5], size, 0)
    if bias == 0.0:
        assert values["comorbidities"] == NA
        assert stats.scores["comorbidities"] == pytest.approx(p_absent)
    else:
        assert values["comorbidities"] == "fever"
        p_first = _softmax_at([1.0 - bias, 0.5], size, 1)
        p_quote = _softmax_at([1.0], size, 0)  # the scripted model then wants the closing quote
        expected = (1 - p_absent) * math.sqrt(p_first / (1 - p_absent) * p_quote)
        assert stats.scores["comorbidities"] == pytest.approx(expected)
    assert stats.scores["gender"] == pytest.approx(math.e / (math.e + 2))  # Male among 3 options
    assert all(0.0 <= score <= 1.0 for score in stats.scores.values())


def test_scores_follow_a_value_cut_back_after_a_loop():
    model = ScriptedModel({"signs_symptoms": "fever; cough; " * 40})
    settings = DecodingSettings(repeat_penalty=1.0, stop_at_restated_item=False)
    values, stats = SchemaDecoder(model, settings=settings).decode(model.tokenize("p"))
    assert values["signs_symptoms"] == "fever; cough"
    assert 0.0 < stats.scores["signs_symptoms"] <= 1.0


def test_confidence_is_calibrated_per_decision_rounded_in_published_order_and_none_unless_complete():
    scores = {name: 0.123456 for name in reversed(FIELDS)}
    values = Record(diagnosis="pneumonia").values()
    confidence = field_confidence(scores, values)
    assert list(confidence) == list(FIELDS)
    assert confidence["diagnosis"] == round(calibrate(0.123456, absent=False), 3)
    assert confidence["age"] == round(calibrate(0.123456, absent=True), 3)
    assert field_confidence({}, values) is None  # the grammar decoder scores nothing
    assert check_flags(None) == []


@pytest.mark.parametrize("absent", [True, False])
def test_the_calibration_map_is_monotone_and_inverted_by_uncalibrate(absent):
    assert CALIBRATION[absent][0] > 0  # a higher score never gives a lower confidence
    scores = [0.0, 0.01, 0.3, 0.5, 0.77, 0.95, 1.0]
    confidences = [calibrate(score, absent=absent) for score in scores]
    assert confidences == sorted(confidences) and all(0.0 < value < 1.0 for value in confidences)
    for score, confidence in zip(scores[1:-1], confidences[1:-1]):
        assert uncalibrate(confidence, absent=absent) == pytest.approx(score)


def test_fields_below_the_threshold_are_flagged_check():
    confidence = dict.fromkeys(FIELDS, 1.0) | {"age": CHECK_BELOW - 0.001, "diagnosis": 0.0, "gender": CHECK_BELOW}
    assert check_flags(confidence) == ["check:diagnosis", "check:age"]


def _result(flags: list[str]) -> Result:
    return Result.model_validate(
        {
            "id": "r",
            "source": "-",
            "status": "ok",
            "summary": Record(diagnosis="=pneumonia").model_dump(),
            "confidence": dict.fromkeys(FIELDS, 0.9),
            "flags": flags,
            "provenance": FAKE_PROVENANCE,
        }
    )


def test_results_csv_names_the_fields_to_check_once_each():
    row = csv_row(_result(["ungrounded:diagnosis", "check:age", "check:diagnosis", "loop:pathology"]))
    assert list(row) == list(CSV_COLUMNS)
    assert row["check_fields"] == "diagnosis; age"
    assert row["diagnosis"] == "'=pneumonia"  # formula protection still applies
    assert csv_row(_result([]))["check_fields"] == ""


def test_record_table_marks_low_confidence_and_ungrounded_fields_with_a_legend():
    summary = {"diagnosis": "pneumonia", "age": "58 years", "gender": "Male"}
    text = render(record_table({"id": "r", "summary": summary}, check={"diagnosis", "age"}, ungrounded={"diagnosis"}))
    lines = [line.rstrip("│ ") for line in text.splitlines() if "│" in line]
    assert lines == ["│ diagnosis ?! │ pneumonia", "│ age ?        │ 58 years", "│ gender       │ Male"]
    assert LEGEND in text
    assert LEGEND not in render(record_table({"id": "r", "summary": summary}))


@pytest.mark.model
def test_a_real_record_has_15_confidences_and_check_flags_match_the_threshold(extractor):
    (report,) = read_path(SAMPLE)
    result = extractor.extract(report)
    assert result.status == "ok" and result.confidence is not None
    assert list(result.confidence) == list(FIELDS)
    assert all(0.0 <= value <= 1.0 for value in result.confidence.values())
    checked = [flag.removeprefix("check:") for flag in result.flags if flag.startswith("check:")]
    assert checked == [name for name in FIELDS if result.confidence[name] < CHECK_BELOW]
