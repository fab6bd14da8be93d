"""Scoring functions against hand-computed values: ROUGE, items, age, gender, semantic, aggregation."""

from __future__ import annotations

import pytest

from edge_extract.metrics import (
    TEXT_FIELDS,
    ItemCounts,
    SemanticScorer,
    age_correct,
    fuzzy_matcher,
    gender_correct,
    item_counts,
    rouge,
    score_records,
    token_f1,
)
from edge_extract.schema import FIELDS, Record


@pytest.fixture(scope="module")
def semantic() -> SemanticScorer:
    return SemanticScorer(threads=1)


def exact(pairs):
    """A stand-in similarity (1 for equal texts) so aggregation can be computed by hand."""
    return [float(p == g) for p, g in pairs]


@pytest.mark.parametrize(
    ("prediction", "gold", "expected"),
    [
        pytest.param("fever; cough", "fever; cough", (1.0, 1.0, 1.0), id="perfect"),
        pytest.param("fever", "fever", (1.0, 1.0, 1.0), id="one-word-exact-has-no-bigram-but-scores-1"),
        pytest.param("Fevers.", "fever", (1.0, 1.0, 1.0), id="case-punctuation-stemming"),
        pytest.param("N/A", "fever; cough", (0.0, 0.0, 0.0), id="na-prediction"),
        pytest.param(None, "fever; cough", (0.0, 0.0, 0.0), id="failed-prediction"),
        # unigrams all shared; bigram "cough fever" vs "fever cough" none; LCS 1 of 2 -> P = R = 0.5
        pytest.param("cough; fever", "fever; cough", (1.0, 0.0, 0.5), id="reordered-list"),
        # P = 1, R = 1/2 -> F = 2/3; no bigram in the prediction
        pytest.param("fever", "high fever", (2 / 3, 0.0, 2 / 3), id="partial"),
        # unigrams P 3/3, R 3/4 -> 6/7; bigrams: "left knee" shared, P 1/2, R 1/3 -> 2/5;
        # LCS "left knee": P 2/3, R 2/4 -> 4/7
        pytest.param("left knee pain", "pain in left knee", (6 / 7, 0.4, 4 / 7), id="partial-overlap"),
    ],
)
def test_rouge(prediction, gold, expected):
    scores = rouge(prediction, gold)
    assert (scores["rouge1"], scores["rouge2"], scores["rougeL"]) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        pytest.param([], [], 0.0, id="empty"),
        pytest.param(["a"], [], 0.0, id="one-empty"),
        pytest.param(["a", "b"], ["b", "a"], 1.0, id="same-bag"),
        pytest.param(["a", "b"], ["a", "c"], 0.5, id="half"),
        pytest.param(["a", "a", "b"], ["a", "b"], 0.8, id="multiset: 2*2/(3+2)"),
    ],
)
def test_token_f1(a, b, expected):
    assert token_f1(a, b) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("prediction", "gold", "counts", "prf"),
    [
        pytest.param("fever; cough", "fever; cough", (2, 2, 2), (1.0, 1.0, 1.0), id="perfect"),
        pytest.param("cough; fever", "fever; cough", (2, 2, 2), (1.0, 1.0, 1.0), id="reordered-list"),
        pytest.param("N/A", "fever; cough", (0, 0, 2), (0.0, 0.0, 0.0), id="na-prediction"),
        pytest.param(None, "fever", (0, 0, 1), (0.0, 0.0, 0.0), id="failed-prediction"),
        pytest.param("N/A", "N/A", (0, 0, 0), (None, None, None), id="both-na-not-scored"),
        pytest.param("fever", "N/A", (0, 1, 0), (0.0, 0.0, 0.0), id="invented-item"),
        # token F1 2*1/(2+1) = 0.67 >= 0.5 for both pairs
        pytest.param("severe anemia; high fever", "anemia; fever", (2, 2, 2), (1.0, 1.0, 1.0), id="fuzzy-match"),
        # token F1 2*1/(5+1) = 0.33 < 0.5
        pytest.param("chronic kidney disease stage 3", "kidney", (0, 1, 1), (0.0, 0.0, 0.0), id="below-threshold"),
        pytest.param("fever; fever", "fever", (1, 2, 1), (0.5, 1.0, 2 / 3), id="one-to-one"),
        pytest.param("Fever.", "fever", (1, 1, 1), (1.0, 1.0, 1.0), id="case-and-punctuation"),
        pytest.param("fever;; cough ;", "cough; fever", (2, 2, 2), (1.0, 1.0, 1.0), id="blank-items-ignored"),
        # 2*3/(3+5) = 0.75 beats 2*2/(2+5) = 0.57: the closer item takes the only gold item
        pytest.param(
            "chest pain; chest pain radiating",
            "chest pain radiating to arm",
            (1, 2, 1),
            (0.5, 1.0, 2 / 3),
            id="best-pair-first",
        ),
    ],
)
def test_item_counts(prediction, gold, counts, prf):
    got = item_counts(prediction, gold)
    assert (got.matched, got.predicted, got.gold) == counts
    assert (got.precision, got.recall, got.f1) == pytest.approx(prf)


def test_matcher_threshold_is_a_parameter():
    assert fuzzy_matcher(0.3)(["chronic kidney disease stage 3"], ["kidney"]).matched == 1


def test_matcher_hook_replaces_fuzzy_matching():
    def concepts(predicted, gold):  # what a concept linker plugs in: here, first words as "concepts"
        p, g = {x.split()[0] for x in predicted}, {x.split()[0] for x in gold}
        return ItemCounts(len(p & g), len(p), len(g))

    assert item_counts("fever high; cough", "fever; rash", matcher=concepts) == ItemCounts(1, 2, 2)


def test_item_counts_add_up():
    assert ItemCounts(1, 2, 3) + ItemCounts(1, 0, 1) == ItemCounts(2, 2, 4)


@pytest.mark.parametrize(
    ("prediction", "gold", "correct"),
    [
        pytest.param("45 years", "45 years", True, id="same"),
        pytest.param("45-year-old", "45 years", True, id="adjective-form"),
        pytest.param("45", "45 years", True, id="bare-number-is-years"),
        pytest.param("46 years", "45 years", False, id="other-number"),
        pytest.param("8 months", "8 years", False, id="other-unit"),
        pytest.param("Infant", "infant", True, id="words"),
        pytest.param("N/A", "N/A", True, id="both-na"),
        pytest.param(None, "N/A", True, id="failed-vs-na"),
        pytest.param("N/A", "45 years", False, id="missed"),
        pytest.param("45 years", "N/A", False, id="invented"),
    ],
)
def test_age_correct(prediction, gold, correct):
    assert age_correct(prediction, gold) is correct


@pytest.mark.parametrize(
    ("prediction", "gold", "correct"),
    [("Male", "Male", True), ("Female", "Male", False), (None, "N/A", True), ("N/A", "Female", False)],
)
def test_gender_correct(prediction, gold, correct):
    assert gender_correct(prediction, gold) is correct


@pytest.mark.model
def test_semantic_identical_absent_symmetric(semantic):
    pairs = [("fever; cough", "fever; cough"), ("", "fever"), ("high fever", "fever"), ("fever", "high fever")]
    same, absent, forward, backward = semantic(pairs)
    assert same == 1.0
    assert absent == 0.0
    assert forward == pytest.approx(backward)  # F1 is symmetric
    assert 0.5 < forward < 1.0


@pytest.mark.model
def test_semantic_related_beats_unrelated_and_batching_changes_nothing(semantic):
    related, unrelated = semantic([("elevated blood pressure", "hypertension"), ("femur fracture", "hypertension")])
    assert related > unrelated
    # Alone, without padding from longer texts in the batch, the score is the same.
    assert semantic([("femur fracture", "hypertension")])[0] == pytest.approx(unrelated, abs=1e-5)


GOLDS = [
    Record(signs_symptoms="fever; cough", diagnosis="pneumonia", age="45 years", gender="Male"),
    Record(diagnosis="asthma", gender="Female"),
]


def test_scores_by_hand():
    predictions = [
        Record(
            signs_symptoms="cough; fever", diagnosis="pneumonia", life_style="smoker", age="45-year-old", gender="Male"
        ),
        None,  # failed: scored as all-N/A
    ]
    scores = score_records(predictions, GOLDS, semantic=exact)
    signs, diagnosis, life = (scores.fields[name] for name in ("signs_symptoms", "diagnosis", "life_style"))
    assert (signs.scored, signs.rouge1, signs.rouge2, signs.rougeL, signs.item_f1) == pytest.approx(
        (1, 1.0, 0.0, 0.5, 1.0)
    )
    assert (diagnosis.scored, diagnosis.rougeL, diagnosis.item_precision, diagnosis.item_recall) == (2, 0.5, 1.0, 0.5)
    assert diagnosis.item_f1 == pytest.approx(2 / 3)
    assert (life.scored, life.rougeL, life.item_precision, life.item_f1, life.na_agreement) == (0, None, 0.0, 0.0, 0.5)
    assert scores.fields["family_history"].item_f1 is None  # nothing on either side
    # macro: mean over fields that have a value; micro: pooled over (record, field) pairs and items
    assert (scores.macro.rouge1, scores.macro.rouge2, scores.macro.rougeL) == pytest.approx((0.75, 0.25, 0.5))
    assert (scores.micro.rouge1, scores.micro.rougeL) == pytest.approx((2 / 3, 0.5))
    assert scores.macro.semantic_f1 == pytest.approx(0.25)
    assert (scores.macro.item_precision, scores.macro.item_recall, scores.macro.item_f1) == pytest.approx(
        (2 / 3, 0.5, (1 + 2 / 3 + 0) / 3)
    )
    assert (scores.micro.item_precision, scores.micro.item_recall, scores.micro.item_f1) == pytest.approx(
        (0.75, 0.75, 0.75)
    )
    assert scores.na_agreement == pytest.approx(27 / 30)
    assert (scores.age_accuracy, scores.gender_accuracy, scores.schema_valid_rate) == (1.0, 0.5, 0.5)


def test_scores_need_matching_lengths():
    with pytest.raises(ValueError, match="1 predictions for 2 gold"):
        score_records([None], GOLDS, semantic=exact)


def _check_perfect(scores) -> None:
    for averages in (scores.macro, scores.micro):
        assert all(value == pytest.approx(1.0) for value in averages.model_dump().values()), averages
    for name in TEXT_FIELDS:
        field = scores.fields[name]
        values = [field.rouge1, field.rouge2, field.rougeL, field.semantic_f1, field.item_f1]
        assert all(v is None or v == pytest.approx(1.0) for v in values), (name, field)
    assert (scores.na_agreement, scores.schema_valid_rate, scores.age_accuracy, scores.gender_accuracy) == (1, 1, 1, 1)


@pytest.mark.model
def test_perfect_predictions_score_one_everywhere(val_rows, semantic):
    golds = [Record(**row["summary"]) for row in val_rows[:12]]
    _check_perfect(score_records(golds, golds, semantic=semantic))


@pytest.mark.parametrize("empty", [None, Record()], ids=["failed", "valid-all-na"])
@pytest.mark.model
def test_all_na_predictions_score_the_conventions(val_rows, semantic, empty):
    golds = [Record(**row["summary"]) for row in val_rows[:12]]
    scores = score_records([empty] * len(golds), golds, semantic=semantic)
    for averages in (scores.macro, scores.micro):
        # every text metric is 0: a field with gold items was missed, N/A golds are not averaged
        assert all(value == 0.0 for value in averages.model_dump().values()), averages
    values = [gold.values() for gold in golds]
    na_pairs = sum(v[name] == "N/A" for v in values for name in FIELDS)
    assert scores.na_agreement == pytest.approx(na_pairs / (len(golds) * len(FIELDS)))
    assert scores.age_accuracy == pytest.approx(sum(v["age"] == "N/A" for v in values) / len(golds))
    assert scores.gender_accuracy == pytest.approx(sum(v["gender"] == "N/A" for v in values) / len(golds))
    assert scores.schema_valid_rate == (0.0 if empty is None else 1.0)
    for name in TEXT_FIELDS:
        field = scores.fields[name]
        expected = None if field.items_gold == 0 else 0.0
        assert (field.item_precision, field.item_recall, field.item_f1) == (expected, expected, expected)
