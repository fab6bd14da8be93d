"""LoRA fine-tune of a Hugging Face causal LM on the prepared examples; loss on the answer tokens only.

    python -m convert train --preset llama-3b --set train_file=train.jsonl   # CUDA: bf16 weights
    python -m convert train --preset gemma-270m --set train_file=train.jsonl # CPU: float32

Writes into <out_dir>/adapter/: the PEFT adapter (adapter_model.safetensors, adapter_config.json),
train_config.json (the resolved settings; `--config` reads it back), loss.png, and metrics.json
(loss per step, validation losses, device, library versions), written last as the marker that
the run finished. Every step checks that the loss and the gradient norm are finite and aborts
with NonFiniteError otherwise, so a diverged run never ships NaN adapter weights.
"""

from __future__ import annotations

import json
import math
import random
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edge_extract.files import atomic_write_text
from edge_extract.ui import get_console

from .errors import ConvertError, NonFiniteError
from .prepare import IGNORE_INDEX, encode, load_rows
from .presets import TrainConfig, base_checkpoint, run_paths

if TYPE_CHECKING:
    import torch

Encoded = tuple[list[int], list[int]]
"""(input_ids, labels) of one example."""


@dataclass(frozen=True)
class TrainResult:
    """What a training run produced.

    Attributes:
        adapter_dir: the saved PEFT adapter and its run files.
        losses: training loss per optimizer step (mean over the step's answer tokens).
        val_losses: (step, validation loss) at each evaluation.
        seconds: wall time of the training loop.
    """

    adapter_dir: Path
    losses: list[float]
    val_losses: list[tuple[int, float]]
    seconds: float


def pick_device(setting: str) -> tuple[str, torch.dtype]:
    """cuda with bfloat16 weights when a GPU supports it (dtype "auto"), else cpu with float32."""
    import torch

    if torch.cuda.is_available():
        wants_bf16 = setting == "bfloat16" or (setting == "auto" and torch.cuda.is_bf16_supported())
        return "cuda", torch.bfloat16 if wants_bf16 else torch.float32
    if setting == "bfloat16":
        raise ConvertError("dtype bfloat16 needs a CUDA GPU; use float32 (or auto) on a CPU")
    return "cpu", torch.float32


def seed_everything(seed: int) -> None:
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device


def _example_order(n: int, *, seed: int) -> Iterator[int]:
    """Example indices, epoch after epoch, each epoch a fresh seeded shuffle."""
    rng = random.Random(seed)
    while True:
        order = list(range(n))
        rng.shuffle(order)
        yield from order


def collate(examples: Sequence[Encoded], *, pad_id: int, device: str) -> dict[str, torch.Tensor]:
    """Right-pad a micro-batch; padding is masked out of attention and loss."""
    import torch

    width = max(len(ids) for ids, _ in examples)
    input_ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    labels = torch.full((len(examples), width), IGNORE_INDEX, dtype=torch.long)
    attention = torch.zeros((len(examples), width), dtype=torch.long)
    for row, (ids, target) in enumerate(examples):
        input_ids[row, : len(ids)] = torch.tensor(ids)
        labels[row, : len(ids)] = torch.tensor(target)
        attention[row, : len(ids)] = 1
    return {"input_ids": input_ids.to(device), "labels": labels.to(device), "attention_mask": attention.to(device)}


def answer_loss(model: Any, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Mean cross-entropy over the answer tokens, computing logits only where they are needed.

    The answer follows the prompt, so only the last positions need logits. With Gemma's
    262k-token vocabulary the output layer costs more than the rest of the 270M model per token:
    skipping it over the prompt makes a CPU step much cheaper, with the same loss.
    """
    import torch

    labels = batch["labels"]
    answer = (labels != IGNORE_INDEX).nonzero()
    if answer.numel() == 0:
        raise ConvertError("a training example has no answer tokens")
    first = int(answer[:, 1].min())
    keep = labels.shape[1] - first + 1  # positions first-1 .. end: each predicts the next token
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], logits_to_keep=keep).logits
    targets = labels[:, first:]
    return torch.nn.functional.cross_entropy(
        logits[:, :-1].reshape(-1, logits.shape[-1]).float(), targets.reshape(-1), ignore_index=IGNORE_INDEX
    )


def evaluate(model: Any, examples: Sequence[Encoded], *, pad_id: int, device: str) -> float:
    """Mean loss per answer token over `examples`, one at a time (no padding effects)."""
    import torch

    model.eval()
    total, tokens = 0.0, 0
    with torch.no_grad():
        for example in examples:
            n = sum(1 for label in example[1][1:] if label != IGNORE_INDEX)
            total += answer_loss(model, collate([example], pad_id=pad_id, device=device)).item() * n
            tokens += n
    model.train()
    return total / max(tokens, 1)


def plot_losses(losses: Sequence[float], val_losses: Sequence[tuple[int, float]], path: Path) -> None:
    """Training loss per step and validation points, as a PNG (no global matplotlib state)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(7, 4), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    axes.plot(range(1, len(losses) + 1), losses, label="train", linewidth=1)
    if val_losses:
        axes.plot(*zip(*val_losses), "o-", label="validation")
    axes.set_xlabel("optimizer step")
    axes.set_ylabel("loss per answer token")
    axes.grid(alpha=0.3)
    axes.legend()
    figure.tight_layout()
    figure.savefig(path)


def _check_finite(value: float, what: str, step: int, config: TrainConfig) -> None:
    if not math.isfinite(value):
        hint = "lower learning_rate" + (", or train in float32 (dtype = float32)" if config.dtype != "float32" else "")
        raise NonFiniteError(f"training diverged: {what} is {value} at step {step}; nothing was saved ({hint})")


def _versions() -> dict[str, str]:
    from importlib.metadata import version

    return {name: version(name) for name in ("torch", "transformers", "peft", "edge-extract")}


def train(config: TrainConfig) -> TrainResult:
    """Run LoRA training as the config says and save the adapter with its settings and metrics."""
    import torch
    from peft import LoraConfig, PeftModel, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer, get_scheduler

    console = get_console()
    paths = run_paths(config)
    if config.threads:
        torch.set_num_threads(config.threads)
    seed_everything(config.seed)
    device, dtype = pick_device(config.dtype)
    base = base_checkpoint(config)
    tokenizer = AutoTokenizer.from_pretrained(base)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    train_set = [encode(tokenizer, row["prompt"], row["completion"]) for row in load_rows(paths.data / "train.jsonl")]
    val_rows = load_rows(paths.data / "val.jsonl")[: config.eval_examples]
    val_set = [encode(tokenizer, row["prompt"], row["completion"]) for row in val_rows]

    model = AutoModelForCausalLM.from_pretrained(base, dtype=dtype).to(device)
    model.config.use_cache = False  # the cache only costs memory in training
    if config.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    # PEFT keeps the adapter weights in float32 under a bf16 base (autocast_adapter_dtype).
    if config.init_adapter:
        start = Path(config.init_adapter).expanduser()
        if not (start / "adapter_config.json").is_file():
            raise ConvertError(f"init_adapter {start} is not a PEFT adapter folder (no adapter_config.json)")
        model = PeftModel.from_pretrained(model, str(start), is_trainable=True)
    else:
        lora = LoraConfig(
            r=config.lora_r,
            lora_alpha=config.lora_alpha,
            lora_dropout=config.lora_dropout,
            target_modules=list(config.target_modules),
            task_type="CAUSAL_LM",
        )
        model = get_peft_model(model, lora)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=config.learning_rate, weight_decay=config.weight_decay)
    scheduler = get_scheduler(
        "cosine", optimizer, num_warmup_steps=config.warmup_steps, num_training_steps=config.steps
    )
    console.print(
        f"train: {len(train_set)} examples, {config.steps} steps x {config.batch_size * config.grad_accum} "
        f"examples, {sum(p.numel() for p in trainable):,} trainable parameters on {device} ({dtype})",
        soft_wrap=True,
    )

    order = _example_order(len(train_set), seed=config.seed)
    losses: list[float] = []
    val_losses: list[tuple[int, float]] = []
    model.train()
    started = time.perf_counter()
    for step in range(1, config.steps + 1):
        step_loss = 0.0
        for _ in range(config.grad_accum):
            batch = collate([train_set[next(order)] for _ in range(config.batch_size)], pad_id=pad_id, device=device)
            loss = answer_loss(model, batch) / config.grad_accum
            loss.backward()
            step_loss += loss.item()
        _check_finite(step_loss, "the loss", step, config)
        grad_norm = torch.nn.utils.clip_grad_norm_(trainable, config.max_grad_norm).item()
        _check_finite(grad_norm, "the gradient norm", step, config)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(step_loss)
        console.print(
            f"step {step:>4}/{config.steps}  loss {step_loss:.4f}  grad norm {grad_norm:.3f}  "
            f"lr {scheduler.get_last_lr()[0]:.2e}  {time.perf_counter() - started:.1f}s",
            highlight=False,
            soft_wrap=True,
        )
        if step == config.steps or (config.eval_every and step % config.eval_every == 0):
            val_loss = evaluate(model, val_set, pad_id=pad_id, device=device)
            _check_finite(val_loss, "the validation loss", step, config)
            val_losses.append((step, val_loss))
            console.print(f"step {step:>4}/{config.steps}  validation loss {val_loss:.4f}", soft_wrap=True)
        if config.checkpoint_every and step % config.checkpoint_every == 0 and step < config.steps:
            # A long CPU run can be stopped and its latest adapter still used or inspected.
            model.save_pretrained(paths.root / "checkpoints" / f"step-{step:05d}")
    seconds = time.perf_counter() - started

    for name, parameter in model.named_parameters():
        if parameter.requires_grad and not torch.isfinite(parameter).all():
            raise NonFiniteError(f"adapter weight {name} is not finite after training; nothing was saved")
    out = paths.adapter
    model.save_pretrained(out)
    atomic_write_text(out / "train_config.json", config.to_json())
    plot_losses(losses, val_losses, out / "loss.png")
    metrics = {
        "losses": losses,
        "val_losses": val_losses,
        "seconds": round(seconds, 2),
        "device": device,
        "dtype": str(dtype).removeprefix("torch."),
        "examples": {"train": len(train_set), "val": len(val_set)},
        "versions": _versions(),
    }
    atomic_write_text(out / "metrics.json", json.dumps(metrics, indent=2) + "\n")
    console.print(f"train: adapter, loss curve and metrics in {out} ({seconds:.1f}s)", soft_wrap=True)
    return TrainResult(adapter_dir=out, losses=losses, val_losses=val_losses, seconds=seconds)


main = train
