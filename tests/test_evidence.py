"""Evidence spans: each item of a record located in its report, exactly, fuzzily or not at all."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from rapidfuzz import fuzz

from edge_extract.evidence import FUZZY_MIN, NormalisedText, align, locate, normalise, ungrounded_flags
from edge_extract.pipeline import Result
from edge_extract.schema import Record

from .fakes import FAKE_PROVENANCE

REPORT = (
    "A 67-year-old man presented with fever and a\n  productive Cough.\n"
    "Chest X-ray: right lower lobe consolidation (RLL).\nCRP 120 mg/L [ref < 5]. Diagnosis: "
    "community-acquired pneumonia. Treated with amoxicillin 1 g t.i.d."
)


def find(item: str, text: str = REPORT):
    return locate(item, NormalisedText(text))


def test_an_exact_item_gets_its_offsets_into_the_report():
    entry = find("community-acquired pneumonia")
    assert entry.match == "exact" and entry.score is None
    assert REPORT[entry.start : entry.end] == "community-acquired pneumonia"


def test_case_and_line_breaks_do_not_stop_an_exact_match():
    entry = find("a productive cough")
    assert entry.match == "exact"
    assert REPORT[entry.start : entry.end] == "a\n  productive Cough"


def test_a_paraphrase_is_a_fuzzy_match_on_whole_words_with_its_score():
    entry = find("67 years")
    assert entry.match == "fuzzy" and entry.score is not None and entry.score >= FUZZY_MIN
    assert REPORT[entry.start : entry.end] == "67-year"  # the alignment's words, not half of one


def test_a_fuzzy_span_of_an_item_with_a_number_holds_that_number():
    text = "Smoked for 30 years. Now, at 58 (in 2013), a 58-year-old man."
    entry = find("58 years", text)
    assert text[entry.start : entry.end] == "58-year"
    assert find("44 years", text).match == "none"  # "30 years" is another fact


def test_an_invented_item_is_not_found_and_flags_its_field():
    entry = find("acute myocardial infarction with cardiogenic shock")
    assert entry.match == "none" and entry.start is None and entry.end is None
    evidence = align(REPORT, Record(diagnosis="community-acquired pneumonia; acute myocardial infarction"))
    assert [e.match for e in evidence["diagnosis"]] == ["exact", "none"]
    assert ungrounded_flags(evidence) == ["ungrounded:diagnosis"]


def test_repeated_items_each_get_a_span():
    evidence = align(REPORT, Record(signs_symptoms="fever; fever"))
    fever = REPORT.index("fever")
    assert [(e.start, e.end) for e in evidence["signs_symptoms"]] == [(fever, fever + 5)] * 2


def test_regex_characters_in_an_item_are_plain_text():
    for item in ("CRP 120 mg/L [ref < 5]", "(RLL)", "1 g t.i.d."):
        entry = find(item)
        assert entry.match == "exact" and REPORT[entry.start : entry.end] == item


def test_offsets_stay_on_the_original_text_around_characters_whose_lower_case_is_longer():
    text = "İstanbul: Straße, ÉCHO normal; ΣΊΣΥΦΟΣ"
    for item in ("straße", "écho normal", "İstanbul", "σίσυφος"):
        entry = find(item, text)
        assert entry.match == "exact"
        assert normalise(text[entry.start : entry.end]) == normalise(item)


def test_gender_is_not_aligned_and_na_fields_have_no_evidence():
    evidence = align(REPORT, Record(gender="Male", age="67 years"))
    assert set(evidence) == {"age"}


def test_a_record_written_before_evidence_spans_still_loads():
    old = {
        "id": "r",
        "source": "-",
        "status": "ok",
        "summary": Record(diagnosis="pneumonia").model_dump(),
        "flags": [],
        "error": None,
        "provenance": FAKE_PROVENANCE,
    }
    loaded = Result.model_validate(old)
    assert loaded.evidence is None and loaded.confidence is None


TEXT = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=300)


@given(text=TEXT, data=st.data())
def test_every_located_span_is_in_bounds_and_matches_its_item(text: str, data: st.DataObject):
    # Items cut from the text (then re-cased) and arbitrary ones, which may or may not be found.
    cut = data.draw(st.tuples(st.integers(0, len(text)), st.integers(0, 40)))
    candidates = [text[cut[0] : cut[0] + cut[1]].upper(), data.draw(TEXT)]
    report = NormalisedText(text)
    for item in candidates:
        entry = locate(item, report)
        if entry.match == "none":
            assert entry.start is None and entry.end is None
            continue
        assert 0 <= entry.start < entry.end <= len(text)
        span = normalise(text[entry.start : entry.end])
        if entry.match == "exact":
            assert span == normalise(item)
        else:
            assert entry.score == round(fuzz.ratio(normalise(item), span), 1)
            assert entry.score >= FUZZY_MIN
