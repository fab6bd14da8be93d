"""Every step of a run, in order, from one config (the `pipeline` command): from-gguf (when the base
is a GGUF), prepare, train, then merge -> gguf -> quantize, or adapter -> GGUF adapter, and register.

    python -m convert pipeline --config run.toml
"""

from __future__ import annotations

from pathlib import Path

from edge_extract.models.manifest import Manifest
from edge_extract.models.registry import Registry

from . import prepare, train_lora
from .from_gguf import from_gguf
from .merge import local_checkpoint, merge
from .presets import TrainConfig, base_checkpoint, run_paths
from .register import register
from .to_gguf import adapter_to_gguf, hf_to_gguf, quantize


def ship_merged(config: TrainConfig) -> Path:
    """adapter + base -> merged checkpoint -> GGUF (gguf_type) -> quantized GGUF (quant); the last file."""
    paths = run_paths(config)
    merged = merge(
        base_checkpoint(config),
        paths.adapter,
        paths.merged,
        dtype="float32" if config.gguf_type == "f32" else "bfloat16",
    )
    full = hf_to_gguf(merged, paths.gguf / f"{config.name}-{config.gguf_type}.gguf", outtype=config.gguf_type)
    if config.quant is None:
        return full
    out = paths.gguf / f"{config.name}-{config.quant}.gguf"
    return quantize(full, out, qtype=config.quant, threads=config.threads or 0)


def ship_adapter(config: TrainConfig) -> tuple[str, Path]:
    """(base model for the manifest, GGUF adapter): the base GGUF is base_gguf as it is, or the
    base checkpoint converted and quantized like a merged model would be."""
    paths = run_paths(config)
    base_dir = local_checkpoint(base_checkpoint(config))
    adapter = adapter_to_gguf(
        paths.adapter, base_dir, paths.gguf / f"{config.name}-adapter-{config.gguf_type}.gguf", outtype=config.gguf_type
    )
    if config.base_gguf:
        return config.base_gguf, adapter
    base = hf_to_gguf(base_dir, paths.gguf / f"base-{config.gguf_type}.gguf", outtype=config.gguf_type)
    if config.quant is not None:
        base = quantize(base, paths.gguf / f"base-{config.quant}.gguf", qtype=config.quant, threads=config.threads or 0)
    return str(base), adapter


def run_all(config: TrainConfig, *, registry: Registry | None = None) -> Manifest:
    """Run all steps and register the result; returns its manifest."""
    if config.base_gguf:
        from_gguf(config.base_gguf, run_paths(config).base, registry=registry)
    prepare.main(config)
    train_lora.main(config)
    data = " + ".join(Path(path).name for path in config.train_files)
    subset = f", {config.max_examples} of its reports" if config.max_examples else ""
    description = f"LoRA fine-tune of {config.base or config.base_gguf} on {data}{subset}"
    if config.ship == "merged":
        model, adapter = str(ship_merged(config)), None
    else:
        model, adapter = ship_adapter(config)
    return register(
        config.name,
        model,
        chat=config.chat,
        adapter=adapter,
        context_size=config.context_size,
        description=description,
        decoding=config.decoding,
        fold=config.fold,
        registry=registry,
    )
