"""Adapter + base -> merged HF checkpoint (safetensors), ready for llama.cpp's converter.

    python -m convert merge BASE ADAPTER_DIR OUT_DIR [--dtype bfloat16]

The base's tokenizer files are copied byte for byte rather than re-saved through transformers:
a re-save writes only tokenizer.json and drops tokenizer.model, and llama.cpp's converter then
reads a SentencePiece model (Gemma, Llama 2) through a different path, or fails.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from edge_extract.ui import get_console

from .errors import ConvertError

TOKENIZER_FILES = (
    "tokenizer.model",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "chat_template.jinja",
    "chat_template.json",
)
"""Files that define a checkpoint's tokenizer and chat template, copied with the weights."""


def local_checkpoint(base: str) -> Path:
    """A folder holding the base checkpoint: `base` itself, or its hub snapshot (downloaded once;
    HF_TOKEN applies to gated models such as Llama 3.2)."""
    if Path(base).expanduser().is_dir():
        return Path(base).expanduser()
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(base, allow_patterns=["*.json", "*.model", "*.safetensors", "*.jinja"]))
    except Exception as error:  # the hub client raises many types; all mean "not available"
        raise ConvertError(f"cannot get base model {base!r}: {error}") from error


def merge(base: str, adapter_dir: Path, out_dir: Path, *, dtype: str = "float32") -> Path:
    """Fold the LoRA adapter into the base weights (in float32) and save them in `dtype`."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    if not (adapter_dir / "adapter_config.json").is_file():
        raise ConvertError(f"no PEFT adapter in {adapter_dir}: run the train step first")
    base_dir = local_checkpoint(base)
    model = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32)
    merged = PeftModel.from_pretrained(model, adapter_dir).merge_and_unload()
    merged.to(getattr(torch, dtype)).save_pretrained(out_dir)
    for name in TOKENIZER_FILES:
        if (base_dir / name).is_file():
            shutil.copyfile(base_dir / name, out_dir / name)
    get_console().print(f"merge: {adapter_dir} folded into {base} -> {out_dir} ({dtype})", soft_wrap=True)
    return out_dir
