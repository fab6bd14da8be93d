"""LoRA fine-tune of a Hugging Face causal LM on the prepared examples; loss on the answer tokens only.

    python -m convert train --preset llama-3b --set train_file=train.jsonl   # CUDA: bf16 weights
    python -m convert train --preset gemma-270m --set train_file=train.jsonl # CPU: float32

Writes into <out_dir>/adapter/: the PEFT adapter (adapter_model.safetensors, adapter_config.json),
train_config.json (the resolved settings; `--config` reads it back), loss.png, and metrics.json
(loss per step, validation losses, device, library versions), written last as the marker that
the run finished. A stopped run continues from <out_dir>/checkpoint with the same command. Every
step checks that the loss and the gradient norm are finite and aborts with NonFiniteError
otherwise, so a diverged run never ships NaN adapter weights.
"""

from __future__ import annotations

import contextlib
import json
import math
import random
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edge_extract.files import atomic_write_text
from edge_extract.ui import get_console, progress

from .errors import ConvertError, NonFiniteError
from .prepare import IGNORE_INDEX, load_rows
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


@lru_cache(maxsize=2)
def _epoch_order(n: int, seed: int, epoch: int) -> tuple[int, ...]:
    order = list(range(n))
    random.Random(f"{seed}:{epoch}").shuffle(order)
    return tuple(order)


def example_at(position: int, *, n: int, seed: int) -> int:
    """The example a run reads at `position` (0, 1, ... over all steps): epoch after epoch, each a
    fresh seeded shuffle. A function of the position alone, so a resumed run reads on exactly
    where the stopped one would have."""
    epoch, offset = divmod(position, n)
    return _epoch_order(n, seed, epoch)[offset]


def collate(examples: Sequence[Encoded], *, pad_id: int, device: str) -> dict[str, torch.Tensor]:
    """Right-pad a micro-batch; the loss skips the padding.

    No attention mask: in a causal model real tokens never attend to the padding after them, so
    none is needed, and a mask would leave a pad position more than Gemma 3's 512-token sliding
    window past the row's end with nothing to attend to: NaN in the forward pass and in every
    gradient (seen on a GPU at batch size 4).
    """
    import torch

    width = max(len(ids) for ids, _ in examples)
    input_ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    labels = torch.full((len(examples), width), IGNORE_INDEX, dtype=torch.long)
    for row, (ids, target) in enumerate(examples):
        input_ids[row, : len(ids)] = torch.tensor(ids)
        labels[row, : len(ids)] = torch.tensor(target)
    return {"input_ids": input_ids.to(device), "labels": labels.to(device)}


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
    logits = model(input_ids=batch["input_ids"], logits_to_keep=keep).logits
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
    from importlib.metadata import PackageNotFoundError, version

    versions = {}
    for name in ("torch", "transformers", "peft", "edge-extract"):
        try:
            versions[name] = version(name)
        except PackageNotFoundError:  # run from a source tree that was never installed
            versions[name] = "not installed"
    return versions


def _encoded(row: dict[str, Any]) -> Encoded:
    ids = row["input_ids"]
    return ids, [IGNORE_INDEX] * row["prompt_tokens"] + ids[row["prompt_tokens"] :]


def _autocast(config: TrainConfig, device: str) -> contextlib.AbstractContextManager[Any]:
    import torch

    if config.autocast == "bfloat16":
        return torch.autocast(device_type=device, dtype=torch.bfloat16)
    return contextlib.nullcontext()


CHECKPOINT = "checkpoint"
"""Under out_dir: the latest resumable state (adapter, optimizer, scheduler, RNG, position)."""


def _save_checkpoint(folder: Path, model: Any, optimizer: Any, scheduler: Any, state: dict[str, Any]) -> None:
    """Replace the checkpoint folder as a whole: a kill at any moment leaves the old or the new one."""
    import numpy as np
    import torch

    state = {
        **state,
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "rng": {
            "python": random.getstate(),
            "numpy": np.random.get_state(),
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        },
    }
    tmp, old = folder.with_name(f"{folder.name}.tmp"), folder.with_name(f"{folder.name}.old")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    torch.save(state, tmp / "trainer_state.pt")
    if folder.exists():
        shutil.rmtree(old, ignore_errors=True)
        folder.rename(old)
    tmp.rename(folder)
    shutil.rmtree(old, ignore_errors=True)


def _load_checkpoint(root: Path, config: TrainConfig, model: Any, optimizer: Any, scheduler: Any) -> dict[str, Any]:
    """Restore the latest checkpoint of this very run into model, optimizer, scheduler and RNGs;
    its loop state ({} when there is none)."""
    import numpy as np
    import torch
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file

    candidates = (root / CHECKPOINT, root / f"{CHECKPOINT}.old")
    folder = next((f for f in candidates if (f / "trainer_state.pt").is_file()), None)
    if folder is None:
        return {}
    state = torch.load(folder / "trainer_state.pt", weights_only=False)
    if changed := config.changed_for_training(state["config"]):
        raise ConvertError(
            f"{folder} holds a checkpoint of a run with other settings ({', '.join(changed)}); "
            "use another out_dir, or delete the checkpoint to start over"
        )
    if config.stop_at is not None and state["step"] > config.stop_at:
        # Going on would train nothing and save this checkpoint's weights as the step-stop_at adapter.
        raise ConvertError(
            f"{folder} holds a checkpoint at step {state['step']}, past stop_at {config.stop_at}; "
            "--set stop_at=null (or a later step) trains on from it"
        )
    set_peft_model_state_dict(model, load_file(folder / "adapter_model.safetensors"))
    optimizer.load_state_dict(state.pop("optimizer"))
    scheduler.load_state_dict(state.pop("scheduler"))
    rng = state.pop("rng")
    random.setstate(rng["python"])
    np.random.set_state(rng["numpy"])
    torch.set_rng_state(rng["torch"])
    if rng["cuda"]:
        torch.cuda.set_rng_state_all(rng["cuda"])
    get_console().print(f"train: resuming from {folder} at step {state['step']}", soft_wrap=True)
    return state


def train(config: TrainConfig) -> TrainResult:
    """Run LoRA training as the config says and save the adapter with its settings and metrics.

    Resumable: every `checkpoint_every` steps the whole training state is saved under
    out_dir/checkpoint, and the same command continues from there after a stop.
    """
    import torch
    from peft import LoraConfig, PeftModel, get_peft_model
    from transformers import AutoModelForCausalLM, get_scheduler

    console = get_console()
    paths = run_paths(config)
    if config.threads:
        torch.set_num_threads(config.threads)
    seed_everything(config.seed)
    device, dtype = pick_device(config.dtype)
    if device == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True  # float32 weights: tf32 matrix units
    pad_id = int(json.loads((paths.data / "prepare.json").read_text())["pad_id"])
    train_set = [_encoded(row) for row in load_rows(paths.data / "train.jsonl")]
    val_set = [_encoded(row) for row in load_rows(paths.data / "val.jsonl")[: config.eval_examples]]

    model = AutoModelForCausalLM.from_pretrained(base_checkpoint(config), dtype=dtype).to(device)
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
    per_step = config.batch_size * config.grad_accum
    steps = math.ceil(config.epochs * len(train_set) / per_step) if config.epochs else config.steps
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=config.learning_rate, weight_decay=config.weight_decay)
    scheduler = get_scheduler("cosine", optimizer, num_warmup_steps=config.warmup_steps, num_training_steps=steps)
    state = _load_checkpoint(paths.root, config, model, optimizer, scheduler)
    done = state.get("step", 0)
    losses: list[float] = state.get("losses", [])
    val_losses: list[tuple[int, float]] = [tuple(v) for v in state.get("val_losses", [])]
    seconds_before = state.get("seconds", 0.0)
    step_seconds: list[float] = state.get("step_seconds", [])
    autocast_note = ", bf16 autocast" if config.autocast == "bfloat16" else ""
    console.print(
        f"train: {len(train_set)} examples, {steps} steps x {per_step} examples, "
        f"{sum(p.numel() for p in trainable):,} trainable parameters on {device} ({dtype}{autocast_note})",
        soft_wrap=True,
    )

    model.train()
    started = time.perf_counter()
    with progress(console) as bar:
        last = min(steps, config.stop_at or steps)
        task = bar.add_task("train", total=last, completed=done, current="")
        for step in range(done + 1, last + 1):
            step_started = time.perf_counter()
            step_loss = 0.0
            for micro in range(config.grad_accum):
                first = ((step - 1) * config.grad_accum + micro) * config.batch_size
                examples = [
                    train_set[example_at(p, n=len(train_set), seed=config.seed)]
                    for p in range(first, first + config.batch_size)
                ]
                batch = collate(examples, pad_id=pad_id, device=device)
                with _autocast(config, device):
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
            step_seconds.append(round(time.perf_counter() - step_started, 3))
            bar.update(task, advance=1, current=f"loss {step_loss:.3f}")
            if step % config.log_every == 0 or step == last:
                bar.console.print(
                    f"step {step:>4}/{steps}  loss {step_loss:.4f}  grad norm {grad_norm:.3f}  "
                    f"lr {scheduler.get_last_lr()[0]:.2e}  {seconds_before + time.perf_counter() - started:.1f}s",
                    highlight=False,
                    soft_wrap=True,
                )
            if step == last or (config.eval_every and step % config.eval_every == 0):
                with _autocast(config, device):
                    val_loss = evaluate(model, val_set, pad_id=pad_id, device=device)
                _check_finite(val_loss, "the validation loss", step, config)
                val_losses.append((step, val_loss))
                bar.console.print(f"step {step:>4}/{steps}  validation loss {val_loss:.4f}", soft_wrap=True)
            if config.checkpoint_every and step % config.checkpoint_every == 0 and step < last:
                loop_state = {
                    "config": config.to_json(),
                    "step": step,
                    "losses": losses,
                    "val_losses": val_losses,
                    "step_seconds": step_seconds,
                    "seconds": seconds_before + time.perf_counter() - started,
                }
                _save_checkpoint(paths.root / CHECKPOINT, model, optimizer, scheduler, loop_state)
    seconds = seconds_before + time.perf_counter() - started

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
        "seconds_per_example": round(seconds / max(len(losses) * per_step, 1), 4),
        "step_seconds": step_seconds,
        "device": device,
        "dtype": str(dtype).removeprefix("torch."),
        "autocast": config.autocast,
        "threads": torch.get_num_threads(),
        "examples": {"train": len(train_set), "val": len(val_set)},
        "versions": _versions(),
    }
    atomic_write_text(out / "metrics.json", json.dumps(metrics, indent=2) + "\n")
    shutil.rmtree(paths.root / CHECKPOINT, ignore_errors=True)
    console.print(f"train: adapter, loss curve and metrics in {out} ({seconds:.1f}s)", soft_wrap=True)
    return TrainResult(adapter_dir=out, losses=losses, val_losses=val_losses, seconds=seconds)


main = train
