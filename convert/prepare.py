"""ELMTEX-layout JSONL -> chat-formatted train/val JSONL, built with the runtime's own prompt builder.

    python -m convert prepare --preset llama-3b --set train_file=train.jsonl --set val_file=val.jsonl

Each output line is {"id", "prompt", "completion", "input_ids", "prompt_tokens", "tokens"}: the
prompt and completion come from edge_extract.prompt.render_training_text and are tokenized the way
the runtime tokenizes them (report text never as special tokens), so the model is trained on
exactly the tokens it will be fed; training reads the ids and needs no tokenizer. Examples longer
than `max_length` tokens are dropped and counted, never cut (a cut answer would teach the model to
stop mid-record). `injection_fraction` adds injected copies of training reports
(convert/injections.py) with their gold answers unchanged.
"""

from __future__ import annotations

import json
import random
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from edge_extract.files import atomic_write_text
from edge_extract.prompt import Prompt, render_training_text
from edge_extract.schema import Example
from edge_extract.ui import get_console

from .errors import ConvertError
from .injections import INJECTED, injected_variants
from .presets import TrainConfig, base_checkpoint, run_paths

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

IGNORE_INDEX = -100
"""Label of a token the loss skips (the prompt, padding): torch's cross-entropy default."""


@dataclass(frozen=True)
class PrepareStats:
    """What `prepare` kept and dropped.

    Attributes:
        read: lines read from the input files.
        unannotated: lines without a summary (nothing to learn from).
        too_long: annotated examples over max_length tokens, dropped.
        train: training examples written.
        val: validation examples written.
        injected: of `train`, the injected copies of training reports.
        max_tokens: the longest kept example, in tokens.
        mean_tokens: mean length of the kept examples, in tokens.
        pad_id: the token training pads micro-batches with.
    """

    read: int
    unannotated: int
    too_long: int
    train: int
    val: int
    injected: int
    max_tokens: int
    mean_tokens: float
    pad_id: int


def read_examples(path: Path) -> list[Example]:
    """Every line of an ELMTEX-layout JSONL file; a bad line is a one-line error naming it."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as error:
        raise ConvertError(f"cannot read {path}: {error.strerror}") from error
    examples = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            examples.append(Example.model_validate_json(line))
        except ValidationError as error:
            raise ConvertError(f"{path}:{number}: not an ELMTEX example ({error.error_count()} errors)") from None
    return examples


def encode(tokenizer: PreTrainedTokenizerBase, prompt: Prompt, completion: str) -> tuple[list[int], list[int]]:
    """(input_ids, labels): BOS, the prompt part by part, then the completion; loss on the completion only.

    Parts are tokenized apart, as the runtime does: our chat markers become special tokens, report
    text stays plain text (split_special_tokens), and the answer starts on a fresh token as it does
    when the model writes it.
    """
    prompt_ids: list[int] = []
    for index, part in enumerate(prompt.parts):
        prompt_ids += tokenizer(part.text, add_special_tokens=index == 0, split_special_tokens=part.data)["input_ids"]
    completion_ids = tokenizer(completion, add_special_tokens=False)["input_ids"]
    return prompt_ids + completion_ids, [IGNORE_INDEX] * len(prompt_ids) + completion_ids


def _rows(examples: list[Example], *, chat: str, tokenizer: PreTrainedTokenizerBase) -> list[dict[str, Any]]:
    rows = []
    for example in examples:
        prompt, completion = render_training_text(example, chat=chat)
        input_ids, labels = encode(tokenizer, prompt, completion)
        prompt_tokens = labels.count(IGNORE_INDEX)
        rows.append(
            {
                "id": example.id,
                "prompt": prompt.text,
                "completion": completion,
                "input_ids": input_ids,
                "prompt_tokens": prompt_tokens,
                "tokens": len(input_ids),
            }
        )
    return rows


def _write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    atomic_write_text(path, "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))


def prepare(config: TrainConfig, *, tokenizer: PreTrainedTokenizerBase) -> PrepareStats:
    """Write data/train.jsonl, data/val.jsonl and data/prepare.json (the counts) for a run."""
    train = [example for path in config.train_files for example in read_examples(Path(path))]
    val = read_examples(Path(config.val_file)) if config.val_file else []
    read = len(train) + len(val)
    annotated_train = [e for e in train if e.summary is not None]
    annotated_val = [e for e in val if e.summary is not None]
    unannotated = read - len(annotated_train) - len(annotated_val)
    if not config.val_file:
        random.Random(config.seed).shuffle(annotated_train)
        n_val = max(1, round(len(annotated_train) * config.val_fraction))
        annotated_val, annotated_train = annotated_train[:n_val], annotated_train[n_val:]
    if config.max_examples is not None:
        annotated_train = annotated_train[: config.max_examples]
    # One fixed seed: every run over the same data (stage 2 included) sees the same injected copies.
    injected = injected_variants(annotated_train, fraction=config.injection_fraction, seed=0)
    train_rows = _rows(annotated_train + injected, chat=config.chat, tokenizer=tokenizer)
    val_rows = _rows(annotated_val, chat=config.chat, tokenizer=tokenizer)
    kept_train = [row for row in train_rows if row["tokens"] <= config.max_length]
    kept_val = [row for row in val_rows if row["tokens"] <= config.max_length]
    if not kept_train or not kept_val:
        raise ConvertError(
            f"no training or validation examples left ({len(kept_train)} train, {len(kept_val)} val) "
            f"after dropping those over {config.max_length} tokens"
        )
    lengths = [row["tokens"] for row in kept_train + kept_val]
    stats = PrepareStats(
        read=read,
        unannotated=unannotated,
        too_long=len(train_rows) + len(val_rows) - len(lengths),
        train=len(kept_train),
        val=len(kept_val),
        injected=sum(1 for row in kept_train if row["id"] and row["id"].endswith(INJECTED)),
        max_tokens=max(lengths),
        mean_tokens=round(sum(lengths) / len(lengths), 1),
        pad_id=tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id,
    )
    folder = run_paths(config).data
    _write_jsonl(folder / "train.jsonl", kept_train)
    _write_jsonl(folder / "val.jsonl", kept_val)
    atomic_write_text(folder / "prepare.json", json.dumps(asdict(stats), indent=2) + "\n")
    get_console().print(
        f"prepare: read {stats.read}, unannotated {stats.unannotated}, over {config.max_length} tokens "
        f"{stats.too_long} -> train {stats.train} ({stats.injected} injected), val {stats.val} "
        f"(max {stats.max_tokens}, mean {stats.mean_tokens} tokens) in {folder}",
        soft_wrap=True,
    )
    return stats


def load_rows(path: Path) -> list[dict[str, Any]]:
    """The rows `prepare` wrote."""
    if not path.is_file():
        raise ConvertError(f"{path} is missing: run the prepare step first")
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def main(config: TrainConfig) -> PrepareStats:
    from transformers import AutoTokenizer

    return prepare(config, tokenizer=AutoTokenizer.from_pretrained(base_checkpoint(config)))
