"""A GGUF base (a path, or a registered model such as the default gemma-3-270m) -> plain HF checkpoint.

    python -m convert from-gguf gemma-3-270m runs/gemma-base

So the runtime's own base can be fine-tuned. transformers dequantizes the GGUF to float32 (its
reader needs the PyPI `gguf` package), but then refuses to save ("The model is quantized with
gguf and is not serializable") until the GGUF quantizer is dropped and `quantization_config`
deleted: the weights in memory are plain float32 by then, so nothing is lost. The saved
config.json keeps `architectures`, which convert_lora_to_gguf.py needs from the base.
"""

from __future__ import annotations

from pathlib import Path

from edge_extract.models.registry import Registry
from edge_extract.ui import get_console

from .errors import ConvertError


def gguf_path(model: str, *, registry: Registry | None = None) -> Path:
    """A GGUF file given by path, or the checked file of a registered model."""
    if model.endswith(".gguf") or Path(model).is_file():
        path = Path(model).expanduser()
        if not path.is_file():
            raise ConvertError(f"no such GGUF: {path}")
        return path
    return (registry or Registry.default()).resolve(model).path


def from_gguf(model: str, out_dir: Path, *, registry: Registry | None = None) -> Path:
    """Save the GGUF's weights, config and tokenizer as a float32 HF checkpoint in `out_dir`."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import is_gguf_available

    if not is_gguf_available():
        raise ConvertError("transformers reads a GGUF only with the gguf package: pip install 'edge-extract[convert]'")
    path = gguf_path(model, registry=registry)
    loaded = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
    loaded.hf_quantizer = None
    if hasattr(loaded.config, "quantization_config"):
        del loaded.config.quantization_config
    loaded.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    get_console().print(f"from-gguf: {path} -> {out_dir} (float32)", soft_wrap=True)
    return out_dir
