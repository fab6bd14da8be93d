"""TrainConfig: every setting of a fine-tuning run, plus named presets and the run folder layout.

A run is reproduced from one small file: a preset name and a few overrides, e.g. run.toml

    preset = "llama-3b"
    train_file = "data/elmtex-open/train.jsonl"
    val_file = "data/elmtex-open/val.jsonl"
    out_dir = "runs/llama-3b-elmtex"

then `edge-extract-convert pipeline --config run.toml`. The resolved config is saved as JSON
beside the adapter (adapter/train_config.json) and reads back with `--config` unchanged.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import ConfigDict, ValidationError
from pydantic.dataclasses import dataclass

from edge_extract.decoding import DecodingSettings
from edge_extract.errors import problems
from edge_extract.models.manifest import DEFAULT_CONTEXT_SIZE

from .errors import ConvertError

LLAMA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
"""Every linear layer of a Llama / Qwen / Gemma decoder block (their names agree)."""


@dataclass(frozen=True, config=ConfigDict(extra="forbid"))
class TrainConfig:
    """One fine-tuning run, from data to a registered GGUF.

    Attributes:
        name: the name the result is registered under (`edge-extract extract --model NAME`).
        base: Hugging Face model id or local folder of the base checkpoint.
        base_gguf: start from a GGUF instead (a path or a registered model name such as
            gemma-3-270m): `from-gguf` turns it into the HF checkpoint that `base` then names.
        chat: prompt format of the base model (gemma, llama3, chatml), see edge_extract.prompt.
        train_file: ELMTEX-layout JSONL ({"report", "summary"}) to train on, or a list of them (read in
            order, so `max_examples` keeps the first files whole).
        injection_fraction: add injected copies of this fraction of the training reports, gold
            answers unchanged (convert/injections.py), so the model learns to ignore instructions
            and fake answers written inside a report.
        val_file: held-out JSONL; when None, `val_fraction` of train_file is held out (seeded).
        max_examples: use at most this many training examples (quick runs).
        max_length: tokens (prompt + answer); longer examples are dropped and counted.
        steps: optimizer steps; one step sees batch_size * grad_accum examples.
        epochs: when set, overrides `steps`: as many steps as it takes to see every training
            example this many times (so runs on more or less data compare at equal epochs).
        stop_at: end the run after this step and save its adapter, the learning-rate schedule
            staying that of the whole run (a run cut short on purpose, reproducibly).
        dtype: weights: auto = bfloat16 on a CUDA GPU with bf16 support, float32 otherwise.
        autocast: "bfloat16" runs matrix products in bf16 under torch.autocast (CPU with AVX-512
            BF16, or CUDA) while the weights, LoRA parameters and optimizer state stay in `dtype`.
        threads: CPU threads for torch (None: torch's default).
        gguf_type: converter output type (f32, f16, bf16, q8_0) of the merged model or adapter.
        quant: llama.cpp quantization of the merged GGUF (Q4_K_M, Q8_0) or None to keep gguf_type.
        ship: "merged": one GGUF with the adapter folded in; "adapter": the base GGUF plus a
            GGUF LoRA adapter applied at load time (the only choice with base_gguf).
        context_size: context window written to the model manifest (tokens).
        decoding: decoding settings written to the manifest, chosen on validation data after
            training (e.g. absent_bias); only those set here are written.
        fold: run the shipped adapter folded into its base as one GGUF of this type (written to the
            manifest; the runtime builds it on first use), which decodes faster than applying the
            adapter at load time; None applies it at load.
        init_adapter: start from this PEFT adapter folder (a finished run's adapter/) instead of a
            fresh LoRA, to train it further, e.g. one more epoch; its own rank, alpha and target
            modules then apply, and the learning-rate schedule starts anew.
    """

    name: str = "elmtex-lora"
    base: str = ""
    base_gguf: str | None = None
    chat: str = "gemma"
    # data
    train_file: str | tuple[str, ...] = ""
    val_file: str | None = None
    val_fraction: float = 0.1
    injection_fraction: float = 0.0
    max_examples: int | None = None
    max_length: int = 4096
    # LoRA
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    target_modules: tuple[str, ...] = LLAMA_TARGETS
    init_adapter: str | None = None
    # optimisation
    steps: int = 100
    epochs: float | None = None
    stop_at: int | None = None
    batch_size: int = 1
    grad_accum: int = 16
    learning_rate: float = 1e-4
    warmup_steps: int = 5
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    eval_every: int = 25  # steps; 0: only at the end
    eval_examples: int = 32  # validation examples per evaluation (a cap for quick runs)
    seed: int = 0
    dtype: Literal["auto", "float32", "bfloat16"] = "auto"
    autocast: Literal["off", "bfloat16"] = "off"
    gradient_checkpointing: bool = False
    checkpoint_every: int = 0  # steps; save the resumable state under out_dir/checkpoint (0: never)
    log_every: int = 1  # steps between loss lines (the progress bar shows every step)
    threads: int | None = None
    # output
    out_dir: str = "runs/elmtex-lora"
    gguf_type: Literal["f32", "f16", "bf16", "q8_0"] = "f16"
    quant: Literal["Q4_K_M", "Q8_0"] | None = "Q4_K_M"
    ship: Literal["merged", "adapter"] = "merged"
    context_size: int = DEFAULT_CONTEXT_SIZE
    decoding: DecodingSettings = dataclasses.field(default_factory=DecodingSettings)
    fold: Literal["Q8_0"] | None = None

    @property
    def train_files(self) -> tuple[str, ...]:
        return (self.train_file,) if isinstance(self.train_file, str) else self.train_file

    def to_json(self) -> str:
        values = {**dataclasses.asdict(self), "decoding": self.decoding.model_dump(exclude_unset=True)}
        return json.dumps(values, indent=2) + "\n"

    def changed_for_training(self, saved: str) -> list[str]:
        """The settings that differ from a saved run's to_json() and would change what it learns:
        a stopped run resumes only when this is empty (RESUMABLE_CHANGES may differ)."""
        before, now = json.loads(saved), json.loads(self.to_json())
        compared = (before.keys() | now.keys()) - RESUMABLE_CHANGES
        return sorted(key for key in compared if before.get(key) != now.get(key))


RESUMABLE_CHANGES = frozenset(
    {"name", "stop_at", "checkpoint_every", "log_every", "eval_every", "eval_examples", "threads"}
    | {"gguf_type", "quant", "ship", "context_size", "decoding", "fold"}
)
"""TrainConfig settings a stopped run may resume with changed: none changes what a training step
computes (threads only the order of float sums), only when it stops, what it reports and how the
result is exported."""


PRESETS: dict[str, dict[str, Any]] = {
    # The end-to-end test and a smoke run: a tiny model learns in a few dozen steps, 1 thread.
    "tiny-cpu": dict(
        name="tiny-elmtex",
        chat="chatml",
        max_length=2048,
        lora_r=8,
        lora_alpha=16,
        lora_dropout=0.0,
        steps=30,
        grad_accum=1,
        learning_rate=3e-3,
        warmup_steps=2,
        eval_every=0,
        eval_examples=4,
        dtype="float32",
        threads=1,
        gguf_type="f32",
        out_dir="runs/tiny-elmtex",
    ),
    # The runtime's own base on a CPU: Gemma 3 270M from the embedded Q4_K_M GGUF, shipped as an
    # adapter over that same GGUF (so the tokenizer is never re-converted). 8 examples per step,
    # 150 steps = ~2.3 epochs of 527 examples. float32 on purpose: bf16 training of this
    # GGUF-loaded model has ended with every adapter weight NaN.
    "gemma-270m": dict(
        name="gemma-3-270m-elmtex",
        base_gguf="gemma-3-270m",
        chat="gemma",
        grad_accum=8,
        steps=150,
        learning_rate=2e-4,
        dtype="float32",
        gguf_type="f16",
        quant=None,
        ship="adapter",
        out_dir="runs/gemma-3-270m-elmtex",
    ),
    # The study's small model on one GPU (bf16, ~24 GB is plenty): 16 examples per step, 100 steps
    # = ~3 epochs of 527 examples. Batch 1 because the 128k-token vocabulary makes the logits of a
    # 4096-token sequence ~2 GB in float32; gradient accumulation gives the effective batch.
    "llama-3b": dict(
        name="llama-3.2-3b-elmtex",
        base="meta-llama/Llama-3.2-3B-Instruct",
        chat="llama3",
        grad_accum=16,
        steps=100,
        learning_rate=1e-4,
        gradient_checkpointing=True,
        gguf_type="f16",
        quant="Q4_K_M",
        ship="merged",
        out_dir="runs/llama-3.2-3b-elmtex",
    ),
}


def _parse_file(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ConvertError(f"cannot read config {path}: {error.strerror}") from error
    try:
        if path.suffix == ".toml":
            import tomllib  # Python 3.11+; a JSON config works everywhere

            return tomllib.loads(text)
        return json.loads(text)
    except ImportError as error:
        raise ConvertError("TOML configs need Python 3.11 or later; write the config as JSON") from error
    except ValueError as error:
        raise ConvertError(f"bad config {path}: {error}") from error


def _parse_override(item: str) -> tuple[str, Any]:
    key, sep, value = item.partition("=")
    if not sep or not key.strip():
        raise ConvertError(f"--set wants KEY=VALUE, got {item!r}")
    try:
        return key.strip(), json.loads(value)
    except ValueError:
        return key.strip(), value  # a bare string such as a path


def load_config(path: Path | None = None, *, preset: str | None = None, overrides: Sequence[str] = ()) -> TrainConfig:
    """The preset (named by `preset` or by the file's "preset" key), then the file, then --set KEY=VALUE."""
    values = _parse_file(path) if path else {}
    chosen = preset or values.pop("preset", None)
    values.pop("preset", None)
    if chosen is not None and chosen not in PRESETS:
        raise ConvertError(f"unknown preset {chosen!r}; known: {', '.join(PRESETS)}")
    merged = {**PRESETS.get(chosen or "", {}), **values, **dict(_parse_override(item) for item in overrides)}
    try:
        config = TrainConfig(**merged)
    except ValidationError as error:
        raise ConvertError(f"bad training config: {problems(error)}") from None
    if bool(config.base) == bool(config.base_gguf):
        raise ConvertError("name exactly one base model: base (HF id or folder) or base_gguf (GGUF path or model name)")
    if config.base_gguf and config.ship == "merged":
        # A checkpoint made from a GGUF has only tokenizer.json; llama.cpp's converter then writes
        # a byte-level BPE vocabulary for a SentencePiece model (seen with Gemma 3), so ids drift.
        raise ConvertError('a base_gguf model ships as an adapter over that GGUF: set ship = "adapter"')
    if config.fold and config.ship != "adapter":
        raise ConvertError('fold folds a shipped adapter into its base: it needs ship = "adapter"')
    return config


@dataclasses.dataclass(frozen=True)
class RunPaths:
    """Where each step of a run writes, under the run's out_dir."""

    root: Path

    @property
    def data(self) -> Path:
        """train.jsonl, val.jsonl and prepare.json (counts)."""
        return self.root / "data"

    @property
    def base(self) -> Path:
        """The HF checkpoint made from base_gguf by from-gguf."""
        return self.root / "base"

    @property
    def adapter(self) -> Path:
        """The PEFT adapter, train_config.json, metrics.json and loss.png."""
        return self.root / "adapter"

    @property
    def merged(self) -> Path:
        return self.root / "merged"

    @property
    def gguf(self) -> Path:
        return self.root / "gguf"


def run_paths(config: TrainConfig) -> RunPaths:
    return RunPaths(Path(config.out_dir).expanduser())


def base_checkpoint(config: TrainConfig) -> str:
    """The HF checkpoint training starts from: `base`, or the from-gguf output of `base_gguf`."""
    return config.base or str(run_paths(config).base)
