"""Stand-ins for a loaded model, to reach the pipeline's failure paths that a real model cannot be
made to take on purpose (an invalid answer, a failing decode); test_extract.py runs the real one."""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

from edge_extract.decoding import DecodeStats, DecodingSettings
from edge_extract.errors import EdgeExtractError
from edge_extract.generation import Decoder, Generator, retry_penalty
from edge_extract.models.manifest import Adapter, Manifest, Source
from edge_extract.prompt import Prompt
from edge_extract.runtime import LoadSettings
from edge_extract.schema import Example

FAKE_PROVENANCE = {
    "model": "fake",
    "model_sha256": "0" * 64,
    "prompt_version": "1",
    "prompt_format": "gemma",
    "strategy": "naive",
    "decoder": "schema",
    "edge_extract_version": "0",
    "input_sha256": "abc",
    "seconds": 1.0,
    "settings": {"n_ctx": 8192, "n_threads": 1},
}
"""The provenance of a hand-written record (as JSON), for tests that build Results without a model."""


def fake_manifest(**changes: object) -> Manifest:
    fields: dict[str, object] = {
        "name": "fake",
        "source": Source(kind="file"),
        "file": "fake.gguf",
        "sha256": "0" * 64,
        "prompt_format": "gemma",
        "adapter": Adapter(file="fake-adapter.gguf", sha256="1" * 64),
    }
    return Manifest.model_validate({**fields, **changes})


class WordRuntime:
    """Tokenizes a prompt into one token per word: enough to fill a context of a chosen size."""

    def __init__(
        self, *, n_ctx: int = 8192, n_threads: int = 1, model_sha256: str = "0" * 64, adapter_sha256: str = "1" * 64
    ) -> None:
        self.settings = LoadSettings(n_ctx=n_ctx, n_threads=n_threads)
        self.model_sha256 = model_sha256
        self.adapter_sha256 = adapter_sha256

    @property
    def n_ctx(self) -> int:
        return self.settings.n_ctx

    def tokenize_prompt(self, prompt: Prompt) -> list[int]:
        return [len(word) for word in prompt.text.split()]

    def close(self) -> None:
        return None


@dataclass
class ScriptedGenerator(Generator):
    """Replays queued answers in order (an exception in the queue is raised) and records each call."""

    answers: list[str | EdgeExtractError]
    decoder: Decoder = Decoder.schema
    settings: DecodingSettings = field(default_factory=DecodingSettings)
    calls: list[tuple[int, bool]] = field(default_factory=list)
    """(prompt tokens, retry) of each call."""

    def __post_init__(self) -> None:
        self._queue = deque(self.answers)

    def generate(self, tokens: Sequence[int], *, retry: bool = False) -> tuple[str, DecodeStats]:
        self.calls.append((len(tokens), retry))
        answer = self._queue.popleft()
        if isinstance(answer, EdgeExtractError):
            raise answer
        penalty = retry_penalty(self.settings) if retry else self.settings.repeat_penalty
        return answer, DecodeStats(prompt_tokens=len(tokens), generated_tokens=len(answer), repeat_penalty=penalty)


@dataclass(frozen=True)
class FixedExamples:
    """An example source that gives the same examples for every report."""

    examples: tuple[Example, ...]
    fingerprint: str = "bank-a"

    def __call__(self, report: str) -> Sequence[Example]:
        return self.examples
