"""Several reports decoded at once on one llama.cpp context (runtime.SharedContext): each report
a sequence, and the one-token steps of all of them in one batch.

Each report still runs the same SchemaDecoder in its own thread (pipeline.extract_many), on a
`Member` here instead of the Runtime. A one-token step waits until every report that is decoding
has asked for its next token; then one batch advances them all. A CPU then reads the weights once
for all of them, which is where the speed comes from. Prompts and skeleton pieces (several tokens
of one report) are decoded alone, in the same chunks as for one report, so every record is the
one the report gets alone (runtime.SharedContext says why that holds).
"""

from __future__ import annotations

import contextlib
import threading
from collections import Counter
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

import numpy as np

from .errors import GenerationError
from .runtime import reusable_prefix

if TYPE_CHECKING:
    from .runtime import Runtime


class Sequences:
    """The members of one shared context and the rendezvous of their one-token steps."""

    def __init__(self, runtime: Runtime) -> None:
        self._context = runtime.shared_context()
        self._llama = threading.Lock()  # one llama.cpp call at a time
        self._turn = threading.Condition()  # guards the three below
        self._decoding: set[int] = set()
        self._waiting: dict[int, tuple[int, int]] = {}  # sequence -> (token, tokens it holds)
        self._done: dict[int, np.ndarray | GenerationError] = {}
        self._abandoned: set[int] = set()
        self._stopped = False
        self.step_batches: Counter[int] = Counter()
        """How many one-token batches held 1, 2, ... sequences (benchmarks report it)."""
        self.members = [Member(self, runtime, seq) for seq in range(runtime.settings.sequences)]

    @contextlib.contextmanager
    def decoding(self, seq: int) -> Iterator[None]:
        """While a report decodes, the others' steps wait for its next token too."""
        with self._turn:
            self._decoding.add(seq)
        try:
            yield
        finally:
            with self._turn:
                self._decoding.discard(seq)
                self._advance_when_all_wait()

    @contextlib.contextmanager
    def stopped(self) -> Iterator[None]:
        """While inside, every step and prompt fails at once (a batch already running ends first):
        reports in flight end within a step when the user says stop now."""
        with self._turn:
            self._stopped = True
            self._turn.notify_all()
        try:
            yield
        finally:
            with self._turn:
                self._stopped = False

    def _check_stopped(self) -> None:
        if self._stopped:
            raise GenerationError("stopped")

    def step(self, seq: int, token: int, n_past: int) -> np.ndarray:
        """Append one token; returns the next-token logits once the batch it joined has run."""
        with self._turn:
            if seq not in self._decoding:
                raise GenerationError("a one-token step outside decoding")  # it would wait forever
            self._check_stopped()
            self._waiting[seq] = (token, n_past)
            self._advance_when_all_wait()
            try:
                while seq not in self._done:
                    self._check_stopped()
                    self._turn.wait()
            except BaseException:  # Ctrl-C in the waiting thread: no stale result for its next step
                if self._waiting.pop(seq, None) is None:
                    self._abandoned.add(seq)  # its batch is running: drop the result when it comes
                raise
            result = self._done.pop(seq)
        if isinstance(result, GenerationError):
            raise result
        return result

    def _advance_when_all_wait(self) -> None:
        """Run the waiting steps as one batch once no decoding report is still on its way to one.
        The caller holds `_turn`, so no report joins or leaves meanwhile."""
        if not self._waiting or len(self._waiting) < len(self._decoding):
            return
        requests = [(seq, [token], n_past) for seq, (token, n_past) in sorted(self._waiting.items())]
        self._waiting.clear()
        self.step_batches[len(requests)] += 1
        try:
            with self._llama:
                rows = self._context.decode(requests)
            results: list[np.ndarray | GenerationError] = list(rows)
        except Exception as error:  # whatever it is, every report waiting on this batch must hear of it
            failure = error if isinstance(error, GenerationError) else GenerationError(f"batch failed: {error!r}")
            results = [failure] * len(requests)
        for (seq, _, _), result in zip(requests, results):
            if seq in self._abandoned:
                self._abandoned.discard(seq)
            else:
                self._done[seq] = result
        self._turn.notify_all()

    def alone(self, seq: int, tokens: Sequence[int], n_past: int) -> np.ndarray:
        """Append several tokens of one sequence, in the chunks one report alone would use.
        Meanwhile the others' steps do not wait for this sequence (a prompt takes seconds)."""
        with self._turn:
            self._decoding.discard(seq)
            self._advance_when_all_wait()
        try:
            n_batch = self._context.n_batch
            with self._llama:
                for start in range(0, len(tokens), n_batch):
                    self._check_stopped()
                    (logits,) = self._context.decode([(seq, tokens[start : start + n_batch], n_past + start)])
        finally:
            with self._turn:
                self._decoding.add(seq)
        return logits

    def remove(self, seq: int, start: int) -> bool:
        with self._llama:
            return self._context.remove(seq, start)


class Member:
    """One sequence of a shared context, driven like a Runtime (decoding.TokenModel)."""

    def __init__(self, sequences: Sequences, runtime: Runtime, seq: int) -> None:
        self._sequences = sequences
        self._runtime = runtime
        self._seq = seq
        self._tokens: list[int] = []  # what the sequence's KV stream holds
        self.tokenize = runtime.tokenize
        self.piece = runtime.piece
        self.is_end_of_generation = runtime.is_end_of_generation

    @property
    def n_ctx(self) -> int:
        return self._runtime.n_ctx

    @property
    def n_past(self) -> int:
        return len(self._tokens)

    def decoding(self) -> contextlib.AbstractContextManager[None]:
        return self._sequences.decoding(self._seq)

    def start(self, tokens: Sequence[int]) -> np.ndarray:
        """As Runtime.start: keep the longest cached prefix, feed the rest."""
        self.truncate(reusable_prefix(self._tokens, tokens, n_ctx=self.n_ctx))
        return self.feed(tokens[len(self._tokens) :])

    def truncate(self, n_tokens: int) -> None:
        if n_tokens < len(self._tokens):
            self._cut(n_tokens)

    def _cut(self, n_tokens: int) -> None:
        """Drop the cache from `n_tokens` on; all of it where the cache refuses a partial cut."""
        if not self._sequences.remove(self._seq, n_tokens):
            n_tokens = 0
            self._sequences.remove(self._seq, 0)
        del self._tokens[n_tokens:]

    def feed(self, tokens: Sequence[int]) -> np.ndarray:
        if not tokens:
            raise GenerationError("nothing to feed")
        if len(self._tokens) + len(tokens) > self.n_ctx:
            raise GenerationError(f"answer does not fit the {self.n_ctx}-token context")
        try:
            if len(tokens) == 1:
                logits = self._sequences.step(self._seq, tokens[0], len(self._tokens))
            else:
                logits = self._sequences.alone(self._seq, tokens, len(self._tokens))
        except BaseException:
            # A failed or interrupted call may have left tokens in the cache past what this member
            # knows of (a prompt's first chunks, a step whose batch ran): they go.
            self._cut(len(self._tokens))
            raise
        self._tokens += tokens
        return logits
