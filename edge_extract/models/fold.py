"""Fold a GGUF LoRA adapter into its GGUF base: one Q8_0 GGUF that decodes faster than the base
with the adapter applied at load time (llama.cpp then runs two extra small matrix products per
layer and token).

Every quantized weight is dequantized, the adapter's delta (alpha / rank) * B @ A added where it
has one, and the sum quantized to Q8_0; float32 tensors and metadata are copied as they are, so
the tokenizer is the base's own. This gives the same tensors, byte for byte, as merging with PEFT
in float32 and quantizing with llama.cpp (checked on the default model), without torch. Q8_0, not
the base's Q4_K_M: the adapter's delta is about 1% of a weight, below one Q4 rounding step, and
re-quantizing to Q4 erases it (docs/evaluation.md).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..errors import ModelError
from ..files import replacing

if TYPE_CHECKING:
    from gguf import GGUFReader


def _lora_pairs(adapter: GGUFReader) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], float]:
    """weight name -> (A, B) as float32 arrays, and the adapter's alpha."""
    tensors = {tensor.name: tensor for tensor in adapter.tensors}
    pairs = {}
    for name, tensor in tensors.items():
        if name.endswith(".lora_a"):
            weight = name.removesuffix(".lora_a")
            partner = tensors.get(f"{weight}.lora_b")
            if partner is None:
                raise ModelError(f"adapter has {name} without its lora_b")
            pairs[weight] = (np.asarray(tensor.data, dtype=np.float32), np.asarray(partner.data, dtype=np.float32))
    field = adapter.fields.get("adapter.lora.alpha")
    if field is None or not pairs:
        raise ModelError("not a LoRA adapter GGUF (no adapter.lora.alpha or no lora_a/lora_b tensors)")
    return pairs, float(field.parts[-1][0])


def _architecture(file: GGUFReader) -> str:
    field = file.fields.get("general.architecture")
    return str(field.contents()) if field is not None else "unknown"


def fold_adapter(base: Path, adapter: Path, out: Path, *, scale: float = 1.0) -> None:
    """Write `base` with `adapter` (at `scale`) folded in, as a Q8_0 GGUF, atomically at `out`."""
    import gguf
    from gguf.quants import dequantize, quantize

    q = gguf.GGMLQuantizationType
    base_file, adapter_file = gguf.GGUFReader(base), gguf.GGUFReader(adapter)
    architecture = _architecture(base_file)
    if (trained_for := _architecture(adapter_file)) != architecture:
        raise ModelError(f"adapter does not fit this base: it is for {trained_for} models, the base is {architecture}")
    pairs, alpha = _lora_pairs(adapter_file)
    shapes = {tensor.name: tuple(int(n) for n in reversed(tensor.shape)) for tensor in base_file.tensors}
    if unknown := sorted(set(pairs) - set(shapes)):
        raise ModelError(f"adapter does not fit this base: it changes {unknown[0]}, which the base lacks")
    for name, (lora_a, lora_b) in pairs.items():
        if (lora_b.shape[0], lora_a.shape[1]) != shapes[name]:  # a 0.5B's adapter over a 1.5B, say
            raise ModelError(
                f"adapter does not fit this base: it changes {name} as {lora_b.shape[0]}x{lora_a.shape[1]}, "
                f"the base's is {shapes[name][0]}x{shapes[name][1]}"
            )

    tensors = []
    for tensor in base_file.tensors:
        pair = pairs.get(tensor.name)
        if tensor.tensor_type == q.F32 or (tensor.tensor_type == q.Q8_0 and pair is None):
            # As it is: Q8_0 quantized again would give the same bytes.
            tensors.append((tensor.name, tensor.data, tensor.tensor_type))
            continue
        weight = dequantize(tensor.data, tensor.tensor_type).astype(np.float32)
        if pair is not None:
            lora_a, lora_b = pair
            weight += (scale * alpha / lora_a.shape[0]) * (lora_b @ lora_a)
        tensors.append((tensor.name, quantize(weight, q.Q8_0), q.Q8_0))

    with replacing(out) as tmp:
        writer = gguf.GGUFWriter(tmp, architecture)
        for field in base_file.fields.values():
            # The architecture and the GGUF.* header fields are written by the writer itself.
            if field.name == "general.architecture" or field.name.startswith("GGUF."):
                continue
            kind = field.types[0]
            value = field.contents()
            if field.name == "general.file_type":
                value = int(gguf.LlamaFileType.MOSTLY_Q8_0)
            writer.add_key_value(
                field.name, value, kind, sub_type=field.types[-1] if kind == gguf.GGUFValueType.ARRAY else None
            )
        for name, data, kind in tensors:
            writer.add_tensor_info(name, data.shape, data.dtype, data.nbytes, kind)
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_ti_data_to_file()
        for _, data, _ in tensors:
            writer.write_tensor_data(data)
        writer.close()
