"""Folding a LoRA adapter into its base GGUF: the arithmetic on small GGUFs written here, then the
default model's fold against the same adapter applied at load time."""

from __future__ import annotations

from pathlib import Path

import gguf
import numpy as np
import pytest
from gguf.quants import dequantize, quantize

from edge_extract.errors import ModelError
from edge_extract.files import sha256_file
from edge_extract.models.fold import fold_adapter
from edge_extract.models.manifest import ResolvedModel
from edge_extract.models.registry import DEFAULT_MODEL, Registry

Q = gguf.GGMLQuantizationType
RANK, ALPHA, ROWS, COLS = 4, 8.0, 64, 96


def _write(path: Path, arch: str, fields: dict[str, object], tensors: dict[str, tuple[np.ndarray, Q]]) -> Path:
    writer = gguf.GGUFWriter(path, arch)
    for key, value in fields.items():
        if isinstance(value, float):
            writer.add_float32(key, value)
        elif isinstance(value, int):
            writer.add_uint32(key, value)
        elif isinstance(value, list):
            writer.add_array(key, value)
        else:
            writer.add_string(key, str(value))
    for name, (data, kind) in tensors.items():
        stored = data if kind in (Q.F32, Q.F16) else quantize(data, kind)
        writer.add_tensor(name, stored, raw_dtype=kind)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


@pytest.fixture
def small(tmp_path: Path) -> dict[str, object]:
    rng = np.random.default_rng(0)
    weight = rng.normal(0, 0.05, (ROWS, COLS)).astype(np.float32)
    embedding = rng.normal(0, 0.05, (ROWS, COLS)).astype(np.float32)
    norm = rng.normal(1, 0.1, COLS).astype(np.float32)
    lora_a = rng.normal(0, 0.05, (RANK, COLS)).astype(np.float16)
    lora_b = rng.normal(0, 0.05, (ROWS, RANK)).astype(np.float16)
    base = _write(
        tmp_path / "base.gguf",
        "llama",
        {"general.file_type": 15, "tokenizer.ggml.tokens": ["<s>", "a", "b"]},
        {
            "token_embd.weight": (embedding, Q.Q8_0),
            "blk.0.attn_norm.weight": (norm, Q.F32),
            "blk.0.attn_q.weight": (weight, Q.Q5_0),
        },
    )
    adapter = _write(
        tmp_path / "adapter.gguf",
        "llama",
        {"general.type": "adapter", "adapter.type": "lora", "adapter.lora.alpha": ALPHA},
        {"blk.0.attn_q.weight.lora_a": (lora_a, Q.F16), "blk.0.attn_q.weight.lora_b": (lora_b, Q.F16)},
    )
    delta = (ALPHA / RANK) * (lora_b.astype(np.float32) @ lora_a.astype(np.float32))
    return {"base": base, "adapter": adapter, "delta": delta}


def _tensors(path: Path) -> dict[str, gguf.ReaderTensor]:
    return {tensor.name: tensor for tensor in gguf.GGUFReader(path).tensors}


def test_fold_adds_the_scaled_delta_and_quantizes_to_q8_0(small: dict, tmp_path: Path) -> None:
    out = tmp_path / "folded.gguf"
    fold_adapter(small["base"], small["adapter"], out)
    base, folded = _tensors(small["base"]), _tensors(out)
    assert {name: t.tensor_type for name, t in folded.items()} == {
        "token_embd.weight": Q.Q8_0,
        "blk.0.attn_norm.weight": Q.F32,
        "blk.0.attn_q.weight": Q.Q8_0,
    }
    # Untouched tensors keep their bytes; the changed one is the dequantized base plus the delta.
    for name in ("token_embd.weight", "blk.0.attn_norm.weight"):
        assert np.array_equal(np.asarray(folded[name].data), np.asarray(base[name].data))
    before = dequantize(base["blk.0.attn_q.weight"].data, Q.Q5_0)
    after = dequantize(folded["blk.0.attn_q.weight"].data, Q.Q8_0)
    error = np.abs(after - (before + small["delta"])).max()
    assert error < np.abs(small["delta"]).max() / 10  # a Q8_0 rounding step, far below the delta
    assert error <= np.abs(before).max() / 127
    fields = gguf.GGUFReader(out).fields
    assert fields["general.file_type"].contents() == int(gguf.LlamaFileType.MOSTLY_Q8_0)
    assert fields["tokenizer.ggml.tokens"].contents() == ["<s>", "a", "b"]
    assert not list(tmp_path.glob("*.tmp*"))


def test_fold_at_scale_half_adds_half_the_delta(small: dict, tmp_path: Path) -> None:
    fold_adapter(small["base"], small["adapter"], tmp_path / "half.gguf", scale=0.5)
    fold_adapter(small["base"], small["adapter"], tmp_path / "full.gguf")
    base = dequantize(_tensors(small["base"])["blk.0.attn_q.weight"].data, Q.Q5_0)
    half, full = (
        dequantize(_tensors(tmp_path / f"{name}.gguf")["blk.0.attn_q.weight"].data, Q.Q8_0) for name in ("half", "full")
    )
    assert np.abs((half - base) * 2 - (full - base)).max() < np.abs(small["delta"]).max() / 5


def test_an_adapter_for_another_base_is_refused_and_leaves_nothing(small: dict, tmp_path: Path) -> None:
    other = _write(
        tmp_path / "other.gguf",
        "llama",
        {"general.type": "adapter", "adapter.lora.alpha": ALPHA},
        {
            "blk.7.attn_q.weight.lora_a": (np.zeros((RANK, COLS), np.float16), Q.F16),
            "blk.7.attn_q.weight.lora_b": (np.zeros((ROWS, RANK), np.float16), Q.F16),
        },
    )
    with pytest.raises(ModelError, match=r"changes blk\.7\.attn_q\.weight, which the base lacks"):
        fold_adapter(small["base"], other, tmp_path / "folded.gguf")
    wider = _write(  # the same architecture at another size: a 0.5B's adapter over a 1.5B
        tmp_path / "wider.gguf",
        "llama",
        {"general.type": "adapter", "adapter.lora.alpha": ALPHA},
        {
            "blk.0.attn_q.weight.lora_a": (np.zeros((RANK, 2 * COLS), np.float16), Q.F16),
            "blk.0.attn_q.weight.lora_b": (np.zeros((ROWS, RANK), np.float16), Q.F16),
        },
    )
    shapes = rf"changes blk\.0\.attn_q\.weight as {ROWS}x{2 * COLS}, the base's is {ROWS}x{COLS}"
    with pytest.raises(ModelError, match=shapes):
        fold_adapter(small["base"], wider, tmp_path / "folded.gguf")
    qwen = _write(tmp_path / "qwen.gguf", "qwen2", {"general.type": "adapter", "adapter.lora.alpha": ALPHA}, {})
    with pytest.raises(ModelError, match="it is for qwen2 models, the base is llama"):
        fold_adapter(small["base"], qwen, tmp_path / "folded.gguf")
    with pytest.raises(ModelError, match="not a LoRA adapter"):
        fold_adapter(small["base"], small["base"], tmp_path / "folded.gguf")
    assert not (tmp_path / "folded.gguf").exists()


@pytest.mark.model
def test_the_default_runs_folded_and_predicts_as_the_adapter_at_load(tmp_path: Path) -> None:
    from edge_extract.prompt import Strategy, render_prompt
    from edge_extract.runtime import LoadSettings, Runtime

    registry = Registry.default()
    folded = registry.resolve(DEFAULT_MODEL)
    manifest = folded.manifest
    assert manifest.adapter is not None and manifest.adapter.fold == "Q8_0"
    assert folded.adapter_path is None and folded.path.name.endswith("-q8_0.gguf")
    at_load = ResolvedModel(
        manifest=manifest,
        path=registry.model_path(manifest, registry.get(DEFAULT_MODEL)[1]),
        adapter_path=registry.get(DEFAULT_MODEL)[1] / manifest.adapter.file,
    )
    text = Path("samples/case_report.txt").read_text(encoding="utf-8")
    settings = LoadSettings(n_ctx=2048, n_threads=1)
    logits = []
    for model in (folded, at_load):
        runtime = Runtime(model, settings=settings)
        tokens = runtime.tokenize_prompt(render_prompt(text, chat=manifest.prompt_format, strategy=Strategy.naive))
        logits.append(np.array(runtime.start(tokens + runtime.tokenize('{"life_style": "')), dtype=np.float32))
        runtime.close()
    assert runtime.model_sha256 == at_load.sha256  # the base, as loaded
    folded_logits, adapter_logits = logits
    assert np.argmax(folded_logits) == np.argmax(adapter_logits)
    assert np.corrcoef(folded_logits, adapter_logits)[0, 1] > 0.99


@pytest.mark.model
def test_a_damaged_fold_is_refused_at_load_and_built_again_by_verify(tmp_path: Path) -> None:
    from edge_extract.api import load_model

    registry = Registry.default()
    path = registry.resolve(DEFAULT_MODEL).path
    stamp = path.with_name(path.name + ".sha256").read_text()
    with path.open("r+b") as handle:  # one byte flipped in place, size and name unchanged
        handle.seek(path.stat().st_size // 2)
        byte = handle.read(1)
        handle.seek(-1, 1)
        handle.write(bytes([byte[0] ^ 0xFF]))
    with pytest.raises(ModelError, match="is corrupted or not the expected file"):
        load_model(threads=1)  # hashed while it loads: the damaged fold never runs
    again = registry.resolve(DEFAULT_MODEL)  # what `models verify` does: hash, and fold again
    assert again.path == path and again.sha256 == stamp.strip() == sha256_file(path)
