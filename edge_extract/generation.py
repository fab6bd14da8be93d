"""The generator seam: prompt tokens in, the raw answer and its decoding statistics out.

The pipeline knows only this protocol. edge-extract's schema-driven decoder and llama.cpp's
JSON-schema grammar are its two implementations; tests replay scripted answers through it.
"""

from __future__ import annotations

import contextlib
import json
import queue
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Protocol

from .decoding import DecodeStats, DecodingSettings, SchemaDecoder
from .schema import record_json_schema
from .sequences import Sequences

if TYPE_CHECKING:
    from .decoding import TokenModel
    from .runtime import Runtime

RETRY_PENALTY_STEP = 0.2
"""A second attempt after an invalid answer decodes with a repeat penalty this much stronger than
the model's own (1.1 -> 1.3 for the default): decoding is greedy, so the same settings would only
write the same answer again."""


class Decoder(str, Enum):
    """How the answer is generated."""

    schema = "schema"
    """edge-extract's schema-driven decoding: skeleton fed, values generated (fast)."""
    grammar = "grammar"
    """llama-cpp-python's JSON-schema grammar (slow; the reference path)."""
    server = "server"
    """An OpenAI-compatible server's structured output (`--backend`; backend.ServerGenerator)."""


class Generator(Protocol):
    """Prompt tokens in, the raw answer and what decoding it cost out.

    Implementations subclass it to inherit `stopped`, which only a generator with reports in
    flight that it can stop overrides.
    """

    decoder: Decoder
    """Recorded with every result."""
    settings: DecodingSettings
    """The settings it was made with: recorded with every result, part of the resume key."""

    def generate(self, tokens: Sequence[int], *, retry: bool = False) -> tuple[str, DecodeStats]:
        """The answer to a prompt that ends where the answer starts.

        Args:
            retry: the previous answer to this prompt was invalid: decode with a stronger repeat
                penalty (the stats say which one was used).

        Raises:
            GenerationError: the model could not produce an answer.
        """
        ...

    def stopped(self) -> contextlib.AbstractContextManager[None]:
        """While inside, reports generating at once fail soon instead of running to their end (a
        second Ctrl-C). By default nothing is stopped: one report at a time has nothing in flight,
        and a server's requests end on their own."""
        return contextlib.nullcontext()


def retry_penalty(settings: DecodingSettings) -> float:
    # Rounded so that records say 1.3, not 1.3000000000000003.
    return round(settings.repeat_penalty + RETRY_PENALTY_STEP, 6)


@dataclass(frozen=True)
class _Lane:
    """A model one report at a time decodes on, with its decoders (first try, retry)."""

    decoders: dict[bool, SchemaDecoder]
    decoding: Callable[[], contextlib.AbstractContextManager[None]]


class SchemaGenerator(Generator):
    """edge-extract's schema-driven decoding (decoding.SchemaDecoder), with the model's settings.

    With `runtime.settings.sequences` above 1, that many reports decode at once (concurrent
    `generate` calls, sequences.Sequences); otherwise calls take turns on the Runtime.
    """

    decoder = Decoder.schema

    def __init__(self, runtime: Runtime, *, settings: DecodingSettings) -> None:
        self.settings = settings
        retry = settings.model_copy(update={"repeat_penalty": retry_penalty(settings)})
        self._lanes: queue.SimpleQueue[_Lane] = queue.SimpleQueue()
        self.sequences = Sequences(runtime) if runtime.settings.sequences > 1 else None
        models: list[tuple[TokenModel, Callable[[], contextlib.AbstractContextManager[None]]]]
        if self.sequences is None:
            models = [(runtime, contextlib.nullcontext)]
        else:
            models = [(member, member.decoding) for member in self.sequences.members]
        for model, decoding in models:
            decoders = {False: SchemaDecoder(model, settings=settings), True: SchemaDecoder(model, settings=retry)}
            self._lanes.put(_Lane(decoders, decoding))

    def stopped(self) -> contextlib.AbstractContextManager[None]:
        """While inside, reports decoding at once fail within a step (sequences.Sequences.stopped);
        one report at a time has nothing in flight to stop."""
        return self.sequences.stopped() if self.sequences else contextlib.nullcontext()

    def generate(self, tokens: Sequence[int], *, retry: bool = False) -> tuple[str, DecodeStats]:
        lane = self._lanes.get()
        try:
            with lane.decoding():
                values, stats = lane.decoders[retry].decode(tokens)
        finally:
            self._lanes.put(lane)
        return json.dumps(values, ensure_ascii=False), stats


class GrammarGenerator(Generator):
    """llama-cpp-python's own greedy sampling under its JSON-schema grammar.

    A reference path: the first attempt runs llama.cpp's stock sampling with no repeat penalty, so
    none of `settings` applies but the retry's penalty.
    """

    decoder = Decoder.grammar

    def __init__(self, runtime: Runtime, *, settings: DecodingSettings) -> None:
        self.runtime = runtime
        self.settings = settings

    def generate(self, tokens: Sequence[int], *, retry: bool = False) -> tuple[str, DecodeStats]:
        penalty = retry_penalty(self.settings) if retry else 1.0
        text, generated = self.runtime.complete(
            tokens,
            max_tokens=self.runtime.n_ctx - len(tokens),
            grammar_schema=record_json_schema(),
            repeat_penalty=penalty,
        )
        return text, DecodeStats(generated_tokens=generated, prompt_tokens=len(tokens), repeat_penalty=penalty)


def make_generator(decoder: Decoder, runtime: Runtime, *, settings: DecodingSettings) -> Generator:
    """The generator of a local decoder (never Decoder.server: backend.ServerGenerator), on a loaded model."""
    if decoder is Decoder.grammar:
        return GrammarGenerator(runtime, settings=settings)
    return SchemaGenerator(runtime, settings=settings)
