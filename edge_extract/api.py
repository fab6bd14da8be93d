"""The simple functions on top of the configurable classes: load a model, extract a text."""

from __future__ import annotations

import os

from .decoding import DecodingSettings
from .generation import Decoder, make_generator
from .models.registry import Registry
from .pipeline import ExampleSource, Extractor, Result
from .prompt import Strategy
from .reading import Report, text_sha256
from .runtime import LoadSettings, Runtime, physical_cores


def load_model(
    name: str | None = None,
    *,
    threads: int | None = None,
    strategy: Strategy = Strategy.naive,
    decoder: Decoder = Decoder.schema,
    decoding: DecodingSettings | None = None,
    examples: ExampleSource | None = None,
    registry: Registry | None = None,
) -> Extractor:
    """Resolve a registered model (the default when `name` is None), check it, load it. `decoding`
    replaces the settings the model's manifest chose for it.

    Extraction is offline: the hub client is told so before anything could import it. The files'
    sha256 are checked by Runtime, on the bytes it loads, while it loads them.
    """
    os.environ["HF_HUB_OFFLINE"] = "1"
    resolved = (registry or Registry.default()).resolve(name, verify=False)
    settings = LoadSettings(n_ctx=resolved.manifest.context_size, n_threads=threads or physical_cores())
    runtime = Runtime(resolved, settings=settings)
    generator = make_generator(decoder, runtime, settings=decoding or resolved.manifest.decoding)
    return Extractor(runtime, generator, manifest=resolved.manifest, strategy=strategy, examples=examples)


def extract(text: str, *, extractor: Extractor, report_id: str = "text") -> Result:
    """Extract one report given as text."""
    return extractor.extract(Report(id=report_id, text=text, source="-", sha256=text_sha256(text)))
