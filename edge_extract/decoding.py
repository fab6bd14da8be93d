"""Schema-driven decoding: the program writes the JSON skeleton, the model writes only the values.

For our fixed flat schema there is nothing for a grammar to decide between the values: the keys,
quotes and separators are known. So they are fed to the model as prompt (one batched call per
field, cheap), and only the string values are generated, each bounded in length and ended by an
unescaped closing quote. No vocabulary-wide grammar check runs per token, so decoding runs at the
model's raw speed, and the result is valid JSON by construction.

Repetition control (a llama.cpp-style repeat penalty and a loop detector) acts inside values only,
never on the skeleton, since the skeleton is not sampled at all.

Each value also gets a score, the decoder's own confidence in it, from the same logits it picked
from (`SchemaDecoder._free_value`, `_choice`); it only observes decoding and never changes a value.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from .schema import FIELD_MAX_CHARS, FIELDS, GENDERS, NA, items

CHOICE_FIELDS: dict[str, tuple[str, ...]] = {"gender": GENDERS}
"""Fields whose value is one of a closed set: the decoder picks among the options."""

_QUOTE, _BACKSLASH = 0x22, 0x5C
_EXEMPT_PIECE = re.compile(rb"^[\s;,.:()\-/]*$")
_BAD_ESCAPE = re.compile(r'\\(?!["\\/bfnrt]|u[0-9a-fA-F]{4})')


class TokenModel(Protocol):
    """What the decoder needs from a loaded model (runtime.Runtime provides it)."""

    @property
    def n_past(self) -> int: ...
    @property
    def n_ctx(self) -> int: ...
    def tokenize(self, text: str, *, add_bos: bool = False) -> list[int]: ...
    def piece(self, token: int) -> bytes: ...
    def is_end_of_generation(self, token: int) -> bool: ...
    def start(self, tokens: Sequence[int]) -> np.ndarray: ...
    def feed(self, tokens: Sequence[int]) -> np.ndarray: ...
    def truncate(self, n_tokens: int) -> None: ...


class DecodingSettings(BaseModel):
    """Decoding settings, recorded with every result; a model's manifest and a training config
    carry the ones chosen for that model (only those set there are written back).

    Attributes:
        repeat_penalty: llama.cpp-style penalty on tokens already in the current value (1.0: off).
            1.1 cut runaway values of a quick 270M LoRA from 19 to 2 in 84 reports.
        repeat_last_n: how many of the value's latest tokens the penalty looks at.
        loop_repeats: a token run repeated this many times in a row ends the value (0: off).
        stop_at_restated_item: keep a list value from restating one of its items (longer-range
            repetition than the loop detector sees): the restatement is dropped.
        restated_item_retries: how often, in one value, a restatement is dropped and the model,
            barred from the token that began it, writes on; once more ends the value there, with a
            `loop:` flag (0: end at the first restatement).
        chars_per_token_bound: tokens allowed per value = max chars of the field / this.
        absent_bias: subtracted from the logit of "N/A"'s first token where a value starts (0: off).
            A small fine-tune says N/A too readily (it is the most frequent value in training);
            a bias chosen on validation data trades that back for recall.
    """

    # Frozen: extractors share one instance. Lax ints: 32.0 from a JSON manifest is the int 32.
    model_config = ConfigDict(extra="forbid", frozen=True)

    # Bounded so that a typo in a manifest or `--decoding` is refused by name, not decoded with:
    # a bias past 20 logits forbids or forces N/A outright, and 1e9 or nan would do so silently.
    repeat_penalty: float = Field(1.1, ge=1.0, le=10.0)
    repeat_last_n: int = Field(64, ge=0)
    loop_repeats: int = Field(3, ge=0)
    stop_at_restated_item: bool = True
    restated_item_retries: int = Field(2, ge=0)
    chars_per_token_bound: float = Field(1.5, gt=0.0, le=100.0)
    absent_bias: float = Field(0.0, ge=-20.0, le=20.0)

    @field_validator("loop_repeats")
    @classmethod
    def _loop_needs_a_repeat(cls, value: int) -> int:
        # One occurrence is no loop: 1 would end every value at its second token.
        if value == 1:
            raise ValueError("must be 0 (off) or at least 2")
        return value


@dataclass
class DecodeStats:
    """What happened while decoding one record."""

    generated_tokens: int = 0
    prompt_tokens: int = 0
    repeat_penalty: float = 1.0
    """The repeat penalty the answer was decoded with (1.0: none)."""
    fed_tokens: int = 0
    capped_fields: list[str] = field(default_factory=list)
    """Fields cut at their length bound."""
    looped_fields: list[str] = field(default_factory=list)
    """Fields where a repetition loop was detected and cut back."""
    restated_items: int = 0
    """Restated items dropped while the model wrote on (`restated_item_retries`)."""
    scores: dict[str, float] = field(default_factory=dict)
    """Per field, the decoder's confidence in its value, in [0, 1] (`SchemaDecoder`)."""


def skeleton_before(index: int) -> str:
    """The JSON text the program writes before value `index` (after value index-1's content)."""
    key = json.dumps(FIELDS[index])
    return "{" + key + ': "' if index == 0 else '", ' + key + ': "'


def _loop_length(tokens: Sequence[int], repeats: int) -> int:
    """Length of a run that ends the sequence and repeats `repeats` times in a row, else 0."""
    for size in range(1, 17):
        needed = size * (repeats if size > 1 else 2 * repeats)
        if len(tokens) < needed:
            break
        tail = tokens[-needed:]
        if all(tail[i] == tail[i % size] for i in range(needed)):
            return size
    return 0


RESTATED_MIN_WORDS = 4
"""An unfinished item restating an earlier one this long is a loop already: legitimate items
often extend a short earlier one ("fever", then "fever of 39 C"), rarely a long one."""


def _item_key(item: str) -> str:
    """What two items must share to be the same item: case and spacing do not count."""
    return " ".join(item.casefold().split())


def _normal_items(raw: bytes) -> list[str]:
    return [_item_key(part.decode("utf-8", "ignore")) for part in raw.split(b";")]


def restated_item_start(raw: bytes) -> int | None:
    """Byte offset where the value's latest item starts if that item restates an earlier one, else None.

    The latest item restates when, just completed (a ";" follows it), it equals an earlier item, or
    when, still unfinished, it already spells out an earlier item of RESTATED_MIN_WORDS words or more.

    Example:
        >>> restated_item_start(b"fever; cough; fever;")
        13
        >>> restated_item_start(b"fever; cough; fever of 39 C;") is None
        True
    """
    *done, current = _normal_items(raw)
    if len(done) >= 2 and done[-1] and done[-1] in done[:-1]:
        return raw.rfind(b";", 0, len(raw.rstrip(b" ")) - 1) + 1
    if current and len(current.split()) >= RESTATED_MIN_WORDS and current in done:
        return raw.rfind(b";") + 1
    return None


def _ends_in_escape(raw: bytes) -> bool:
    r"""Whether a JSON string body ends inside an escape (an odd run of backslashes).

    Example:
        >>> [_ends_in_escape(b"a" + b"\\" * n) for n in (1, 2, 3)]
        [True, False, True]
    """
    return (len(raw) - len(raw.rstrip(b"\\"))) % 2 == 1


def json_string_content(raw: bytes) -> str:
    """Decode a JSON string body written by the model into text, never failing.

    Lone backslashes (invalid escapes) are kept as literal backslashes, a UTF-8 sequence cut at
    the length bound is dropped, and whitespace runs (including escaped newlines) become one space,
    because ELMTEX values are single-line.
    """
    text = raw.decode("utf-8", errors="ignore")
    if text.endswith("\\") and not text.endswith("\\\\"):
        text = text[:-1]  # an escape cut in half by the bound
    text = _BAD_ESCAPE.sub(r"\\\\", text)
    try:
        value = json.loads(f'"{text}"')
    except json.JSONDecodeError:
        value = text.replace("\\", "")
    return " ".join(value.split())


def log_probs(logits: np.ndarray, tokens: Sequence[int], scratch: np.ndarray) -> np.ndarray:
    """Log-probabilities of `tokens` under softmax(logits): a log-sum-exp over the vector, done in
    `scratch` (an array shaped like `logits`) so no vocabulary-sized array is allocated per token.

    Example:
        >>> logits = np.log(np.array([0.5, 0.25, 0.25], dtype=np.float32))
        >>> np.exp(log_probs(logits, [0, 2], np.empty(3, dtype=np.float32))).round(3).tolist()
        [0.5, 0.25]
    """
    top = logits.max()
    np.subtract(logits, top, out=scratch)
    np.exp(scratch, out=scratch)
    return logits[list(tokens)] - top - np.log(scratch.sum())


def value_score(value: str, *, absent: float, first: float, rest: Sequence[float]) -> float:
    """The decoder's confidence in a free value: the probability of its present/absent decision,
    times, for a written value, the geometric mean of its tokens' probabilities.

    Args:
        absent: log-probability of "N/A"'s first token where the value starts.
        first: log-probability of the value's first token there.
        rest: log-probabilities of the tokens after it, up to and including the one that ends it.

    For a written value, its first token's probability is taken given presence (divided by
    P(present)), so the decision is not counted twice; the mean is over tokens, so a long value is
    not less certain for its length alone.

    Example:
        >>> round(value_score("fever", absent=np.log(0.2), first=np.log(0.4), rest=[0.0]), 3)
        0.566
        >>> round(value_score("N/A", absent=np.log(0.9), first=np.log(0.9), rest=[]), 3)
        0.9
    """
    p_absent = float(np.exp(absent))
    if value == NA:
        return p_absent
    p_present = 1.0 - p_absent
    if p_present <= 0.0:
        return 0.0
    given_present = [first - float(np.log(p_present)), *rest]
    return float(p_present * np.exp(np.mean(np.minimum(given_present, 0.0))))


def _tidy(value: str) -> str:
    """Trim separators left at the ends and drop repeated items (a small model restates one
    finding now and then); an empty value means the field is absent.

    Example:
        >>> _tidy("fever; cough; Fever;")
        'fever; cough'
    """
    value = value.strip().strip(";").strip()
    parts = items(value)
    first: dict[str, str] = {}
    for part in parts:
        first.setdefault(_item_key(part), part)
    unique = list(first.values())
    if len(unique) < len(parts):
        value = "; ".join(unique)
    return value or NA


class SchemaDecoder:
    """Greedy decoding of the 15 ELMTEX values with the skeleton fed, not sampled."""

    def __init__(self, model: TokenModel, *, settings: DecodingSettings) -> None:
        self.model = model
        self.settings = settings
        self._exempt: dict[int, bool] = {}
        self._scratch: np.ndarray | None = None
        self._skeleton_tokens = [model.tokenize(skeleton_before(i)) for i in range(len(FIELDS))]
        self._absent_token = model.tokenize(NA)[0]
        self._choice_tokens = {
            name: [model.tokenize(option) for option in options] for name, options in CHOICE_FIELDS.items()
        }
        # Context the fields after each one still need at the least: their skeleton, a short value.
        self._reserve_after = [
            sum(len(tokens) + 4 for tokens in self._skeleton_tokens[index + 1 :]) for index in range(len(FIELDS))
        ]

    def decode(self, prompt_tokens: Sequence[int]) -> tuple[dict[str, str], DecodeStats]:
        """Decode a record for a prompt (which ends where the answer starts).

        Returns the 15 values in published order and decoding statistics.
        """
        stats = DecodeStats(prompt_tokens=len(prompt_tokens), repeat_penalty=self.settings.repeat_penalty)
        logits = self.model.start(list(prompt_tokens) + self._skeleton_tokens[0])
        values: dict[str, str] = {}
        for index, name in enumerate(FIELDS):
            if name in CHOICE_FIELDS:
                values[name], logits = self._choice(name, logits, stats)
            else:
                room = self.model.n_ctx - self.model.n_past - self._reserve_after[index]
                values[name], logits = self._free_value(name, logits, stats, room=room)
            if index + 1 < len(FIELDS):
                logits = self._feed(self._skeleton_tokens[index + 1], stats)
        return values, stats

    def _log_probs(self, logits: np.ndarray, tokens: Sequence[int]) -> np.ndarray:
        if self._scratch is None or self._scratch.shape != logits.shape:
            self._scratch = np.empty_like(logits)
        return log_probs(logits, tokens, self._scratch)

    def _feed(self, tokens: Sequence[int], stats: DecodeStats) -> np.ndarray:
        stats.fed_tokens += len(tokens)
        return self.model.feed(tokens)

    def _choice(self, name: str, logits: np.ndarray, stats: DecodeStats) -> tuple[str, np.ndarray]:
        """Pick the option whose first token the model ranks highest, then feed the option. Its
        score is its first token's probability among the options' first tokens."""
        options = self._choice_tokens[name]
        firsts = np.array([logits[option[0]] for option in options], dtype=np.float64)
        best = int(np.argmax(firsts))
        stats.scores[name] = float(1.0 / np.exp(firsts - firsts[best]).sum())
        stats.generated_tokens += 1
        self._feed(options[best], stats)
        return CHOICE_FIELDS[name][best], logits

    def _is_exempt(self, token: int) -> bool:
        """Separators and punctuation are never penalised: lists legitimately repeat "; "."""
        exempt = self._exempt.get(token)
        if exempt is None:
            exempt = bool(_EXEMPT_PIECE.match(self.model.piece(token)))
            self._exempt[token] = exempt
        return exempt

    def _pick(self, logits: np.ndarray, recent: Sequence[int]) -> tuple[int, np.ndarray]:
        """Greedy choice after the repeat penalty, and the logits it was picked from. A penalty
        only lowers logits, so the plain argmax stands unless it is itself penalised: only then is
        the vocabulary copied."""
        best = int(np.argmax(logits))
        penalty = self.settings.repeat_penalty
        if penalty == 1.0 or best not in recent or self._is_exempt(best):
            return best, logits
        ids = np.fromiter({t for t in recent if not self._is_exempt(t)}, dtype=np.int64)
        penalised = logits.copy()
        original = penalised[ids]
        penalised[ids] = np.where(original > 0, original / penalty, original * penalty)
        return int(np.argmax(penalised)), penalised

    def _loop_keep(self, tokens: Sequence[int]) -> int | None:
        """How many of the value's tokens to keep when a token run repeats loop_repeats times in a
        row (its first occurrence), else None."""
        repeats = self.settings.loop_repeats
        loop = _loop_length(tokens, repeats) if repeats else 0
        if not loop:
            return None
        return len(tokens) - (loop * (repeats - 1) if loop > 1 else loop * (2 * repeats - 1))

    def _restated(self, raw: bytes, sizes: Sequence[int]) -> tuple[int, int | None] | None:
        """Where a restated item sits in the value's tokens, else None: how many tokens come before
        it when it is dropped whole (with any token it shares with the separator before it), and
        how many come before the token that begins its text, if that token holds nothing of the
        separator (None otherwise: barring it would bar the separator)."""
        if not self.settings.stop_at_restated_item or b";" not in raw:
            return None
        offset = restated_item_start(raw)
        if offset is None:
            return None
        ends = np.cumsum(sizes)
        text = offset + len(raw[offset:]) - len(raw[offset:].lstrip())
        first = int(np.searchsorted(ends, text, side="right"))
        clean = first < len(sizes) and (first == 0 or ends[first - 1] >= offset)
        return int(np.searchsorted(ends, offset, side="right")), first if clean else None

    def _free_value(self, name: str, logits: np.ndarray, stats: DecodeStats, *, room: int) -> tuple[str, np.ndarray]:
        """Generate one string value until an unescaped quote, an end token, a control character,
        a repetition loop, the length bound or the end of the context room left for it (so a long
        prompt never makes a later field overflow). Leaves the context right after the content.
        """
        max_chars = FIELD_MAX_CHARS[name]
        max_tokens = max(0, min(int(max_chars / self.settings.chars_per_token_bound), room))
        start = self.model.n_past
        raw = bytearray()
        tokens: list[int] = []
        sizes: list[int] = []
        chosen: list[float] = []  # log-probability of each token picked, `tokens` and the ending one
        absent = -np.inf  # no room for a value: absent, and not by the model's choice
        escaped = False
        barred: dict[int, set[int]] = {}  # value position -> tokens that began a restated item there
        retries = self.settings.restated_item_retries
        if self.settings.absent_bias and max_tokens:
            logits = logits.copy()
            logits[self._absent_token] -= self.settings.absent_bias
        for _ in range(max_tokens):
            if len(tokens) in barred:
                logits = logits.copy()
                logits[list(barred[len(tokens)])] = -np.inf
            token, sampled = self._pick(logits, tokens[-self.settings.repeat_last_n :])
            if chosen:
                chosen.append(float(self._log_probs(sampled, [token])[0]))
            else:
                first, absent = self._log_probs(sampled, [token, self._absent_token]).tolist()
                chosen.append(first)
            piece = self.model.piece(token)
            stats.generated_tokens += 1
            if not piece or self.model.is_end_of_generation(token):
                break
            cut = None
            for offset, byte in enumerate(piece):
                if escaped:
                    escaped = False
                elif byte == _BACKSLASH:
                    escaped = True
                elif byte == _QUOTE or byte < 0x20:
                    cut = offset
                    break
            if cut is not None:
                if cut:
                    raw += piece[:cut]
                    logits = self._feed(self.model.tokenize(piece[:cut].decode("utf-8", "ignore")), stats)
                value = _tidy(json_string_content(bytes(raw)))
                stats.scores[name] = value_score(value, absent=absent, first=chosen[0], rest=chosen[1:])
                return value, logits
            raw += piece
            tokens.append(token)
            sizes.append(len(piece))
            logits = self._feed([token], stats)
            if len(raw) >= max_chars:
                break
            restated = None if (keep := self._loop_keep(tokens)) is not None else self._restated(raw, sizes)
            if restated is not None:
                keep, writes_on_at = restated
                if retries and writes_on_at:
                    # Drop the restatement and write on from where its text began, barred from the
                    # token that began it: the model's next choice may be a new item or the end of
                    # the list. The logits there are gone, so the last token kept is fed again.
                    retries -= 1
                    stats.restated_items += 1
                    barred = {at: bars for at, bars in barred.items() if at <= writes_on_at}
                    barred.setdefault(writes_on_at, set()).add(tokens[writes_on_at])
                    del raw[sum(sizes[:writes_on_at]) :]
                    del tokens[writes_on_at:], sizes[writes_on_at:], chosen[writes_on_at:]
                    self.model.truncate(start + writes_on_at - 1)
                    logits = self._feed(tokens[-1:], stats)
                    escaped = _ends_in_escape(raw)
                    continue
            if keep is not None:
                # Keep the text before the repetition, drop the rest from text and context.
                del raw[sum(sizes[:keep]) :]
                del tokens[keep:], sizes[keep:], chosen[max(keep, 1) :]
                self.model.truncate(start + len(tokens))
                stats.looped_fields.append(name)
                break
        else:
            stats.capped_fields.append(name)  # the token bound ran out
        if len(raw) >= max_chars:
            stats.capped_fields.append(name)
        value = _tidy(json_string_content(bytes(raw))[:max_chars])
        first = chosen[0] if chosen else -np.inf
        stats.scores[name] = value_score(value, absent=absent, first=first, rest=chosen[1:])
        return value, logits
