"""The only importer of llama_cpp: load a GGUF, tokenize, feed tokens with prefix reuse, read logits.

Every llama.cpp setting edge-extract uses is set here, explicitly, never taken from library
defaults (llama-cpp-python defaults to verbose=True and n_ctx=512).
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import sys
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from .errors import GenerationError, ModelError
from .files import sha256_file

if TYPE_CHECKING:
    from .prompt import Prompt

GGUF_MAGIC = b"GGUF"


class ModelFiles(Protocol):
    """The files a Runtime loads and the sha256 each must have (models.ResolvedModel is one)."""

    @property
    def path(self) -> Path: ...
    @property
    def sha256(self) -> str: ...
    @property
    def adapter_path(self) -> Path | None: ...
    @property
    def adapter_sha256(self) -> str | None: ...
    @property
    def adapter_scale(self) -> float: ...


def reusable_prefix(cached: Sequence[int], tokens: Sequence[int], *, n_ctx: int) -> int:
    """How many of `tokens` a context holding `cached` keeps when it is made to hold `tokens`:
    the common prefix, less at least one token, whose logits are needed."""
    if len(tokens) >= n_ctx:
        raise GenerationError(f"prompt of {len(tokens)} tokens does not fit the {n_ctx}-token context")
    common = 0
    for old, new in zip(cached, tokens):
        if old != new:
            break
        common += 1
    return min(common, len(tokens) - 1)


def physical_cores() -> int:
    """Physical cores, not hyper-threads: llama.cpp decoding is memory-bound and slows when
    two threads share a core. Falls back to the logical count where the topology is hidden."""
    logical = os.cpu_count() or 1
    try:
        cores = set()
        for line in Path("/proc/cpuinfo").read_text().split("\n\n"):
            fields = dict(part.split(":", 1) for part in line.splitlines() if ":" in part)
            fields = {k.strip(): v.strip() for k, v in fields.items()}
            if "core id" in fields:
                cores.add((fields.get("physical id", "0"), fields["core id"]))
        return max(1, min(len(cores) or logical, logical))
    except OSError:
        return logical


def peak_rss_mb() -> float | None:
    """This process's peak resident memory so far, MB; None where the platform does not say (Windows)."""
    try:
        import resource
    except ImportError:
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024  # macOS counts bytes, Linux KiB


def system_info() -> str:
    """llama.cpp's build summary, e.g. "CPU : SSE3 = 1 | AVX2 = 1 | ...": the instruction sets its
    CPU backend was compiled for (what `edge-extract doctor` compares with the CPU)."""
    import llama_cpp

    return llama_cpp.llama_print_system_info().decode("utf-8", "replace").strip()


@dataclass(frozen=True)
class LoadSettings:
    """How a model is loaded. Recorded with every result.

    Attributes:
        n_ctx: context window in tokens (prompt plus answer); the model manifest's context_size.
        n_threads: CPU threads for decoding and prompt processing.
        n_batch: tokens per llama_decode call when processing a prompt.
        flash_attention: llama.cpp's flash attention. Off: on this CPU it was no faster, and it
            changes the logits in the last bits (benchmarks.drafts turns it on: drafts need it).
        gpu_layers: layers offloaded to a GPU when llama.cpp was built with one (-1: all).
        seed: sampler seed; greedy decoding does not use it, but the grammar path records it.
        sequences: reports decoded at once (`SharedContext`), each with a KV cache of n_ctx
            tokens; 1 decodes in the Runtime's own context.
    """

    n_ctx: int
    n_threads: int = 1
    n_batch: int = 512
    flash_attention: bool = False
    gpu_layers: int = -1
    seed: int = 0
    sequences: int = 1


def has_gguf_magic(path: Path) -> bool:
    """Whether a file starts as every GGUF does; a cheap first check (raises OSError)."""
    with path.open("rb") as handle:
        return handle.read(len(GGUF_MAGIC)) == GGUF_MAGIC


def check_sha256(path: Path, *, expected: str, actual: str) -> None:
    """Refuse a file whose measured sha256 is not the manifest's (bit rot, a swapped or cut file)."""
    if actual != expected:
        raise ModelError(
            f"{path.name} is corrupted or not the expected file: sha256 {actual[:12]}... "
            f"but the manifest says {expected[:12]}...; delete it and run `edge-extract models verify`"
        )


def check_gguf(path: Path) -> dict[str, str]:
    """Refuse a file that is not a GGUF llama.cpp can read, with a one-line reason; return its
    metadata (architecture, name, ...)."""
    try:
        is_gguf = has_gguf_magic(path)
    except OSError as error:
        raise ModelError(f"cannot read model file {path}: {error.strerror}") from error
    if not is_gguf:
        raise ModelError(f"{path.name} is not a GGUF model file")
    with _quiet_llama():
        import llama_cpp

        try:
            vocab = llama_cpp.Llama(model_path=str(path), vocab_only=True, verbose=False)
        except (ValueError, RuntimeError) as error:
            raise ModelError(f"llama.cpp cannot read {path.name}: {error}") from error
        metadata = dict(vocab.metadata)
        vocab.close()
        return metadata


@contextlib.contextmanager
def _quiet_llama() -> Iterator[None]:
    """Silence llama.cpp's C-level logging on stderr (it writes metadata, which is noise here)."""
    import llama_cpp

    def _drop(level: int, text: bytes, user_data: ctypes.c_void_p) -> None:
        return None

    callback = llama_cpp.llama_log_callback(_drop)
    llama_cpp.llama_log_set(callback, ctypes.c_void_p(0))
    _quiet_llama.keep = callback  # type: ignore[attr-defined]  # must outlive the C side's use
    yield


def _hashes(model: ModelFiles) -> tuple[str, str | None]:
    """sha256 of the model file and of its adapter, if any."""
    return sha256_file(model.path), sha256_file(model.adapter_path) if model.adapter_path else None


class Runtime:
    """A loaded GGUF model and its context: the decoders drive it token by token.

    Attributes:
        model_sha256, adapter_sha256: hashes of the files as this process loaded them, measured
            while llama.cpp loads (hashing and loading both release the GIL, so the check costs
            little wall time); a file that differs from its manifest is refused.
    """

    def __init__(self, model: ModelFiles, *, settings: LoadSettings) -> None:
        self.model = model
        self.settings = settings
        with ThreadPoolExecutor(max_workers=1) as pool:
            hashing = pool.submit(_hashes, model)
            self._load(model, settings)
            try:
                self.model_sha256, self.adapter_sha256 = hashing.result()
            except OSError as error:
                self._llm.close()
                raise ModelError(f"cannot read model file {model.path}: {error.strerror}") from error
        try:
            check_sha256(model.path, expected=model.sha256, actual=self.model_sha256)
            if model.adapter_path is not None and model.adapter_sha256 is not None:
                check_sha256(model.adapter_path, expected=model.adapter_sha256, actual=self.adapter_sha256 or "")
        except ModelError:
            self._llm.close()
            raise

    def _load(self, model: ModelFiles, settings: LoadSettings) -> None:
        with _quiet_llama():
            import llama_cpp

            check_gguf(model.path)
            try:
                self._llm = llama_cpp.Llama(
                    model_path=str(model.path),
                    # With several sequences the own context only tokenizes: keep its cache small.
                    n_ctx=settings.n_ctx if settings.sequences == 1 else settings.n_batch,
                    n_batch=settings.n_batch,
                    n_ubatch=settings.n_batch,
                    n_threads=settings.n_threads,
                    n_threads_batch=settings.n_threads,
                    n_gpu_layers=settings.gpu_layers,
                    seed=settings.seed,
                    lora_path=str(model.adapter_path) if model.adapter_path else None,
                    lora_scale=model.adapter_scale,
                    logits_all=False,
                    # Full-size sliding-window cache, so the KV cache can be cut back to any
                    # prefix (prefix reuse across reports, rewinding a runaway value).
                    swa_full=True,
                    flash_attn=settings.flash_attention,
                    verbose=False,
                )
            except (ValueError, RuntimeError) as error:
                raise ModelError(f"llama.cpp could not load {model.path.name}: {error}") from error
        self._llama_cpp = llama_cpp
        self._vocab = self._llm._model.vocab
        self.n_vocab = self._llm.n_vocab()
        self._pieces: dict[int, bytes] = {}
        self._shared: list[SharedContext] = []

    @property
    def n_ctx(self) -> int:
        """Tokens one report's prompt and answer can hold (with several sequences, each's)."""
        return self.settings.n_ctx

    @property
    def n_past(self) -> int:
        """Tokens now in the context."""
        return self._llm.n_tokens

    def close(self) -> None:
        """Free the model and contexts now rather than at garbage collection."""
        for context in self._shared:
            context.close()  # before the model they use
        self._llm.close()

    def shared_context(self) -> SharedContext:
        """A context for `settings.sequences` reports at once, on this Runtime's model and adapter."""
        context = SharedContext(self._llm, self._llama_cpp, self.settings)
        self._shared.append(context)
        return context

    def tokenize(self, text: str, *, add_bos: bool = False) -> list[int]:
        """Token ids of text as plain text: `<end_of_turn>` written in it stays characters."""
        return self._llm.tokenize(text.encode("utf-8"), add_bos=add_bos, special=False)

    def tokenize_prompt(self, prompt: Prompt) -> list[int]:
        return _prompt_tokens(self._llm, prompt)

    def piece(self, token: int) -> bytes:
        """The bytes a token stands for; empty for control tokens (end of turn, unused ids)."""
        cached = self._pieces.get(token)
        if cached is None:
            buffer = ctypes.create_string_buffer(64)
            size = self._llama_cpp.llama_token_to_piece(self._vocab, token, buffer, 64, 0, False)
            if size < 0:
                buffer = ctypes.create_string_buffer(-size)
                size = self._llama_cpp.llama_token_to_piece(self._vocab, token, buffer, -size, 0, False)
            cached = buffer.raw[:size]
            self._pieces[token] = cached
        return cached

    def is_end_of_generation(self, token: int) -> bool:
        return bool(self._llama_cpp.llama_vocab_is_eog(self._vocab, token))

    def start(self, tokens: Sequence[int]) -> np.ndarray:
        """Make the context hold exactly `tokens`, reusing the longest cached prefix; return the
        logits for the next token.

        Consecutive reports share the instruction prefix, so only the rest is processed: this
        halves prompt time after the first report. State copies (LlamaRAMCache, save_state) are
        avoided on purpose: each copies about 1 MiB of scores per token.
        """
        self.truncate(reusable_prefix(self._llm.input_ids[: self._llm.n_tokens], tokens, n_ctx=self.n_ctx))
        return self.feed(tokens[self._llm.n_tokens :])

    def truncate(self, n_tokens: int) -> None:
        """Drop every token after the first `n_tokens` from the context."""
        if n_tokens < self._llm.n_tokens and not self._llm._ctx.kv_cache_seq_rm(-1, n_tokens, -1):
            n_tokens = 0  # the cache refused a partial cut: start over
            self._llm.reset()
            self._llm._ctx.kv_cache_seq_rm(-1, 0, -1)
        self._llm.n_tokens = n_tokens

    def feed(self, tokens: Sequence[int]) -> np.ndarray:
        """Append tokens to the context (as a batch) and return the next-token logits.

        The array is a view into llama.cpp's buffer, valid until the next call: copy it to keep it.
        """
        if not tokens:
            raise GenerationError("nothing to feed")
        if self._llm.n_tokens + len(tokens) > self.n_ctx:
            raise GenerationError(f"answer does not fit the {self.n_ctx}-token context")
        try:
            self._llm.eval(list(tokens))
        except RuntimeError as error:
            raise GenerationError(f"llama.cpp decode failed: {error}") from error
        pointer = self._llm._ctx.get_logits_ith(-1)
        return np.ctypeslib.as_array(pointer, shape=(self.n_vocab,))

    def complete(
        self,
        tokens: Sequence[int],
        *,
        max_tokens: int,
        grammar_schema: dict[str, Any] | None,
        repeat_penalty: float = 1.0,
    ) -> tuple[str, int]:
        """llama-cpp-python's own sampling loop, greedy: free text, or constrained by its stock
        JSON-schema grammar. The reference path for benchmarks and `--decoder grammar`; its
        repeat penalty (1.0: off) acts on every token of the last 64, punctuation included.

        Returns the text and the number of generated tokens.
        """
        grammar = None
        if grammar_schema is not None:
            grammar = self._llama_cpp.LlamaGrammar.from_string(json_schema_grammar(grammar_schema), verbose=False)
        try:
            response = self._llm.create_completion(
                list(tokens),
                max_tokens=max_tokens,
                temperature=0.0,
                top_k=1,
                repeat_penalty=repeat_penalty,
                grammar=grammar,
                seed=self.settings.seed,
            )
        except (RuntimeError, ValueError) as error:
            raise GenerationError(f"llama.cpp generation failed: {error}") from error
        return response["choices"][0]["text"], response["usage"]["completion_tokens"]


class SharedContext:
    """One llama.cpp context holding several sequences, each in its own KV stream (llama.cpp's
    non-unified cache), so that one `llama_decode` advances several reports at once.

    Why records stay what one report at a time writes: on this CPU a sequence's row in a batch
    of one token per sequence equals, bit for bit, the row the sequence would get alone (measured
    for 2, 4 and 8 sequences, 20 steps each), because every stream computes its own attention and
    the weight products are row by row. Several rows of one sequence in one batch are another
    matter (`decode` takes them one sequence per call): their attention rows differ in the last
    bits from one-token steps, as do a unified cache's.

    Not thread-safe: sequences.Sequences serializes the calls. Runtime.close closes it.
    """

    def __init__(self, llm: Any, llama_cpp: Any, settings: LoadSettings) -> None:
        from llama_cpp import _internals

        params = type(llm.context_params).from_buffer_copy(llm.context_params)
        params.n_ctx = settings.n_ctx * settings.sequences
        params.n_seq_max = settings.sequences
        params.kv_unified = False
        self.n_batch = settings.n_batch
        self.n_vocab = llm.n_vocab()
        with _quiet_llama():
            try:
                self._ctx = _internals.LlamaContext(model=llm._model, params=params, verbose=False)
            except ValueError as error:
                raise ModelError(
                    f"llama.cpp could not make a context for {settings.sequences} reports: {error}"
                ) from error
            if llm._lora_adapter is not None:
                adapters = (llama_cpp.llama_adapter_lora_p_ctypes * 1)(llm._lora_adapter)
                scales = (ctypes.c_float * 1)(llm.lora_scale)
                if llama_cpp.llama_set_adapters_lora(self._ctx.ctx, adapters, 1, scales):
                    self._ctx.close()
                    raise ModelError("llama.cpp could not apply the adapter to a context for several reports")
        self._batch = _internals.LlamaBatch(
            n_tokens=settings.n_batch, embd=0, n_seq_max=settings.sequences, verbose=False
        )

    def decode(self, requests: Sequence[tuple[int, Sequence[int], int]]) -> list[np.ndarray]:
        """Append tokens to sequences in one batch: (sequence, tokens, tokens it holds already)
        each; returns a copy of the next-token logits of each sequence, in request order."""
        batch = self._batch.batch
        batch.n_tokens = 0
        last = []
        for seq, tokens, n_past in requests:
            for offset, token in enumerate(tokens):
                row = batch.n_tokens
                batch.token[row] = token
                batch.pos[row] = n_past + offset
                batch.seq_id[row][0] = seq
                batch.n_seq_id[row] = 1
                batch.logits[row] = offset == len(tokens) - 1
                batch.n_tokens += 1
            last.append(batch.n_tokens - 1)
        try:
            self._ctx.decode(self._batch)
        except RuntimeError as error:
            raise GenerationError(f"llama.cpp decode failed: {error}") from error
        return [np.ctypeslib.as_array(self._ctx.get_logits_ith(row), shape=(self.n_vocab,)).copy() for row in last]

    def remove(self, seq: int, start: int) -> bool:
        """Drop a sequence's tokens from position `start` on; False when the cache refused."""
        return bool(self._ctx.kv_cache_seq_rm(seq, start, -1))

    def close(self) -> None:
        self._batch.close()
        self._ctx.close()


def _prompt_tokens(llm: Any, prompt: Prompt) -> list[int]:
    """BOS, then each part: our chat markers become special tokens, report text never does."""
    tokens = [llm.token_bos()]
    for part in prompt.parts:
        tokens += llm.tokenize(part.text.encode("utf-8"), add_bos=False, special=not part.data)
    return tokens


class Vocabulary:
    """A GGUF's tokenizer alone (llama.cpp's vocab_only load: no weights, no context), for a model
    that runs elsewhere: the prompt tokens the local path would feed, and their text for a server."""

    def __init__(self, path: Path) -> None:
        check_gguf(path)
        with _quiet_llama():
            import llama_cpp

            try:
                self._llm = llama_cpp.Llama(model_path=str(path), vocab_only=True, verbose=False)
            except (ValueError, RuntimeError) as error:
                raise ModelError(f"llama.cpp cannot read {path.name}: {error}") from error
        # Worker threads tokenize concurrently; llama.cpp promises nothing for one vocab, and a
        # lock costs nothing next to a request.
        self._lock = threading.Lock()

    def tokenize_prompt(self, prompt: Prompt) -> list[int]:
        with self._lock:
            return _prompt_tokens(self._llm, prompt)

    def as_text(self, tokens: Sequence[int]) -> str | None:
        """The prompt as text that a server, tokenizing it as servers do (BOS added, special-token
        text parsed as control tokens), turns into exactly `tokens`; None when no such text
        exists: when report text spells a control token such as `<end_of_turn>`, or where the
        tokenizer merges across the seams of a prompt's parts (Qwen's joins a report's last `.`
        with our next line break; Gemma's never did on elmtex-open)."""
        # Our prompts open with BOS; a server adds it itself only where the vocabulary says so
        # (Gemma, Llama), so elsewhere (Qwen) it is written out as text.
        added = self._llm._model.add_bos_token()
        with self._lock:
            text = self._llm.detokenize(list(tokens[1:] if added else tokens), special=True).decode("utf-8", "replace")
            same = self._llm.tokenize(text.encode("utf-8"), add_bos=True, special=True) == list(tokens)
        return text if same else None

    def close(self) -> None:
        self._llm.close()


def json_schema_grammar(schema: dict[str, Any]) -> str:
    """GBNF for a JSON schema via llama-cpp-python's converter, with its string rule fixed.

    The converter's `char` rule lets raw control characters (newlines) into strings, and then
    `json.loads` fails with "Invalid control character"; JSON forbids them, so the grammar does too.
    """
    from llama_cpp.llama_grammar import json_schema_to_gbnf

    gbnf = json_schema_to_gbnf(json.dumps(schema))
    loose = r'char ::= [^"\\] |'
    if loose not in gbnf:
        raise RuntimeError("llama-cpp-python's grammar converter changed: review json_schema_grammar")
    return gbnf.replace(loose, r'char ::= [^"\\\x7F\x00-\x1F] |')
