"""One report through the five steps (read -> prompt -> generate -> validate -> write) -> Result."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from enum import Enum
from typing import Literal

from pydantic import BaseModel, ConfigDict

from . import __version__
from .decoding import DecodeStats, DecodingSettings, SchemaDecoder
from .errors import ConfigError, EdgeExtractError, GenerationError, OutputInvalidError
from .injection import SUSPECTED_INJECTION, values_from_passages
from .prompt import PROMPT_VERSION, Strategy, render_prompt
from .reading import Report
from .registry import Manifest
from .runtime import Runtime
from .schema import Example, Record, record_json_schema
from .validate import parse_record

ExampleSource = Callable[[str], Sequence[Example]]
"""Report text -> solved examples for the advanced strategy, most similar first."""


class Decoder(str, Enum):
    """How the answer is generated."""

    schema = "schema"
    """edge-extract's schema-driven decoding: skeleton fed, values generated (fast)."""
    grammar = "grammar"
    """llama-cpp-python's JSON-schema grammar (slow; the reference path)."""


ANSWER_ROOM = 1536
"""Context kept free for the answer: twice the longest gold answer of elmtex-open (768 Gemma
tokens; median 290). The schema decoder also caps each value at the room actually left, so an
even longer answer is cut and flagged, never overflowing the context."""
RETRY_PENALTY = 1.3
"""A second attempt after an invalid answer is pushed harder away from repeating itself."""


class ErrorInfo(BaseModel):
    """Why a report has no record."""

    kind: str
    message: str


class Provenance(BaseModel):
    """Everything needed to know how a record was made and to reproduce it."""

    model: str
    model_sha256: str
    adapter_sha256: str | None = None
    prompt_version: str
    prompt_format: str
    strategy: str
    decoder: str
    edge_extract_version: str
    input_sha256: str
    seconds: float
    prompt_tokens: int = 0
    generated_tokens: int = 0
    settings: dict[str, bool | int | float | str]


class Result(BaseModel):
    """One report's outcome, as written to disk: a valid summary, or an error and no summary."""

    model_config = ConfigDict(extra="forbid")

    id: str
    source: str
    status: Literal["ok", "failed"]
    summary: Record | None = None
    flags: list[str] = []
    error: ErrorInfo | None = None
    provenance: Provenance


def model_decoding(manifest: Manifest) -> DecodingSettings:
    """The defaults, with the settings the model's manifest chose for it."""
    try:
        return DecodingSettings(**manifest.decoding)
    except TypeError:
        known = ", ".join(DecodingSettings.__dataclass_fields__)
        raise ConfigError(
            f"model {manifest.name}: unknown decoding setting in {sorted(manifest.decoding)}; known: {known}"
        ) from None


class Extractor:
    """A loaded model plus how to ask it: call `extract` once per report, the model stays loaded
    (and its KV cache holds the shared instruction prefix) across a whole batch.
    """

    def __init__(
        self,
        runtime: Runtime,
        *,
        strategy: Strategy = Strategy.naive,
        decoder: Decoder = Decoder.schema,
        decoding: DecodingSettings | None = None,
        examples: ExampleSource | None = None,
        n_examples: int = 3,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        if strategy is Strategy.advanced and examples is None:
            raise ValueError("the advanced strategy needs an example source")
        self.runtime = runtime
        self.strategy = strategy
        self.decoder = decoder
        self.decoding = decoding or model_decoding(runtime.model.manifest)
        self.examples = examples
        self.n_examples = n_examples
        self.clock = clock
        self._schema_decoders: dict[float, SchemaDecoder] = {}

    @property
    def fingerprint(self) -> str:
        """Changes whenever a rerun could give a different record: the resume key of batches."""
        parts = [
            self.runtime.model_sha256,
            self.runtime.adapter_sha256 or "",
            PROMPT_VERSION,
            self.strategy.value,
            self.decoder.value,
            json.dumps(asdict(self.decoding), sort_keys=True),
        ]
        return "|".join(parts)

    def _prompt(self, text: str) -> tuple[list[int], list[str]]:
        """Prompt tokens that leave room for the longest answer, and the flags fitting cost."""
        chat = self.runtime.model.manifest.prompt_format
        room = self.runtime.n_ctx - ANSWER_ROOM
        examples = list(self.examples(text)[: self.n_examples]) if self.examples else []
        flags: list[str] = []
        while True:
            tokens = self.runtime.tokenize_prompt(
                render_prompt(text, chat=chat, strategy=self.strategy, examples=examples)
            )
            if len(tokens) <= room:
                return tokens, flags
            if examples:
                examples.pop()  # fewer in-context examples before cutting the report itself
                flags.append("fewer_examples")
                continue
            # Cut the report in proportion, a little more than needed, and say so in the record.
            keep = int(len(text) * room / len(tokens) * 0.95)
            if keep < 200:
                raise GenerationError(f"the {self.runtime.n_ctx}-token context is too small for this prompt")
            text = text[:keep]
            if "report_truncated" not in flags:
                flags.append("report_truncated")

    def _generate(self, tokens: list[int], penalty: float) -> tuple[str, DecodeStats]:
        if self.decoder is Decoder.grammar:
            text, generated = self.runtime.complete(
                tokens, max_tokens=self.runtime.n_ctx - len(tokens), grammar_schema=record_json_schema()
            )
            return text, DecodeStats(generated_tokens=generated, prompt_tokens=len(tokens))
        decoder = self._schema_decoders.get(penalty)
        if decoder is None:
            settings = DecodingSettings(**{**asdict(self.decoding), "repeat_penalty": penalty})
            decoder = self._schema_decoders[penalty] = SchemaDecoder(self.runtime, settings=settings)
        values, stats = decoder.decode(tokens)
        return json.dumps(values, ensure_ascii=False), stats

    def _provenance(self, report: Report, seconds: float, stats: DecodeStats | None) -> Provenance:
        manifest = self.runtime.model.manifest
        load = self.runtime.settings
        return Provenance(
            model=manifest.name,
            model_sha256=self.runtime.model_sha256,  # measured on the bytes loaded, not copied from the manifest
            adapter_sha256=self.runtime.adapter_sha256,
            prompt_version=PROMPT_VERSION,
            prompt_format=manifest.prompt_format,
            strategy=self.strategy.value,
            decoder=self.decoder.value,
            edge_extract_version=__version__,
            input_sha256=report.sha256,
            seconds=round(seconds, 3),
            prompt_tokens=stats.prompt_tokens if stats else 0,
            generated_tokens=stats.generated_tokens if stats else 0,
            settings={
                **asdict(self.decoding),
                "n_ctx": load.n_ctx,
                "n_threads": load.n_threads,
                "temperature": 0.0,
            },
        )

    def extract(self, report: Report) -> Result:
        """Extract one report. Expected failures become a failed Result, never an exception."""
        started = self.clock()
        stats: DecodeStats | None = None
        flags: list[str] = []
        try:
            tokens, flags = self._prompt(report.text)
            penalties = (self.decoding.repeat_penalty, max(RETRY_PENALTY, self.decoding.repeat_penalty))
            for attempt, penalty in enumerate(penalties):
                raw, stats = self._generate(tokens, penalty)
                try:
                    record = parse_record(raw)
                    break
                except OutputInvalidError:
                    if attempt == len(penalties) - 1:
                        raise
                    flags.append("retried")
            flags += [f"capped:{name}" for name in stats.capped_fields]
            flags += [f"loop:{name}" for name in stats.looped_fields]
            if values_from_passages(report.text, record):
                flags.append(SUSPECTED_INJECTION)
            return Result(
                id=report.id,
                source=report.source,
                status="ok",
                summary=record,
                flags=flags,
                provenance=self._provenance(report, self.clock() - started, stats),
            )
        except EdgeExtractError as error:
            return Result(
                id=report.id,
                source=report.source,
                status="failed",
                flags=flags,
                error=ErrorInfo(kind=error.kind, message=str(error)),
                provenance=self._provenance(report, self.clock() - started, stats),
            )
