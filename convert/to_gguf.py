"""HF checkpoint -> GGUF, PEFT adapter -> GGUF adapter (llama.cpp's converters), GGUF -> quantized GGUF.

    python -m convert gguf MERGED_DIR OUT.gguf --outtype f16
    python -m convert adapter ADAPTER_DIR BASE_DIR OUT.gguf --outtype f16
    python -m convert quantize IN.gguf OUT.gguf --type Q4_K_M

Each writes to a temporary name first, so a failed step never leaves a file that looks finished.
"""

from __future__ import annotations

import ctypes
from pathlib import Path
from typing import Literal

from edge_extract.files import replacing
from edge_extract.ui import get_console

from .errors import ConvertError
from .llama_cpp_scripts import run_script

OutType = Literal["f32", "f16", "bf16", "q8_0"]
QuantType = Literal["Q4_K_M", "Q8_0"]

QUANT_FTYPES: dict[str, int] = {"Q8_0": 7, "Q4_K_M": 15}
"""llama.cpp's LLAMA_FTYPE_MOSTLY_* numbers of the quantizations we ship."""


def hf_to_gguf(model_dir: Path, out: Path, *, outtype: OutType = "f16") -> Path:
    """A HF checkpoint folder (weights, config, tokenizer files) as one GGUF file."""
    if not (model_dir / "config.json").is_file():
        raise ConvertError(f"{model_dir} is not a HF checkpoint (no config.json)")
    with replacing(out) as tmp:
        run_script("convert_hf_to_gguf.py", [str(model_dir), "--outfile", str(tmp), "--outtype", outtype])
    get_console().print(f"gguf: {model_dir} -> {out} ({outtype}, {out.stat().st_size / 1e6:.1f} MB)", soft_wrap=True)
    return out


def adapter_to_gguf(adapter_dir: Path, base_dir: Path, out: Path, *, outtype: OutType = "f16") -> Path:
    """A PEFT LoRA adapter as a GGUF adapter; `base_dir` needs only the base's config.json."""
    if not (adapter_dir / "adapter_config.json").is_file():
        raise ConvertError(f"no PEFT adapter in {adapter_dir}: run the train step first")
    with replacing(out) as tmp:
        args = [str(adapter_dir), "--base", str(base_dir), "--outfile", str(tmp), "--outtype", outtype]
        run_script("convert_lora_to_gguf.py", args)
    get_console().print(f"adapter: {adapter_dir} -> {out} ({outtype})", soft_wrap=True)
    return out


def quantize(
    source: Path, out: Path, *, qtype: QuantType = "Q4_K_M", threads: int = 0, allow_requantize: bool = False
) -> Path:
    """Quantize a GGUF with llama.cpp (threads 0: all cores). Re-quantizing an already-quantized
    file loses more than quantizing the f16/f32 original once, so it needs `allow_requantize`."""
    import llama_cpp

    if not source.is_file():
        raise ConvertError(f"no such GGUF: {source}")
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = QUANT_FTYPES[qtype]
    params.nthread = threads
    params.allow_requantize = allow_requantize
    with replacing(out) as tmp:
        status = llama_cpp.llama_model_quantize(str(source).encode(), str(tmp).encode(), ctypes.byref(params))
        if status != 0:
            hint = "" if allow_requantize else " (an already-quantized input needs --allow-requantize)"
            raise ConvertError(f"llama.cpp could not quantize {source.name} to {qtype}{hint}")
    get_console().print(f"quantize: {source} -> {out} ({qtype}, {out.stat().st_size / 1e6:.1f} MB)", soft_wrap=True)
    return out
