"""Several reports decoded at once (sequences.py): the same records as one at a time, faster."""

from __future__ import annotations

import threading
from collections.abc import Sequence

import numpy as np
import pytest

from edge_extract.api import load_model
from edge_extract.errors import GenerationError
from edge_extract.pipeline import extract_many
from edge_extract.reading import Report
from edge_extract.runtime import LoadSettings
from edge_extract.sequences import Sequences

# A fake shared context: what llama.cpp does is not under test here, the rendezvous is.


class FakeContext:
    n_batch = 512

    def __init__(self, fail: Exception | None = None, *, fail_prompts: int = 0) -> None:
        self.calls: list[list[tuple[int, list[int], int]]] = []
        self.removed: list[tuple[int, int]] = []
        self.fail = fail
        self.fail_prompts = fail_prompts  # how many several-token calls fail (a prompt's later chunk)

    def decode(self, requests: Sequence[tuple[int, Sequence[int], int]]) -> list[np.ndarray]:
        self.calls.append([(seq, list(tokens), n_past) for seq, tokens, n_past in requests])
        if self.fail:
            raise self.fail
        if self.fail_prompts and len(requests[0][1]) > 1:
            self.fail_prompts -= 1
            raise GenerationError("llama.cpp decode failed: 1")
        return [np.full(4, float(seq)) for seq, _, _ in requests]

    def remove(self, seq: int, start: int) -> bool:
        self.removed.append((seq, start))
        return True


class FakeRuntime:
    def __init__(self, context: FakeContext, n: int) -> None:
        self.settings = LoadSettings(n_ctx=64, sequences=n)
        self.n_ctx = 64
        self._context = context

    def shared_context(self) -> FakeContext:
        return self._context

    def tokenize(self, text: str, *, add_bos: bool = False) -> list[int]:
        return [ord(c) for c in text]

    def piece(self, token: int) -> bytes:
        return chr(token).encode()

    def is_end_of_generation(self, token: int) -> bool:
        return False


def _together(sequences: Sequences, work, *, prepare=lambda member: None) -> list:
    """Run prepare(member), then work(member), for every member in its own thread, all of them
    decoding and prepared before any works."""
    members = sequences.members
    ready = threading.Barrier(len(members))
    out: list = [None] * len(members)

    def run(index: int) -> None:
        with members[index].decoding():
            prepare(members[index])
            ready.wait()
            try:
                out[index] = work(members[index])
            except GenerationError as error:
                out[index] = error

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(members))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert not any(thread.is_alive() for thread in threads), "a member never got its step"
    return out


def test_one_token_steps_of_every_decoding_report_share_one_batch():
    context = FakeContext()
    sequences = Sequences(FakeRuntime(context, 3))  # type: ignore[arg-type]
    out = _together(sequences, lambda member: member.feed([7]), prepare=lambda member: member.start([1, 2, 3]))
    # Prompts go alone, each in its own call; the one-token step of all three in one.
    assert sorted(call[0][0] for call in context.calls if len(call[0][1]) > 1) == [0, 1, 2]
    assert context.calls[-1] == [(0, [7], 3), (1, [7], 3), (2, [7], 3)]
    assert [float(logits[0]) for logits in out] == [0.0, 1.0, 2.0]  # each its own row
    assert sequences.step_batches == {3: 1}
    assert [member.n_past for member in sequences.members] == [4, 4, 4]


@pytest.mark.parametrize("failure", [GenerationError("llama.cpp decode failed: -3"), ValueError("NULL pointer access")])
def test_a_failed_batch_fails_each_report_in_it_and_blocks_none(failure):
    context = FakeContext(fail=failure)
    sequences = Sequences(FakeRuntime(context, 2))  # type: ignore[arg-type]
    out = _together(sequences, lambda member: member.feed([7]))
    assert all(isinstance(error, GenerationError) for error in out)


def test_a_report_that_leaves_no_longer_holds_the_others_back():
    context = FakeContext()
    sequences = Sequences(FakeRuntime(context, 2))  # type: ignore[arg-type]
    first, second = sequences.members
    with first.decoding():
        pass  # decoded and gone (its report failed or ended)
    with second.decoding():
        second.feed([7])  # would wait forever for `first` if it still counted
    assert context.calls == [[(1, [7], 0)]]


def test_a_failed_prompt_leaves_nothing_in_the_cache_for_the_next_report():
    context = FakeContext(fail_prompts=1)
    sequences = Sequences(FakeRuntime(context, 2))  # type: ignore[arg-type]
    member = sequences.members[0]
    with member.decoding(), pytest.raises(GenerationError):
        member.start([1, 2, 3])
    assert context.removed == [(0, 0)] and member.n_past == 0
    with member.decoding():
        member.start([4, 5, 6])
    assert context.calls[-1] == [(0, [4, 5, 6], 0)] and member.n_past == 3


def test_stopping_fails_the_reports_in_flight_within_a_step():
    """A second Ctrl-C: a report waiting for its step (here on a report that never steps) and a
    report about to process its prompt both fail at once; afterwards decoding works again."""
    context = FakeContext()
    sequences = Sequences(FakeRuntime(context, 3))  # type: ignore[arg-type]
    waiting, prompting, idle = sequences.members
    errors: list[Exception] = []
    asked = threading.Event()

    def step() -> None:
        with waiting.decoding():
            asked.set()
            try:
                waiting.feed([7])  # waits: `idle` is decoding and has not asked for its step
            except GenerationError as error:
                errors.append(error)

    with idle.decoding():
        thread = threading.Thread(target=step)
        thread.start()
        assert asked.wait(5)
        with sequences.stopped():
            thread.join(timeout=5)
            with prompting.decoding(), pytest.raises(GenerationError, match="stopped"):
                prompting.start([1, 2, 3])
    assert not thread.is_alive() and [str(error) for error in errors] == ["stopped"]
    assert context.calls == [] and waiting.n_past == 0 and prompting.n_past == 0
    with idle.decoding():
        idle.feed([7])  # the stop is over
    assert context.calls == [[(2, [7], 0)]]


def test_a_step_outside_decoding_is_refused():
    sequences = Sequences(FakeRuntime(FakeContext(), 2))  # type: ignore[arg-type]
    with pytest.raises(GenerationError, match="outside decoding"):
        sequences.members[0].feed([7])


# With the real default model


@pytest.mark.model
@pytest.mark.slow
def test_reports_decoded_together_get_the_records_they_get_alone(extractor, val_rows):
    rows = sorted(val_rows[:20], key=lambda row: len(row["report"]))[:3]  # the shortest: seconds
    reports = [Report(id=row["id"], text=row["report"], source="-", sha256=row["id"]) for row in rows]
    alone = [extractor.extract(report) for report in reports]
    together = load_model(threads=1, concurrency=3)
    try:
        joint = {result.id: result for result in extract_many(together, reports, concurrency=3)}
        assert together.generator.sequences.step_batches.keys() - {1}  # steps were shared
    finally:
        together.runtime.close()
    for result in alone:
        other = joint[result.id]
        assert other.status == result.status == "ok"
        assert other.summary == result.summary
        assert other.confidence == result.confidence
        assert other.flags == result.flags
