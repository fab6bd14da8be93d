"""The extractor a command asked for: a local model, or a server (--backend)."""

from __future__ import annotations

from ..api import connect_backend, load_model
from ..errors import ConfigError
from ..generation import Decoder
from ..pipeline import ExampleSource, Extractor
from ..prompt import Strategy


def load_extractor(
    model: str | None,
    *,
    threads: int | None,
    strategy: Strategy = Strategy.naive,
    decoder: Decoder | None = None,
    examples: ExampleSource | None = None,
    backend: str | None = None,
    concurrency: int = 1,
    timeout: float | None = None,
) -> Extractor:
    """Refuses options that do nothing for the chosen kind (--threads aside: eval's scorer uses it)."""
    if backend is None:
        if timeout is not None:
            raise ConfigError("--timeout needs --backend: it bounds a server request")
        return load_model(
            model,
            threads=threads,
            strategy=strategy,
            decoder=decoder or Decoder.schema,
            examples=examples,
            concurrency=concurrency,
        )
    if decoder not in (None, Decoder.server):
        raise ConfigError(
            "--decoder is for local models: with --backend the server decodes, under its structured output"
        )
    return connect_backend(
        backend, model, strategy=strategy, examples=examples, concurrency=concurrency, timeout=timeout
    )
