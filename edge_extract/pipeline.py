"""A read Report -> prompt -> generate -> validate -> Result, one report at a time or many at once
(`extract_many`). Reading the report and writing the Result are the callers' steps (reading.py;
output.py and batch.py)."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict

from ._version import __version__
from .confidence import check_flags, field_confidence
from .decoding import DecodeStats, DecodingSettings
from .errors import BackendUnavailableError, EdgeExtractError, GenerationError, OutputInvalidError
from .evidence import Evidence, align, ungrounded_flags
from .generation import Decoder, Generator
from .injection import SUSPECTED_INJECTION, values_from_passages
from .models.manifest import Manifest
from .prompt import PROMPT_VERSION, Prompt, Strategy, render_prompt
from .reading import Report
from .runtime import LoadSettings
from .schema import Example, Record
from .validate import parse_record


class ExampleSource(Protocol):
    """Report text -> solved examples for the advanced strategy, most similar first."""

    @property
    def fingerprint(self) -> str:
        """Changes whenever the examples it gives could change (another bank, more or fewer)."""
        ...

    def __call__(self, report: str) -> Sequence[Example]: ...


class PromptModel(Protocol):
    """What the pipeline needs from a loaded model besides generation (runtime.Runtime provides it)."""

    settings: LoadSettings
    model_sha256: str
    """Measured on the bytes loaded, not copied from the manifest (so are the adapter's)."""
    adapter_sha256: str | None

    @property
    def n_ctx(self) -> int: ...
    def tokenize_prompt(self, prompt: Prompt) -> list[int]: ...
    def close(self) -> None: ...


ANSWER_ROOM = 1536
"""Context kept free for the answer: twice the longest gold answer of elmtex-open (768 Gemma
tokens; median 290). The schema decoder also caps each value at the room actually left, so an
even longer answer is cut and flagged, never overflowing the context."""


class ErrorInfo(BaseModel):
    """Why a report has no record."""

    kind: str
    message: str


class RecordedSettings(DecodingSettings):
    """The decoding settings a record was made with (the retry's penalty when it ran), then how the
    model was loaded."""

    n_ctx: int
    n_threads: int
    temperature: float = 0.0
    """Every decoder here is greedy."""


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
    restated_items: int = 0
    """Items the model began to write a second time in a list, dropped while it wrote on."""
    settings: RecordedSettings


class Result(BaseModel):
    """One report's outcome, as written to disk: a valid summary, or an error and no summary."""

    model_config = ConfigDict(extra="forbid")

    id: str
    source: str
    status: Literal["ok", "failed"]
    summary: Record | None = None
    evidence: dict[str, list[Evidence]] | None = None
    """Where each item of `summary` is in the report text (evidence.py); None in a failed result
    and in records written before evidence spans. Not a key of the resume fingerprint of its own:
    the edge-extract version is, so a new release makes records anew, and within one version an
    earlier record without evidence is kept rather than paying generation again for it."""
    confidence: dict[str, float] | None = None
    """Per field, in [0, 1], the decoder's own confidence in the value (confidence.py), in the
    published order; None in a failed result, for the grammar decoder and in records written
    before confidences (kept on resume as evidence is)."""
    flags: list[str] = []
    error: ErrorInfo | None = None
    provenance: Provenance


class Extractor:
    """A loaded model plus how to ask it: call `extract` once per report, the model stays loaded
    (and its KV cache holds the shared instruction prefix) across a whole batch.
    """

    def __init__(
        self,
        runtime: PromptModel,
        generator: Generator,
        *,
        manifest: Manifest,
        strategy: Strategy = Strategy.naive,
        examples: ExampleSource | None = None,
        n_examples: int = 3,
        model_name: str | None = None,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        """`model_name`: the model's name in records, when not the manifest's (a server's own name
        for the model it serves)."""
        if strategy is Strategy.advanced and examples is None:
            raise ValueError("the advanced strategy needs an example source")
        self.runtime = runtime
        self.generator = generator
        self.manifest = manifest
        self.strategy = strategy
        self.examples = examples
        self.n_examples = n_examples
        self.model_name = model_name or manifest.name
        self.clock = clock

    def _method(self) -> dict[str, Any]:
        """The provenance fields that say how every record of this extractor is made."""
        manifest = self.manifest
        return {
            "model": self.model_name,
            "model_sha256": self.runtime.model_sha256,
            "adapter_sha256": self.runtime.adapter_sha256,
            "prompt_version": PROMPT_VERSION,
            "prompt_format": manifest.prompt_format,
            "strategy": self.strategy.value,
            "decoder": self.generator.decoder.value,
            "edge_extract_version": __version__,
        }

    def _settings(self, stats: DecodeStats | None) -> RecordedSettings:
        decoding = self.generator.settings.model_dump()
        if stats is not None:
            decoding["repeat_penalty"] = stats.repeat_penalty
        load = self.runtime.settings
        return RecordedSettings(**decoding, n_ctx=load.n_ctx, n_threads=load.n_threads)

    @property
    def fingerprint(self) -> str:
        """Changes whenever a rerun could give a different record: the resume key of batches.

        Everything the provenance says about how records are made, and what shapes a record that
        it leaves out (the adapter's scale, the example bank, how many examples a prompt takes);
        not the thread count, which changes speed only.
        """
        key = {
            **self._method(),
            "settings": self._settings(None).model_dump(exclude={"n_threads"}),
            "adapter_scale": self.manifest.adapter.scale if self.manifest.adapter else None,
            "examples": self.examples.fingerprint if self.examples else None,
            "n_examples": self.n_examples if self.examples else None,
        }
        return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()

    def _prompt(self, text: str) -> tuple[list[int], list[str]]:
        """Prompt tokens that leave room for the longest answer, and the flags fitting cost."""
        chat = self.manifest.prompt_format
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
                if "fewer_examples" not in flags:
                    flags.append("fewer_examples")
                continue
            # Cut the report in proportion, a little more than needed, and say so in the record.
            keep = int(len(text) * room / len(tokens) * 0.95)
            if keep < 200:
                raise GenerationError(f"the {self.runtime.n_ctx}-token context is too small for this prompt")
            text = text[:keep]
            if "report_truncated" not in flags:
                flags.append("report_truncated")

    def _provenance(self, report: Report, seconds: float, stats: DecodeStats | None) -> Provenance:
        return Provenance(
            **self._method(),
            input_sha256=report.sha256,
            seconds=round(seconds, 3),
            prompt_tokens=stats.prompt_tokens if stats else 0,
            generated_tokens=stats.generated_tokens if stats else 0,
            restated_items=stats.restated_items if stats else 0,
            settings=self._settings(stats),
        )

    def extract(self, report: Report) -> Result:
        """Extract one report. Expected failures become a failed Result, never an exception.

        An invalid answer is generated once more with a stronger repeat penalty (flag `retried`);
        a second invalid answer fails the report.
        """
        started = self.clock()
        stats: DecodeStats | None = None
        flags: list[str] = []
        try:
            tokens, flags = self._prompt(report.text)
            raw, stats = self.generator.generate(tokens)
            try:
                record = parse_record(raw)
            except OutputInvalidError:
                flags.append("retried")
                raw, stats = self.generator.generate(tokens, retry=True)
                record = parse_record(raw)
            flags += [f"capped:{name}" for name in stats.capped_fields]
            flags += [f"loop:{name}" for name in stats.looped_fields]
            if values_from_passages(report.text, record):
                flags.append(SUSPECTED_INJECTION)
            # Aligned to the whole report even when the prompt held only a prefix
            # (`report_truncated`): the offsets then still index the text input_sha256 names.
            evidence = align(report.text, record)
            flags += ungrounded_flags(evidence)
            confidence = field_confidence(stats.scores, record.values())
            flags += check_flags(confidence)
            return Result(
                id=report.id,
                source=report.source,
                status="ok",
                summary=record,
                evidence=evidence,
                confidence=confidence,
                flags=flags,
                provenance=self._provenance(report, self.clock() - started, stats),
            )
        except BackendUnavailableError as error:
            # Not this report's fault: no record, the run stops, and the next run does it again.
            raise BackendUnavailableError(f"{report.id}: {error}") from None
        except EdgeExtractError as error:
            return Result(
                id=report.id,
                source=report.source,
                status="failed",
                flags=flags,
                error=ErrorInfo(kind=error.kind, message=str(error)),
                provenance=self._provenance(report, self.clock() - started, stats),
            )


def extract_many(
    extractor: Extractor,
    reports: Iterable[Report],
    *,
    concurrency: int = 1,
    should_stop: Callable[[], bool] = lambda: False,
    on_start: Callable[[Report], None] = lambda report: None,
) -> Iterator[Result]:
    """Results of `reports` as they finish, with at most `concurrency` extracting at once (worker
    threads: for a server, whose requests wait on the network; for a local model loaded for that
    many reports, whose one-token steps then share a batch: sequences.Sequences).

    No report starts once `should_stop()` says so. When one raises (a server gone), none starts
    after it, those in flight are finished and given out, and then the error is raised.
    """
    if concurrency == 1:
        for report in reports:
            if should_stop():
                return
            on_start(report)
            yield extractor.extract(report)
        return
    pending = iter(reports)
    pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="extract")
    in_flight: set[Future[Result]] = set()
    failure: BaseException | None = None
    try:
        while True:
            while failure is None and len(in_flight) < concurrency and not should_stop():
                report = next(pending, None)
                if report is None:
                    break
                on_start(report)
                in_flight.add(pool.submit(extractor.extract, report))
            if not in_flight:
                break
            done, in_flight = wait(in_flight, return_when=FIRST_COMPLETED)
            for future in done:
                error = future.exception()
                if error is None:
                    yield future.result()
                elif failure is None:
                    failure = error
    except BaseException:
        # Stopped now (a second Ctrl-C) or the consumer gone: a server's requests in flight are
        # left behind (each ends within the request timeout); a local model's reports in flight
        # are stopped within a step and waited for, since closing the model frees what their
        # threads use. Their results are dropped: a resumed batch extracts them again.
        generator = extractor.generator
        with generator.stopped():
            pool.shutdown(wait=generator.decoder is not Decoder.server, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
    if failure is not None:
        raise failure
