"""`edge-extract-convert` (or `python -m convert`): base model + ELMTEX data -> registered GGUF.

Steps run one by one or all together:

    edge-extract-convert pipeline --preset llama-3b --set train_file=train.jsonl --set val_file=val.jsonl
    edge-extract-convert config --preset gemma-270m            # print the resolved settings
    edge-extract-convert prepare|train --config run.toml       # the steps that read a config
    edge-extract-convert from-gguf|merge|gguf|adapter|quantize|register ...   # file-to-file steps

Heavy libraries (torch, transformers, peft, llama_cpp) load inside the steps, so --help is fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Literal

import typer

from edge_extract.cli.exits import one_line_errors
from edge_extract.models.manifest import DEFAULT_CONTEXT_SIZE, MIN_CONTEXT_SIZE
from edge_extract.ui import get_console

from .presets import PRESETS, TrainConfig, load_config

if TYPE_CHECKING:
    from edge_extract.models.registry import Registry

app = typer.Typer(
    name="edge-extract-convert",
    help="Fine-tune a base model on ELMTEX data and turn it into a GGUF that edge-extract runs.",
    context_settings={"help_option_names": ["-h", "--help"]},
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

CONFIG_OPTION = typer.Option(None, "--config", "-c", help="Run config, JSON or TOML (may name a preset).")
PRESET_OPTION = typer.Option(None, "--preset", "-p", help=f"Start from a preset: {', '.join(PRESETS)}.")
SET_OPTION = typer.Option([], "--set", "-s", help="Override one setting, KEY=VALUE (repeatable).")
MODELS_DIR_OPTION = typer.Option(None, "--models-dir", help="Models folder (default: the user's).")
OUTTYPE_OPTION = typer.Option("f16", "--outtype", help="f32, f16, bf16 or q8_0.")


def _config(config: Path | None, preset: str | None, overrides: list[str]) -> TrainConfig:
    return load_config(config, preset=preset, overrides=overrides)


@app.command("config")
@one_line_errors
def show_config(
    config: Path | None = CONFIG_OPTION, preset: str | None = PRESET_OPTION, overrides: list[str] = SET_OPTION
) -> None:
    """Print the resolved settings as JSON (a config file that reproduces the run)."""
    typer.echo(_config(config, preset, overrides).to_json(), nl=False)


@app.command("prepare")
@one_line_errors
def prepare_command(
    config: Path | None = CONFIG_OPTION, preset: str | None = PRESET_OPTION, overrides: list[str] = SET_OPTION
) -> None:
    """ELMTEX JSONL -> chat-formatted train/val examples in <out_dir>/data."""
    from . import prepare

    prepare.main(_config(config, preset, overrides))


@app.command("train")
@one_line_errors
def train_command(
    config: Path | None = CONFIG_OPTION, preset: str | None = PRESET_OPTION, overrides: list[str] = SET_OPTION
) -> None:
    """LoRA fine-tune on the prepared examples -> <out_dir>/adapter."""
    from . import train_lora

    train_lora.main(_config(config, preset, overrides))


@app.command("pipeline")
@one_line_errors
def pipeline_command(
    config: Path | None = CONFIG_OPTION, preset: str | None = PRESET_OPTION, overrides: list[str] = SET_OPTION
) -> None:
    """All steps, from the base model to a registered GGUF."""
    from .run_all import run_all

    manifest = run_all(_config(config, preset, overrides))
    get_console().print(f"done: edge-extract extract --model {manifest.name} REPORT", soft_wrap=True)


@app.command("from-gguf")
@one_line_errors
def from_gguf_command(
    model: str = typer.Argument(..., help="A GGUF file or a registered model name, e.g. gemma-3-270m."),
    out_dir: Path = typer.Argument(..., help="Folder for the HF checkpoint."),
) -> None:
    """GGUF base -> float32 HF checkpoint, to fine-tune the runtime's own base."""
    from .from_gguf import from_gguf

    from_gguf(model, out_dir)


@app.command("merge")
@one_line_errors
def merge_command(
    base: str = typer.Argument(..., help="Base checkpoint: HF id or folder."),
    adapter_dir: Path = typer.Argument(..., help="PEFT adapter folder (from train)."),
    out_dir: Path = typer.Argument(..., help="Folder for the merged checkpoint."),
    dtype: str = typer.Option("bfloat16", "--dtype", help="float32, bfloat16 or float16."),
) -> None:
    """Fold the adapter into the base and save safetensors."""
    from .merge import merge

    merge(base, adapter_dir, out_dir, dtype=dtype)


@app.command("gguf")
@one_line_errors
def gguf_command(
    model_dir: Path = typer.Argument(..., help="HF checkpoint folder (e.g. from merge)."),
    out: Path = typer.Argument(..., help="GGUF file to write."),
    outtype: str = OUTTYPE_OPTION,
) -> None:
    """HF checkpoint -> GGUF with llama.cpp's convert_hf_to_gguf.py."""
    from .to_gguf import hf_to_gguf

    hf_to_gguf(model_dir, out, outtype=outtype)  # type: ignore[arg-type]  # the converter checks it


@app.command("adapter")
@one_line_errors
def adapter_command(
    adapter_dir: Path = typer.Argument(..., help="PEFT adapter folder (from train)."),
    base_dir: Path = typer.Argument(..., help="Base checkpoint folder (only its config.json is read)."),
    out: Path = typer.Argument(..., help="GGUF adapter file to write."),
    outtype: str = OUTTYPE_OPTION,
) -> None:
    """PEFT LoRA -> GGUF adapter with llama.cpp's convert_lora_to_gguf.py."""
    from .to_gguf import adapter_to_gguf

    adapter_to_gguf(adapter_dir, base_dir, out, outtype=outtype)  # type: ignore[arg-type]


@app.command("quantize")
@one_line_errors
def quantize_command(
    source: Path = typer.Argument(..., help="GGUF to quantize (f32/f16 for best quality)."),
    out: Path = typer.Argument(..., help="Quantized GGUF to write."),
    qtype: str = typer.Option("Q4_K_M", "--type", help="Q4_K_M or Q8_0."),
    threads: int = typer.Option(0, "--threads", min=0, help="CPU threads (0: all)."),
    allow_requantize: bool = typer.Option(False, "--allow-requantize", help="Accept an already-quantized input."),
) -> None:
    """GGUF -> Q8_0 / Q4_K_M with llama.cpp."""
    from .to_gguf import QUANT_FTYPES, quantize

    if qtype not in QUANT_FTYPES:
        raise typer.BadParameter(f"one of {', '.join(QUANT_FTYPES)}", param_hint="--type")
    quantize(source, out, qtype=qtype, threads=threads, allow_requantize=allow_requantize)  # type: ignore[arg-type]


def _registry(models_dir: Path | None) -> Registry:
    """The user's registry, its user folder replaced by `models_dir` where one is given."""
    from edge_extract.models.registry import Registry

    registry = Registry.default()
    return registry if models_dir is None else Registry((*registry.folders[:-1], models_dir))


@app.command("register")
@one_line_errors
def register_command(
    name: str = typer.Argument(..., help="Name for `edge-extract extract --model NAME`."),
    model: str = typer.Argument(..., help="The GGUF file, or a registered base model for --adapter."),
    chat: str | None = typer.Option(None, "--chat", "--prompt-format", help="Prompt format: gemma, llama3 or chatml."),
    adapter: Path | None = typer.Option(None, "--adapter", help="GGUF LoRA adapter (applied at load, or --fold)."),
    context_size: int = typer.Option(DEFAULT_CONTEXT_SIZE, "--context-size", min=MIN_CONTEXT_SIZE),
    description: str = typer.Option("", "--description", help="One line for `edge-extract models list`."),
    models_dir: Path | None = MODELS_DIR_OPTION,
    decoding: list[str] = typer.Option(
        [], "--decoding", help="KEY=VALUE decoding setting chosen for this model, e.g. absent_bias=2 (repeatable)."
    ),
    fold: Literal["Q8_0"] | None = typer.Option(
        None,
        "--fold",
        case_sensitive=False,
        help="Run the adapter folded into the model as one GGUF of this type (faster decoding).",
    ),
) -> None:
    """Write a model's manifest into a models folder, copying in its GGUF (unless it is a registered
    embedded or installed base, which is shared) and adapter."""
    from pydantic import ValidationError

    from edge_extract.decoding import DecodingSettings
    from edge_extract.errors import problems

    from .register import register

    registry = _registry(models_dir)
    chosen = {}
    for item in decoding:
        key, sep, value = item.partition("=")
        if not sep:
            raise typer.BadParameter(f"KEY=VALUE, got {item!r}", param_hint="--decoding")
        chosen[key.strip()] = value.strip()
    try:
        settings = DecodingSettings.model_validate(chosen)
    except ValidationError as error:
        raise typer.BadParameter(problems(error), param_hint="--decoding") from None
    register(
        name,
        model,
        chat=chat,
        adapter=adapter,
        context_size=context_size,
        description=description,
        decoding=settings,
        fold=fold,
        registry=registry,
    )


@app.command("record-val")
@one_line_errors
def record_val_command(
    name: str = typer.Argument(..., help="A registered model."),
    run: Path = typer.Argument(..., help="Its `edge-extract eval run` folder on ELMTEX val.jsonl."),
    models_dir: Path | None = MODELS_DIR_OPTION,
) -> None:
    """Store a model's val scores and speed in its manifest, for `edge-extract models list`."""

    from .register import record_val

    record_val(name, run, registry=_registry(models_dir))


def main() -> None:
    app()


if __name__ == "__main__":
    main()
