"""The simple functions on top of the configurable classes: load a model, extract a text."""

from __future__ import annotations

import os

from .decoding import DecodingSettings
from .errors import ConfigError
from .generation import Decoder, make_generator
from .models.registry import Registry
from .pipeline import ExampleSource, Extractor, Result
from .prompt import Strategy
from .reading import Report, text_sha256
from .runtime import LoadSettings, Runtime, Vocabulary, physical_cores


def load_model(
    name: str | None = None,
    *,
    threads: int | None = None,
    strategy: Strategy = Strategy.naive,
    decoder: Decoder = Decoder.schema,
    decoding: DecodingSettings | None = None,
    examples: ExampleSource | None = None,
    registry: Registry | None = None,
    concurrency: int = 1,
    fold: bool = True,
) -> Extractor:
    """Resolve a registered model (the default when `name` is None), check it, load it. `decoding`
    replaces the settings the model's manifest chose for it; with `concurrency` above 1 that many
    reports decode together (concurrent `extract` calls: pipeline.extract_many). `fold=False`
    applies a folded model's adapter at load instead (what benchmarks compare the fold with).

    Extraction is offline: the hub client is told so before anything could import it. The files'
    sha256 are checked by Runtime, on the bytes it loads, while it loads them.
    """
    if decoder is Decoder.server:
        raise ConfigError("the server decoder needs a server: --backend URL (connect_backend)")
    if concurrency > 1 and decoder is not Decoder.schema:
        raise ConfigError("several reports at once (--concurrency) need the schema decoder")
    os.environ["HF_HUB_OFFLINE"] = "1"
    resolved = (registry or Registry.default()).resolve(name, verify=False, fold=fold)
    settings = LoadSettings(
        n_ctx=resolved.manifest.context_size, n_threads=threads or physical_cores(), sequences=concurrency
    )
    runtime = Runtime(resolved, settings=settings)
    generator = make_generator(decoder, runtime, settings=decoding or resolved.manifest.decoding)
    return Extractor(runtime, generator, manifest=resolved.manifest, strategy=strategy, examples=examples)


def connect_backend(
    url: str,
    name: str | None = None,
    *,
    strategy: Strategy = Strategy.naive,
    examples: ExampleSource | None = None,
    concurrency: int = 1,
    timeout: float | None = None,
    registry: Registry | None = None,
) -> Extractor:
    """An Extractor whose answers come from an OpenAI-compatible server at `url` (backend.py).

    `name` (default: the default model) is the registered model the server serves, or one with
    the same prompt format and tokenizer: its manifest gives the prompt format and context size,
    its GGUF the tokenizer (vocabulary only, checked against its sha256). Records name the model
    as the server does. Raises BackendUnavailableError when the server does not answer.
    """
    from .backend import DEFAULT_TIMEOUT, ServedModel, ServerClient, ServerGenerator

    os.environ["HF_HUB_OFFLINE"] = "1"
    resolved = (registry or Registry.default()).resolve(name, fold=False)  # the tokenizer is the base's
    manifest = resolved.manifest
    client = ServerClient(url, timeout=timeout or DEFAULT_TIMEOUT, connections=concurrency)
    served = client.served_model(manifest.name)
    vocabulary = Vocabulary(resolved.path)
    model = ServedModel(vocabulary, client, n_ctx=manifest.context_size)
    generator = ServerGenerator(
        client, vocabulary, model=served, n_ctx=manifest.context_size, settings=manifest.decoding
    )
    return Extractor(model, generator, manifest=manifest, strategy=strategy, examples=examples, model_name=served)


def extract(text: str, *, extractor: Extractor, report_id: str = "text") -> Result:
    """Extract one report given as text."""
    return extractor.extract(Report(id=report_id, text=text, source="-", sha256=text_sha256(text)))
