"""Prompt-lookup drafts (benchmarks.drafts, which measures them on the real model) write exactly
what plain greedy decoding writes, in fewer model calls.

The scripted toy model of test_decoding stands in for llama.cpp, whose rows of a batch are exact
only under flash attention on a given build (benchmarks.batch_rows).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from benchmarks.drafts import Drafting
from edge_extract.decoding import DecodingSettings, SchemaDecoder
from edge_extract.schema import FIELDS

from .test_decoding import ScriptedModel


class ScoringModel(ScriptedModel):
    """The toy model, with one call scoring several tokens, and its calls counted."""

    calls = peak = 0

    def feed(self, tokens: Sequence[int]) -> np.ndarray:
        self.calls += 1
        logits = super().feed(tokens)
        self.peak = max(self.peak, len(self.context))
        return logits

    def score(self, tokens: Sequence[int]) -> np.ndarray:
        self.calls += 1
        rows = []
        for token in tokens:
            self.context.append(token)
            rows.append(self._logits())
        self.peak = max(self.peak, len(self.context))
        assert self.peak <= self.n_ctx, "scored past the end of the context"
        return np.stack(rows)


def _decode(script: dict[str, str], prompt: str, *, drafts: int, n_ctx: int = 100_000, **decoding):
    model = ScoringModel(script)
    model.n_ctx = n_ctx
    drafting = Drafting(model, score=model.score, size=drafts) if drafts else model
    values, stats = SchemaDecoder(drafting, settings=DecodingSettings(**decoding)).decode(model.tokenize(prompt))
    return values, stats, model, drafting


REPORT = "A man had fever; cough and a granuloma of the left lung, then fever again."
SCRIPT = {
    "signs_symptoms": "fever; cough; fever; cough",  # a restated item, dropped while decoding goes on
    "pathology": "granuloma of the left lung",
    "diagnosis": "granuloma of the right lung",  # a draft that breaks off part-way
    "age": "61 years",
}


def test_drafts_change_nothing_but_the_number_of_calls():
    plain, plain_stats, plain_model, _ = _decode(SCRIPT, REPORT, drafts=0)
    drafted, stats, model, drafting = _decode(SCRIPT, REPORT, drafts=4)
    assert drafted == plain
    assert stats == plain_stats
    assert model.context == plain_model.context  # the cache holds no drafted token it did not pick
    assert 0 < drafting.accepted < drafting.drafted
    assert model.calls < plain_model.calls


def test_a_draft_never_outruns_the_context():
    script = {"age": "61 years", "gender": "Male"}  # the last value written: the context ends soon after
    report = "61 years old and with a long history of fever and cough and nothing else to say here"
    n_ctx = _decode(script, report, drafts=0)[2].peak
    _, _, plain, _ = _decode(script, report, drafts=0, n_ctx=n_ctx)
    _, _, model, drafting = _decode(script, report, drafts=40, n_ctx=n_ctx)
    assert model.context == plain.context and drafting.accepted


words = st.sampled_from(["fever", "cough", "of the", "left", "lung", "; ", "N/A", '\\"', "é", "x"])


@settings(max_examples=60, deadline=None)
@given(
    report=st.lists(words, max_size=30).map("".join),
    values=st.lists(st.lists(words, max_size=12).map("".join), min_size=len(FIELDS), max_size=len(FIELDS)),
    size=st.integers(1, 8),
)
def test_any_script_decodes_the_same_with_drafts(report, values, size):
    script = dict(zip(FIELDS, values))
    plain, plain_stats, plain_model, _ = _decode(script, report, drafts=0, loop_repeats=2)
    drafted, stats, model, _ = _decode(script, report, drafts=size, loop_repeats=2)
    assert (drafted, stats, model.context) == (plain, plain_stats, plain_model.context)
