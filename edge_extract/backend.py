"""An OpenAI-compatible server as the generator (`--backend URL`): llama.cpp's llama-server,
llama-cpp-python's `python -m llama_cpp.server`, vLLM. We drive them; we serve nothing.

- The prompt goes to /v1/completions, not /v1/chat/completions: the chat endpoint wraps messages
  in the server's chat template (a base GGUF such as Gemma 3 270M ships none, and
  llama-cpp-python then falls back to a llama-2 format), while a completion takes our own prompt,
  turn markers included, as it is. It is sent as text, since llama-cpp-python's server takes no
  token ids; servers parse control-token text in it, so each prompt is first checked to turn back
  into exactly the tokens the local path would feed (runtime.Vocabulary.as_text). A report that
  spells a control token (`<end_of_turn>`) would not, and fails rather than be obeyed.
- The answer is constrained by the server's structured output on that endpoint: `grammar` (GBNF of
  the record's JSON schema) for llama.cpp's server and llama-cpp-python's, `response_format` with
  the JSON schema for vLLM. Each ignores the field it does not know, and some ignore a schema they
  cannot handle (llama.cpp#24097), so every answer is validated like a local one and fails closed.
- Connection errors, timeouts and 5xx answers are retried with backoff (urllib3's Retry), 4xx
  never. A request that still fails is no fault of its report: BackendUnavailableError stops the
  run, the report gets no record, and the same command resumes.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

import urllib3
from pydantic import BaseModel, Field, ValidationError
from urllib3.util import Retry

from .decoding import DecodeStats, DecodingSettings
from .errors import BackendUnavailableError, ConfigError, GenerationError
from .generation import Decoder, Generator, retry_penalty
from .prompt import Prompt
from .runtime import LoadSettings, Vocabulary, json_schema_grammar
from .schema import record_json_schema

DEFAULT_TIMEOUT = 300.0
"""Seconds a request may take: a long answer of the default model on one CPU thread under
llama.cpp's grammar, with room to spare."""
RETRIES = 3
"""Tries after the first, at once, then 2 and 4 s later (urllib3's backoff): rides out a blip, not a
restart (resuming is for that)."""
PROBE_TIMEOUT = 30.0
"""Seconds the model listing at the start may take: it generates nothing."""
_CODE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


class _ModelCard(BaseModel):
    id: str


class _ModelList(BaseModel):
    data: list[_ModelCard]


class _Choice(BaseModel):
    text: str


class _Usage(BaseModel):
    completion_tokens: int = 0


class _Completion(BaseModel):
    choices: list[_Choice] = Field(min_length=1)
    usage: _Usage | None = None


def base_url(url: str) -> str:
    """`scheme://host:port[/prefix]` of a --backend URL, given with or without its `/v1`."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"--backend {url!r} is not an http:// or https:// URL")
    path = parts.path.rstrip("/")
    path = path.removesuffix("/v1")
    return f"{parts.scheme}://{parts.netloc}{path}"


def _error_code(data: Any) -> str:
    """The server's error code or type, when it gives one that is a plain word: never its message,
    which may quote the request, and so the report."""
    error = data.get("error") if isinstance(data, dict) else None
    if isinstance(error, dict):
        for key in ("code", "type"):
            value = error.get(key)
            if isinstance(value, (str, int)) and _CODE.match(str(value)):
                return f" ({value})"
    return ""


class ServerClient:
    """HTTP to one OpenAI-compatible server: a pool of `connections` for as many worker threads."""

    def __init__(
        self,
        url: str,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        connections: int = 1,
        retries: int = RETRIES,
        backoff: float = 1.0,
    ) -> None:
        self.url = base_url(url)
        self.timeout = timeout
        retry = Retry(
            total=retries,
            connect=retries,
            read=retries,
            status=retries,
            other=0,
            redirect=False,
            allowed_methods=None,  # every method: asking for a completion again is harmless
            status_forcelist=range(500, 600),
            backoff_factor=backoff,
            raise_on_status=False,  # the last 5xx answer comes back, to be reported
            respect_retry_after_header=False,  # our backoff, bounded, not the server's
        )
        self._http = urllib3.PoolManager(num_pools=1, maxsize=connections, retries=retry)

    def _request(self, method: str, path: str, *, body: dict[str, Any] | None, timeout: float) -> Any:
        """The answer's JSON; BackendUnavailableError for anything but a 2xx JSON answer."""
        where = f"{self.url}{path}"
        try:
            response = self._http.request(method, where, json=body, timeout=urllib3.Timeout(connect=10, read=timeout))
        except urllib3.exceptions.HTTPError as error:
            reason = getattr(error, "reason", None) or error
            raise BackendUnavailableError(f"no answer from {where}: {type(reason).__name__}") from None
        try:
            data = response.json()
        except ValueError:
            data = None
        if not 200 <= response.status < 300:
            tried = " after retries" if response.status >= 500 else ""
            raise BackendUnavailableError(
                f"{where} answered HTTP {response.status}{_error_code(data)}{tried}"
            ) from None
        if data is None:
            raise BackendUnavailableError(f"{where} did not answer JSON: not an OpenAI-compatible server")
        return data

    def served_model(self, preferred: str) -> str:
        """The model the server serves: the one named `preferred` if it serves several."""
        data = self._request("GET", "/v1/models", body=None, timeout=min(self.timeout, PROBE_TIMEOUT))
        try:
            names = [card.id for card in _ModelList.model_validate(data).data]
        except ValidationError:
            raise BackendUnavailableError(f"{self.url}/v1/models is not an OpenAI model list") from None
        if preferred in names:
            return preferred
        if len(names) == 1:
            return names[0]
        served = ", ".join(names) or "none"
        raise BackendUnavailableError(f"{self.url} serves {served}: serve one model, or the one to use as {preferred}")

    def complete(self, body: dict[str, Any]) -> _Completion:
        data = self._request("POST", "/v1/completions", body=body, timeout=self.timeout)
        try:
            return _Completion.model_validate(data)
        except ValidationError:
            raise BackendUnavailableError(f"{self.url}/v1/completions did not answer a completion") from None

    def close(self) -> None:
        self._http.clear()


class ServerGenerator(Generator):
    """The Generator (generation.py) of a served model: greedy, under the server's structured output.

    As with `--decoder grammar`, the first attempt runs without a repeat penalty, so none of
    `settings` applies but the retry's penalty; the other settings of the local decoder (length
    bounds aside, which the schema carries) have no counterpart on a server.
    """

    decoder = Decoder.server

    def __init__(
        self, client: ServerClient, vocabulary: Vocabulary, *, model: str, n_ctx: int, settings: DecodingSettings
    ) -> None:
        self.client = client
        self.vocabulary = vocabulary
        self.model = model
        self.n_ctx = n_ctx
        self.settings = settings
        schema = record_json_schema()
        self._constraint = {
            "grammar": json_schema_grammar(schema),
            "response_format": {"type": "json_schema", "json_schema": {"name": "record", "schema": schema}},
        }

    def generate(self, tokens: Sequence[int], *, retry: bool = False) -> tuple[str, DecodeStats]:
        text = self.vocabulary.as_text(tokens)
        if text is None:
            raise GenerationError(
                "this prompt cannot go to a server as text that gives the tokens the local path feeds (the report "
                "spells a control token such as <end_of_turn>, which a server would obey, or the model's tokenizer "
                "joins report and prompt text otherwise): extract it without --backend"
            )
        penalty = retry_penalty(self.settings) if retry else 1.0
        body = {
            "model": self.model,
            "prompt": text,
            "max_tokens": self.n_ctx - len(tokens),
            "temperature": 0.0,
            "top_k": 1,
            "seed": 0,
            "repeat_penalty": penalty,  # llama.cpp's name
            "repetition_penalty": penalty,  # vLLM's name
            **self._constraint,
        }
        completion = self.client.complete(body)
        generated = completion.usage.completion_tokens if completion.usage else 0
        return completion.choices[0].text, DecodeStats(
            prompt_tokens=len(tokens), generated_tokens=generated, repeat_penalty=penalty
        )


class ServedModel:
    """What the pipeline needs of a model (pipeline.PromptModel) that a server runs: the local
    manifest's tokenizer and context size. Its hashes are empty: a server does not say which bytes
    it runs (the name it reports is in every record instead); `n_threads` 0: the server's own."""

    model_sha256 = ""
    adapter_sha256: str | None = None

    def __init__(self, vocabulary: Vocabulary, client: ServerClient, *, n_ctx: int) -> None:
        self.vocabulary = vocabulary
        self.client = client
        self.settings = LoadSettings(n_ctx=n_ctx, n_threads=0)

    @property
    def n_ctx(self) -> int:
        return self.settings.n_ctx

    def tokenize_prompt(self, prompt: Prompt) -> list[int]:
        return self.vocabulary.tokenize_prompt(prompt)

    def close(self) -> None:
        self.client.close()
        self.vocabulary.close()
